"""local_node's podman command and its capability handling (the live lifecycle is in
tests/functional/test_local_node_live.py)."""

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.module_utils import node_module, podman
from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import deployment_labels
from ansible_collections.ollama_cloud.engine.plugins.modules import local_node
from ansible_collections.ollama_cloud.engine.plugins.modules.local_node import (
    capability_names,
    capability_problems,
    missing_capabilities,
    run_args,
)

PARAMS = {
    "name": "oce-demo",
    "deployment": "demo",
    "model": "gemma3:270m",
    "environment": "dev",
    "image": "localhost/oce-node:bookworm",
    "network": "oce-rig",
    "extra_hosts": {"models.internal": "10.89.42.2"},
    "api_port": 11434,
    "capabilities": [],
}


def test_run_args_without_capabilities_add_none():
    args = run_args(PARAMS)
    assert "--cap-add" not in args
    assert args[-2:] == ["localhost/oce-node:bookworm", "/sbin/init"]
    assert args[args.index("-p") + 1] == "127.0.0.1:11434:11434"


def test_run_args_add_each_capability_once_before_the_image():
    args = run_args(dict(PARAMS, capabilities=["net_admin", "CAP_NET_ADMIN", "NET_RAW"]))
    pairs = [args[i + 1] for i, arg in enumerate(args) if arg == "--cap-add"]
    assert pairs == ["NET_ADMIN", "NET_RAW"]
    assert args.index("--cap-add") < args.index("localhost/oce-node:bookworm")


def test_capability_names_are_normalized():
    assert capability_names([" cap_net_admin ", "NET_ADMIN", "sys_time"]) == ["NET_ADMIN", "SYS_TIME"]
    assert capability_names(None) == []


def test_bad_capabilities_are_named():
    assert capability_problems(["NET_ADMIN"]) == []
    problems = capability_problems(["all", "net admin", "NET-ADMIN"])
    assert problems[0].startswith("capabilities: ALL would give the node the host's powers")
    assert "'NET ADMIN' is not a capability name" in problems[1]
    assert "'NET-ADMIN' is not a capability name" in problems[2]


def test_missing_capabilities_of_an_existing_container():
    info = {"HostConfig": {"CapAdd": ["CAP_NET_ADMIN"]}}
    assert missing_capabilities(info, ["net_admin"]) == []
    assert missing_capabilities(info, ["NET_ADMIN", "NET_RAW"]) == ["NET_RAW"]
    assert missing_capabilities({"HostConfig": {"CapAdd": None}}, ["NET_ADMIN"]) == ["NET_ADMIN"]
    assert missing_capabilities({}, []) == []


# ---------------------------------------------------------------- the module's run, on a fake podman


def container(name, deployment="demo", status="running"):
    return {
        "Name": name,
        "Id": (name.encode().hex() * 4)[:24],
        "State": {"Status": status},
        "Config": {"Labels": deployment_labels(deployment, "gemma3:270m", "dev")},
        "HostConfig": {"CapAdd": ["CAP_NET_ADMIN"]},
        "NetworkSettings": {"Networks": {"oce-rig": {"IPAddress": "10.89.42.7", "Gateway": "10.89.42.1"}}},
    }


class FakeModule:
    """What podman.Podman asks of AnsibleModule: run_command, answered from a dict of containers."""

    def __init__(self, containers):
        self.containers = containers
        self.calls = []

    def get_bin_path(self, name, required=False):
        return "/usr/bin/" + name

    def run_command(self, argv):
        args = argv[1:]
        self.calls.append(" ".join(args[:2]))
        if args[:2] == ["container", "inspect"]:
            found = [self.containers[n] for n in args[2:] if n in self.containers]
            return (0 if len(found) == len(args[2:]) else 125), json.dumps(found), ""
        if args[0] == "ps":
            label = args[args.index("--filter") + 1].split("=", 1)[1]
            key, value = label.split("=", 1)
            names = [n for n, c in self.containers.items() if c["Config"]["Labels"].get(key) == value]
            return 0, "\n".join(names), ""
        return 0, "", ""


def run_module(monkeypatch, capsys, fake, **args):
    monkeypatch.setattr(podman, "connect", lambda params, module: podman.Podman(fake, "podman"))
    with patch_module_args(dict(args, _ansible_check_mode=False)), pytest.raises(SystemExit):
        local_node.main()
    return json.loads(capsys.readouterr().out)


def test_a_node_as_asked_returns_its_deployments_records_without_a_change(monkeypatch, capsys):
    fake = FakeModule({n: container(n) for n in ("oce-demo", "oce-demo-2")})
    fake.containers["oce-other"] = container("oce-other", deployment="other")
    res = run_module(monkeypatch, capsys, fake, name="oce-demo", deployment="demo", capabilities=["NET_ADMIN"])
    assert res["changed"] is False and res["node"]["name"] == "oce-demo"
    # What local_node_info would return: the deployment's nodes only, sorted, with the node's record.
    assert [n["name"] for n in res["nodes"]] == ["oce-demo", "oce-demo-2"]
    assert res["nodes"][0] == dict(res["node"], api_url=None)  # no published port in the fake
    # The deployment's containers are read with one ps and one inspect.
    assert fake.calls.count("ps -a") == 1 and fake.calls[-2:] == ["ps -a", "container inspect"]


def test_a_removed_node_is_not_in_the_records(monkeypatch, capsys):
    fake = FakeModule({n: container(n) for n in ("oce-demo", "oce-demo-2")})
    removed = []
    real = fake.run_command

    def run_command(argv):
        if argv[1] == "rm":
            removed.append(argv[-1])
            del fake.containers[argv[-1]]
        return real(argv)

    fake.run_command = run_command
    res = run_module(monkeypatch, capsys, fake, name="oce-demo", deployment="demo", state="absent")
    assert res["changed"] is True and removed == ["oce-demo"]
    assert [n["name"] for n in res["nodes"]] == ["oce-demo-2"]


def test_a_container_podman_made_but_could_not_start_is_removed(monkeypatch, capsys):
    fake = FakeModule({})
    removed = []
    real = fake.run_command

    def run_command(argv):
        if argv[1] == "run":  # podman leaves the container "created"
            return 126, "", "Error: rootlessport listen tcp 127.0.0.1:11434: bind: address already in use"
        if argv[1] == "rm":
            removed.append(argv[-1])
        return real(argv)

    fake.run_command = run_command
    res = run_module(monkeypatch, capsys, fake, name="oce-demo", deployment="demo")
    assert res["failed"] is True and "address already in use" in res["msg"], res
    assert removed == ["oce-demo"]


def test_a_container_gone_between_ps_and_inspect_is_left_out():
    fake = FakeModule({"oce-demo": container("oce-demo")})
    real = fake.run_command

    def run_command(argv):
        rc, out, err = real(argv)
        if argv[1] == "ps":
            out += "\noce-gone"
        return rc, out, err

    fake.run_command = run_command
    nodes = node_module.records(podman.Podman(fake, "podman"), podman.find_nodes, podman.record, "demo")
    assert [n["name"] for n in nodes] == ["oce-demo"]
