"""verify_file and the record shape of the fleet inventory plugin (no cloud needed)."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys

import pytest

from ansible_collections.ollama_cloud.engine.plugins.inventory import fleet
from ansible_collections.ollama_cloud.engine.plugins.module_utils import first_boot, tailnet
from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet as fleet_utils


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
        ],
    }
    api = FakeApi([{"Reservations": [{"Instances": [instance]}]}])
    (node,) = fleet.find_nodes(api, deployment="x", page_size=500)
    assert (node["gpu"], node["gpu_count"], node["gpu_memory_gb"]) == ("L40S", 1, 48)
    assert node["tailnet_hostname"] == "oce-x" and node["hourly_cost"] == 1.861
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
    labels = {"oce-deployment": "x", "oce-managed-by": "ollama_cloud-engine", "oce-model": "mistral-7b"}
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
    ((resource, params),) = api.calls
    assert resource == "instances"
    assert '(labels.oce-deployment = "x")' in params["filter"]
    assert '(labels.oce-managed-by = "ollama_cloud-engine")' in params["filter"]


STATUS = {
    "BackendState": "Running",
    "Peer": {
        "k1": {"HostName": "oce-x", "TailscaleIPs": ["100.64.0.7", "fd7a::7"], "Online": True, "DNSName": "oce-x.t."},
        "k2": {"HostName": "other", "TailscaleIPs": ["100.64.0.9"], "Online": True},
    },
}


@pytest.mark.parametrize(
    "status, host, online",
    [(STATUS, "100.64.0.7", True), (None, "oce-x", False), ({"Peer": {}}, "oce-x", False)],
)
def test_nodes_are_reached_over_the_tailnet_only(status, host, online):
    plugin = fleet.InventoryModule()
    plugin.get_option = {"ssh_proxy_command": "tailscale nc %h %p", "ssh_private_key_file": "/k"}.get
    node = {"name": "oce-x", "deployment": "x", "tailnet_hostname": "oce-x", "private_ip": "10.0.1.5"}
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
            "old": {"HostName": "oce-x", "TailscaleIPs": ["100.64.0.3"], "Online": False, "LastSeen": "2026-01-02"},
            "new": {"HostName": "oce-x", "TailscaleIPs": ["fd7a::8", "100.64.0.8"], "Online": True},
            "y": {"HostName": "oce-y", "TailscaleIPs": ["100.64.0.9"], "Online": False},
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
