"""local_node's podman command and its capability handling (the live lifecycle is in
tests/functional/test_local_node_live.py)."""

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
