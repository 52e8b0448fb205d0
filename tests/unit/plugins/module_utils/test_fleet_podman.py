"""Labels, node records and podman's inspect output mapped onto them."""

import time

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet
from ansible_collections.ollama_cloud.engine.plugins.module_utils.podman import _epoch, container_node


@pytest.mark.parametrize("name", ["demo", "prod-eu-1", "a" * 40])
def test_valid_deployments(name):
    assert fleet.validate_deployment(name) is None


@pytest.mark.parametrize("name", ["", "Demo", "1st", "has_underscore", "a" * 41])
def test_invalid_deployments_say_why(name):
    assert "is not valid" in fleet.validate_deployment(name)


def test_labels_mark_ownership():
    labels = fleet.deployment_labels("demo", "gemma3:270m", "dev")
    assert fleet.is_ours(labels, "demo") and not fleet.is_ours(labels, "other")
    assert not fleet.is_ours({"oce-deployment": "demo"}, "demo")  # not created by us


def test_epoch_parses_podman_timestamps():
    assert _epoch("2026-11-22 11:53:38.410233641 +0000 UTC") == 1795348418
    assert _epoch("2026-11-22 12:53:38.4 +0100 CET") == 1795348418
    assert _epoch("0001-01-01 00:00:00 +0000 UTC") is None


def test_container_node_record():
    started = time.strftime("%Y-%m-%d %H:%M:%S.000000000 +0000 UTC", time.gmtime(time.time() - 90))
    info = {
        "Name": "oce-demo",
        "Id": "3f2a9c0d11aa55",
        "ImageName": "localhost/oce-node:bookworm",
        "State": {"Status": "running", "StartedAt": started},
        "Config": {"Labels": fleet.deployment_labels("demo", "gemma3:270m", "dev")},
        "NetworkSettings": {
            "Networks": {"oce-rig": {"IPAddress": "10.89.42.7", "Gateway": "10.89.42.1"}},
            "Ports": {"11434/tcp": [{"HostIp": "127.0.0.1", "HostPort": "11434"}]},
        },
    }
    node = container_node(info)
    assert node["state"] == "running" and node["cloud"] == "local" and node["id"] == "3f2a9c0d11aa"
    assert node["model"] == "gemma3:270m" and node["environment"] == "dev"
    assert node["private_ip"] == "10.89.42.7" and node["api_url"] == "http://127.0.0.1:11434"
    assert node["gateway"] == "10.89.42.1" and node["image"] == "localhost/oce-node:bookworm"
    assert 85 <= node["uptime_seconds"] <= 100
    info["State"]["Status"] = "exited"
    assert container_node(info)["state"] == "stopped" and container_node(info)["uptime_seconds"] == 0
