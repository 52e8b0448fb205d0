"""The rig as the simulated cloud sees it: addresses, images, mirror URLs, and what is missing.

Values come from rig/versions.env (the same file rig/setup reads), overridden by the environment
that `rig/setup --env` prints, so the harness works with or without that environment loaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def _versions():
    values = {}
    with open(os.path.join(REPO_ROOT, "rig", "versions.env")) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key] = value
    return values


VERSIONS = _versions()


def setting(key, default=None):
    return os.environ.get(key) or VERSIONS.get(key) or default


CACHE = os.environ.get("OCE_CACHE") or os.path.expanduser("~/.cache/ollama-cloud-engine")
NETWORK = setting("OCE_RIG_NETWORK", "oce-rig")
GATEWAY = setting("OCE_RIG_GATEWAY", "10.89.42.1")
REGISTRY_IP = setting("OCE_REGISTRY_IP", "10.89.42.2")
BLOBS_IP = setting("OCE_BLOBS_IP", "10.89.42.3")
HEADSCALE_IP = setting("OCE_HEADSCALE_IP", "10.89.42.4")
HEADSCALE_URL = f"http://{HEADSCALE_IP}:8080"
SUITE = setting("OCE_DEBIAN_SUITE", "bookworm")
BASE_IMAGE = setting("OCE_BASE_IMAGE", f"localhost/oce-node:{SUITE}")
CLOUD_IMAGE = setting("OCE_CLOUD_IMAGE", f"localhost/oce-cloud:{SUITE}")
TAILSCALE_VERSION = setting("OCE_TAILSCALE_VERSION")
OLLAMA_VERSION = setting("OCE_OLLAMA_VERSION")
RIG_VARS = os.environ.get("OCE_RIG_VARS") or os.path.join(CACHE, "rig", "vars.yml")
CONTAINERS_CONF = os.environ.get("CONTAINERS_CONF") or os.path.join(CACHE, "rig", "containers.conf")
# The internal model mirror's name on every node, as on the rig's local nodes.
MODELS_HOST = setting("OCE_REGISTRY_HOSTNAME", "models.internal")

# The artifact mirror (the oce-blobs nginx serving $OCE_CACHE/mirror), as nodes download from it.
MIRROR_URL = f"http://{BLOBS_IP}:8080/mirror"
TAILSCALE_URL = f"{MIRROR_URL}/tailscale/tailscale_{TAILSCALE_VERSION}_amd64.tgz"
OLLAMA_URL = f"{MIRROR_URL}/ollama/v{OLLAMA_VERSION}/ollama-linux-amd64.tar.zst"
TAILSCALE_BIN = os.path.join(CACHE, "tailscale", str(TAILSCALE_VERSION), "bin")


def checksum(path):
    """sha256:<hex> of a mirror file, from the .sha256 or sha256sum.txt rig/setup writes beside it."""
    local = os.path.join(CACHE, "mirror", path)
    if os.path.isfile(local + ".sha256"):
        with open(local + ".sha256") as f:
            return "sha256:" + f.read().split()[0]
    with open(os.path.join(os.path.dirname(local), "sha256sum.txt")) as f:
        return "sha256:" + f.read().split()[0]


def env():
    """The environment podman needs on this machine (runc, cgroupfs, ulimits: RIG.md)."""
    return dict(os.environ, CONTAINERS_CONF=CONTAINERS_CONF)


def podman(*args, check=True, timeout=120, input=None):
    """Run podman with the rig's settings; a failure raises with podman's own words."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, env=env(), timeout=timeout, check=False, input=input
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed (rc={result.returncode}): {result.stderr.strip()}")
    return result


def gateway_is_local():
    """True when the rig's bridge (and so its gateway address) is up on this machine."""
    out = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False).stdout
    return any(f" {GATEWAY}/" in line for line in out.splitlines())


def missing(images=(CLOUD_IMAGE,)):
    """Why the simulated cloud cannot run here (a sentence), or None when it can."""
    if not shutil.which("podman"):
        return "podman is not installed: run rig/setup"
    if not os.path.isfile(CONTAINERS_CONF):
        return f"{CONTAINERS_CONF} is missing: run rig/setup"
    if os.geteuid() != 0:
        return "the simulated cloud needs root (bodies on the rig's bridge, nsenter into their namespaces)"
    if not shutil.which("nft") or not shutil.which("nsenter"):
        return "nft and nsenter are needed for the metadata DNAT: run rig/setup apt"
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        return f"podman network {NETWORK} does not exist: run rig/setup"
    if not gateway_is_local():
        return f"the rig's gateway {GATEWAY} is not up here (no rig container running): run rig/setup"
    for image in images:
        if podman("image", "exists", image, check=False).returncode != 0:
            return f"image {image} does not exist: run rig/setup cloudimage"
    return None


def wait_for(condition, timeout, what):
    """Until ``condition()`` holds, asked every half second; after ``timeout`` seconds, fail
    saying what was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.5)
