#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_network
short_description: The private network of one deployment on AWS (VPC, subnets, NAT or VPC endpoints, security group)
version_added: 0.1.0
description:
  - Creates, corrects or deletes the VPC a C(cloud=aws) node lives in and everything in it, all named
    after O(name) and tagged as the deployment's (C(oce-deployment), C(oce-managed-by), O(environment)
    and O(tags)). One boto3 session; it reads what exists once, plans, then acts.
  - "A VPC C(NAME) with DNS support and DNS host names; one private subnet C(NAME-private-ZONE) per zone
    (no public IP mapping, tag C(oce-tier=private)) sharing the route table C(NAME-private); the node's
    security group C(NAME-node) with no ingress rule at all (and the default egress)."
  - "With O(egress=nat): a public subnet C(NAME-public) in the first zone that holds only the NAT
    gateway, an internet gateway C(NAME), the route table C(NAME-public) (0.0.0.0/0 to the internet
    gateway), the NAT gateway C(NAME) (waited for until available) with an elastic IP C(NAME-nat)
    tagged as ours, and the route 0.0.0.0/0 to the NAT gateway in C(NAME-private)."
  - "With O(egress=none): no internet gateway and no NAT; an S3 gateway endpoint C(NAME-s3) on the
    private route table, the security group C(NAME-endpoints) (HTTPS from the VPC's range only) and
    one interface endpoint C(NAME-SERVICE) per O(interface_endpoints) in the private subnets."
  - V(present) also corrects drift it owns (DNS attributes, a public IP mapping, routes, an ingress rule
    on the node's group, endpoints' subnets and groups, missing or changed tags) and removes what is
    ours but no longer wanted (switching O(egress) removes the other path; a private subnet whose range
    is no longer listed is deleted).
  - A resource with one of our names (its C(Name) tag, or a security group's name) in the deployment's
    VPC, or a VPC named O(name), that does not carry the deployment's tags is never changed or deleted;
    V(present) fails instead and says which. A private subnet's range and zone, and the VPC's range,
    cannot change in place; the module fails before acting.
  - V(absent) deletes exactly what carries the deployment's tags in the region, in dependency order
    (VPC endpoints, NAT gateways and their elastic IPs, route tables other than a VPC's main one,
    subnets, internet gateways, security groups other than a VPC's default one, VPCs), waiting where
    AWS needs it. The deployment's instances must be terminated first; AWS refuses otherwise and the
    module says so.
options:
  deployment:
    description: Deployment tag; marks every resource as ours. Lowercase letters, digits, dashes.
    type: str
    required: true
  name:
    description: The C(Name) of the VPC and prefix of the other resources' names; C(oce-DEPLOYMENT) when omitted.
    type: str
  environment:
    description: Tagged as C(oce-environment) on every resource when given.
    type: str
  state:
    description: V(present) creates or corrects the network; V(absent) deletes what is ours.
    type: str
    choices: [present, absent]
    default: present
  vpc_cidr:
    description: The VPC's range, /16 to /28 (it cannot change once created).
    type: str
    default: 10.64.0.0/16
  public_subnet_cidr:
    description: The public subnet's range (O(egress=nat) only), inside O(vpc_cidr).
    type: str
    default: 10.64.0.0/24
  private_subnet_cidrs:
    description: The private subnets' ranges, inside O(vpc_cidr), one per zone of O(zones), in that order.
    type: list
    elements: str
    default: [10.64.1.0/24, 10.64.2.0/24]
  zones:
    description:
      - The availability zones of the private subnets, one per O(private_subnet_cidrs); the public
        subnet goes in the first. Required with O(state=present).
    type: list
    elements: str
    default: []
  egress:
    description:
      - V(nat) gives the private subnets outbound internet through a NAT gateway (no inbound path).
      - V(none) gives them none; S3 (gateway endpoint) and O(interface_endpoints) stay reachable.
    type: str
    choices: [nat, none]
    default: nat
  interface_endpoints:
    description:
      - With O(egress=none), the services reached through interface endpoints (C(com.amazonaws.REGION.SERVICE)).
    type: list
    elements: str
    default: [logs, monitoring, secretsmanager]
  tags:
    description:
      - Extra tags for every resource. They may not set C(oce-deployment) or C(oce-managed-by).
      - On a resource that exists already, a tag missing or with another value is set; see O(purge_tags).
    type: dict
    default: {}
  purge_tags:
    description: Remove the tags that this run does not set (never ours, never C(aws:) ones).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for each NAT gateway or VPC endpoint to become available or be deleted.
    type: int
    default: 900
extends_documentation_fragment:
  - ollama_cloud.engine.aws
attributes:
  check_mode:
    support: full
    description: Changes nothing; RV(actions) lists what would be created, corrected or deleted.
  diff_mode:
    support: full
    description: Shows the deployment's network resources before and after.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: The demo deployment's private network, with a NAT gateway
  ollama_cloud.engine.aws_network:
    deployment: demo
    region: us-east-1
    zones: [us-east-1a, us-east-1b]
  register: net

- name: A node in it
  ollama_cloud.engine.aws_gpu_instance:
    name: oce-demo
    deployment: demo
    model: codellama:7b-code
    region: us-east-1
    subnet_ids: "{{ net.network.private_subnet_ids }}"
    security_group_ids: ["{{ net.network.security_group_id }}"]

- name: No internet at all, AWS services through VPC endpoints
  ollama_cloud.engine.aws_network:
    deployment: airgap
    region: eu-west-1
    zones: [eu-west-1a, eu-west-1b]
    egress: none
    tags: {team: ml}

- name: Delete what the deployment's network consists of (its instances first)
  ollama_cloud.engine.aws_network:
    deployment: demo
    region: us-east-1
    state: absent
"""

RETURN = r"""
network:
  description:
    - The network as it is (in check mode, would be; the ids of what would be created are empty, and
      only existing private subnets are listed); empty after V(absent).
  returned: always
  type: dict
  contains:
    vpc_id:
      description: The VPC (empty in check mode when it does not exist yet).
      type: str
    private_subnet_ids:
      description:
        - The private subnets in the order of O(zones), for the node's
          O(ollama_cloud.engine.aws_gpu_instance#module:subnet_ids).
      type: list
      elements: str
    security_group_id:
      description: The node's security group (no ingress rule).
      type: str
    nat_gateway_id:
      description: The NAT gateway (empty with O(egress=none)).
      type: str
    endpoints:
      description: The VPC endpoints by service (empty with O(egress=nat)).
      type: dict
  sample:
    name: oce-demo
    vpc_id: vpc-0abc
    vpc_cidr: 10.64.0.0/16
    egress: nat
    zones: [us-east-1a, us-east-1b]
    private_subnet_ids: [subnet-01, subnet-02]
    public_subnet_id: subnet-03
    internet_gateway_id: igw-01
    nat_gateway_id: nat-01
    nat_allocation_id: eipalloc-01
    public_route_table_id: rtb-01
    private_route_table_id: rtb-02
    security_group_id: sg-01
    endpoint_security_group_id: ""
    endpoints: {}
actions:
  description: What was (in check mode, would be) created, corrected or deleted, in order.
  returned: always
  type: list
  elements: str
  sample: [create VPC oce-demo (10.64.0.0/16), create subnet oce-demo-private-us-east-1a (10.64.1.0/24)]
retries:
  description: API calls retried after throttling or a server error, as C([operation, error code, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import ipaddress

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud, fleet, node_inputs, node_module

ANYWHERE = "0.0.0.0/0"
# NAT gateways and VPC endpoints that still exist (or are on their way out, for absent to wait on).
LIVE_NAT = ["pending", "available"]
GONE = ("deleted", "deleting", "failed", "rejected", "expired")
TIER = "oce-tier"
# The VPC's DNS attributes (both on): as modify_vpc_attribute sets them, as describe_vpc_attribute asks.
DNS_ATTRIBUTES = {
    "EnableDnsSupport": ("enableDnsSupport", "DNS support"),
    "EnableDnsHostnames": ("enableDnsHostnames", "DNS host names"),
}
# What node_inputs.aws_cidr_problems calls the three ranges here: this module's options.
CIDR_OPTIONS = ("vpc_cidr", "public_subnet_cidr", "private_subnet_cidrs")
ENDPOINTS_RULE = "HTTPS from the VPC"
# What each kind is called in messages, and its id.
WHAT = {
    "vpcs": ("VPC", "VpcId"),
    "subnets": ("subnet", "SubnetId"),
    "route_tables": ("route table", "RouteTableId"),
    "igws": ("internet gateway", "InternetGatewayId"),
    "nats": ("NAT gateway", "NatGatewayId"),
    "groups": ("security group", "GroupId"),
    "endpoints": ("VPC endpoint", "VpcEndpointId"),
}
# How each kind that absent deletes one by one is deleted (its id parameter is WHAT's).
DELETE = {
    "route_tables": "delete_route_table",
    "subnets": "delete_subnet",
    "igws": "delete_internet_gateway",
    "groups": "delete_security_group",
    "vpcs": "delete_vpc",
}
# What each kind is read with, the list in the answer, and its filter on the VPC.
KINDS = {
    "vpcs": ("describe_vpcs", "Vpcs", None),
    "subnets": ("describe_subnets", "Subnets", "vpc-id"),
    "route_tables": ("describe_route_tables", "RouteTables", "vpc-id"),
    "igws": ("describe_internet_gateways", "InternetGateways", "attachment.vpc-id"),
    "nats": ("describe_nat_gateways", "NatGateways", "vpc-id"),
    "groups": ("describe_security_groups", "SecurityGroups", "vpc-id"),
    "endpoints": ("describe_vpc_endpoints", "VpcEndpoints", "vpc-id"),
}


def tags_of(resource):
    return aws.tag_dict(resource.get("Tags"))


def name_of(resource):
    return tags_of(resource).get("Name") or resource.get("GroupName") or ""


def live(resource):
    return str(resource.get("State") or "").lower() not in GONE


class Network:
    """The deployment's network resources: read once, plan, apply."""

    def __init__(self, ec2, params, check_mode):
        self.ec2, self.params, self.check = ec2, params, check_mode
        self.deployment = params["deployment"]
        self.name = params["name"] or fleet.deployment_names(self.deployment)["base"]
        self.region = ec2.region
        self.timeout = params["wait_timeout"]
        self.labels = fleet.deployment_labels(self.deployment)
        self.actions = []
        self.found = {kind: [] for kind in KINDS}
        self.found["addresses"] = []
        self.tables = {}  # our route tables by name, as present found or made them

    # --------------------------------------------------------------- helpers

    def tags(self, name, **extra):
        """Our tags for a resource named ``name``: the deployment's, the environment, the user's, ``extra``."""
        return cloud.our_tags(
            self.deployment, environment=self.params["environment"], name=name, extra=dict(self.params["tags"], **extra)
        )

    def spec(self, kind, name, **extra):
        return [{"ResourceType": kind, "Tags": aws.to_tag_list(self.tags(name, **extra))}]

    def is_ours(self, resource):
        return fleet.is_ours(tags_of(resource), self.deployment)

    def do(self, action, operation, **params):
        """Record an action; unless in check mode, send it. Returns the answer (empty in check mode)."""
        self.actions.append(action)
        if self.check:
            return {}
        try:
            return self.ec2.call(operation, **params)
        except cloud.CloudError as exc:
            if exc.details.get("code") != "DependencyViolation":
                raise
            raise cloud.CloudError(
                f"{exc.msg}: something still uses it; terminate the deployment's instances first "
                "(playbooks/destroy.yml does), and remove from the VPC what this module did not make",
                **exc.details,
            ) from None

    def read(self, filters):
        """Every kind, filtered by ``filters`` (our tags, or the VPC), split into ours and not ours."""
        ours, others = {}, {}
        for kind, (operation, key, _vpc_filter) in KINDS.items():
            if filters(kind) is None:
                continue
            extra = [{"Name": "state", "Values": LIVE_NAT + ["deleting"]}] if kind == "nats" else []
            found = self.ec2.paginate(operation, key, Filters=filters(kind) + extra)
            found = [r for r in found if live(r) or kind == "nats" and r["State"] == "deleting"]
            ours[kind] = [r for r in found if self.is_ours(r)]
            others[kind] = [r for r in found if not self.is_ours(r)]
        addresses = self.ec2.call("describe_addresses", Filters=aws.tag_filters(self.labels)).get("Addresses", [])
        ours["addresses"] = [a for a in addresses if self.is_ours(a)]
        return ours, others

    def retag(self, resource_id, resource, name, **extra):
        """Bring an existing resource's tags to this run's."""
        changes, removals = cloud.tag_drift(
            tags_of(resource), self.tags(name, **extra), self.params["purge_tags"], aws.RESERVED_TAG_PREFIXES
        )
        if changes:
            self.do(
                f"tag {name} ({resource_id})", "create_tags", Resources=[resource_id], Tags=aws.to_tag_list(changes)
            )
        if removals:
            self.do(
                f"untag {name} ({resource_id}): {', '.join(removals)}",
                "delete_tags",
                Resources=[resource_id],
                Tags=[{"Key": k} for k in removals],
            )

    def wait(self, what, probe, done, failed=None):
        if not self.check:
            cloud.wait_for(probe, done, what, self.timeout, clock=self.ec2.clock, failed=failed)

    def nat_state(self, nat_id):
        found = self.ec2.call("describe_nat_gateways", NatGatewayIds=[nat_id]).get("NatGateways") or [{}]
        return found[0]

    def endpoints_state(self, endpoint_ids):
        found = self.ec2.paginate("describe_vpc_endpoints", "VpcEndpoints", VpcEndpointIds=endpoint_ids)
        return [e for e in found if e["VpcEndpointId"] in endpoint_ids]

    # --------------------------------------------------------------- read, present

    def our_vpc(self):
        """The deployment's VPC (or None); CloudError for a VPC of our name that is not ours, or two of ours."""
        ours = self.ec2.paginate("describe_vpcs", "Vpcs", Filters=aws.tag_filters(self.labels))
        named = self.ec2.paginate("describe_vpcs", "Vpcs", Filters=aws.tag_filters({"Name": self.name}))
        foreign = [v["VpcId"] for v in named if not self.is_ours(v)]
        if foreign:
            raise cloud.CloudError(self.not_ours("VPC", self.name, foreign[0]))
        if len(ours) > 1:
            raise cloud.CloudError(
                f"deployment {self.deployment} has {len(ours)} VPCs ({', '.join(sorted(v['VpcId'] for v in ours))}) "
                "in this region: remove the deployment (state=absent, playbooks/destroy.yml) and create it again"
            )
        return ours[0] if ours else None

    def not_ours(self, kind, name, resource_id):
        return (
            f"{kind} {name} ({resource_id}) exists in region {self.region} without the tags of deployment "
            f"{self.deployment} ({fleet.LABEL_DEPLOYMENT}={self.deployment}, "
            f"{fleet.LABEL_MANAGED_BY}={fleet.MANAGED_BY}): "
            "this module will not change or delete it; remove or rename it, or choose another name or deployment"
        )

    def refuse_foreign(self, others, wanted):
        """Fail when a resource in the VPC that is not ours has one of the names (or subnet ranges) we use."""
        for kind, resources in others.items():
            what, id_key = WHAT[kind]
            for resource in resources:
                keys = {tags_of(resource).get("Name"), resource.get("GroupName"), resource.get("CidrBlock")}
                clash = sorted(k for k in keys & wanted if k)
                if clash:
                    raise cloud.CloudError(self.not_ours(what, clash[0], resource[id_key]))

    def wanted_names(self):
        p, n = self.params, self.name
        names = {f"{n}-private-{z}" for z in p["zones"]} | set(p["private_subnet_cidrs"])
        names |= {f"{n}-private", f"{n}-node"}
        if p["egress"] == "nat":
            names |= {f"{n}-public", p["public_subnet_cidr"], n}
        else:
            names |= {f"{n}-endpoints", f"{n}-s3"} | {f"{n}-{s}" for s in p["interface_endpoints"]}
        return names

    def present(self):
        p = self.params
        vpc = self.our_vpc()
        ours, others = (
            self.read(lambda kind: [{"Name": KINDS[kind][2], "Values": [vpc["VpcId"]]}] if KINDS[kind][2] else None)
            if vpc
            else (self.found, {})
        )
        ours["vpcs"] = [vpc] if vpc else []
        self.refuse_foreign(others, self.wanted_names())
        self.check_fixed(vpc, ours)
        before = snapshot(ours)
        self.found = ours
        vpc_id = self.vpc(vpc)
        subnets = self.private_subnets(vpc_id, ours)
        result = {"vpc_id": vpc_id, "private_subnet_ids": [s for s in subnets if s]}
        private_rt = self.route_table(vpc_id, f"{self.name}-private", [s for s in subnets if s])
        nat = {}
        if p["egress"] == "nat":
            nat = self.nat_path(vpc_id, private_rt)
        result.update(nat)
        self.private_route(private_rt, nat.get("nat_gateway_id"))
        result["security_group_id"] = self.group(
            vpc_id,
            f"{self.name}-node",
            f"ollama_cloud.engine {self.deployment}: no ingress; reach the node over the tailnet",
            [],
        )
        if p["egress"] == "nat":
            self.remove_stale_nat_path(nat["public_subnet_id"])
        endpoints = {}
        if p["egress"] == "none":
            endpoints = self.endpoints(vpc_id, private_rt, [s for s in subnets if s])
            self.remove_nat_path()
        else:
            self.remove_endpoints()
        self.remove_unwanted_subnets()
        result.update(endpoints)
        after = self.desired_snapshot()
        network = dict(
            {
                "name": self.name,
                "vpc_cidr": p["vpc_cidr"],
                "egress": p["egress"],
                "zones": p["zones"],
                "public_subnet_id": "",
                "internet_gateway_id": "",
                "nat_gateway_id": "",
                "nat_allocation_id": "",
                "public_route_table_id": "",
                "private_route_table_id": private_rt,
                "endpoint_security_group_id": "",
                "endpoints": {},
            },
            **result,
        )
        return before, after, network

    def ours_named(self, kind, name):
        found = [r for r in self.found[kind] if name_of(r) == name]
        return found[0] if found else None

    def check_fixed(self, vpc, ours):
        """What cannot change in place: the VPC's range, a private subnet's zone; fail before acting."""
        p = self.params
        if vpc and vpc.get("CidrBlock") != p["vpc_cidr"]:
            raise cloud.CloudError(
                f"VPC {self.name} ({vpc['VpcId']}) has range {vpc.get('CidrBlock')}, not vpc_cidr {p['vpc_cidr']}; a "
                "VPC's range cannot be replaced in place: keep vpc_cidr, or destroy the deployment first"
            )
        wanted = dict(zip(p["private_subnet_cidrs"], p["zones"]))
        if p["egress"] == "nat":
            wanted[p["public_subnet_cidr"]] = p["zones"][0]
        for subnet in ours["subnets"]:
            zone = wanted.get(subnet["CidrBlock"])
            if zone and subnet["AvailabilityZone"] != zone:
                raise cloud.CloudError(
                    f"subnet {name_of(subnet)} ({subnet['SubnetId']}, {subnet['CidrBlock']}) is in zone "
                    f"{subnet['AvailabilityZone']}, not {zone}; a subnet cannot move: keep the zones in their "
                    "order, or destroy the deployment first"
                )

    def vpc(self, vpc):
        p = self.params
        if vpc is None:
            made = self.do(
                f"create VPC {self.name} ({p['vpc_cidr']})",
                "create_vpc",
                CidrBlock=p["vpc_cidr"],
                TagSpecifications=self.spec("vpc", self.name),
            )
            vpc_id = made.get("Vpc", {}).get("VpcId", "")
            self.wait(
                f"VPC {vpc_id} to be available",
                lambda: self.ec2.call("describe_vpcs", VpcIds=[vpc_id])["Vpcs"][0],
                lambda v: v.get("State") == "available",
            )
            wrong = list(DNS_ATTRIBUTES)
        else:
            vpc_id = vpc["VpcId"]
            self.retag(vpc_id, vpc, self.name)
            wrong = [
                attribute
                for attribute, (asked, _what) in DNS_ATTRIBUTES.items()
                if not self.ec2.call("describe_vpc_attribute", VpcId=vpc_id, Attribute=asked)
                .get(attribute, {})
                .get("Value")
            ]
        for attribute in wrong:  # one attribute per call, as AWS takes them
            self.do(
                f"turn on {DNS_ATTRIBUTES[attribute][1]} of VPC {self.name}",
                "modify_vpc_attribute",
                VpcId=vpc_id,
                **{attribute: {"Value": True}},
            )
        return vpc_id

    def subnet(self, vpc_id, cidr, zone, name, tier):
        """A subnet of ours (its id; empty in check mode when it would be created)."""
        found = [s for s in self.found["subnets"] if s["CidrBlock"] == cidr]
        if not found:
            made = self.do(
                f"create subnet {name} ({cidr} in {zone})",
                "create_subnet",
                VpcId=vpc_id,
                CidrBlock=cidr,
                AvailabilityZone=zone,
                TagSpecifications=self.spec("subnet", name, **{TIER: tier}),
            )
            return made.get("Subnet", {}).get("SubnetId", "")
        subnet = found[0]
        self.retag(subnet["SubnetId"], subnet, name, **{TIER: tier})
        if subnet.get("MapPublicIpOnLaunch"):
            self.do(
                f"turn off public IPs on launch in subnet {name}",
                "modify_subnet_attribute",
                SubnetId=subnet["SubnetId"],
                MapPublicIpOnLaunch={"Value": False},
            )
        return subnet["SubnetId"]

    def private_subnets(self, vpc_id, ours):
        return [
            self.subnet(vpc_id, cidr, zone, f"{self.name}-private-{zone}", "private")
            for cidr, zone in zip(self.params["private_subnet_cidrs"], self.params["zones"])
        ]

    def route_table(self, vpc_id, name, subnet_ids):
        """A route table of ours associated with ``subnet_ids``; its id (empty in check mode when new)."""
        table = self.ours_named("route_tables", name)
        if table is None:
            made = self.do(
                f"create route table {name}",
                "create_route_table",
                VpcId=vpc_id,
                TagSpecifications=self.spec("route-table", name),
            )
            table = made.get("RouteTable") or {"RouteTableId": "", "Associations": []}
        else:
            self.retag(table["RouteTableId"], table, name)
        table_id = table["RouteTableId"]
        associated = {a.get("SubnetId") for a in table.get("Associations") or []}
        elsewhere = {
            a.get("SubnetId"): a["RouteTableAssociationId"]
            for other in self.found["route_tables"]
            if other["RouteTableId"] != table_id
            for a in other.get("Associations") or []
            if a.get("SubnetId")
        }
        for subnet_id in subnet_ids:
            if subnet_id in associated:
                continue
            if subnet_id in elsewhere:
                self.do(
                    f"move subnet {subnet_id} to route table {name}",
                    "replace_route_table_association",
                    AssociationId=elsewhere[subnet_id],
                    RouteTableId=table_id,
                )
            else:
                self.do(
                    f"associate subnet {subnet_id or '(new)'} with route table {name}",
                    "associate_route_table",
                    RouteTableId=table_id,
                    SubnetId=subnet_id,
                )
        self.tables[name] = table
        return table_id

    def default_route(self, name, target_key, target_id):
        """Route 0.0.0.0/0 of our route table ``name`` to ``target_id`` (``target_key``: GatewayId, NatGatewayId)."""
        table = self.tables[name]
        route = [r for r in table.get("Routes") or [] if r.get("DestinationCidrBlock") == ANYWHERE]
        if route and route[0].get(target_key) == target_id and route[0].get("State") != "blackhole":
            return
        operation = "replace_route" if route else "create_route"
        self.do(
            f"route {ANYWHERE} of route table {name} to {target_id or 'the new ' + target_key[:-2]}",
            operation,
            RouteTableId=table["RouteTableId"],
            DestinationCidrBlock=ANYWHERE,
            **{target_key: target_id},
        )

    def private_route(self, table_id, nat_id):
        name = f"{self.name}-private"
        if self.params["egress"] == "nat":
            self.default_route(name, "NatGatewayId", nat_id)
            return
        table = self.tables[name]
        if any(r.get("DestinationCidrBlock") == ANYWHERE for r in table.get("Routes") or []):
            self.do(
                f"delete route {ANYWHERE} of route table {name} (egress=none)",
                "delete_route",
                RouteTableId=table_id,
                DestinationCidrBlock=ANYWHERE,
            )

    def nat_path(self, vpc_id, private_rt):
        p, name = self.params, self.name
        public = self.subnet(vpc_id, p["public_subnet_cidr"], p["zones"][0], f"{name}-public", "public")
        igws = self.found["igws"]
        if igws:
            igw_id = igws[0]["InternetGatewayId"]
            self.retag(igw_id, igws[0], name)
        else:
            made = self.do(
                f"create internet gateway {name}",
                "create_internet_gateway",
                TagSpecifications=self.spec("internet-gateway", name),
            )
            igw_id = made.get("InternetGateway", {}).get("InternetGatewayId", "")
            self.do(
                f"attach internet gateway {name} to VPC {name}",
                "attach_internet_gateway",
                InternetGatewayId=igw_id,
                VpcId=vpc_id,
            )
        public_rt = self.route_table(vpc_id, f"{name}-public", [public] if public else [])
        self.default_route(f"{name}-public", "GatewayId", igw_id)
        nats = [n for n in self.found["nats"] if n.get("SubnetId") == public and n["State"] in LIVE_NAT]
        if nats:
            nat = nats[0]
            self.retag(nat["NatGatewayId"], nat, name)
            allocation = next((a.get("AllocationId") for a in nat.get("NatGatewayAddresses") or []), "")
            address = [a for a in self.found["addresses"] if a.get("AllocationId") == allocation]
            if allocation and not address:
                self.do(
                    f"tag elastic IP {allocation} of NAT gateway {name} as ours",
                    "create_tags",
                    Resources=[allocation],
                    Tags=aws.to_tag_list(self.tags(f"{name}-nat")),
                )
            if nat["State"] == "pending":
                self.wait_nat(nat["NatGatewayId"])
        else:
            # An address of ours left by a run that failed before its NAT gateway existed is used again.
            spare = [a for a in self.found["addresses"] if not a.get("AssociationId")]
            if spare:
                allocation = spare[0]["AllocationId"]
            else:
                allocation = self.do(
                    f"allocate elastic IP {name}-nat",
                    "allocate_address",
                    Domain="vpc",
                    TagSpecifications=self.spec("elastic-ip", f"{name}-nat"),
                ).get("AllocationId", "")
            made = self.do(
                f"create NAT gateway {name} in subnet {name}-public",
                "create_nat_gateway",
                SubnetId=public,
                AllocationId=allocation,
                ClientToken=aws.client_token(self.deployment, "nat", public, allocation)[:64],
                TagSpecifications=self.spec("natgateway", name),
            )
            nat = made.get("NatGateway") or {"NatGatewayId": ""}
            self.wait_nat(nat["NatGatewayId"])
        return {
            "public_subnet_id": public,
            "internet_gateway_id": igw_id,
            "public_route_table_id": public_rt,
            "nat_gateway_id": nat["NatGatewayId"],
            "nat_allocation_id": allocation,
        }

    def wait_nat(self, nat_id):
        self.wait(
            f"NAT gateway {nat_id} to be available",
            lambda: self.nat_state(nat_id),
            lambda n: n.get("State") == "available",
            failed=lambda n: (
                n.get("State") in ("failed", "deleting", "deleted")
                and (f"state {n['State']} ({n.get('FailureMessage') or 'no reason given'})")
            ),
        )

    def group(self, vpc_id, name, description, rules):
        """A security group of ours with exactly the ingress ``rules`` (IpPermissions); its id."""
        found = [g for g in self.found["groups"] if g.get("GroupName") == name]
        if not found:
            made = self.do(
                f"create security group {name}",
                "create_security_group",
                GroupName=name,
                Description=description,
                VpcId=vpc_id,
                TagSpecifications=self.spec("security-group", name),
            )
            group_id = made.get("GroupId", "")
            have = []
        else:
            group_id = found[0]["GroupId"]
            self.retag(group_id, found[0], name)
            have = found[0].get("IpPermissions") or []
        extra = [r for r in have if strip(r) not in [strip(w) for w in rules]]
        missing = [w for w in rules if strip(w) not in [strip(r) for r in have]]
        if extra:
            self.do(
                f"revoke {len(extra)} ingress rule(s) of security group {name}",
                "revoke_security_group_ingress",
                GroupId=group_id,
                IpPermissions=[strip(r) for r in extra],
            )
        if missing:
            self.do(
                f"authorize {len(missing)} ingress rule(s) in security group {name}",
                "authorize_security_group_ingress",
                GroupId=group_id,
                IpPermissions=missing,
            )
        return group_id

    def endpoints(self, vpc_id, private_rt, subnet_ids):
        p, name = self.params, self.name
        rule = {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "IpRanges": [{"CidrIp": p["vpc_cidr"], "Description": ENDPOINTS_RULE}],
        }
        group_id = self.group(
            vpc_id,
            f"{name}-endpoints",
            f"ollama_cloud.engine {self.deployment}: HTTPS from the VPC to the VPC endpoints",
            [rule],
        )
        found = {e["ServiceName"]: e for e in self.found["endpoints"]}
        made, touched = {}, []
        wanted = [("s3", "Gateway")] + [(s, "Interface") for s in p["interface_endpoints"]]
        for service, kind in wanted:
            service_name = f"com.amazonaws.{self.region}.{service}"
            endpoint = found.get(service_name)
            if endpoint is None:
                where = (
                    {"RouteTableIds": [private_rt]}
                    if kind == "Gateway"
                    else {
                        "SubnetIds": subnet_ids,
                        "SecurityGroupIds": [group_id],
                        "PrivateDnsEnabled": True,
                    }
                )
                answer = self.do(
                    f"create {kind.lower()} endpoint {name}-{service} ({service_name})",
                    "create_vpc_endpoint",
                    VpcEndpointType=kind,
                    VpcId=vpc_id,
                    ServiceName=service_name,
                    ClientToken=aws.client_token(self.deployment, "endpoint", vpc_id, service_name)[:64],
                    TagSpecifications=self.spec("vpc-endpoint", f"{name}-{service}"),
                    **where,
                )
                made[service] = answer.get("VpcEndpoint", {}).get("VpcEndpointId", "")
                touched.append(made[service])
                continue
            made[service] = endpoint["VpcEndpointId"]
            self.retag(endpoint["VpcEndpointId"], endpoint, f"{name}-{service}")
            if kind == "Gateway":
                changes = moves("RouteTableIds", endpoint.get("RouteTableIds"), [private_rt])
            else:
                changes = dict(
                    moves("SubnetIds", endpoint.get("SubnetIds"), subnet_ids),
                    **moves("SecurityGroupIds", [g["GroupId"] for g in endpoint.get("Groups") or []], [group_id]),
                )
            if changes:
                self.do(
                    f"correct endpoint {name}-{service} ({', '.join(sorted(changes))})",
                    "modify_vpc_endpoint",
                    VpcEndpointId=endpoint["VpcEndpointId"],
                    **changes,
                )
                touched.append(endpoint["VpcEndpointId"])
        for service_name, endpoint in sorted(found.items()):
            # What follows the region is the service, dots and all (ecr.api, ecr.dkr).
            service = service_name.removeprefix(f"com.amazonaws.{self.region}.")
            if service not in dict(wanted):
                self.delete_endpoints([endpoint], f"{name}-{service} (no longer wanted)")
        if touched:
            self.wait(
                f"VPC endpoints {', '.join(touched)} to be available",
                lambda: self.endpoints_state(touched),
                lambda now: all(str(e.get("State")).lower() == "available" for e in now),
            )
        return {"endpoint_security_group_id": group_id, "endpoints": made}

    # --------------------------------------------------------------- removal

    def delete_endpoints(self, endpoints, label=None):
        ids = [e["VpcEndpointId"] for e in endpoints if live(e)]
        if ids:
            names = label or ", ".join(f"{name_of(e)} ({e['VpcEndpointId']})" for e in endpoints if live(e))
            self.do(f"delete VPC endpoints {names}", "delete_vpc_endpoints", VpcEndpointIds=ids)
        waiting = [e["VpcEndpointId"] for e in endpoints]
        if waiting:
            self.wait(
                f"VPC endpoints {', '.join(waiting)} to be deleted",
                lambda: self.endpoints_state(waiting),
                lambda found: all(str(e.get("State")).lower() == "deleted" for e in found),
            )

    def delete_nats(self, nats, addresses):
        """Delete the NAT gateways, wait for them, release their addresses and ``addresses`` of ours."""
        release = {a["AllocationId"] for a in addresses}
        for nat in nats:
            release.update(
                a["AllocationId"]
                for a in nat.get("NatGatewayAddresses") or []
                if a.get("AllocationId") in {x["AllocationId"] for x in self.found["addresses"]}
            )
            if nat["State"] in LIVE_NAT:
                self.do(
                    f"delete NAT gateway {name_of(nat)} ({nat['NatGatewayId']})",
                    "delete_nat_gateway",
                    NatGatewayId=nat["NatGatewayId"],
                )
            self.wait(
                f"NAT gateway {nat['NatGatewayId']} to be deleted",
                lambda nat_id=nat["NatGatewayId"]: self.nat_state(nat_id),
                lambda n: n.get("State") in ("deleted", None),
            )
        for allocation in sorted(release):
            self.release(allocation)

    def release(self, allocation):
        """Release an elastic IP; for a while after its NAT gateway is deleted AWS still says it is in use."""
        self.actions.append(f"release elastic IP {allocation}")
        if self.check:
            return
        clock = self.ec2.clock

        def on_retry(exc, _attempt, delay):
            self.ec2.retries.append(("release_address", exc.details.get("code"), round(delay, 3)))

        cloud.retry_until(
            lambda: self.ec2.call("release_address", AllocationId=allocation),
            lambda exc: "InUse" in str(getattr(exc, "details", {}).get("code")),
            clock.now() + self.timeout,
            self.ec2.base,
            self.ec2.cap,
            clock,
            on_retry,
        )

    def delete(self, kind, resources):
        """Delete ``resources`` of ``kind``: route tables disassociated first, internet gateways detached.

        A VPC's main route table and default security group are left: they go with the VPC.
        """
        what, key = WHAT[kind]
        for resource in resources:
            associations = resource.get("Associations") or []
            if any(a.get("Main") for a in associations) or resource.get("GroupName") == "default":
                continue
            label = f"{name_of(resource)} ({resource[key]})"
            for association in associations:
                self.do(
                    f"disassociate {what} {label} from {association.get('SubnetId')}",
                    "disassociate_route_table",
                    AssociationId=association["RouteTableAssociationId"],
                )
            for attachment in resource.get("Attachments") or []:
                self.do(
                    f"detach {what} {label} from {attachment['VpcId']}",
                    "detach_internet_gateway",
                    InternetGatewayId=resource[key],
                    VpcId=attachment["VpcId"],
                )
            self.do(f"delete {what} {label}", DELETE[kind], **{key: resource[key]})

    def remove_nat_path(self):
        """egress=none: the NAT gateway, its address, the public route table and subnet, the internet gateway."""
        public = [s for s in self.found["subnets"] if s["CidrBlock"] not in self.params["private_subnet_cidrs"]]
        public = [s for s in public if tags_of(s).get(TIER) == "public"]
        self.delete_nats(self.found["nats"], [])
        self.delete("route_tables", [t for t in self.found["route_tables"] if name_of(t) == f"{self.name}-public"])
        self.delete("subnets", public)
        self.delete("igws", self.found["igws"])

    def remove_stale_nat_path(self, public_id):
        """egress=nat with another public_subnet_cidr: the NAT gateways and public subnets of ours elsewhere."""
        self.delete_nats([n for n in self.found["nats"] if n.get("SubnetId") != public_id], [])
        self.delete(
            "subnets",
            [s for s in self.found["subnets"] if tags_of(s).get(TIER) == "public" and s["SubnetId"] != public_id],
        )

    def remove_endpoints(self):
        """egress=nat: the VPC endpoints and their security group."""
        self.delete_endpoints(self.found["endpoints"])
        self.delete("groups", [g for g in self.found["groups"] if g.get("GroupName") == f"{self.name}-endpoints"])

    def remove_unwanted_subnets(self):
        """Private subnets of ours whose range is no longer listed."""
        wanted = set(self.params["private_subnet_cidrs"])
        self.delete(
            "subnets",
            [s for s in self.found["subnets"] if tags_of(s).get(TIER) == "private" and s["CidrBlock"] not in wanted],
        )

    def absent(self):
        ours, _others = self.read(lambda kind: aws.tag_filters(self.labels))
        self.found = ours
        before = snapshot(ours)
        self.delete_endpoints(ours["endpoints"])
        self.delete_nats(ours["nats"], [a for a in ours["addresses"] if not a.get("AssociationId")])
        for kind in ("route_tables", "subnets", "igws", "groups", "vpcs"):
            self.delete(kind, ours[kind])
        return before, {}, {}

    # --------------------------------------------------------------- diff

    def desired_snapshot(self):
        p, n = self.params, self.name
        nat = p["egress"] == "nat"
        subnets = [f"{n}-private-{z} {c}" for c, z in zip(p["private_subnet_cidrs"], p["zones"])]
        return {
            "vpc": f"{n} {p['vpc_cidr']}",
            "subnets": sorted(subnets + ([f"{n}-public {p['public_subnet_cidr']}"] if nat else [])),
            "internet_gateways": [n] if nat else [],
            "nat_gateways": [n] if nat else [],
            "route_tables": sorted([f"{n}-private"] + ([f"{n}-public"] if nat else [])),
            "security_groups": sorted([f"{n}-node"] + ([] if nat else [f"{n}-endpoints"])),
            "endpoints": [] if nat else sorted([f"{n}-s3"] + [f"{n}-{s}" for s in p["interface_endpoints"]]),
        }


def snapshot(ours):
    """What of ours exists, by kind and name: the diff's before."""
    if not any(ours.values()):
        return {}
    return {
        "vpc": " ".join(f"{name_of(v)} {v.get('CidrBlock')}" for v in ours["vpcs"]),
        "subnets": sorted(f"{name_of(s)} {s.get('CidrBlock')}" for s in ours["subnets"]),
        "internet_gateways": sorted(name_of(g) for g in ours["igws"]),
        "nat_gateways": sorted(name_of(g) for g in ours["nats"] if g["State"] in LIVE_NAT),
        "route_tables": sorted(name_of(t) for t in ours["route_tables"]),
        "security_groups": sorted(g["GroupName"] for g in ours["groups"]),
        "endpoints": sorted(name_of(e) for e in ours["endpoints"]),
    }


def strip(rule):
    """An ingress rule as compared and revoked: protocol, ports and ranges (not the descriptions AWS adds)."""
    kept = {k: rule[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in rule}
    for key, inner in (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("PrefixListIds", "PrefixListId")):
        if rule.get(key):
            kept[key] = sorted(({inner: r[inner]} for r in rule[key]), key=lambda r: r[inner])
    if rule.get("UserIdGroupPairs"):
        kept["UserIdGroupPairs"] = sorted(
            ({"GroupId": r["GroupId"]} for r in rule["UserIdGroupPairs"]), key=lambda r: r["GroupId"]
        )
    return kept


def moves(key, have, want):
    """modify_vpc_endpoint's Add<key>/Remove<key> to take ``have`` to ``want``."""
    have, want = set(have or []), {w for w in want if w}
    changes = {}
    if want - have:
        changes["Add" + key] = sorted(want - have)
    if have - want:
        changes["Remove" + key] = sorted(have - want)
    return changes


def check_inputs(params):
    problems = [fleet.validate_deployment(params["deployment"])]
    name = params["name"] or fleet.deployment_names(params["deployment"])["base"]
    # The longest derived name (NAME-private-ZONE) must stay a readable tag; a security group's name is at most 255.
    if not name or len(name) > 200:
        problems.append(f"name {name!r} is not valid: use 1 to 200 characters")
    try:
        cloud.our_tags(params["deployment"], environment=params["environment"], extra=params["tags"])
    except cloud.CloudError as exc:
        problems.append(exc.msg)
    if params["state"] == "present":
        zones, cidrs = params["zones"], params["private_subnet_cidrs"]
        if not cidrs:
            problems.append("private_subnet_cidrs is empty: give one range per zone")
        if len(zones) != len(cidrs):
            problems.append(
                f"zones lists {len(zones)} zone(s) for {len(cidrs)} private_subnet_cidrs: "
                "give one zone per private subnet"
            )
        wrong = [z for z in zones if not aws.zone_in_region(z, params["region"])]
        if wrong and params["region"]:
            problems.append(f"zones {', '.join(wrong)} are not in region {params['region']}: give zones of that region")
        problems += node_inputs.aws_cidr_problems(
            params["vpc_cidr"], params["public_subnet_cidr"], cidrs, params["egress"], names=CIDR_OPTIONS
        )
        if is_network(params["vpc_cidr"]) and ipaddress.ip_network(params["vpc_cidr"], strict=False).version != 4:
            problems.append(f"vpc_cidr {params['vpc_cidr']} must be an IPv4 range (for example 10.64.0.0/16)")
        bad = [s for s in params["interface_endpoints"] if not s or not all(c.isalnum() or c in "-." for c in s)]
        if bad:
            problems.append(f"interface_endpoints {bad} are not service names (for example logs, secretsmanager)")
    if params["wait_timeout"] < 1:
        problems.append("wait_timeout must be at least 1 second")
    return [p for p in problems if p]


def is_network(text):
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


# A network's actions end with the one that failed: done before it are the others.
FINISH_NETWORK = "run again to finish the network, or state=absent (playbooks/destroy.yml) to remove what was made"


def partly_done(exc, actions):
    return cloud.failed_part_way(exc, actions[:-1], then=FINISH_NETWORK, actions=actions)


def main():
    base = node_module.NodeModule(
        aws,
        {
            "deployment": {"type": "str", "required": True},
            "name": {"type": "str"},
            "environment": {"type": "str"},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "vpc_cidr": {"type": "str", "default": "10.64.0.0/16"},
            "public_subnet_cidr": {"type": "str", "default": "10.64.0.0/24"},
            "private_subnet_cidrs": {"type": "list", "elements": "str", "default": ["10.64.1.0/24", "10.64.2.0/24"]},
            "zones": {"type": "list", "elements": "str", "default": []},
            "egress": {"type": "str", "default": "nat", "choices": ["nat", "none"]},
            "interface_endpoints": {
                "type": "list",
                "elements": "str",
                "default": ["logs", "monitoring", "secretsmanager"],
            },
            "tags": {"type": "dict", "default": {}},
            "purge_tags": {"type": "bool", "default": False},
            "wait_timeout": {"type": "int", "default": 900},
        },
    )
    base.check(check_inputs(base.params))

    base.apply_state(
        lambda: Network(base.client("ec2"), base.params, base.check_mode),
        lambda exc, net: partly_done(exc, net.actions if net and not base.check_mode else []),
        lambda net, after, network: {"network": network},
    )


if __name__ == "__main__":
    main()
