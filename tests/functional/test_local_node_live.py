"""The local provider against real podman: lifecycle, idempotence, check mode, bad input.

Needs the rig (rig/setup): podman settings in CONTAINERS_CONF, the base image, the rig network.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from ansible_collections.ollama_cloud.engine.plugins.modules import local_node, local_node_info
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module

IMAGE = os.environ.get("OCE_BASE_IMAGE", "localhost/oce-node:bookworm")
NETWORK = os.environ.get("OCE_RIG_NETWORK", "oce-rig")

pytestmark = pytest.mark.skipif(
    not os.environ.get("CONTAINERS_CONF"), reason="needs the rig's podman settings: run through rig/test"
)


def podman(*args):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)


def exists(name):
    return podman("container", "exists", name).returncode == 0


def run(module, capsys, check_mode=False, **args):
    return run_module(module, capsys, check_mode=check_mode, **args)


@pytest.fixture
def node():
    """A unique node name and deployment; whatever the test leaves is removed."""
    suffix = uuid.uuid4().hex[:8]
    spec = {"name": "oce-test-%s" % suffix, "deployment": "t%s" % suffix}
    yield spec
    podman("rm", "-f", "-t", "0", spec["name"])


def test_lifecycle_is_idempotent(node, capsys):
    base = dict(node, image=IMAGE, network=NETWORK, api_port=0, model="gemma3:270m", environment="dev")

    planned = run(local_node, capsys, check_mode=True, **base)
    assert planned["changed"] is True and "run" in planned["command"] and not exists(node["name"])

    created = run(local_node, capsys, **base)
    assert created["changed"] is True, created
    record = created["node"]
    assert record["state"] == "running" and record["cloud"] == "local"
    assert record["deployment"] == node["deployment"] and record["model"] == "gemma3:270m"
    assert record["private_ip"].startswith("10.89.42.")
    assert podman("exec", node["name"], "systemctl", "is-system-running").stdout.strip() in ("running", "degraded")

    assert run(local_node, capsys, **base)["changed"] is False

    stopped = run(local_node, capsys, **dict(base, state="stopped"))
    assert stopped["changed"] is True and stopped["node"]["state"] == "stopped"
    assert run(local_node, capsys, **dict(base, state="stopped"))["changed"] is False

    listed = run(local_node_info, capsys, deployment=node["deployment"])["nodes"]
    assert [(n["name"], n["state"]) for n in listed] == [(node["name"], "stopped")]

    started = run(local_node, capsys, **dict(base, state="running"))
    assert started["changed"] is True and started["node"]["state"] == "running"

    assert run(local_node, capsys, check_mode=True, **dict(base, state="absent"))["changed"] is True
    assert exists(node["name"])
    assert run(local_node, capsys, **dict(base, state="absent"))["changed"] is True
    assert not exists(node["name"])
    assert run(local_node, capsys, **dict(base, state="absent"))["changed"] is False


def test_publishes_the_api_on_loopback_only(node, capsys):
    res = run(local_node, capsys, **dict(node, image=IMAGE, network=NETWORK, api_port=11497))
    assert res["node"]["api_url"] == "http://127.0.0.1:11497"
    ports = json.loads(podman("container", "inspect", node["name"]).stdout)[0]["NetworkSettings"]["Ports"]
    assert ports["11434/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "11497"}]


def test_capabilities_are_added_at_creation(node, capsys, monkeypatch):
    # Once any test in this process has imported controller code, ansible-core sends module
    # warnings to the display instead of the result: run the module as it runs on a node.
    monkeypatch.setattr("ansible.module_utils._internal.is_controller", False)
    base = dict(node, image=IMAGE, network=NETWORK, api_port=0)
    created = run(local_node, capsys, **dict(base, capabilities=["net_admin"]))
    assert created["changed"] is True and created["command"].count("--cap-add") == 1
    info = json.loads(podman("container", "inspect", node["name"]).stdout)[0]
    assert info["HostConfig"]["CapAdd"] == ["CAP_NET_ADMIN"]
    # Bit 12 of the effective set of a process in the node: CAP_NET_ADMIN.
    status = podman("exec", node["name"], "cat", "/proc/self/status").stdout
    cap_eff = int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)
    assert cap_eff & (1 << 12)
    # Asked again with one more: nothing is recreated, and the warning says how to get it.
    again = run(local_node, capsys, **dict(base, capabilities=["CAP_NET_ADMIN", "NET_RAW"]))
    assert again["changed"] is False
    # ansible-core 2.19 wraps each warning ({"event": {"msg": ...}}); older cores give the text.
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in again.get("warnings", [])]
    assert any("without the capabilities NET_RAW" in w for w in warnings), again


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"image": "localhost/no-such-image:1"}, "image localhost/no-such-image:1 does not exist"),
        ({"network": "no-such-network"}, "podman network no-such-network does not exist"),
        ({"deployment": "Bad_Name"}, "deployment 'Bad_Name' is not valid"),
        ({"api_port": 70000}, "api_port 70000 is not a TCP port"),
        ({"capabilities": ["ALL"]}, "capabilities: ALL would give the node the host's powers"),
        ({"capabilities": ["NET ADMIN"]}, "capabilities: 'NET ADMIN' is not a capability name"),
    ],
)
def test_bad_input_fails_before_creating(node, capsys, override, message):
    args = dict(node, image=IMAGE, network=NETWORK, api_port=0)
    args.update(override)
    res = run(local_node, capsys, **args)
    assert res["failed"] is True and message in res["msg"], res
    assert not exists(node["name"])


def test_never_touches_a_container_that_is_not_ours(node, capsys):
    assert podman("create", "--name", node["name"], IMAGE, "/bin/true").returncode == 0
    for state in ("running", "absent"):
        res = run(local_node, capsys, **dict(node, image=IMAGE, state=state))
        assert res["failed"] is True and "is not part of deployment" in res["msg"]
    assert exists(node["name"])
