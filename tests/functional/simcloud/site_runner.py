"""The headline command on the simulated cloud, as a user on a tailnet-connected controller runs it.

The only differences from a real account are endpoints (moto, the emulator), the mirrors (the rig's
models.internal registry and artifact mirror) and how this controller reaches the tailnet (a
userspace tailscaled: its socket, `tailscale nc` for SSH, its HTTP proxy): all set here, from the
test side, through the collection's documented variables.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from . import rig

REPO_ROOT = rig.REPO_ROOT


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


def flat(out):
    return " ".join(out.split())


class SiteRunner:
    """ansible-playbook for one cloud and deployment, with the controller on the tailnet."""

    def __init__(self, cloud, deployment, env, controller, ssh_key, extra=()):
        self.cloud, self.deployment = cloud, deployment
        self.env = dict(os.environ, **env, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="false")
        self.env["CONTAINERS_CONF"] = rig.CONTAINERS_CONF
        self.extra = {
            "cloud": cloud,
            "deployment": deployment,
            "model": "gemma3:270m",
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
        self.extra.update(extra)

    def command(self, playbook, *args):
        cmd = ["ansible-playbook", "-i", f"inventories/{self.cloud}", playbook, "-e", "@" + rig.RIG_VARS]
        return cmd + ["-e", json.dumps(self.extra), *args]

    def run(self, playbook, *args, ok=True, timeout=1200):
        started = time.monotonic()
        proc = subprocess.run(
            self.command(playbook, *args),
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        out = proc.stdout + proc.stderr
        if ok:
            assert proc.returncode == 0, f"{playbook} failed:\n{out[-8000:]}"
        return out, time.monotonic() - started
