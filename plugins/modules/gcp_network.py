#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_network
short_description: The private network of one deployment on GCP (VPC, subnetwork, Cloud NAT, firewall)
version_added: 0.1.0
description:
  - Creates, corrects or deletes the network a C(cloud=gcp) node lives in, all named after
    O(name) and marked as the deployment's.
  - "A custom-mode VPC C(NAME); a private subnetwork C(NAME-private) in O(region) with Private Google
    Access (the node has no external IP, yet reaches Secret Manager, Cloud Logging and Artifact Registry);
    with O(egress=nat) a Cloud Router C(NAME-router) carrying a Cloud NAT C(NAME-nat) for that
    subnetwork only; a firewall rule C(NAME-deny-ingress) that denies all ingress at priority 65534;
    with O(iap_ssh) one rule C(NAME-iap-ssh) that admits SSH from Google's IAP range 35.235.240.0/20 to
    the nodes tagged C(NAME-node), and nothing else."
  - Networks, subnetworks, routers and firewall rules have no labels in the Compute Engine v1 API,
    so each carries our deployment and managed-by labels in its description
    (C(oce-deployment=DEPLOYMENT oce-managed-by=ollama_cloud.engine)). A resource with one of our
    names but without that marker is never changed or deleted; the module fails instead.
  - V(present) also corrects drift it owns (Private Google Access off, a changed NAT or firewall
    rule) and removes our rules and router that are no longer wanted (O(iap_ssh=false), O(egress=none)).
  - V(absent) deletes exactly what carries the marker, in dependency order (firewall rules, router,
    subnetwork, network). Nodes in the subnetwork must be deleted first; GCP refuses otherwise and the
    module says so.
options:
  deployment:
    description: Deployment label; marks every resource as ours. Lowercase letters, digits, dashes.
    type: str
    required: true
  name:
    description: Name of the network and prefix of the other resources; C(oce-DEPLOYMENT) when omitted.
    type: str
  region:
    description: The region of the subnetwork and the Cloud Router (the nodes' zones must be in it).
    type: str
    required: true
  state:
    description: V(present) creates or corrects the network; V(absent) deletes what is ours.
    type: str
    choices: [present, absent]
    default: present
  subnet_cidr:
    description: The private subnetwork's primary range (it cannot change once created).
    type: str
    default: 10.64.0.0/20
  egress:
    description:
      - V(nat) gives the subnetwork outbound internet through Cloud NAT (no inbound path).
      - V(none) gives it none; Google APIs stay reachable through Private Google Access, so Ollama
        and the models must come from the image or an internal mirror.
    type: str
    choices: [nat, none]
    default: nat
  iap_ssh:
    description:
      - Admit SSH (TCP 22) from Identity-Aware Proxy's range 35.235.240.0/20 to nodes with the network
        tag C(NAME-node) (returned as C(network.node_tag)), for C(gcloud compute ssh --tunnel-through-iap).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to follow each operation before giving up.
    type: int
    default: 600
extends_documentation_fragment:
  - ollama_cloud.engine.gcp
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
- name: The demo deployment's private network, with Cloud NAT
  ollama_cloud.engine.gcp_network:
    deployment: demo
    project: my-project
    region: us-central1
  register: net

- name: A node in it
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-demo
    deployment: demo
    model: codellama:7b-code
    project: my-project
    zones: [us-central1-a, us-central1-b]
    subnetwork: "{{ net.network.subnetwork }}"
    network_tags: ["{{ net.network.node_tag }}"]

- name: No internet at all, SSH through IAP only
  ollama_cloud.engine.gcp_network:
    deployment: airgap
    project: my-project
    region: europe-west4
    egress: none
    iap_ssh: true

- name: Delete what the deployment's network consists of
  ollama_cloud.engine.gcp_network:
    deployment: demo
    project: my-project
    region: us-central1
    state: absent
"""

RETURN = r"""
network:
  description: The network as it is (or, in check mode, would be); empty after V(absent).
  returned: always
  type: dict
  contains:
    name:
      description: The network's name, the prefix of the other resources' names.
      type: str
    subnetwork:
      description:
        - The private subnetwork's path, for the O(ollama_cloud.engine.gcp_gpu_instance#module:subnetwork)
          option of M(ollama_cloud.engine.gcp_gpu_instance).
      type: str
    node_tag:
      description: The network tag the IAP SSH rule admits; give it to the nodes.
      type: str
    router:
      description: The Cloud Router (null with O(egress=none)).
      type: str
    firewalls:
      description: Our firewall rules on the network.
      type: list
      elements: str
  sample:
    name: oce-demo
    region: us-central1
    subnetwork: projects/my-project/regions/us-central1/subnetworks/oce-demo-private
    subnet_cidr: 10.64.0.0/20
    private_google_access: true
    egress: nat
    router: oce-demo-router
    nat: oce-demo-nat
    firewalls: [oce-demo-deny-ingress]
    node_tag: oce-demo-node
actions:
  description: What was (in check mode, would be) created, corrected or deleted, in order.
  returned: always
  type: list
  elements: str
  sample: [create network oce-demo, create subnetwork oce-demo-private]
retries:
  description: API calls retried after throttling or a server error, as C([method path, reason, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import ipaddress
import uuid

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, fleet, gcp, node_module

IAP_RANGE = "35.235.240.0/20"
# Below every rule a user adds (default 1000), above the implied deny (65535).
DENY_PRIORITY = 65534
# What we compare on a firewall rule to see whether it drifted.
FIREWALL_KEYS = ("direction", "priority", "allowed", "denied", "sourceRanges", "targetTags", "disabled")


class Network:
    """The deployment's network resources: read, plan, apply."""

    def __init__(self, api, params, check_mode):
        self.api, self.params, self.check = api, params, check_mode
        self.project = api.project
        self.deployment = params["deployment"]
        self.name = params["name"] or fleet.deployment_names(self.deployment)["base"]
        self.region = params["region"]
        self.timeout = params["wait_timeout"]
        self.actions = []
        self.names = {
            "network": self.name,
            "subnetwork": f"{self.name}-private",
            "router": f"{self.name}-router",
            "nat": f"{self.name}-nat",
            "deny": f"{self.name}-deny-ingress",
            "iap": f"{self.name}-iap-ssh",
            "tag": f"{self.name}-node",
        }
        self.paths = {
            "network": f"projects/{self.project}/global/networks/{self.name}",
            "subnetwork": f"projects/{self.project}/regions/{self.region}/subnetworks/{self.names['subnetwork']}",
            "router": f"projects/{self.project}/regions/{self.region}/routers/{self.names['router']}",
        }

    # --------------------------------------------------------------- helpers

    def description(self, what):
        return f"ollama_cloud.engine {self.deployment}: {what}. {gcp.marker(self.deployment)}"

    def get(self, kind, path):
        return self.api.get(path, action=f"look up {kind} {gcp.last(path)}", missing_ok=True)

    def ours(self, kind, found):
        """``found`` if it is ours; None if missing; CloudError if the name is taken by something not ours."""
        if found is None or gcp.is_marked(found, self.deployment):
            return found
        raise cloud.CloudError(
            f"{kind} {found.get('name')} exists in project {self.project} but is not deployment "
            f"{self.deployment}'s (its description lacks {gcp.marker(self.deployment)!r}): this module will not "
            "change or delete it; choose another name or deployment"
        )

    def do(self, action, method, path, body=None):
        """Record an action; unless in check mode, send it and follow its operation."""
        self.actions.append(action)
        if self.check:
            return
        # A request id per insert: one retried after a lost answer (503) is not refused as a
        # second, foreign copy of what the first attempt created.
        params = {"requestId": str(uuid.uuid4())} if method == "POST" else None
        op = self.api.call(method, path, body=body, params=params, action=action)
        self.api.wait(op, self.timeout, action)

    def firewalls(self, network):
        """Our firewall rules on ``network`` (a self link)."""
        if network is None:
            return []
        found = self.api.list(
            f"projects/{self.project}/global/firewalls",
            params={"filter": f'(network = "{network["selfLink"]}")'},
            action="list firewall rules",
        )
        return [f for f in found if gcp.last(f.get("network")) == network["name"] and gcp.is_marked(f, self.deployment)]

    # --------------------------------------------------------------- desired state

    def nat_body(self):
        return {
            "name": self.names["nat"],
            "natIpAllocateOption": "AUTO_ONLY",
            "sourceSubnetworkIpRangesToNat": "LIST_OF_SUBNETWORKS",
            "subnetworks": [{"name": self.paths["subnetwork"], "sourceIpRangesToNat": ["ALL_IP_RANGES"]}],
            "logConfig": {"enable": True, "filter": "ERRORS_ONLY"},
        }

    def firewall_bodies(self):
        rules = [
            {
                "name": self.names["deny"],
                "description": self.description("deny all ingress (no inbound path to the nodes)"),
                "network": self.paths["network"],
                "direction": "INGRESS",
                "priority": DENY_PRIORITY,
                "denied": [{"IPProtocol": "all"}],
                "sourceRanges": ["0.0.0.0/0"],
                "disabled": False,
            }
        ]
        if self.params["iap_ssh"]:
            rules.append(
                {
                    "name": self.names["iap"],
                    "description": self.description("SSH from Identity-Aware Proxy only"),
                    "network": self.paths["network"],
                    "direction": "INGRESS",
                    "priority": 1000,
                    "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
                    "sourceRanges": [IAP_RANGE],
                    "targetTags": [self.names["tag"]],
                    "disabled": False,
                }
            )
        return rules

    # --------------------------------------------------------------- converge

    def snapshot(self, network, subnet, router, rules):
        if network is None and subnet is None and router is None and not rules:
            return {}
        return {
            "network": network is not None,
            "subnetwork": None if subnet is None else subnet.get("ipCidrRange"),
            "private_google_access": bool(subnet and subnet.get("privateIpGoogleAccess")),
            "router": None if router is None else router["name"],
            "nats": sorted(n.get("name") for n in (router or {}).get("nats") or []),
            "firewalls": sorted(r["name"] for r in rules),
        }

    def read(self):
        network = self.ours("network", self.get("network", self.paths["network"]))
        subnet = self.ours("subnetwork", self.get("subnetwork", self.paths["subnetwork"]))
        router = self.ours("router", self.get("router", self.paths["router"]))
        return network, subnet, router, self.firewalls(network)

    def present(self):
        region = self.get("region", f"projects/{self.project}/regions/{self.region}")
        if region is None:
            raise cloud.CloudError(
                f"region {self.region!r} does not exist in Compute Engine (project {self.project}); "
                "check the spelling, for example us-central1"
            )
        network, subnet, router, rules = self.read()
        before = self.snapshot(network, subnet, router, rules)
        cidr = self.params["subnet_cidr"]

        if network is None:
            body = {
                "name": self.name,
                "description": self.description("private network of the GPU nodes"),
                "autoCreateSubnetworks": False,
                "routingConfig": {"routingMode": "REGIONAL"},
            }
            self.do(f"create network {self.name}", "POST", f"projects/{self.project}/global/networks", body)

        if subnet is None:
            body = {
                "name": self.names["subnetwork"],
                "description": self.description("private subnetwork, no external IPs"),
                "network": self.paths["network"],
                "ipCidrRange": cidr,
                "privateIpGoogleAccess": True,
            }
            path = f"projects/{self.project}/regions/{self.region}/subnetworks"
            self.do(f"create subnetwork {self.names['subnetwork']} ({cidr})", "POST", path, body)
        else:
            if gcp.last(subnet.get("network")) != self.name:
                raise cloud.CloudError(
                    f"subnetwork {subnet['name']} belongs to network {gcp.last(subnet.get('network'))}, not {self.name}"
                )
            if subnet.get("ipCidrRange") != cidr:
                raise cloud.CloudError(
                    f"subnetwork {subnet['name']} has range {subnet.get('ipCidrRange')}, not subnet_cidr {cidr}; a "
                    "subnetwork's range cannot be replaced in place: keep subnet_cidr, or destroy the deployment first"
                )
            if not subnet.get("privateIpGoogleAccess"):
                self.do(
                    f"turn on Private Google Access of {subnet['name']}",
                    "POST",
                    self.paths["subnetwork"] + "/setPrivateIpGoogleAccess",
                    {"privateIpGoogleAccess": True},
                )

        if self.params["egress"] == "nat":
            if router is None:
                body = {
                    "name": self.names["router"],
                    "description": self.description("Cloud Router of the Cloud NAT (egress only)"),
                    "network": self.paths["network"],
                    "nats": [self.nat_body()],
                }
                path = f"projects/{self.project}/regions/{self.region}/routers"
                self.do(f"create router {self.names['router']} with Cloud NAT {self.names['nat']}", "POST", path, body)
            elif not same_nats(router.get("nats"), [self.nat_body()]):
                self.do(
                    f"correct Cloud NAT {self.names['nat']} of router {router['name']}",
                    "PATCH",
                    self.paths["router"],
                    {"nats": [self.nat_body()]},
                )
        elif router is not None:
            self.do(f"delete router {router['name']} (egress=none)", "DELETE", self.paths["router"])

        wanted = self.firewall_bodies()
        existing = {r["name"]: r for r in rules}
        for body in wanted:
            found = existing.get(body["name"])
            if found is None:
                # A rule of that name that is not ours (not listed above) fails here, untouched.
                self.ours(
                    "firewall rule",
                    self.get("firewall rule", f"projects/{self.project}/global/firewalls/{body['name']}"),
                )
                self.do(
                    f"create firewall rule {body['name']}", "POST", f"projects/{self.project}/global/firewalls", body
                )
            elif any(norm(found.get(k)) != norm(body.get(k)) for k in FIREWALL_KEYS):
                self.do(
                    f"correct firewall rule {body['name']}",
                    "PATCH",
                    f"projects/{self.project}/global/firewalls/{body['name']}",
                    body,
                )
        for name in sorted(set(existing) - {b["name"] for b in wanted}):
            self.do(f"delete firewall rule {name}", "DELETE", f"projects/{self.project}/global/firewalls/{name}")

        after = {
            "network": True,
            "subnetwork": cidr,
            "private_google_access": True,
            "router": self.names["router"] if self.params["egress"] == "nat" else None,
            "nats": [self.names["nat"]] if self.params["egress"] == "nat" else [],
            "firewalls": sorted(b["name"] for b in wanted),
        }
        return before, after, self.result(after)

    def absent(self):
        network, subnet, router, rules = self.read()
        before = self.snapshot(network, subnet, router, rules)
        for rule in sorted(rules, key=lambda r: r["name"]):
            self.do(
                f"delete firewall rule {rule['name']}",
                "DELETE",
                f"projects/{self.project}/global/firewalls/{rule['name']}",
            )
        if router is not None:
            self.do(f"delete router {router['name']}", "DELETE", self.paths["router"])
        if subnet is not None:
            self.do(f"delete subnetwork {subnet['name']}", "DELETE", self.paths["subnetwork"])
        if network is not None:
            self.do(f"delete network {network['name']}", "DELETE", self.paths["network"])
        return before, {}, {}

    def result(self, after):
        return {
            "name": self.name,
            "region": self.region,
            "subnetwork": self.paths["subnetwork"],
            "subnet_cidr": after["subnetwork"],
            "private_google_access": after["private_google_access"],
            "egress": self.params["egress"],
            "router": after["router"],
            "nat": after["nats"][0] if after["nats"] else None,
            "firewalls": after["firewalls"],
            "node_tag": self.names["tag"],
        }


def norm(value):
    """A field as compared: lists sorted, absent and empty the same."""
    if isinstance(value, list):
        return sorted((norm(v) for v in value), key=repr)
    if isinstance(value, dict):
        return {k: norm(v) for k, v in sorted(value.items())}
    return value if value not in (None, [], {}) else None


def same_nats(have, want):
    def key(nats):
        return [
            (
                n.get("name"),
                n.get("natIpAllocateOption"),
                n.get("sourceSubnetworkIpRangesToNat"),
                sorted(
                    (gcp.last(s.get("name")), tuple(s.get("sourceIpRangesToNat") or []))
                    for s in n.get("subnetworks") or []
                ),
                bool((n.get("logConfig") or {}).get("enable")),
            )
            for n in sorted(nats or [], key=lambda n: n.get("name") or "")
        ]

    return key(have) == key(want)


def check_inputs(params):
    problems = [fleet.validate_deployment(params["deployment"])]
    name = params["name"] or fleet.deployment_names(params["deployment"])["base"]
    # The longest derived name (NAME-deny-ingress) must stay a valid resource name.
    if not gcp.valid_name(name) or len(name) > 63 - len("-deny-ingress"):
        problems.append(
            f"name {name!r} is not valid: use up to 50 lowercase letters, digits or dashes, starting with a letter"
        )
    if not gcp.valid_name(params["region"]):
        problems.append(f"region {params['region']!r} is not a region name (for example us-central1)")
    if params["state"] == "present":
        try:
            cidr = ipaddress.ip_network(params["subnet_cidr"])
            if cidr.version != 4 or not cidr.is_private or cidr.prefixlen > 29:
                problems.append(f"subnet_cidr {params['subnet_cidr']} must be a private IPv4 range of /29 or larger")
        except ValueError:
            problems.append(f"subnet_cidr {params['subnet_cidr']!r} is not an IPv4 range (for example 10.64.0.0/20)")
    if params["wait_timeout"] < 1:
        problems.append("wait_timeout must be at least 1 second")
    return [p for p in problems if p]


# A network's actions end with the one that failed: done before it are the others.
FINISH_NETWORK = "run again to finish the network, or state=absent (playbooks/destroy.yml) to remove what was made"


def partly_done(exc, actions):
    return cloud.failed_part_way(exc, actions[:-1], then=FINISH_NETWORK, actions=actions)


def main():
    base = node_module.NodeModule(
        gcp,
        {
            "deployment": {"type": "str", "required": True},
            "name": {"type": "str"},
            "region": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "subnet_cidr": {"type": "str", "default": "10.64.0.0/20"},
            "egress": {"type": "str", "default": "nat", "choices": ["nat", "none"]},
            "iap_ssh": {"type": "bool", "default": False},
            "wait_timeout": {"type": "int", "default": 600},
        },
    )
    base.check(check_inputs(base.params))

    base.apply_state(
        lambda: Network(base.client(), base.params, base.check_mode),
        lambda exc, net: partly_done(exc, net.actions if net and not base.check_mode else []),
        lambda net, after, network: {"network": network},
    )


if __name__ == "__main__":
    main()
