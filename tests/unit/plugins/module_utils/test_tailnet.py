"""Finding a node on the tailnet from the controller's tailscale status."""

from __future__ import annotations

import json

from ansible_collections.ollama_cloud.engine.plugins.filter.tailnet_peer import tailnet_peer
from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet, tailnet


def peer(name, ip, online, seen="2026-12-01T10:00:00Z"):
    return {
        "HostName": name,
        "TailscaleIPs": [ip, "fd7a:115c::1"],
        "Online": online,
        "LastSeen": seen,
        "Tags": ["tag:ollama"],
    }


def test_the_online_node_wins_over_a_stale_one_of_the_same_name():
    status = {
        "Peer": {
            "a": peer("oce-d", "100.64.0.1", False, "2026-12-01T12:00:00Z"),
            "b": peer("oce-d", "100.64.0.2", True),
        }
    }
    found = tailnet.find_peer(json.dumps(status), "oce-d")
    assert (found["address"], found["online"]) == ("100.64.0.2", True)


def test_a_device_without_a_tag_is_never_taken_for_a_node():
    """Anyone on the tailnet may name a device oce-d; only a tagged key makes a node."""
    impostor = dict(peer("oce-d", "100.64.0.9", True, "2026-12-01T12:00:00Z"), Tags=None)
    status = {"Peer": {"a": peer("oce-d", "100.64.0.2", False), "b": impostor}}
    assert tailnet.find_peer(status, "oce-d")["address"] == "100.64.0.2"
    assert tailnet.find_peers(status)["oce-d"]["address"] == "100.64.0.2"
    alone = {"Peer": {"b": impostor}}
    assert tailnet.find_peer(alone, "oce-d") is None and tailnet.find_peers(alone) == {}
    assert tailnet_peer("oce-d", alone)["online"] is False


def test_a_node_that_has_not_joined_is_reported_offline_without_an_address():
    assert tailnet.find_peer({"Peer": None}, "oce-d") is None
    assert tailnet_peer("oce-d", '{"BackendState": "Running"}') == {
        "hostname": "oce-d",
        "address": "",
        "dns_name": "",
        "online": False,
        "tags": [],
        "ollama_url": "",
    }


def test_the_filter_gives_the_ollama_url_on_the_tailnet():
    status = {"Peer": {"a": dict(peer("oce-d", "100.64.0.3", True), DNSName="oce-d.tail.", Tags=["tag:ollama"])}}
    got = tailnet_peer("oce-d", status, port=11500)
    assert got["ollama_url"] == "http://100.64.0.3:11500" and got["dns_name"] == "oce-d.tail"
    assert got["tags"] == ["tag:ollama"]
    assert tailnet.ollama_url("fd7a::1") == "http://[fd7a::1]:11434"


def test_tailnet_hostnames_carry_the_deployment_once():
    assert fleet.tailnet_hostname("demo", "oce-demo") == "oce-demo"
    assert fleet.tailnet_hostname("demo", "oce-demo-2") == "oce-demo-2"
    assert fleet.tailnet_hostname("demo", "gpu1") == "oce-demo-gpu1"
    assert (
        fleet.node_record("aws", "gpu1", "running", fleet.deployment_labels("demo"))["tailnet_hostname"]
        == "oce-demo-gpu1"
    )


def test_the_role_and_the_inventory_reach_a_node_with_the_same_ssh_arguments():
    status = {"Peer": {"a": peer("oce-d", "100.64.0.4", True)}}
    got = tailnet_peer("oce-d", status, 11434, "/k/known", "tailscale nc %h %p")
    assert got["ssh_common_args"] == tailnet.ssh_common_args("/k/known", "tailscale nc %h %p")
    assert got["ssh_common_args"] == (
        "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/k/known -o ConnectTimeout=20"
        " -o ServerAliveInterval=15 -o ServerAliveCountMax=4"
        ' -o ProxyCommand="tailscale nc %h %p"'
    )
    assert "ssh_common_args" not in tailnet_peer("oce-d", status)
