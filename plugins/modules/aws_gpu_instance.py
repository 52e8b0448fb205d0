#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_gpu_instance
short_description: A private EC2 GPU node for one Ollama model (the C(cloud=aws) provider)
version_added: 0.1.0
description:
  - Creates, starts, stops and terminates one EC2 instance that serves a model from the
    collection's model catalog, and returns the same node record as the local and GCP providers.
  - The instance has no public IP, requires IMDSv2, and boots from an encrypted gp3 root volume
    sized from the catalog. It carries our deployment, model and environment tags.
  - Idempotent by our deployment tag plus O(name). EC2's client token is derived from the
    deployment, O(name) and the node's earlier (terminated) instances, so a retried call or a second
    run at the same time gets the first launch back instead of launching another instance.
  - "Tag drift: on an instance that exists already, tags that differ from what this run would set
    (the model, O(environment), O(tags)) are updated with C(CreateTags). Tags the run does not name
    are kept unless O(purge_tags) (C(DeleteTags)); our C(oce-deployment) and C(oce-managed-by) tags
    are never changed or removed. The root volume keeps the tags it was launched with."
  - "Capacity-aware placement: the instance types of the catalog (or O(instance_types)) are tried
    in order; for each, the subnets of O(subnet_ids) in order. A type not offered in a subnet's
    availability zone is skipped; C(InsufficientInstanceCapacity) or C(Unsupported) moves on to the
    next subnet, then to the next type. The result lists every placement tried."
  - A model that does not fit a type's GPU memory fails before anything is created, with the numbers.
  - If anything fails after the instance was launched (for example it never reaches C(running)
    before O(wait_timeout)), the instance this run launched is terminated before the module fails.
options:
  subnet_ids:
    description:
      - Private subnets to place the node in, in order of preference; give subnets in at least two
        availability zones so a capacity shortage in one zone does not stop the launch.
      - Required to create a node; in check mode O(zones) may stand in for them.
    type: list
    elements: str
    default: []
  zones:
    description:
      - Availability zones the node's subnets will be in, for a check-mode plan before the subnets exist
        (the offerings of O(instance_types) are checked in them). Ignored when O(subnet_ids) is given.
    type: list
    elements: str
    default: []
    version_added: "0.3.0"
  security_group_ids:
    description: Security groups of the node (ours has no ingress rule at all).
    type: list
    elements: str
    default: []
  instance_types:
    description:
      - Instance types to try, in order, instead of the catalog's list for O(model).
      - Each must be in the catalog's instance type table (or in O(catalog)) and hold the model.
    type: list
    elements: str
    default: []
  image:
    description:
      - V(golden) finds our newest golden image by O(image_tags) (owned by this account).
      - V(dlami) reads the AWS Deep Learning Base AMI id from the public SSM parameter O(dlami_parameter).
      - Anything starting with C(ami-) is used as it is.
    type: str
    default: golden
  image_tags:
    description: Tags that identify our golden image for O(image=golden).
    type: dict
    default: {oce-image: ollama-node}
  dlami_parameter:
    description: The public SSM parameter holding the Deep Learning Base AMI id, for O(image=dlami).
    type: str
    default: /aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id
  instance_profile:
    description: IAM instance profile name (SSM, CloudWatch agent, reading the node's secret).
    type: str
  volume_size:
    description:
      - Root volume size in GB; the catalog's C(disk_gb) for O(model) when omitted.
      - It must hold the system and the model's weights (the catalog's C(size_gb) + 20 GB); a smaller size,
        0 or a negative one fails before any call.
      - Never smaller than the image's own disk (the AMI's root snapshot), which the cloud refuses. When omitted,
        the larger of the two; a smaller size fails before the launch.
    type: int
  user_data:
    description:
      - Cloud-init user data. It must not carry secrets (anyone who can describe the instance reads
        it); the module refuses Tailscale auth keys, cloud access keys and private keys in it.
        The node reads its secrets through its instance role instead.
    type: str
  tags:
    description:
      - Extra tags for the instance and, when it is launched, its volume and network interface.
        Our C(oce-*) keys cannot be overridden.
      - On an existing instance, a tag missing or with another value is set; see O(purge_tags) for
        the tags not named here.
    type: dict
    default: {}
  purge_tags:
    description:
      - On an existing instance, also remove the tags that are neither ours, nor C(Name), nor in
        O(tags), and C(oce-environment) when O(environment) is not given.
      - Our C(oce-deployment) and C(oce-managed-by) tags and the C(aws:*) tags of AWS are never removed.
    type: bool
    default: false
    version_added: "0.2.0"
extends_documentation_fragment:
  - ollama_cloud.engine.node
  - ollama_cloud.engine.aws
attributes:
  check_mode:
    support: full
    description:
      - Creates nothing; returns the launch request it would send first (RV(launch_spec)).
      - On an existing instance, reports the tags it would change (RV(tags_changed)) without changing them.
  diff_mode:
    support: full
    description: Shows the node state before and after, and the tags of an existing instance when they change.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: A private GPU node for codellama:34b-code
  ollama_cloud.engine.aws_gpu_instance:
    name: oce-demo
    deployment: demo
    environment: dev
    model: codellama:34b-code
    region: us-east-1
    subnet_ids: [subnet-0aaa, subnet-0bbb]
    security_group_ids: [sg-0ccc]
    instance_profile: oce-demo-node
  register: node

- name: Stop it (the disk and the pulled models stay)
  ollama_cloud.engine.aws_gpu_instance:
    name: oce-demo
    deployment: demo
    region: us-east-1
    state: stopped

- name: Try it against a moto server
  ollama_cloud.engine.aws_gpu_instance:
    name: oce-test
    deployment: test
    model: gemma3:270m
    image: ami-12c6146b
    region: us-east-1
    endpoint_url: http://127.0.0.1:5000
    subnet_ids: [subnet-1234]

- name: Terminate it
  ollama_cloud.engine.aws_gpu_instance:
    name: oce-demo
    deployment: demo
    region: us-east-1
    state: absent
"""

RETURN = r"""
node:
  description:
    - The node record, the same keys on every provider, plus C(hourly_cost) (USD, from the dated price table).
    - Empty after V(absent).
  returned: always
  type: dict
  sample:
    cloud: aws
    name: oce-demo
    id: i-0123456789abcdef0
    state: running
    deployment: demo
    model: codellama:34b-code
    environment: dev
    instance_type: g6e.xlarge
    region: us-east-1
    private_ip: 10.0.1.23
    api_url: null
    uptime_seconds: 42
    hourly_cost: 1.861
    availability_zone: us-east-1a
    subnet_id: subnet-0aaa
    image_id: ami-0123456789abcdef0
    public_ip: null
launch_spec:
  description: The RunInstances request (first placement) that was or, in check mode, would be sent.
  returned: when a node is created or would be created
  type: dict
placement:
  description: Placements tried in order, each with C(instance_type), C(subnet_id), C(availability_zone) and C(result).
  returned: when a node is created or would be created
  type: list
  elements: dict
cost:
  description: Estimated hourly and monthly cost (instance, root volume, one NAT gateway) and the date of the prices.
  returned: when a node is created or would be created
  type: dict
image:
  description: The image booted and how it was found (C(explicit), C(golden) or C(dlami:<parameter>)).
  returned: when a node is created or would be created
  type: dict
  sample: {id: ami-0123456789abcdef0, source: golden}
tags_changed:
  description:
    - The tags of an existing instance that were (in check mode, would be) updated, C(set) with
      their new values and C(removed) (only with O(purge_tags)).
  returned: when an existing instance's tags differed from this run's
  type: dict
  version_added: "0.2.0"
  contains:
    set:
      description: Tags added or given a new value.
      type: dict
      returned: always
      sample: {oce-environment: staging, team: ml-platform}
    removed:
      description: Tags removed.
      type: list
      elements: str
      returned: always
      sample: []
retries:
  description: API calls retried after throttling or a server error, as C([operation, code, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import json

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, catalog, cloud, fleet, node_module

# The one secret check of every cloud (user data here, metadata on GCP).
secret_in = cloud.secret_in


def resolve_image(ec2, params, ssm=None):
    """The image to boot: (image id, root device name, how it was found, its root disk's GB)."""
    image = params["image"]
    if image.startswith("ami-"):
        image_id, source = image, "explicit"
    elif image == "dlami":
        if ssm is None:
            raise cloud.CloudError("image=dlami needs an SSM client")
        value = ssm.call("get_parameter", Name=params["dlami_parameter"])["Parameter"]["Value"]
        image_id, source = value, "dlami:" + params["dlami_parameter"]
    elif image == "golden":
        filters = aws.tag_filters(params["image_tags"]) + [{"Name": "state", "Values": ["available"]}]
        images = ec2.call("describe_images", Owners=["self"], Filters=filters)["Images"]
        if not images:
            raise cloud.CloudError(
                "no golden image tagged {} in {}: build one (packer/) or set image to dlami or an AMI id".format(
                    params["image_tags"], ec2.region
                )
            )
        return _booted(max(images, key=lambda i: i.get("CreationDate", "")), "golden")
    else:
        raise cloud.CloudError(f"image {image!r} is not golden, dlami or an AMI id (ami-...)")
    images = ec2.call("describe_images", ImageIds=[image_id])["Images"]
    if not images:
        raise cloud.CloudError(f"image {image_id} ({source}) does not exist in {ec2.region}")
    return _booted(images[0], source)


def _booted(image, source):
    """(image id, root device name, how it was found, the root snapshot's GB or 0)."""
    root = image.get("RootDeviceName", "/dev/sda1")
    sizes = [
        m["Ebs"].get("VolumeSize", 0)
        for m in image.get("BlockDeviceMappings", [])
        if m.get("DeviceName") == root and "Ebs" in m
    ]
    return image["ImageId"], root, source, (sizes or [0])[0]


def check_key_secret(connect, secret):
    """Fail when the secret the node reads its tailnet key from does not exist; never reads its value."""
    source, name = secret["source"], secret["name"]
    if source == "aws_secretsmanager":
        api, operation, args = connect("secretsmanager"), "describe_secret", {"SecretId": name}
    elif source == "aws_ssm":
        # Described, not got: ssm:GetParameter on the key would let the controller decrypt it.
        api, operation = connect("ssm"), "describe_parameters"
        args = {"ParameterFilters": [{"Key": "Name", "Option": "Equals", "Values": [name]}]}
    else:
        raise cloud.CloudError(f"key_secret source {source!r} is not aws_secretsmanager or aws_ssm")
    try:
        found = api.call(operation, **args)
    except cloud.CloudError as exc:
        if exc.details.get("code") != "ResourceNotFoundException":
            raise
        found = None
    if source == "aws_ssm" and not (found or {}).get("Parameters"):
        found = None
    # A secret made without a value has no AWSCURRENT version: the node would find nothing either.
    stages = [s for stages in ((found or {}).get("VersionIdsToStages") or {}).values() for s in stages]
    if found is None or (source == "aws_secretsmanager" and "AWSCURRENT" not in stages):
        store = "Secrets Manager" if source == "aws_secretsmanager" else "SSM Parameter Store"
        how = (
            f"aws secretsmanager create-secret --region {api.region} --name {name} --secret-string file://key.txt"
            if source == "aws_secretsmanager"
            else f"aws ssm put-parameter --region {api.region} --type SecureString --name {name} --value file://key.txt"
        )
        raise cloud.CloudError(
            f"the node's tailnet key {name} {'has no value' if found else 'does not exist'} in {store} in "
            f"{api.region}: the node reads its Tailscale auth key from it at first boot. Store a reusable auth key "
            f"there first ({how}), then run again. Nothing was created",
            code="SECRET_NOT_FOUND",
        )


def plan_create(ec2, params, cat, ssm=None, connect=None):
    """Everything checked before a launch: types that fit, subnets or zones, offerings, image, key. Read-only."""
    model = params["model"]
    entry = catalog.model_entry(cat, model)
    types = params["instance_types"] or entry["aws"]
    for itype in types:
        catalog.check_fit(cat, model, itype)
    if params["subnet_ids"]:
        subnets = ec2.call("describe_subnets", SubnetIds=params["subnet_ids"])["Subnets"]
        zone_of = {s["SubnetId"]: s["AvailabilityZone"] for s in subnets}
        order = [(sid, zone_of[sid]) for sid in params["subnet_ids"]]
    else:  # a check-mode plan before the network exists: the zones its subnets will be in
        order = [(f"(new subnet in {zone})", zone) for zone in params["zones"]]
    zones = sorted({zone for _sid, zone in order})
    offered = ec2.paginate(
        "describe_instance_type_offerings",
        "InstanceTypeOfferings",
        LocationType="availability-zone",
        Filters=[{"Name": "instance-type", "Values": types}, {"Name": "location", "Values": zones}],
    )
    offered = {(o["InstanceType"], o["Location"]) for o in offered}
    candidates, skipped = [], []
    for itype in types:
        for sid, zone in order:
            place = {"instance_type": itype, "subnet_id": sid, "availability_zone": zone}
            if (itype, zone) in offered:
                candidates.append(place)
            else:
                skipped.append(dict(place, result="not offered in this zone"))
    if not candidates:
        raise cloud.CloudError(
            "none of the instance types {} is offered in the zones of subnet_ids ({}) in {}: "
            "choose other subnets or types".format(", ".join(types), ", ".join(zones), ec2.region),
            placement=skipped,
        )
    image_id, root_device, source, image_gb = resolve_image(ec2, params, ssm)
    if params["key_secret"]:
        check_key_secret(connect, params["key_secret"])
    return {
        "catalog": cat,
        "candidates": candidates,
        "skipped": skipped,
        "image_id": image_id,
        "image_source": source,
        "root_device": root_device,
        "volume_size": catalog.disk_size(model, entry, params["volume_size"], "volume_size", (image_id, image_gb)),
        "tags": cloud.our_tags(params["deployment"], model, params["environment"], params["name"], params["tags"]),
    }


def launch_spec(plan, place, params, token):
    tags = aws.to_tag_list(plan["tags"])
    spec = {
        "ImageId": plan["image_id"],
        "InstanceType": place["instance_type"],
        "MinCount": 1,
        "MaxCount": 1,
        "NetworkInterfaces": [
            {
                "DeviceIndex": 0,
                "SubnetId": place["subnet_id"],
                "AssociatePublicIpAddress": False,
                "DeleteOnTermination": True,
            }
        ],
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 1},
        "BlockDeviceMappings": [
            {
                "DeviceName": plan["root_device"],
                "Ebs": {
                    "VolumeSize": plan["volume_size"],
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [{"ResourceType": r, "Tags": tags} for r in ("instance", "volume", "network-interface")],
    }
    if params["security_group_ids"]:
        spec["NetworkInterfaces"][0]["Groups"] = params["security_group_ids"]
    if params["instance_profile"]:
        spec["IamInstanceProfile"] = {"Name": params["instance_profile"]}
    if params["user_data"]:
        spec["UserData"] = params["user_data"]
    # The same in every run that would make this very launch (see AwsNode.create): a retried or a
    # concurrent RunInstances gets the first launch back instead of a second instance. The request
    # is part of it: EC2 keeps a token about a day, longer than it lists a terminated instance,
    # and answers IdempotentParameterMismatch to the token with other parameters (a new image).
    spec["ClientToken"] = aws.client_token(token, json.dumps(spec, sort_keys=True, default=str))
    return spec


# How many earlier generations one launch steps over (see run_instance) before it gives up.
STALE_TOKENS = 5


def run_instance(ec2, plan, place, params, token):
    """RunInstances in ``place`` with the idempotency key ``token``; the instance it answers.

    EC2 remembers a client token for a day or so after its instance was terminated, longer than
    it lists the instance: a key that comes back with a shutting-down or terminated instance was
    used by an earlier generation of this node. That instance's id joins the key and the launch
    is asked again, so every run that sees the same answers derives the same next key.
    """
    stale = []
    for _step in range(STALE_TOKENS + 1):
        key = cloud.idempotency_key(token, "stale", *stale) if stale else token
        instance = ec2.call("run_instances", **launch_spec(plan, place, params, key))["Instances"][0]
        if instance["State"]["Name"] not in aws.GONE_STATES:
            return instance
        stale.append(instance["InstanceId"])
    raise cloud.CloudError(
        "run instances kept answering with terminated instances of earlier runs ({}): "
        "wait an hour or use another name".format(", ".join(stale))
    )


def launch(ec2, plan, params, token):
    """Try the placements in order; return (instance, placement tried)."""
    return cloud.try_placements(
        plan["candidates"],
        lambda place: run_instance(ec2, plan, place, params, token),
        aws.CAPACITY_CODES,  # not here: the next subnet, then the next type
        tried=plan["skipped"],
        what=params["model"],
        label=lambda t: "{instance_type} in {availability_zone}".format(**t),
        where="subnet",
    )


def describe(ec2, instance_id, fresh_until=None):
    return aws.describe_instance(ec2, instance_id, fresh_until)


def wait_state(ec2, instance_id, wanted, timeout, failed_states=(), fresh_until=None):
    return cloud.wait_for(
        lambda: describe(ec2, instance_id, fresh_until),
        lambda i: i["State"]["Name"] == wanted,
        f"instance {instance_id} to be {wanted}",
        timeout,
        clock=ec2.clock,
        failed=lambda i: i["State"]["Name"] if i["State"]["Name"] in failed_states else None,
    )


def create(ec2, plan, params, token):
    """Launch and wait; anything failing after the launch terminates what this run launched."""
    instance, tried = launch(ec2, plan, params, token)
    instance_id = instance["InstanceId"]
    # EC2 may not know the instance yet: "not found" is asked again for a while, not believed.
    fresh_until = ec2.clock.now() + aws.NOT_FOUND_GRACE
    try:
        if params["wait"]:
            instance = wait_state(
                ec2, instance_id, "running", params["wait_timeout"], ("shutting-down", "terminated"), fresh_until
            )
        else:
            instance = describe(ec2, instance_id, fresh_until)
    except Exception as exc:  # anything at all: what this run launched must not be left running
        raise cloud.undo_failed(
            exc,
            instance_id,
            lambda: ec2.call("terminate_instances", InstanceIds=[instance_id]),
            made="launched",
            verb="terminate",
            done="terminated",
            placement=tried,
        ) from exc
    return instance, tried


def create_problems(params, check_mode=False):
    """What creating the node needs and the inputs lack (cloud.Provider.create_problems)."""
    problems = []
    if not params["model"]:
        problems.append("model is required to create a node")
    if not params["subnet_ids"] and not (check_mode and params["zones"]):
        problems.append("subnet_ids is required to create a node (private subnets, ideally in two zones)")
    return problems


def check_inputs(params, cat_error):
    problems = [fleet.validate_deployment(params["deployment"]), cat_error] + cloud.node_input_problems(params)
    if params["state"] != "absent":
        wrong = [z for z in params["zones"] if not aws.zone_in_region(z, params.get("region") or "")]
        if wrong:
            problems.append(f"zones {', '.join(wrong)} are not in region {params.get('region')}")
        if params["key_secret"] and params["key_secret"].get("source") not in ("aws_secretsmanager", "aws_ssm"):
            problems.append("key_secret source must be aws_secretsmanager or aws_ssm")
        what = cloud.secret_in(params["user_data"])
        if what:
            problems.append(
                f"user_data carries {what}: anyone who can describe the instance can read user data; "
                "store the secret in SSM Parameter Store or Secrets Manager and let the node read it "
                "through its instance role"
            )
    return [p for p in problems if p]


class AwsNode(cloud.Provider):
    """The aws_gpu_instance side of cloud.converge."""

    remove_verb = "terminate"
    capacity_codes = aws.CAPACITY_CODES

    def __init__(self, ec2, params, ssm=None, connect=None):
        self.ec2 = ec2
        self.params = params
        self.ssm = ssm
        self.connect = connect  # service name -> Api, for the key secret's store
        self.clock = ec2.clock
        self.capacity_wait = params.get("capacity_wait", 0)
        self.timeout = params["wait_timeout"]
        self.fresh = {}  # instance id -> until when EC2 may still not know it (launched by this run)
        # The idempotency key of the launch; set by create (see there).
        self.token = ""

    def find(self):
        return aws.find_instances(self.ec2, self.params["deployment"], self.params["name"])

    def ident(self, raw):
        return raw["InstanceId"]

    def state(self, raw):
        return aws.STATES.get(raw["State"]["Name"], "unknown")

    def refresh(self, raw):
        return describe(self.ec2, raw["InstanceId"], self.fresh.get(raw["InstanceId"]))

    def node(self, raw):
        return aws.priced_node(raw, self.ec2.region)

    def plan(self):
        return plan_create(self.ec2, self.params, catalog.merge(self.params["catalog"]), self.ssm, self.connect)

    def outcome(self, plan, place, placement):
        """Result keys of a launch in ``place``: the request (without its token), the cost, the placement."""
        spec = launch_spec(plan, place, self.params, self.token)
        spec.pop("ClientToken")
        return {
            "launch_spec": spec,
            "cost": catalog.aws_estimate(
                plan["catalog"], self.params["model"], place["instance_type"], disk_gb=plan["volume_size"]
            ),
            "placement": placement,
            "image": {"id": plan["image_id"], "source": plan["image_source"]},
        }

    def preview(self, plan):
        first = plan["candidates"][0]
        return self.outcome(plan, first, plan["skipped"] + [dict(first, result="would launch")])

    def create(self, plan):
        # Derived from the deployment, the name and the node's earlier instances (still listed as
        # terminated): two runs at once send the same ClientToken and EC2 launches once; a node
        # made again after a destroy gets a new one. run_instance handles what EC2 no longer lists.
        deployment, name = self.params["deployment"], self.params["name"]
        gone = aws.gone_instance_ids(self.ec2, deployment, name)
        self.token = cloud.idempotency_key(deployment, name, *gone)
        instance, tried = create(self.ec2, plan, self.params, self.token)
        self.fresh[instance["InstanceId"]] = self.ec2.clock.now() + aws.NOT_FOUND_GRACE
        return instance, self.outcome(plan, tried[-1], tried)

    def change(self, raw, operation, wanted):
        self.ec2.call(operation, InstanceIds=[raw["InstanceId"]])
        return wait_state(self.ec2, raw["InstanceId"], wanted, self.timeout) if self.params["wait"] else raw

    def start(self, raw):
        return self.change(raw, "start_instances", "running")

    def stop(self, raw):
        return self.change(raw, "stop_instances", "stopped")

    def delete(self, raw):
        self.change(raw, "terminate_instances", "terminated")

    def settle(self, raw):
        wanted = cloud.SETTLES_TO.get(raw["State"]["Name"])
        return wait_state(self.ec2, raw["InstanceId"], wanted, self.timeout) if wanted else raw

    # --------------------------------------------------------------- tag drift

    def desired_tags(self):
        """The tags this run wants on the instance; a tag that would override ours fails before any call."""
        params = self.params
        return cloud.our_tags(
            params["deployment"], params["model"], params["environment"], params["name"], params["tags"]
        )

    def retag(self, result, desired, check_mode):
        """Bring the tags of an existing instance to this run's (create_tags, delete_tags); report in ``result``."""
        node = result["node"]
        changes, removals = cloud.tag_drift(
            node["labels"], desired, self.params["purge_tags"], aws.RESERVED_TAG_PREFIXES
        )
        cloud.report_drift(result, "tags", node["labels"], changes, removals)
        if check_mode or not (changes or removals):
            return result
        if changes:
            self.ec2.call("create_tags", Resources=[node["id"]], Tags=aws.to_tag_list(changes))
        if removals:
            self.ec2.call("delete_tags", Resources=[node["id"]], Tags=[{"Key": k} for k in removals])
        result["node"] = self.node(describe(self.ec2, node["id"]))
        return result


def catalog_problem(params):
    """What is wrong with the model, the catalog, the volume size or the instance types (or None)."""
    if params["state"] == "absent":
        return None
    try:
        cat = catalog.merge(params["catalog"])
        if params["model"]:
            entry = catalog.model_entry(cat, params["model"])
            catalog.disk_size(params["model"], entry, params["volume_size"], "volume_size")
            for itype in params["instance_types"]:
                catalog.check_fit(cat, params["model"], itype)
    except catalog.CatalogError as exc:
        return str(exc)
    return None


def main():
    base = node_module.NodeModule(
        aws,
        {
            "subnet_ids": {"type": "list", "elements": "str", "default": []},
            "zones": {"type": "list", "elements": "str", "default": []},
            "security_group_ids": {"type": "list", "elements": "str", "default": []},
            "instance_types": {"type": "list", "elements": "str", "default": []},
            "image": {"type": "str", "default": "golden"},
            "image_tags": {"type": "dict", "default": {"oce-image": "ollama-node"}},
            "dlami_parameter": {
                "type": "str",
                "default": "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-22.04/latest/ami-id",
            },
            "instance_profile": {"type": "str"},
            "volume_size": {"type": "int"},
            "user_data": {"type": "str"},
            "tags": {"type": "dict", "default": {}},
            "purge_tags": {"type": "bool", "default": False},
        },
        node=True,
    )
    params = base.params
    # Inputs first: a bad model, catalog or user_data fails before any API call.
    base.check(check_inputs(params, catalog_problem(params)))

    def provider():
        ec2 = base.client("ec2")
        ssm = base.client("ssm", ec2.clock) if params["image"] == "dlami" else None
        node = AwsNode(ec2, params, ssm, lambda service: base.client(service, ec2.clock))
        node.create_problems = create_problems(params, base.check_mode)
        return node

    base.converge(provider)


if __name__ == "__main__":
    main()
