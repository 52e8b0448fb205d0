"""verify_file and the record shape of the fleet inventory plugin (no cloud needed)."""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import re
import subprocess
import sys

import pytest
import yaml
from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.template import is_trusted_as_template, trust_as_template

from ansible_collections.ollama_cloud.engine.plugins.inventory import fleet
from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, first_boot, tailnet
from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet as fleet_utils

# Nodes join with a tagged key; the tailnet takes only tagged peers for nodes.
TAG = ["tag:ollama"]


@pytest.mark.parametrize(
    "name, ok",
    [
        ("fleet.yml", True),
        ("fleet.yaml", True),
        ("prod.fleet.yml", True),
        ("prod.fleet.yaml", True),
        ("hosts.yml", False),
        ("fleet.json", False),
        ("myfleet.ini", False),
    ],
)
def test_verify_file_by_suffix(tmp_path, name, ok):
    path = tmp_path / name
    path.write_text("plugin: ollama_cloud.engine.fleet\n")
    assert fleet.InventoryModule().verify_file(str(path)) is ok


class FakeApi:
    region = "us-east-1"

    def __init__(self, pages):
        self.pages, self.calls = pages, []

    def paginate(self, operation, key, **params):
        self.calls.append((operation, params))
        return [r for page in self.pages for r in page[key]]


def test_find_nodes_adds_gpu_and_tailnet_hostname_and_filters_by_our_tags():
    instance = {
        "InstanceId": "i-1",
        "InstanceType": "g6e.xlarge",
        "State": {"Name": "running"},
        "PrivateIpAddress": "10.0.1.5",
        "LaunchTime": datetime.datetime.now(datetime.timezone.utc),
        "Tags": [
            {"Key": "Name", "Value": "oce-x"},
            {"Key": "oce-deployment", "Value": "x"},
            {"Key": "oce-managed-by", "Value": "ollama_cloud.engine"},
            {"Key": "team", "Value": "ml"},
        ],
    }
    api = FakeApi([{"Reservations": [{"Instances": [instance]}]}])
    (node,) = fleet.find_nodes(api, deployment="x", page_size=500)
    assert (node["gpu"], node["gpu_count"], node["gpu_memory_gb"]) == ("L40S", 1, 48)
    assert node["tailnet_hostname"] == "oce-x" and node["hourly_cost"] == 1.861
    # Labels: the user's own; Name and ours are the record's name and deployment already.
    assert node["labels"] == {"team": "ml"} and (node["name"], node["deployment"]) == ("oce-x", "x")
    ((operation, params),) = api.calls
    assert operation == "describe_instances" and params["MaxResults"] == 500
    assert {"Name": "tag:oce-deployment", "Values": ["x"]} in params["Filters"]
    assert {"Name": "tag:oce-managed-by", "Values": ["ollama_cloud.engine"]} in params["Filters"]


class FakeGcpApi:
    project = "p"

    def __init__(self, instances):
        self.instances, self.calls = instances, []

    def aggregated(self, resource, params=None, action=None):
        self.calls.append((resource, params))
        return self.instances


def test_find_gcp_nodes_adds_gpu_and_tailnet_hostname_and_filters_by_our_labels():
    labels = {"oce-deployment": "x", "oce-managed-by": "ollama_cloud-engine", "oce-model": "mistral-7b", "team": "ml"}
    base = "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a"
    instance = {
        "id": "42",
        "name": "oce-x",
        "status": "RUNNING",
        "zone": base,
        "machineType": base + "/machineTypes/g2-standard-24",
        "labels": labels,
        "guestAccelerators": [{"acceleratorType": base + "/acceleratorTypes/nvidia-l4", "acceleratorCount": 2}],
        "metadata": {"items": [{"key": "oce-model", "value": "mistral:7b"}]},
        "networkInterfaces": [{"networkIP": "10.64.0.2", "subnetwork": base + "/subnetworks/oce-x-private"}],
    }
    # A look-alike without our managed-by label is dropped even if the server's filter let it through.
    other = dict(instance, name="other", labels={"oce-deployment": "x"})
    api = FakeGcpApi([instance, other])
    (node,) = fleet.find_gcp_nodes(api, deployment="x")
    assert (node["cloud"], node["region"], node["model"], node["state"]) == (
        "gcp",
        "us-central1",
        "mistral:7b",
        "running",
    )
    assert (node["gpu"], node["gpu_count"], node["gpu_memory_gb"]) == ("L4", 2, 48)
    assert node["tailnet_hostname"] == "oce-x" and node["hourly_cost"] == 0.88 + 2 * 0.56
    assert node["labels"] == {"team": "ml"}
    ((resource, params),) = api.calls
    assert resource == "instances"
    assert '(labels.oce-deployment = "x")' in params["filter"]
    assert '(labels.oce-managed-by = "ollama_cloud-engine")' in params["filter"]


STATUS = {
    "BackendState": "Running",
    "Peer": {
        "k1": {
            "HostName": "oce-x",
            "TailscaleIPs": ["100.64.0.7", "fd7a::7"],
            "Online": True,
            "DNSName": "oce-x.t.",
            "Tags": TAG,
        },
        "k2": {"HostName": "other", "TailscaleIPs": ["100.64.0.9"], "Online": True, "Tags": TAG},
    },
}


@pytest.mark.parametrize(
    "status, host, online",
    [(STATUS, "100.64.0.7", True), (None, "oce-x", False), ({"Peer": {}}, "oce-x", False)],
)
def test_nodes_are_reached_over_the_tailnet_only(status, host, online):
    plugin = fleet.InventoryModule()
    plugin.get_option = {"ssh_proxy_command": "tailscale nc %h %p", "ssh_private_key_file": "/k"}.get
    node = {"name": "oce-x", "deployment": "x", "state": "running", "private_ip": "10.0.1.5"}
    got = plugin._tailnet_vars(node, tailnet.find_peers(status) if status else {})
    # The VPC address is never used: without the tailnet view, the MagicDNS name.
    assert (got["ansible_host"], got["oce_tailnet_online"]) == (host, online)
    assert got["ollama_url"] == f"http://{host}:11434" and got["ansible_user"] == "oce" and got["ansible_become"]
    assert got["ansible_ssh_private_key_file"] == "/k"
    assert 'ProxyCommand="tailscale nc %h %p"' in got["ansible_ssh_common_args"]
    assert "UserKnownHostsFile=~/.ssh/oce_known_hosts_x" in got["ansible_ssh_common_args"]


def test_find_peers_tells_each_hostname_as_find_peer_does():
    status = {
        "Peer": {
            "old": {
                "HostName": "oce-x",
                "TailscaleIPs": ["100.64.0.3"],
                "Online": False,
                "LastSeen": "2026-01-02",
                "Tags": TAG,
            },
            "new": {"HostName": "oce-x", "TailscaleIPs": ["fd7a::8", "100.64.0.8"], "Online": True, "Tags": TAG},
            "y": {"HostName": "oce-y", "TailscaleIPs": ["100.64.0.9"], "Online": False, "Tags": TAG},
            "anon": {"TailscaleIPs": ["100.64.0.10"]},
        }
    }
    found = tailnet.find_peers(status)
    assert sorted(found) == ["oce-x", "oce-y"]
    assert found == {name: tailnet.find_peer(status, name) for name in found}
    assert found["oce-x"]["address"] == "100.64.0.8" and found["oce-x"]["online"]
    assert tailnet.find_peers(None) == {} and tailnet.find_peers("") == {}


def test_the_inventory_logs_in_as_the_user_first_boot_creates():
    # The inventory reads fleet.SSH_USER so as not to load first_boot's dependencies.
    assert fleet_utils.SSH_USER == first_boot.SSH_USER


def test_the_plugin_loads_no_cloud_sdk_until_it_reads_a_cloud():
    # A cache hit, or an AWS-only inventory, must not pay for importing boto3 or google-auth.
    code = (
        "import sys\n"
        "from ansible.plugins.loader import init_plugin_loader\n"
        "init_plugin_loader([sys.argv[1]])\n"
        "from ansible_collections.ollama_cloud.engine.plugins.inventory import fleet\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'google.auth', 'requests') if m in sys.modules))\n"
    )
    collections = fleet.__file__.rpartition(os.sep + "ansible_collections" + os.sep)[0]
    out = subprocess.run([sys.executable, "-c", code, collections], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_the_regions_connects_share_one_session_and_read_ec2s_model_once(monkeypatch):
    # The inventory connects once per region, in parallel: one session for the credentials and
    # one read of EC2's service model for the process, so the regions' calls leave together.
    from botocore import loaders

    aws = fleet._aws()
    for name in ("_SESSIONS", "_LOADER", "_REGIONS"):
        monkeypatch.setattr(aws, name, type(getattr(aws, name))())
    for key, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(key, value)
    read = []
    real_load = loaders.JSONFileLoader.load_file

    def counting_load(self, file_path):
        read.append(file_path)
        return real_load(self, file_path)

    monkeypatch.setattr(loaders.JSONFileLoader, "load_file", counting_load)
    regions = ["us-east-1", "us-west-2", "eu-west-1"]

    def connect(region, **params):
        return aws.connect(dict(params, region=region, endpoint_url="http://127.0.0.1:9"), "ec2")

    with concurrent.futures.ThreadPoolExecutor(len(regions)) as pool:
        apis = list(pool.map(connect, regions))
    assert [(api.region, api.client.meta.region_name) for api in apis] == list(zip(regions, regions))
    assert len(aws._SESSIONS) == 1
    other = connect("us-east-1", access_key="other", secret_key="other")  # other credentials, another session
    assert len(aws._SESSIONS) == 2 and other.client.meta.region_name == "us-east-1"
    ec2_models = [p for p in read if os.sep + "ec2" + os.sep in p and p.endswith("service-2")]
    assert len(ec2_models) == 1, ec2_models


class Told:
    def __init__(self):
        self.warnings = []

    def warning(self, msg):
        self.warnings.append(msg)


@pytest.mark.parametrize(
    "cli, states, found, warned",
    [
        ([sys.executable, "-c", "import json; print(json.dumps(%r))" % STATUS], ["running"], ["oce-x", "other"], None),
        ([sys.executable, "-c", "import sys; sys.exit('not logged in')"], ["running"], [], "not logged in"),
        (["/nonexistent/tailscale"], ["running", "stopped"], [], "nodes get their tailnet hostnames"),
        (["/nonexistent/tailscale"], ["stopped"], [], None),  # no node runs: nothing asked, nothing told
        ([], ["running"], [], None),  # the lookup switched off
    ],
    ids=["answers", "fails", "missing", "not needed", "off"],
)
def test_the_tailnet_is_asked_once_and_told_only_when_a_node_runs(cli, states, found, warned):
    plugin = fleet.InventoryModule()
    plugin.get_option = {"tailnet_cli": cli}.get
    plugin.display = Told()
    nodes = [{"state": state} for state in states]
    assert sorted(plugin._peers(nodes)) == found
    assert len(plugin.display.warnings) == bool(warned)
    if warned:
        assert warned in plugin.display.warnings[0] and "status failed" in plugin.display.warnings[0]
    # An answer asked beside the clouds is used as it is, and dropped when no node runs.
    asked = plugin._ask_tailnet()
    plugin.display = Told()
    assert plugin._peers(nodes, asked) == plugin._peers(nodes) and len(plugin.display.warnings) == 2 * bool(warned)
    assert plugin._peers([{"state": "stopped"}], asked) == {}


def populated(nodes, status, states=()):
    """The host variables of ``nodes`` (node records in the plugin's order) listed for O(states), and
    the warnings told."""
    plugin = fleet.InventoryModule()
    plugin.inventory = InventoryData()
    plugin.get_option = {"ssh_private_key_file": "/k", "ssh_proxy_command": "", "states": list(states)}.get
    plugin.display = Told()
    listed = plugin._in_states(nodes)
    plugin._populate(nodes, listed, tailnet.find_peers(status))
    return {name: host.vars for name, host in plugin.inventory.hosts.items()}, plugin.display.warnings


def demo_node(region, state, node_id):
    """Deployment demo's node oce-demo (tailnet name oce-demo) in ``region``."""
    labels = {"oce-deployment": "demo", "oce-managed-by": "ollama_cloud.engine"}
    return fleet_utils.node_record("aws", "oce-demo", state, labels, region=region, node_id=node_id)


DEMO_ONLINE = {"Peer": {"k": {"HostName": "oce-demo", "TailscaleIPs": ["100.64.0.50"], "Online": True, "Tags": TAG}}}


def test_a_stopped_node_does_not_take_the_address_of_a_running_one_of_the_same_name():
    # Deployment demo stopped in us-east-1 and running in eu-west-1: the tailnet's oce-demo is the running one.
    running, stopped = demo_node("eu-west-1", "running", "i-0bbb"), demo_node("us-east-1", "stopped", "i-0aaa")
    hosts, warnings = populated([running, stopped], DEMO_ONLINE)
    assert (hosts["oce-demo"]["ansible_host"], hosts["oce-demo"]["oce_tailnet_online"]) == ("100.64.0.50", True)
    other = hosts["oce-demo-i-0aaa"]
    # Not its name either, which MagicDNS would resolve to the running one: a name no resolver answers.
    assert (other["ansible_host"], other["ollama_url"], other["oce_tailnet_online"]) == (
        "oce-demo.stopped.invalid",
        "",
        False,
    )
    assert warnings == []


@pytest.mark.parametrize(
    "states, listed",
    [
        ([], {"oce-demo": "100.64.0.50", "oce-demo-i-0aaa": "oce-demo.stopped.invalid"}),
        (["running"], {"oce-demo": "100.64.0.50"}),
        (["stopped", "pending"], {"oce-demo-i-0aaa": "oce-demo.stopped.invalid"}),
        (["stopping"], {}),
    ],
    ids=["every state", "running", "stopped or pending", "none in it"],
)
def test_states_lists_only_the_nodes_in_them_under_the_names_they_have_without(states, listed):
    # The stopped node keeps the name it has in the whole fleet (its host_vars, --limit), though
    # the running one of the same name is left out.
    nodes = [demo_node("eu-west-1", "running", "i-0bbb"), demo_node("us-east-1", "stopped", "i-0aaa")]
    hosts = populated(nodes, DEMO_ONLINE, states)[0]
    assert {name: host["ansible_host"] for name, host in hosts.items()} == listed


def test_running_nodes_of_one_tailnet_name_take_no_address_and_are_told():
    nodes = [demo_node("eu-west-1", "running", "i-0bbb"), demo_node("us-east-1", "running", "i-0aaa")]
    hosts, warnings = populated(nodes, DEMO_ONLINE)
    assert [h["ansible_host"] for h in hosts.values()] == ["oce-demo.ambiguous.invalid"] * 2
    assert [h["ollama_url"] for h in hosts.values()] == ["", ""]
    assert not any(h["oce_tailnet_online"] for h in hosts.values())
    (warning,) = warnings
    assert "share the tailnet name oce-demo (aws eu-west-1 i-0bbb, aws us-east-1 i-0aaa)" in warning


def test_a_tailnet_answer_that_is_not_json_is_told_and_the_nodes_keep_their_names():
    plugin = fleet.InventoryModule()
    plugin.get_option = {"tailnet_cli": [sys.executable, "-c", "print('<html>captive portal</html>')"]}.get
    plugin.display = Told()
    assert plugin._peers([{"state": "running"}]) == {}
    assert plugin.display.warnings == [
        "fleet inventory: tailscale status --json did not answer JSON: nodes get their tailnet hostnames"
    ]


# A DescribeInstances answer as EC2 writes it, with what could mislead a reader: addresses,
# subnets and tags of interfaces and volumes under the instance, an instance without a public
# address or tags, a tag without a value, escaped characters, and a page token.
DESCRIBE_INSTANCES = b"""<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
  <reservationSet>
    <item>
      <reservationId>r-1</reservationId>
      <ownerId>123456789012</ownerId>
      <groupSet/>
      <instancesSet>
        <item>
          <instanceId>i-0a1</instanceId>
          <imageId>ami-0abc</imageId>
          <instanceState><code>16</code><name>running</name></instanceState>
          <privateDnsName>ip-10-0-1-5.ec2.internal</privateDnsName>
          <instanceType>g6e.xlarge</instanceType>
          <launchTime>2026-11-30T08:15:02.000Z</launchTime>
          <placement><availabilityZone>us-east-1b</availabilityZone><groupName/><tenancy>default</tenancy></placement>
          <subnetId>subnet-0aa</subnetId>
          <vpcId>vpc-1</vpcId>
          <privateIpAddress>10.0.1.5</privateIpAddress>
          <ipAddress>54.1.2.3</ipAddress>
          <blockDeviceMapping>
            <item><deviceName>/dev/sda1</deviceName><ebs><volumeId>vol-1</volumeId><status>attached</status></ebs></item>
          </blockDeviceMapping>
          <networkInterfaceSet>
            <item>
              <networkInterfaceId>eni-1</networkInterfaceId>
              <subnetId>subnet-0ff</subnetId>
              <privateIpAddress>10.0.9.9</privateIpAddress>
              <association><publicIp>54.9.9.9</publicIp></association>
              <privateIpAddressesSet>
                <item><privateIpAddress>10.0.9.9</privateIpAddress><primary>true</primary></item>
              </privateIpAddressesSet>
              <tagSet><item><key>Name</key><value>not-the-instance</value></item></tagSet>
            </item>
          </networkInterfaceSet>
          <tagSet>
            <item><key>Name</key><value>oce-x-gpu-1</value></item>
            <item><key>oce-deployment</key><value>x</value></item>
            <item><key>oce-managed-by</key><value>ollama_cloud.engine</value></item>
            <item><key>oce-model</key><value>mistral:7b</value></item>
            <item><key>team</key><value>R&amp;D &lt;ml&gt;</value></item>
            <item><key>empty</key><value/></item>
          </tagSet>
        </item>
        <item>
          <instanceId>i-0a2</instanceId>
          <imageId>ami-0abc</imageId>
          <instanceState><code>80</code><name>stopped</name></instanceState>
          <instanceType>g5.xlarge</instanceType>
          <launchTime>2026-11-29T23:59:59Z</launchTime>
          <placement><availabilityZone>us-east-1a</availabilityZone></placement>
          <subnetId>subnet-0bb</subnetId>
          <privateIpAddress>10.0.2.7</privateIpAddress>
        </item>
      </instancesSet>
    </item>
    <item>
      <reservationId>r-2</reservationId>
      <instancesSet>
        <item>
          <instanceId>i-0b1</instanceId>
          <instanceState><code>0</code><name>pending</name></instanceState>
          <instanceType>g4dn.xlarge</instanceType>
          <launchTime>2026-12-01T10:00:00.000Z</launchTime>
          <placement><availabilityZone>eu-west-1c</availabilityZone></placement>
          <tagSet><item><key>Name</key><value>oce-y-1</value></item></tagSet>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
  <nextToken>eyJ2IjoyfQ==</nextToken>
</DescribeInstancesResponse>
"""


def ec2_parse(body, reader=None):
    """What botocore's client returns for a DescribeInstances answer, with ``reader`` as its before-parse handler."""
    import botocore.parsers
    import botocore.session

    operation = botocore.session.get_session().get_service_model("ec2").operation_model("DescribeInstances")
    response = {"body": body, "headers": {}, "status_code": 200}
    customized = {}
    if reader:
        reader(response_dict=response, customized_response_dict=customized, operation_model=operation)
    parsed = botocore.parsers.create_parser("ec2").parse(response, operation.output_shape)
    parsed.update(customized)
    return parsed


def test_the_describe_instances_reader_gives_the_node_records_botocores_parser_gives(monkeypatch):
    # The node records, not just the fields: whatever instance_node reads, both readers give alike.
    monkeypatch.setattr(fleet_utils.time, "time", lambda: 1796169600.0)  # 2026-12-01T10:40:00Z
    aws = fleet._aws()
    full, lean = ec2_parse(DESCRIBE_INSTANCES), ec2_parse(DESCRIBE_INSTANCES, fleet.read_describe_instances)

    def records(parsed):
        return [aws.priced_node(i, "us-east-1") for r in parsed["Reservations"] for i in r["Instances"]]

    assert records(lean) == records(full)
    first = records(lean)[0]
    assert (first["private_ip"], first["public_ip"], first["subnet_id"]) == ("10.0.1.5", "54.1.2.3", "subnet-0aa")
    assert first["labels"]["team"] == "R&D <ml>" and first["labels"]["empty"] == ""
    assert first["uptime_seconds"] == 1796169600 - 1796026502
    assert [len(r["Instances"]) for r in lean["Reservations"]] == [2, 1]
    # What is left to botocore's parser: the page token and the request id, as it gives them.
    assert lean["NextToken"] == full["NextToken"] == "eyJ2IjoyfQ=="
    assert lean["ResponseMetadata"] == full["ResponseMetadata"]


@pytest.mark.parametrize(
    "body, status",
    [
        (b"not xml at all", 200),
        (DESCRIBE_INSTANCES.replace(b"2026-11-29T23:59:59Z", b"yesterday"), 200),
        (DESCRIBE_INSTANCES.replace(b"<launchTime>2026-12-01T10:00:00.000Z</launchTime>", b"<launchTime/>"), 200),
        (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>", 503),
    ],
    ids=["not xml", "a time it cannot read", "an empty time", "an error"],
)
def test_an_answer_the_reader_cannot_read_is_left_whole_to_botocore(body, status):
    response = {"body": body, "headers": {}, "status_code": status}
    customized = {}
    fleet.read_describe_instances(response_dict=response, customized_response_dict=customized)
    assert response == {"body": body, "headers": {}, "status_code": status} and customized == {}


def test_lean_reads_describe_instances_of_its_own_client_only(monkeypatch):
    aws = fleet._aws()
    for key, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_CONFIG_FILE": os.devnull}.items():
        monkeypatch.setenv(key, value)

    def connect():
        return aws.connect({"region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"}, "ec2")

    leaned, other = fleet.lean(connect()), connect()
    fleet.lean(leaned)  # twice: still one handler

    def emit(api):
        response = {"body": DESCRIBE_INSTANCES, "headers": {}, "status_code": 200}
        customized = {}
        api.client.meta.events.emit(
            "before-parse.ec2.DescribeInstances", response_dict=response, customized_response_dict=customized
        )
        return response["body"], customized

    body, customized = emit(leaned)
    assert [len(r["Instances"]) for r in customized["Reservations"]] == [2, 1]
    assert b"reservationSet" not in body and b"nextToken" in body
    assert emit(other) == (DESCRIBE_INSTANCES, {})


def test_a_cache_of_records_of_another_shape_is_a_miss(monkeypatch):
    # Records cached before labels were the user's own (or after a later change of shape) are
    # not read as if they were of this version: the shape is part of the cache key.
    plugin = fleet.InventoryModule()
    options = {"clouds": ["aws"], "regions": ["us-east-1"], "deployment": "", "endpoint_url": None, "profile": None}
    plugin.get_option = plugin._option = options.get
    key = plugin._cache_key("/inv/prod.fleet.yml")
    assert key == plugin._cache_key("/inv/prod.fleet.yml")
    monkeypatch.setattr(fleet, "RECORDS", fleet.RECORDS + 1)
    assert plugin._cache_key("/inv/prod.fleet.yml") != key


@pytest.mark.parametrize(
    "options, who, other",
    [
        # aws-vault or a CI job: the same file with another account's keys in the environment.
        ({"clouds": ["aws"], "regions": ["us-east-1"]}, "access_key", "AKIASECONDACCOUNT"),
        ({"clouds": ["gcp"], "projects": ["p"]}, "gcp_impersonate_service_account", "b@p.iam.gserviceaccount.com"),
    ],
    ids=["another account's keys", "another impersonated account"],
)
def test_other_credentials_are_a_cache_miss(options, who, other):
    plugin = fleet.InventoryModule()
    options = dict(options, **{who: "AKIAFIRSTACCOUNT" if who == "access_key" else "a@p.iam.gserviceaccount.com"})
    plugin.get_option = plugin._option = options.get
    key = plugin._cache_key("/inv/prod.fleet.yml")
    options[who] = other
    assert plugin._cache_key("/inv/prod.fleet.yml") != key
    assert "AKIA" not in key and "iam.gserviceaccount" not in key


@pytest.mark.parametrize(
    "value",
    [
        "{{ lookup('pipe', 'id') }}",
        "{% if true %}x{% endif %}",
        "{# a comment #}",
        "#jinja2:variable_start_string:'[['\n[[ 7 * 7 ]]",
        "-o ProxyCommand=ssh -W %h:%p bastion",
        "a}",
    ],
)
def test_a_string_that_could_hold_a_template_stays_untrusted(value):
    trusted = fleet._Trusted()({"oce_node": {"labels": {"note": value}}, "ansible_ssh_common_args": value})
    note = trusted["oce_node"]["labels"]["note"]
    assert note == value and not is_trusted_as_template(note)
    assert not is_trusted_as_template(trusted["ansible_ssh_common_args"])


def test_strings_no_template_can_be_made_of_are_trusted_once_and_the_rest_kept():
    trust = fleet._Trusted()
    node = {
        "cloud": "aws",
        "name": "oce-alpha-node-1",
        "model": "codellama:34b-code",
        "ollama_url": "http://100.64.0.11:11434",
        "ssh": "-o UserKnownHostsFile=~/.ssh/oce_known_hosts_alpha -o ConnectTimeout=20",
        "labels": {"team": "ml ops", "owner": "ana@example.com", "kind": "ÿnicode_ok"},
        "gpu_count": 1,
        "hourly_cost": 1.006,
        "api_url": None,
        "zones": ["us-east-1a"],
    }
    first, second = trust(node), trust(dict(node))
    strings = [v for v in first.values() if isinstance(v, str)] + list(first["labels"].values()) + first["zones"]
    assert all(is_trusted_as_template(v) for v in strings) and first == node
    assert (first["gpu_count"], first["hourly_cost"], first["api_url"]) == (1, 1.006, None)
    assert second["model"] is first["model"]  # a value seen before is not trusted again
    assert all(not is_trusted_as_template(v) for v in node.values() if isinstance(v, str))  # the record is not changed
    # A string tagged already (an option's value) is left as it is, tags and all.
    option = trust_as_template("/root/.ssh/oce_ed25519")
    assert trust({"key": option})["key"] is option


def test_the_gcp_options_fall_back_to_the_gcp_modules_environment_variables_in_their_order():
    options = yaml.safe_load(fleet.DOCUMENTATION)["options"]
    for option, module_option in {
        "gcp_endpoint": "endpoint",
        "gcp_auth_kind": "auth_kind",
        "gcp_service_account_file": "service_account_file",
        "gcp_impersonate_service_account": "impersonate_service_account",
    }.items():
        # Of the variables set, Ansible's configuration takes the last one listed, env_fallback the first.
        listed = [env["name"] for env in options[option]["env"]]
        assert listed[::-1] == fleet_utils.GCP_ENV[module_option], option
    # The projects' fallback is the plugin's own (a list option): its description names the variables.
    assert re.findall(r"E\((\w+)\)", " ".join(options["projects"]["description"])) == fleet_utils.GCP_ENV["project"]


@pytest.mark.parametrize(
    "env, regions",
    [
        ({"AWS_DEFAULT_REGION": "eu-west-1"}, ["eu-west-1"]),
        ({}, None),
        # As the modules' env_fallback: the first variable set is taken, though empty.
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "eu-west-1"}, None),
    ],
)
def test_regions_that_are_all_empty_fall_back_to_the_environment(monkeypatch, env, regions):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    plugin = fleet.InventoryModule()
    plugin.get_option = {"regions": ["", ""]}.get
    plugin._template = lambda value: value  # no templar: the values are what the templates rendered
    if regions:
        assert plugin._regions() == regions
    else:
        with pytest.raises(AnsibleParserError, match="has no region: set regions in the inventory file"):
            plugin._regions()


def test_the_region_that_fails_is_named(monkeypatch):
    plugin = fleet.InventoryModule()
    options = {"clouds": ["aws"], "regions": ["us-east-1", "eu-west-1"], "page_size": 1000, "deployment": ""}
    plugin.get_option = plugin._option = options.get
    monkeypatch.setattr(fleet._aws(), "connect", lambda params, service: params["region"])
    monkeypatch.setattr(fleet, "lean", lambda region: region)

    def find_nodes(region, deployment, page_size):
        if region == "eu-west-1":
            raise cloud.CloudError("describe instances failed: AWS rejected the credentials")
        return []

    monkeypatch.setattr(fleet, "find_nodes", find_nodes)
    with pytest.raises(AnsibleParserError) as failed:
        plugin._fetch()
    said = "fleet inventory: aws eu-west-1: describe instances failed: AWS rejected the credentials"
    assert str(failed.value) == said
