"""site.yml and the lifecycle playbooks end to end on the local target, as a user runs them.

One deployment of its own (its own node and port): create -> site.yml (real answer) -> rerun
(0 changed) -> --check (0 changed) -> stop -> status -> start -> destroy.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
import uuid

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

pytestmark = pytest.mark.skipif(
    not os.environ.get("OCE_RIG_VARS"), reason="needs the rig (mirrors, image, registry): run through rig/test"
)


FIND_NODES = "TASK [ollama_cloud.engine.node : Find the deployment's local nodes]"
APPLY = "TASK [ollama_cloud.engine.node : Apply the action to the local node]"


def ran(out, task):
    """How many times the task ran for a host: its header followed by ok or changed, not skipping."""
    results = ("ok:", "changed:", "skipping:", "fatal:", "failed:")
    lines = [line for line in out.splitlines() if line.startswith(results) or line.startswith("TASK [")]
    follows = [lines[i + 1] for i, line in enumerate(lines[:-1]) if line.startswith(task)]
    return sum(1 for line in follows if line.startswith(("ok:", "changed:")))


def recap(out):
    """Sum of changed= and failed= over the PLAY RECAP lines."""
    changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", out))
    failed = sum(int(n) for n in re.findall(r"\bfailed=(\d+)", out))
    return changed, failed


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def play():
    deployment = "e2e" + uuid.uuid4().hex[:6]
    port = free_port()  # not a fixed one: other deployments of this machine publish theirs
    base = [
        "-e",
        "cloud=local",
        "-e",
        "deployment=" + deployment,
        "-e",
        "node_local_api_port=%d" % port,
        "-e",
        "@" + os.environ["OCE_RIG_VARS"],
    ]

    def run(playbook, *extra, ok=True):
        cmd = ["ansible-playbook", playbook, *base, *extra]
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default")
        res = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
        if ok:
            assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        return res.stdout

    run.deployment = deployment
    run.port = port
    run.node = "oce-" + deployment
    yield run
    run("playbooks/destroy.yml", ok=False)


def api_version(port, attempts=30):
    """Ollama's version through the port podman publishes on this machine (so through the firewall)."""
    for _dummy in range(attempts):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/version", timeout=5) as r:
                return json.loads(r.read())["version"]
        except OSError:
            time.sleep(1)
    return None


def reaches(address, port, timeout=3):
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def serves_inside(node, port):
    """The node answers on its own loopback (so a refusal from outside is the firewall's)."""
    url = f"http://127.0.0.1:{port}/"
    for _dummy in range(20):
        if podman("exec", node, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "200":
            return True
        time.sleep(0.5)
    return False


def podman(*args):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)


def status_line(play):
    out = play("playbooks/status.yml")
    row = re.compile(r"^[\s'-]*%s\s+local\s" % re.escape(play.node))
    return next((line for line in out.splitlines() if row.match(line)), "")


def test_check_mode_creates_nothing(play):
    out = play("playbooks/create.yml", "--check")
    assert recap(out) == (1, 0)  # would create the node
    assert play.node not in status_line(play)


def test_site_answers_then_converges_to_zero_changes(play):
    first = play("site.yml", "-e", "model=gemma3:270m")
    # The local inventory's prompt ends "The sky is blue because"; the model completes it.
    answer = re.search(r"The sky is blue because(.*)", first)
    assert answer and len(answer.group(1).split()) >= 3, first[-3000:]
    assert "running" in status_line(play)

    # The node is hardened: its firewall lets this machine in through the published port only.
    assert api_version(play.port)
    ruleset = podman("exec", play.node, "nft", "list", "table", "inet", "oce_filter").stdout
    assert "policy drop" in ruleset and "dport 11434" in ruleset, ruleset
    inspect = ["inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", play.node]
    address = podman(*inspect).stdout.strip()
    assert reaches(address, 11434)  # what the published port forwards to
    podman("exec", "-d", play.node, "python3", "-m", "http.server", "8099")
    assert serves_inside(play.node, 8099)
    assert not reaches(address, 8099)  # anything else is dropped

    second = play("site.yml", "-e", "model=gemma3:270m")
    assert recap(second) == (0, 0), second[-3000:]
    # The node's own module returns the deployment's records (no lookup before or after it), and
    # configure.yml takes the node create.yml has just found: one podman module call in all.
    assert (ran(second, FIND_NODES), ran(second, APPLY)) == (0, 1), second[-3000:]
    # A local node has no tailnet key, no NVIDIA driver and no cloud monitoring: each of those
    # roles is one skipped include, none of its tasks is even listed.
    for role in ("tailscale", "nvidia_driver", "monitoring_agent"):
        assert "ollama_cloud.engine.%s :" % role not in second, role
    check = play("site.yml", "-e", "model=gemma3:270m", "--check")
    assert recap(check) == (0, 0), check[-3000:]
    # configure.yml alone finds the node itself.
    alone = play("playbooks/configure.yml", "-e", "model=gemma3:270m")
    assert recap(alone) == (0, 0), alone[-3000:]
    assert (ran(alone, FIND_NODES), ran(alone, APPLY)) == (1, 0), alone[-3000:]
    # So does ask.yml, and it asks the node for an answer.
    asked = play("playbooks/ask.yml")
    answer = re.search(r"The sky is blue because(.*)", asked)
    assert answer and len(answer.group(1).split()) >= 3, asked[-3000:]
    assert recap(asked) == (0, 0) and ran(asked, FIND_NODES) == 1, asked[-3000:]


def test_stop_start_destroy(play):
    assert recap(play("playbooks/stop.yml"))[0] == 1
    line = status_line(play)
    assert "stopped" in line and "gemma3:270m" in line
    assert recap(play("playbooks/stop.yml"))[0] == 0
    assert recap(play("playbooks/start.yml"))[0] == 1
    assert "running" in status_line(play)
    assert api_version(play.port)  # the firewall is back after the boot, and lets the published port in
    assert "oce_filter" in podman("exec", play.node, "nft", "list", "tables").stdout
    assert recap(play("playbooks/destroy.yml"))[0] == 1
    assert status_line(play) == ""


def test_start_of_a_missing_node_says_what_to_do(play):
    out = play("playbooks/start.yml", "-e", "deployment=nosuch" + play.deployment, ok=False)
    assert "run playbooks/create.yml first" in out
    out = play("playbooks/ask.yml", "-e", "deployment=nosuch" + play.deployment, ok=False)
    assert "has no running node on cloud=local: create one" in " ".join(out.split())


def test_unknown_cloud_stops_before_creating(play):
    out = play("site.yml", "-e", "cloud=azure", ok=False)
    assert "value of node_cloud must be one of: local, aws, gcp, got: azure" in out
    assert recap(out)[0] == 0
    # This inventory's settings (its model, its environment) must not reach a cloud node.
    out = play("site.yml", "-e", "cloud=aws", ok=False)
    assert "cloud=aws with the inventory of cloud=local, whose settings would apply" in " ".join(out.split())
    assert "run with -i inventories/aws." in " ".join(out.split()) and recap(out)[0] == 0
