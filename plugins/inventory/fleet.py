# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet
short_description: The Ollama nodes of ollama_cloud.engine on AWS and GCP, found by their tags and labels
version_added: 0.1.0
description:
  - Finds the nodes this collection created, of one deployment or all, on the clouds of O(clouds),
    EC2 instances carrying our C(oce-managed-by) tag across O(regions), and Compute Engine VMs
    carrying our C(oce-managed-by) label in every zone of O(projects) (one aggregated list per
    project). Each is added with its node record in C(oce_node), the record
    M(ollama_cloud.engine.aws_gpu_instance_info) and M(ollama_cloud.engine.gcp_gpu_instance_info)
    return except for its C(labels), which are only the tags (GCP labels) a user added; C(Name) and
    our C(oce-*) ones are the record's C(name), C(deployment), C(model) and C(environment) already.
  - "Host variables, for O(compose), O(groups) and O(keyed_groups) too: C(oce_node) (the record:
    C(oce_node.model), C(oce_node.gpu), C(oce_node.hourly_cost), C(oce_node.region), on GCP
    C(oce_node.project), ...),
    C(oce_tailnet_hostname), C(oce_tailnet_online), C(ollama_url) and the connection's
    C(ansible_host), C(ansible_user), C(ansible_become), C(ansible_ssh_private_key_file) and
    C(ansible_ssh_common_args). Each value once: the record's fields are not repeated as variables
    of their own (C(ansible-inventory --list) prints every host's variables, and at 1,000 nodes
    printing is most of its time)."
  - "Values read from a cloud are not templates: a string that could hold one (any C({), C(}),
    C(%) or C(#), as in a tag C({{ lookup('pipe', 'id') }})) stays untrusted, inert where a
    template uses it and printed by C(ansible-inventory --list) as C({\"__ansible_unsafe\": ...}).
    Strings of other characters, which no template can be made of, are marked trusted and printed
    plainly (wrapping each was about a third of C(--list)'s time at 1,000 nodes)."
  - All of them are host variables, the connection's included, as M(amazon.aws.aws_ec2) sets its
    own, so they win over C(group_vars) (a C(group_vars/all.yml) of other hosts with another
    C(ansible_user) does not reach the nodes); set them with this plugin's options or O(compose).
  - "Groups: C(cloud_<cloud>), C(region_<region>), C(model_<model>), C(state_<state>),
    C(deployment_<deployment>) and the plain environment name (C(dev), C(staging), C(prod)), the
    group the node role also uses, so C(group_vars/dev.yml) applies. Names are sanitised
    (C(model_codellama_34b_code))."
  - Nodes are reached over the tailnet only. Each joined it at first boot under its node record's
    C(tailnet_hostname); the plugin asks this controller's C(tailscale status --json) (O(tailnet_cli))
    where that name is, and sets C(ansible_host) to its tailnet address (else to the hostname, for
    MagicDNS), C(ollama_url) to its API on the tailnet, and SSH as the user C(oce) with
    O(ssh_private_key_file) and C(become). Tailnet addresses are read live, never cached.
  - Only a running node takes the tailnet address of its name (a stopped one's name may be another
    machine's, such as the deployment's node of the same name in another region). Running nodes that
    share a name take none (a warning names them), since which of them the tailnet's peer is cannot
    be told. Those nodes get an C(ansible_host) that never resolves (C(<name>.stopped.invalid),
    C(<name>.ambiguous.invalid)) and no C(ollama_url), not the name, which MagicDNS would resolve to
    the other machine.
  - Terminated EC2 instances are left out; stopped GCP VMs (C(TERMINATED)) are kept as C(state_stopped).
    Regions and projects are read in parallel, each with paginated calls that retry throttling and
    server errors with jittered backoff. An error that remains fails the inventory with a message that
    names first the cloud and the region or project (C(aws us-east-1), C(gcp my-project)).
  - EC2's C(DescribeInstances) answers are read by the plugin for the node record's fields only
    (botocore's parser builds every field of every instance, most of what a large inventory costs
    the controller); the page token, the request id and any error answer go through botocore as usual.
  - The inventory file must end in C(fleet.yml), C(fleet.yaml), C(.fleet.yml) or C(.fleet.yaml).
extends_documentation_fragment:
  - constructed
  - inventory_cache
options:
  plugin:
    description: The name of this plugin; it must be V(ollama_cloud.engine.fleet).
    type: str
    required: true
    choices: [ollama_cloud.engine.fleet]
  clouds:
    description: The clouds to search.
    type: list
    elements: str
    choices: [aws, gcp]
    default: [aws]
  regions:
    description:
      - AWS regions to search. If empty (or each templates to an empty string), E(AWS_REGION) then
        E(AWS_DEFAULT_REGION) name the one region.
    type: list
    elements: str
    default: []
  deployment:
    description: Only the nodes of this deployment; all of ours when empty.
    type: str
    default: ""
  states:
    description:
      - Only the nodes in these states (the node record's C(state)); nodes in every state when
        empty. V([running]) leaves out the stopped nodes, which cannot be reached anyway.
      - Applied to what the clouds (or the cache) answer, so one cache serves every choice.
      - A node keeps the host name it has without the filter (a clash gets the instance id), so
        its host_vars file and C(--limit) name the same machine whichever states are asked for.
    type: list
    elements: str
    choices: [pending, running, stopping, stopped, unknown]
    default: []
    version_added: 0.3.0
  endpoint_url:
    description:
      - Send API calls to this URL instead of AWS (a moto server in tests).
    type: str
    env:
      - name: AWS_ENDPOINT_URL
  profile:
    description:
      - A named profile of the AWS config files. Its credentials are used even when the environment
        has keys (E(AWS_ACCESS_KEY_ID), E(AWS_SECRET_ACCESS_KEY), E(AWS_SESSION_TOKEN)), as boto3 does
        for a profile it is given; with O(access_key), O(secret_key) or O(session_token) set in the
        inventory file to other values than the environment's, it is an error.
    type: str
    env:
      - name: AWS_PROFILE
  access_key:
    description: The access key id; else the profile, the environment or the instance role.
    type: str
    env:
      - name: AWS_ACCESS_KEY_ID
  secret_key:
    description: The secret access key. Never written to the inventory or its cache.
    type: str
    env:
      - name: AWS_SECRET_ACCESS_KEY
  session_token:
    description: A session token for temporary credentials. Never written to the inventory or its cache.
    type: str
    env:
      - name: AWS_SESSION_TOKEN
  projects:
    description:
      - GCP projects to search (with V(gcp) in O(clouds)). If empty (or each templates to an empty
        string), E(GCP_PROJECT), E(GOOGLE_CLOUD_PROJECT) then E(CLOUDSDK_CORE_PROJECT) name the one
        project, as for the GCP modules.
    type: list
    elements: str
    default: []
  gcp_endpoint:
    description:
      - Send Compute Engine calls to this API root instead of Google (an emulator in tests).
      - If not set, E(OCE_GCE_ENDPOINT) then E(CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE), as for the GCP modules.
    type: str
    # In reverse: of the variables set, Ansible takes the last one listed, the modules the first.
    env:
      - name: CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE
      - name: OCE_GCE_ENDPOINT
  gcp_auth_kind:
    description:
      - How to sign in to GCP, as the GCP modules' O(ollama_cloud.engine.gcp_gpu_instance#module:auth_kind).
    type: str
    choices: [application, serviceaccount, anonymous]
    default: application
    env:
      - name: GCP_AUTH_KIND
  gcp_service_account_file:
    description: A service account key file for O(gcp_auth_kind=serviceaccount). Never written to the cache.
    type: path
    env:
      - name: GCP_SERVICE_ACCOUNT_FILE
  gcp_impersonate_service_account:
    description: Act as this service account (email), with the credentials of O(gcp_auth_kind) as the source.
    type: str
    env:
      - name: CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT
  page_size:
    description: Instances asked for per DescribeInstances call (AWS allows 5 to 1000).
    type: int
    default: 1000
  tailnet_cli:
    description:
      - This controller's tailscale command, asked where the nodes are on the tailnet (add
        C(--socket=PATH) for a tailscaled of your own). An empty list skips the lookup.
    type: list
    elements: str
    default: [tailscale]
  ssh_private_key_file:
    description: The key the node role made for the nodes' user C(oce) (its C(node_ssh_key_file)).
    type: path
    default: ~/.ssh/oce_ed25519
  ssh_proxy_command:
    description:
      - An SSH ProxyCommand for a controller whose tailscaled runs in userspace mode, such as
        C(tailscale nc %h %p); empty when the controller routes to the tailnet.
    type: str
    default: ""
requirements:
  - boto3 >= 1.34 and botocore >= 1.34 on the controller (for AWS).
  - google-auth >= 2.20 and requests on the controller (for GCP).
notes:
  - The cache (O(cache)) covers both clouds alike. It holds node records only, never credentials;
    it is written when it was missed (or flushed with C(--flush-cache)), and a hit makes no API
    call at all, to AWS or to GCP. Its key is the inventory file plus what it searches
    (O(clouds), O(regions), O(projects), O(deployment), the endpoints) and whose credentials search
    (O(profile), the access key id, O(gcp_impersonate_service_account)), so a changed search is a
    miss rather than a hit on nodes found with other settings.
"""

EXAMPLES = r"""
# inventories/aws/fleet.yml: every node of ours in two regions, reached over the tailnet
plugin: ollama_cloud.engine.fleet
regions: [us-east-1, eu-west-1]

---
# Only one deployment, cached for ten minutes, from a controller running tailscaled in userspace mode
plugin: ollama_cloud.engine.fleet
regions: [us-east-1]
deployment: demo
tailnet_cli: [tailscale, --socket=/run/user/1000/tailscaled.sock]
ssh_proxy_command: tailscale --socket=/run/user/1000/tailscaled.sock nc %h %p
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ollama-cloud-engine/inventory
cache_timeout: 600

---
# The GCP nodes of one project (Application Default Credentials)
plugin: ollama_cloud.engine.fleet
clouds: [gcp]
projects: [my-project]

---
# Both clouds in one inventory
plugin: ollama_cloud.engine.fleet
clouds: [aws, gcp]
regions: [us-east-1]
projects: [my-project]

---
# Both clouds, cached for ten minutes: a cached run calls neither cloud (ansible-inventory
# --flush-cache reads them again)
plugin: ollama_cloud.engine.fleet
clouds: [aws, gcp]
regions: [us-east-1]
projects: [my-project]
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/ollama-cloud-engine/inventory
cache_timeout: 600

---
# Only the running nodes of deployment prod: a stopped node is no host to configure
plugin: ollama_cloud.engine.fleet
regions: [us-east-1]
deployment: prod
states: [running]

---
# Your own groups and variables from the node record
plugin: ollama_cloud.engine.fleet
regions: [us-east-1]
keyed_groups:
  - key: oce_node.gpu
    prefix: gpu
compose:
  ollama_models_list: "[oce_node.model]"
groups:
  expensive: oce_node.hourly_cost is number and oce_node.hourly_cost > 1.5
"""

import collections
import concurrent.futures
import datetime
import hashlib
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.template import trust_as_template

from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog, cloud, fleet, tailnet

SUFFIXES = ("fleet.yml", "fleet.yaml")

# The shape of the cached node records, part of the cache key: a cache of another shape is a miss.
# 2: labels are only the user's own (fleet.own_labels). 3: GCP records carry their project.
RECORDS = 3


# Characters no template can be made of: without a brace, a percent or a hash there is no
# {{ }}, {% %}, {# #} nor #jinja2: header. Only strings of these are trusted (see _Trusted).
_INERT = re.compile(r"[\w .:/@=+~,-]*\Z")


class _Trusted:
    """A host's variables with each string that cannot hold a template trusted as one.

    Ansible trusts no string a plugin sets, and ``--list`` prints each untrusted one as
    ``{"__ansible_unsafe": ...}``; for a string that cannot hold a template, trust changes nothing
    a template does with it. Every other string (a tag that reads ``{{ lookup(...) }}``) is kept
    as it is, untrusted, as are strings that carry tags already (an option's value). Most values
    repeat from node to node (cloud, region, model, type), so each is trusted once.
    """

    def __init__(self):
        self._seen = {}

    def __call__(self, value):
        # Exactly str: a tagged one (an option's value) is left as it is.
        if type(value) is str:  # pylint: disable=unidiomatic-typecheck
            found = self._seen.get(value)
            if found is None:
                found = self._seen[value] = trust_as_template(value) if _INERT.match(value) else value
            return found
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        return value


def _first_set(names):
    """The value of the first of these environment variables that is set, else None: as the modules'
    env_fallback takes it, an empty one included."""
    return next((os.environ[name] for name in names if name in os.environ), None)


# The cloud layers are imported when a cloud is read, not when the plugin loads: boto3 and
# google-auth take a while to import, a cache hit reads no cloud and an AWS inventory no GCP.
def _aws():
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws

    return aws


def _gcp():
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import gcp

    return gcp


# DescribeInstances, read for what the node record takes. botocore's parser builds every field of
# every instance (block devices, interfaces, their addresses, ...): at 1,000 instances that is
# about 1.8 s of CPU, most of what an EC2 inventory costs the controller. The answer's XML is
# read here instead, for these fields only, into botocore's own shape; the rest of the answer
# (the request id, the page token) and every error answer go through botocore's parser as before.
_EC2_TEXT = {
    "instanceId": "InstanceId",
    "instanceType": "InstanceType",
    "privateIpAddress": "PrivateIpAddress",
    "ipAddress": "PublicIpAddress",
    "subnetId": "SubnetId",
    "imageId": "ImageId",
}


def _ec2_instance(item, ns):
    """One ``instancesSet/item`` as botocore shapes it, with the node record's fields only."""
    instance = {}
    for child in item:  # direct children: an interface's privateIpAddress is not the instance's
        tag = child.tag[len(ns) :]
        key = _EC2_TEXT.get(tag)
        if key:
            instance[key] = child.text or ""
        elif tag == "instanceState":
            instance["State"] = {"Name": child.findtext(ns + "name") or ""}
        elif tag == "placement":
            instance["Placement"] = {"AvailabilityZone": child.findtext(ns + "availabilityZone") or ""}
        elif tag == "launchTime":
            instance["LaunchTime"] = datetime.datetime.fromisoformat(child.text.strip().replace("Z", "+00:00"))
        elif tag == "tagSet":
            instance["Tags"] = [
                {"Key": t.findtext(ns + "key") or "", "Value": t.findtext(ns + "value") or ""}
                for t in child.iterfind(ns + "item")
            ]
    return instance


def read_describe_instances(response_dict, customized_response_dict, **kwargs):
    """botocore's before-parse handler for DescribeInstances (see _EC2_TEXT).

    A successful answer's reservations go to ``customized_response_dict``, which botocore merges
    into what it parses from the rest; an answer this cannot read is left whole to botocore's
    parser, which reads it or says what is wrong with it.
    """
    if response_dict.get("status_code") != 200:
        return
    try:
        root = ET.fromstring(response_dict["body"])
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        found = root.find(ns + "reservationSet")
        reservations = [
            {"Instances": [_ec2_instance(item, ns) for item in reservation.iterfind(f"{ns}instancesSet/{ns}item")]}
            for reservation in ([] if found is None else found.iterfind(ns + "item"))
        ]
    except (ET.ParseError, AttributeError, KeyError, TypeError, ValueError):
        return
    if found is not None:
        root.remove(found)
    response_dict["body"] = ET.tostring(root)
    customized_response_dict["Reservations"] = reservations


def lean(api):
    """``api`` (an EC2 Api of aws.connect) with DescribeInstances read by read_describe_instances."""
    api.client.meta.events.register(
        "before-parse.ec2.DescribeInstances", read_describe_instances, unique_id="oce-fleet-describe-instances"
    )
    return api


def find_nodes(api, deployment=None, page_size=1000):
    """Our live instances in one region as node records, with GPU."""
    aws = _aws()
    labels = {fleet.LABEL_MANAGED_BY: fleet.MANAGED_BY}
    if deployment:
        labels[fleet.LABEL_DEPLOYMENT] = deployment
    filters = aws.tag_filters(labels) + [{"Name": "instance-state-name", "Values": aws.LIVE_STATES}]
    reservations = api.paginate("describe_instances", "Reservations", Filters=filters, MaxResults=page_size)
    nodes = []
    for instance in (i for r in reservations for i in r.get("Instances", [])):
        node = aws.priced_node(instance, api.region)
        spec = catalog.INSTANCE_TYPES.get(node["instance_type"]) or {}
        node["gpu"] = spec.get("gpu")
        node["gpu_count"] = spec.get("gpu_count")
        node["gpu_memory_gb"] = spec["gpu_count"] * spec["vram_gb"] if spec else None
        node["labels"] = fleet.own_labels(node["labels"])
        nodes.append(node)
    return nodes


def find_gcp_nodes(api, deployment=None):
    """Our VMs in every zone of one project as node records, with GPU."""
    gcp = _gcp()
    nodes = []
    for instance in gcp.find_instances(api, deployment):
        node = gcp.priced_node(instance)
        accelerator, count = node.get("accelerator"), node.get("accelerator_count") or 0
        per_gpu = catalog.GCP_ACCELERATORS.get(accelerator)
        # nvidia-tesla-t4 -> T4, nvidia-l4 -> L4, nvidia-a100-80gb -> A100-80GB
        node["gpu"] = accelerator.replace("nvidia-tesla-", "").replace("nvidia-", "").upper() if accelerator else None
        node["gpu_count"] = count or None
        node["gpu_memory_gb"] = per_gpu * count if per_gpu and count else None
        node["labels"] = fleet.own_labels(node["labels"])
        nodes.append(node)
    return nodes


def _tailnet_name(node):
    # Derived, not read from the record: cached records of older versions lack it.
    return fleet.tailnet_hostname(node["deployment"] or "", node["name"])


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "ollama_cloud.engine.fleet"
    # The tailnet names several running nodes share (_unshared).
    _shared = frozenset()

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(SUFFIXES)

    def _template(self, value):
        """Template a string option that holds a template (for example a lookup of a vault file)."""
        if isinstance(value, str) and self.templar.is_template(value):
            return self.templar.template(value)
        return value

    def _option(self, name):
        return self._template(self.get_option(name))

    def _clouds(self):
        return list(dict.fromkeys(self.get_option("clouds") or ["aws"]))

    def _listed(self, name, env_names):
        """A list option's values, templated, without empty ones; else the first environment variable set."""
        # Empty values are dropped first: a list whose templates all render empty is an empty list.
        # Plain strings: a value from the file carries its origin, which every record would
        # otherwise carry into the cache (slow to encode and decode) and hostvars.
        values = [str(v) for v in map(self._template, self.get_option(name) or []) if v]
        if not values:
            env = _first_set(env_names)
            values = [env] if env else []
        return list(dict.fromkeys(values))

    def _regions(self):
        regions = self._listed("regions", ("AWS_REGION", "AWS_DEFAULT_REGION"))
        if not regions:
            raise AnsibleParserError(
                "the fleet inventory has no region: set regions in the inventory file (or AWS_REGION)"
            )
        return regions

    def _projects(self):
        projects = self._listed("projects", fleet.GCP_ENV["project"])
        if not projects:
            raise AnsibleParserError(
                "the fleet inventory has no GCP project: set projects in the inventory file (or GCP_PROJECT)"
            )
        return projects

    def _aws_params(self):
        """The AWS connection options, a profile first as the modules take them (fleet.aws_profile_first)."""
        params, error = fleet.aws_profile_first(
            {k: self._option(k) for k in ("endpoint_url", "profile", *fleet.AWS_KEY_ENV)}
        )
        if error:
            raise AnsibleParserError(f"the fleet inventory file: {error}")
        return params

    def _sources(self, deployment):
        """(where, a callable returning its node records) per region (AWS) and project (GCP); where is the
        cloud and the region or project."""
        sources = []
        if "aws" in self._clouds():
            aws = _aws()
            params = self._aws_params()
            page_size = self.get_option("page_size")
            if not 5 <= page_size <= 1000:
                raise AnsibleParserError(f"page_size must be between 5 and 1000, got {page_size}")
            for region in self._regions():
                sources.append(
                    (
                        f"aws {region}",
                        lambda region=region: find_nodes(
                            lean(aws.connect(dict(params, region=region), "ec2")), deployment, page_size
                        ),
                    )
                )
        if "gcp" in self._clouds():
            gcp = _gcp()
            params = {
                "endpoint": self._option("gcp_endpoint"),
                "auth_kind": self._option("gcp_auth_kind"),
                "service_account_file": self._option("gcp_service_account_file"),
                "impersonate_service_account": self._option("gcp_impersonate_service_account"),
            }
            for project in self._projects():
                sources.append(
                    (
                        f"gcp {project}",
                        lambda project=project: find_gcp_nodes(gcp.connect(dict(params, project=project)), deployment),
                    )
                )
        return sources

    def _fetch(self):
        """Node records of every region and project, read in parallel; the first failure is told as a sentence
        that names its cloud and region or project."""
        if "aws" in self._clouds() and not _aws().HAS_BOTO3:
            raise AnsibleParserError(
                "the fleet inventory needs boto3 and botocore on the controller: pip install boto3"
            )
        if "gcp" in self._clouds() and not _gcp().HAS_GOOGLE_AUTH:
            raise AnsibleParserError(
                "the fleet inventory needs google-auth and requests on the controller for GCP: pip install google-auth"
            )
        deployment = self._option("deployment") or None
        sources = self._sources(deployment)
        found = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(sources), 8)) as pool:
            futures = [(where, pool.submit(read)) for where, read in sources]
            for where, future in futures:
                try:
                    found.extend(future.result())
                except cloud.CloudError as exc:
                    raise AnsibleParserError(f"fleet inventory: {where}: {exc.msg}") from None
        return sorted(found, key=lambda n: (n["cloud"], n["region"] or "", n["name"], n["id"]))

    def _ask_tailnet(self):
        """This controller's view of the tailnet (one ``status --json``): (its answer, None) or (None, why not)."""
        cli = self.get_option("tailnet_cli")
        if not cli:
            return None, None
        try:
            proc = subprocess.run(cli + ["status", "--json"], capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"fleet inventory: {' '.join(cli)} status failed ({exc}): nodes get their tailnet hostnames"
        if proc.returncode != 0:
            why = proc.stderr.strip()
            return None, f"fleet inventory: {' '.join(cli)} status failed ({why}): is this controller on the tailnet?"
        return proc.stdout, None

    def _peers(self, nodes, answer=None):
        """This controller's tailnet by hostname (``tailnet.find_peers``), empty when it cannot say.

        Needed only when a node runs: else nothing is asked (or the answer asked beside the clouds
        is dropped) and nothing is told.
        """
        if not any(n["state"] == "running" for n in nodes):
            return {}
        status, problem = answer or self._ask_tailnet()
        if status:
            try:
                return tailnet.find_peers(status)
            except (ValueError, AttributeError):
                problem = (
                    "fleet inventory: tailscale status --json did not answer JSON: nodes get their tailnet hostnames"
                )
        if problem:
            self.display.warning(problem)
        return {}

    def _add(self, node, hostname, peers, constructed):
        inventory = self.inventory
        inventory.add_host(hostname)
        groups = [
            "cloud_" + node["cloud"],
            "region_" + (node["region"] or "unknown"),
            "model_" + (node["model"] or "unknown"),
            "state_" + node["state"],
            "deployment_" + (node["deployment"] or "unknown"),
        ]
        if node["environment"]:
            groups.append(node["environment"])
        for group in groups:
            name = self._group_names.get(group)
            if name is None:
                name = self._group_names[group] = inventory.add_group(self._sanitize_group_name(group))
            inventory.add_child(name, hostname)

        hostvars = self._trusted({"oce_node": node, **self._tailnet_vars(node, peers)})
        host = inventory.get_host(hostname)
        for key, value in hostvars.items():
            host.set_variable(key, value)

        if constructed:
            # Only with compose, groups or keyed_groups: the host's variables are a copy worth making.
            compose, conditionals, keyed, strict = constructed
            all_vars = host.get_vars()
            self._set_composite_vars(compose, all_vars, hostname, strict=strict)
            self._add_host_to_composed_groups(conditionals, all_vars, hostname, strict=strict)
            self._add_host_to_keyed_groups(keyed, all_vars, hostname, strict=strict)

    def _tailnet_vars(self, node, peers):
        """Over the tailnet only: its address when this controller sees the node, else its name.

        ``peers`` is this controller's tailnet by hostname (``tailnet.find_peers``), empty when unknown.
        """
        name = _tailnet_name(node)
        # Only a running node can be the peer of its name: a stopped one's name may be another
        # machine's (the deployment's node of the same name in another region), and so may that of
        # running nodes sharing it. Those get a host no resolver answers (RFC 2606's .invalid), not
        # the name, which MagicDNS would resolve to that other machine.
        why_not = "stopped" if node["state"] != "running" else "ambiguous" if name in self._shared else None
        peer = None if why_not else peers.get(name)
        host = f"{name}.{why_not}.invalid" if why_not else (peer or {}).get("address") or name
        known_hosts = "~/.ssh/oce_known_hosts_{}".format(node["deployment"] or "unknown")
        ssh_args = tailnet.ssh_common_args(known_hosts, self.get_option("ssh_proxy_command"))
        return {
            "oce_tailnet_hostname": name,
            "oce_tailnet_online": bool(peer and peer["online"]),
            "ansible_host": host,
            "ansible_user": fleet.SSH_USER,
            "ansible_become": True,
            "ansible_ssh_private_key_file": self.get_option("ssh_private_key_file"),
            "ansible_ssh_common_args": ssh_args,
            "ollama_url": "" if why_not else tailnet.ollama_url(host),
        }

    def _unshared(self, nodes, peers):
        """``peers`` without the names that several running nodes share: which node a peer is cannot be told."""
        running = collections.defaultdict(list)
        for node in nodes:
            if node["state"] == "running":
                running[_tailnet_name(node)].append(node)
        shared = {name: found for name, found in running.items() if len(found) > 1}
        self._shared = frozenset(shared)
        for name, found in sorted(shared.items()):
            where = ", ".join("{} {} {}".format(n["cloud"], n["region"], n["id"]) for n in found)
            self.display.warning(
                f"fleet inventory: running nodes share the tailnet name {name} ({where}): which of them the "
                "tailnet's peer of that name is cannot be told, so none gets an address (ansible_host is "
                f"{name}.ambiguous.invalid); give each node a name of its own, or destroy the extra ones"
            )
        return {name: peer for name, peer in peers.items() if name not in shared}

    def _in_states(self, nodes):
        """The nodes in the states asked for (O(states)), all when none is."""
        states = self.get_option("states")
        return [n for n in nodes if n["state"] in states] if states else nodes

    def _populate(self, nodes, listed, peers):
        """``listed`` (some of ``nodes``) as hosts, named among all ``nodes``.

        A node's name never depends on O(states): its host_vars file and --limit stay on one machine.
        """
        peers = self._unshared(listed, peers)
        listed_ids = {id(node) for node in listed}
        seen = set()
        options = {k: self.get_option(k) for k in ("compose", "groups", "keyed_groups", "strict")}
        constructed = None
        if options["compose"] or options["groups"] or options["keyed_groups"]:
            constructed = (options["compose"], options["groups"], options["keyed_groups"], options["strict"])
        self._group_names = {}
        self._trusted = _Trusted()
        for node in nodes:
            # Inventory names are the node names the node role uses; a clash gets the instance id.
            hostname = node["name"] if node["name"] not in seen else "{}-{}".format(node["name"], node["id"])
            seen.add(hostname)
            if id(node) in listed_ids:
                self._add(node, hostname, peers, constructed)

    def _cache_key(self, path):
        """The cache key of the file and of what it searches, the same way for AWS and GCP.

        Editing clouds, regions, projects, the deployment, an endpoint, the AWS profile or access
        key id (another account's keys in the environment, as aws-vault or CI give them) or the
        impersonated GCP service account makes the next run a miss, not a hit on nodes found with
        other settings. No secret is part of the key, and the key holds only a digest of what it covers.
        """
        clouds = self._clouds()
        scope = {"clouds": clouds, "deployment": self._option("deployment") or "", "records": RECORDS}
        if "aws" in clouds:
            aws = self._aws_params()
            scope.update(
                regions=self._regions(),
                endpoint_url=aws["endpoint_url"],
                profile=aws["profile"],
                access_key=aws["access_key"],
            )
        if "gcp" in clouds:
            scope.update(
                projects=self._projects(),
                gcp_endpoint=self._option("gcp_endpoint"),
                gcp_impersonate_service_account=self._option("gcp_impersonate_service_account"),
            )
        digest = hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{self.get_cache_key(path)}_{digest}"

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)

        use_cache = self.get_option("cache")
        cache_key = self._cache_key(path) if use_cache else None
        nodes = None
        update_cache = use_cache and not cache  # --flush-cache
        if use_cache and cache:
            try:
                nodes = self._cache[cache_key]
            except KeyError:
                update_cache = True
        answer = None
        if nodes is None:
            # The tailnet is asked while the clouds answer, not after them.
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as beside:
                asked = beside.submit(self._ask_tailnet)
                try:
                    nodes = self._fetch()
                except cloud.CloudError as exc:
                    raise AnsibleParserError(f"fleet inventory: {to_native(exc.msg)}") from None
                answer = asked.result()
        if update_cache:
            self._cache[cache_key] = nodes
        listed = self._in_states(nodes)
        self._populate(nodes, listed, self._peers(listed, answer))
