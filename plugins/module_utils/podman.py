# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small podman CLI client for the local provider: a systemd container plays the node."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

from ansible_collections.ollama_cloud.engine.plugins.module_utils.cloud import CloudError
from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import (
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    node_record,
)

# What node_module.NodeModule asks of the local provider: its options and its "SDK" (the CLI).
ARGS = {"podman_executable": {"type": "str", "default": "podman"}}
HAS_SDK = True
SDK = "podman"

# podman's container states mapped onto the provider-neutral node states.
_STATE_MAP = {
    "running": "running",
    "created": "stopped",
    "configured": "stopped",
    "exited": "stopped",
    "stopped": "stopped",
    "stopping": "stopping",
    "paused": "stopped",
}


class PodmanError(CloudError):
    """A podman command that failed, told as a sentence (a CloudError, so the modules fail alike)."""


class Podman:
    def __init__(self, module, executable="podman"):
        self.module = module
        self.executable = module.get_bin_path(executable, required=True) if "/" not in executable else executable

    def run(self, *args, check=True):
        rc, out, err = self.module.run_command([self.executable] + list(args))
        if check and rc != 0:
            raise PodmanError("podman %s failed (rc=%d): %s" % (args[0], rc, (err or out).strip()))
        return rc, out, err

    def inspect(self, name):
        rc, out, _err = self.run("container", "inspect", name, check=False)
        if rc != 0:
            return None
        data = json.loads(out)
        return data[0] if data else None

    def list_by_label(self, key, value=None):
        selector = f"{key}={value}" if value else key
        _rc, out, _err = self.run("ps", "-a", "--filter", f"label={selector}", "--format", "{{.Names}}")
        names = out.split()
        if not names:
            return []
        # One inspect for all of them; one by one only when one went away since ps listed it.
        rc, out, _err = self.run("container", "inspect", *names, check=False)
        if rc == 0:
            return json.loads(out)
        return [self.inspect(name) for name in names]

    def image_exists(self, image):
        rc, _out, _err = self.run("image", "exists", image, check=False)
        return rc == 0

    def network_exists(self, network):
        rc, _out, _err = self.run("network", "exists", network, check=False)
        return rc == 0

    def wait_for_systemd(self, name, timeout):
        """Wait until systemd in the container has booted (running or degraded)."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            _rc, out, _err = self.run("exec", name, "systemctl", "is-system-running", check=False)
            state = out.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise PodmanError(
            f"systemd in container {name} did not finish booting within {timeout}s "
            f"(last state: {state or 'no answer'!r}); see `podman logs {name}`"
        )


def connect(params, module):
    """The podman client of the module's options (node_module.NodeModule.client)."""
    return Podman(module, params["podman_executable"])


def find_nodes(podman, deployment=None):
    """Inspect records of our containers: of ``deployment``, or all of ours."""
    if deployment:
        return podman.list_by_label(LABEL_DEPLOYMENT, deployment)
    return podman.list_by_label(LABEL_MANAGED_BY, MANAGED_BY)


def record(_podman, info):
    """The node record of one container's inspect record (node_module.records' ``node``)."""
    return container_node(info)


def _epoch(iso):
    """Epoch seconds of a podman timestamp such as '2026-11-22 12:53:38.41 +0100 CET'."""
    match = re.match(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)\S*\s*([+-]\d{4})?", iso or "")
    if not match or match.group(1).startswith("0001-"):
        return None
    parsed = datetime.strptime("%s %s" % match.group(1, 2), "%Y-%m-%d %H:%M:%S")
    offset = match.group(3) or "+0000"
    shift = (1 if offset[0] == "+" else -1) * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60)
    return (parsed - datetime(1970, 1, 1)).total_seconds() - shift


def container_node(info, api_port=None):
    """Turn `podman container inspect` output into the provider-neutral node record."""
    state = info.get("State", {})
    labels = (info.get("Config") or {}).get("Labels") or {}
    networks = (info.get("NetworkSettings") or {}).get("Networks") or {}
    network = next((n for n in networks.values() if n.get("IPAddress")), {})
    private_ip = network.get("IPAddress")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    published = None
    for binding in ports.get("11434/tcp") or []:
        published = int(binding.get("HostPort"))
    port = published or api_port
    return node_record(
        cloud="local",
        name=info.get("Name", "").lstrip("/"),
        node_id=info.get("Id", "")[:12],
        state=_STATE_MAP.get(state.get("Status"), "unknown"),
        labels=labels,
        instance_type="podman-container",
        region="localhost",
        private_ip=private_ip,
        api_url="http://127.0.0.1:%d" % port if port else None,
        started_at=_epoch(state.get("StartedAt")),
        # gateway: where the port podman publishes on this machine reaches the node from (its
        # network's gateway), which the node's firewall lets in (playbooks/configure.yml).
        extra={
            "image": info.get("ImageName") or (info.get("Config") or {}).get("Image"),
            "gateway": network.get("Gateway") or None,
        },
    )
