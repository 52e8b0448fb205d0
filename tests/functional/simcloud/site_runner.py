"""The headline command on the simulated cloud, as a user on a tailnet-connected controller runs it.

The only differences from a real account are endpoints (moto, the emulator), the mirrors (the rig's
models.internal registry and artifact mirror) and how this controller reaches the tailnet (a
userspace tailscaled: its socket, `tailscale nc` for SSH, its HTTP proxy): all set here, from the
test side, through the collection's documented variables.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, ollama_api

from . import rig

REPO_ROOT = rig.REPO_ROOT
MODEL = "gemma3:270m"
# Where to keep every playbook run's output (one file per run), when set: profile_tasks'
# timings and the node's changes, to see where the time goes.
LOG_DIR = os.environ.get("OCE_SIMCLOUD_LOG_DIR")


def recap(out):
    """{host: (changed, failed, unreachable)} from the PLAY RECAP lines."""
    found = {}
    for host, changed, unreachable, failed in re.findall(
        r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", out, re.M
    ):
        found[host] = (int(changed), int(failed), int(unreachable))
    return found


def changed_tasks(out):
    """The tasks that reported a change, with the host: what a rerun that should be quiet did."""
    found, task = [], None
    for line in out.splitlines():
        if line.startswith("TASK ["):
            task = line.split("[", 1)[1].rsplit("]", 1)[0]
        elif line.startswith("changed: ["):
            found.append(f"{task}: {line}")
    return "\n".join(found) or "(none)"


def failed_tasks(out, context=12):
    """Each failed task's header and its first lines of output, then the recap: what a failed run's
    message leads with, since a log excerpt keeps its start (the tail is where the run stopped)."""
    lines, found, task = out.splitlines(), [], ""
    for i, line in enumerate(lines):
        if line.startswith("TASK ["):
            task = line
        elif line.startswith(("fatal: [", "failed: [")):
            found += [task, line]
            for more in lines[i + 1 : i + context]:
                if more.startswith(("TASK [", "PLAY ", "fatal: [", "failed: [")):
                    break
                found.append(more)
    recap_at = next((i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")), len(lines))
    return "\n".join(found + lines[recap_at : recap_at + 4]) or "(no failed task: see the output's end)"


def flat(out):
    return " ".join(out.split())


class SiteRunner:
    """ansible-playbook for one cloud and deployment, with the controller on the tailnet."""

    def __init__(self, cloud, deployment, env, controller, ssh_key, extra=()):
        self.cloud, self.deployment = cloud, deployment
        self.env = dict(os.environ, **env, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="false")
        self.env["CONTAINERS_CONF"] = rig.CONTAINERS_CONF
        if LOG_DIR:  # the kept logs end with every task's time, slowest first
            self.env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
            self.env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "400"
        self.extra = {
            "cloud": cloud,
            "deployment": deployment,
            "model": MODEL,
            "node_ssh_key_file": ssh_key,
            "node_ssh_known_hosts_file": ssh_key + ".known_hosts",
            # This controller's tailscaled runs in userspace mode.
            "node_tailnet_cli": [controller.tailscale, f"--socket={controller.socket}"],
            "node_tailnet_ssh_proxy_command": controller.proxy_command,
            "node_tailnet_http_proxy": controller.http_proxy,
            "node_tailnet_join_timeout": 300,
            # The internal artifact mirror, over HTTP as a node downloads it; a real TUN device.
            "node_tailscale_download_url": rig.TAILSCALE_URL,
            "tailscale_userspace_networking": False,
            # No CloudWatch agent or Ops Agent package offline: their configuration is still applied.
            "monitoring_agent_install": False,
        }
        if cloud == "aws":  # the bodies reach moto's Secrets Manager where the controller does
            self.extra["node_aws_secret_endpoint"] = env["AWS_ENDPOINT_URL"]
        self.extra.update(extra)
        self.runs = 0

    def command(self, playbook, *args):
        cmd = ["ansible-playbook", "-i", f"inventories/{self.cloud}", playbook, "-e", "@" + rig.RIG_VARS]
        return cmd + ["-e", json.dumps(self.extra), *args]

    def run(self, playbook, *args, ok=True, timeout=1200):
        started = time.monotonic()
        self.runs += 1
        with contextlib.ExitStack() as stack:
            # With a log directory the output goes there as the run goes (tail -f it).
            log = None
            if LOG_DIR:
                name = f"{self.deployment}-{self.runs:02d}-{os.path.basename(playbook).removesuffix('.yml')}.log"
                log = stack.enter_context(open(os.path.join(LOG_DIR, name), "w+"))
            proc = subprocess.run(
                self.command(playbook, *args),
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log or subprocess.PIPE,
                stderr=subprocess.STDOUT if log else subprocess.PIPE,
                text=True,
                timeout=timeout,
                check=False,
            )
            if log:
                log.seek(0)
                out = log.read()
            else:
                out = proc.stdout + proc.stderr
        if ok:
            assert proc.returncode == 0, f"{playbook} failed:\n{failed_tasks(out)}\n\nThe output's end:\n{out[-6000:]}"
        return out, time.monotonic() - started


def on_tailnet(controller, url, timeout=30):
    """An Ollama client from this controller over the tailnet (tailscaled's HTTP proxy), as a user's."""
    return ollama_api.OllamaClient(url, timeout=timeout, proxy=controller.http_proxy)


def generate(controller, url, timeout=300, settle=90):
    """One completion over the tailnet, sent again while it does not get to Ollama, as the
    ollama_generate lookup does (the controller's tailscaled may answer 502 right after a restart)."""
    body = {"model": MODEL, "prompt": "The sky is", "stream": False, "options": {"num_predict": 8}}
    ask = functools.partial(on_tailnet(controller, url, timeout).request, "POST", "/api/generate", body)
    return cloud.retry_until(ask, ollama_api.never_reached, time.monotonic() + settle, base=2.0, cap=10.0)


def ollama_url_of(out):
    """The tailnet URL ask.yml printed for the node."""
    for word in flat(out).split():
        if word.startswith("(http://100.") and word.endswith(":11434)"):
            return word.strip("()")
    raise AssertionError("no tailnet URL in the output:\n" + out[-3000:])


def refused_outside_the_tailnet(ip):
    """The node's VPC address: the host firewall drops the API (a timeout, not an answer)."""
    try:
        urllib.request.urlopen(f"http://{ip}:11434/api/version", timeout=3)  # noqa: S310
    except (urllib.error.URLError, TimeoutError, OSError):
        return True
    return False


def lifecycle(site, bodies, controller, headscale, record_property, image="stock"):
    """site.yml to the answer, stop/start on the same tailnet node, then site.yml again: a
    converged rerun of the headline command, 0 changed on the controller and the node.

    The same on every cloud and image: only the runner's settings and the bodies' cloud differ.
    ``image``: "stock" (site.yml from nothing: it creates the node, and configures it from a stock
    image) or "golden" (the node exists, booted from the golden image: site.yml configures it). The
    rerun comes after the restart, so that one run checks both that nothing drifts and that a
    started node needs nothing redone (a rerun before the stop as well took about 200 s more on AWS).
    """
    hostname = f"oce-{site.deployment}"
    out, seconds = site.run("site.yml")
    record_property(f"site_{image}_seconds", round(seconds, 1))
    print(f"\n[simcloud] {site.cloud} site.yml on a {image} image's node to the answer: {seconds:.0f}s")
    url = ollama_url_of(out)
    assert f"{MODEL} on {hostname} ({url}) answered" in flat(out)
    # Tailscale came up at first boot with the tailscale role's own unit and settings (installed
    # there, or in the golden image): configuring the node did not restart it under its SSH session.
    assert "tailscale : Restart tailscaled]" not in out, out[-8000:]

    # The node joined by itself under its name, tagged by its key; one node, not ephemeral.
    (node,) = headscale.nodes_named(hostname)
    assert node["tags"] == ["tag:ollama"] and node["online"]
    # Ollama answers on the tailnet to the model's own name, and not on the VPC address.
    assert MODEL in [m["name"] for m in on_tailnet(controller, url).tags()]
    body = bodies.body(hostname)
    assert refused_outside_the_tailnet(body.ip)
    assert bodies.exec(hostname, "ip", "-o", "link", "show", "tailscale0").returncode == 0

    # Stop and start: the same tailnet node, no new key needed; then a converged rerun changes
    # nothing, on the controller or on the node, and the model answers again.
    site.run("playbooks/stop.yml")
    bodies.settle()
    site.run("playbooks/start.yml")
    bodies.settle()
    again, _seconds = site.run("site.yml")
    assert recap(again) == {"localhost": (0, 0, 0), hostname: (0, 0, 0)}, changed_tasks(again)
    assert f"{MODEL} on {hostname} ({url}) answered" in flat(again)
    (after,) = headscale.nodes_named(hostname)
    assert after["id"] == node["id"] and after["online"]
    assert generate(controller, url)["response"].strip()


def destroyed(site, bodies, headscale):
    """destroy.yml, whatever happened before; the node logged out and its body gone."""
    hostname = f"oce-{site.deployment}"
    gone, _seconds = site.run("playbooks/destroy.yml", ok=False)
    bodies.settle()
    assert "failed=0" in gone, gone[-4000:]
    assert bodies.bodies == {}
    # Logged out before it went. Headscale 0.29 keeps a tagged node after logout (tagged nodes
    # never expire): it is offline, its key no longer valid; its admin deletes it, as here.
    assert "Log the node out of the tailnet" in gone and f"changed: [{hostname}]" in gone, gone[-4000:]
    # Headscale marks the node offline when its map session ends, a moment after the logout.
    rig.wait_for(lambda: not any(n.get("online") for n in headscale.nodes_named(hostname)), 20, f"{hostname} offline")
    headscale.delete_nodes(names=[hostname])
