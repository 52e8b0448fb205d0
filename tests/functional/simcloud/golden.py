"""The golden image, built here as Packer would build it in the cloud.

A builder container from the stock cloud image runs packer/image.yml (connection
ollama_cloud.engine.podman; the collection resolves from this checkout), downloading Ollama and
Tailscale from the rig's HTTP mirror; then packer/scripts/cleanup.sh, as Packer runs it; then the
image is committed as localhost/oce-golden:<key> and checked for what must not be in it. The key
hashes what the image is made of (image.yml, roles/, the plugins the roles run, the cleanup
script, rig/versions.env, the variables, the stock image), so it is rebuilt only when one of them
changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from . import rig, seed

CLEANUP = os.path.join(rig.REPO_ROOT, "packer", "scripts", "cleanup.sh")
VALIDATE = os.path.join(rig.REPO_ROOT, "packer", "scripts", "validate.sh")
IMAGE_PLAYBOOK = os.path.join(rig.REPO_ROOT, "packer", "image.yml")
# What every cloud node shares with the image; Packer passes it too (packer/variables.pkr.hcl).
CLOUD_NODE_VARS = os.path.join(rig.REPO_ROOT, "playbooks", "vars", "cloud_node.yml")
# The one beside this Python (the rig's venv), whatever PATH says.
ANSIBLE_PLAYBOOK = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or "ansible-playbook"


def default_vars(cloud):
    """What packer/{aws,gcp}.pkr.hcl pass for a CPU image of ``cloud`` (nvidia_driver_source=none),
    with the artifacts from the rig's mirror over HTTP."""
    return {
        "cloud": cloud,
        "nvidia_driver_source": "none",
        "nvidia_driver_kernel_flavour": cloud,
        "ollama_gpu": False,
        "monitoring_agent_gpu": False,
        # Neither the CloudWatch agent's bucket nor Google's apt repository is reachable here.
        "monitoring_agent_install": False,
        "ollama_version": rig.OLLAMA_VERSION,
        "ollama_download_url": rig.OLLAMA_URL,
        "ollama_checksum": rig.checksum(f"ollama/v{rig.OLLAMA_VERSION}/ollama-linux-amd64.tar.zst"),
        "tailscale_version": rig.TAILSCALE_VERSION,
        "tailscale_download_url": rig.TAILSCALE_URL,
        "tailscale_checksum": rig.checksum(f"tailscale/tailscale_{rig.TAILSCALE_VERSION}_amd64.tgz"),
        # Bodies have /dev/net/tun, as VMs do (the rig's vars say otherwise for its local nodes).
        "tailscale_userspace_networking": False,
    }


def _files(root):
    for base, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            yield os.path.join(base, name)


def _runs_on_the_controller_only(path):
    """The plugins an image build never runs: the cloud APIs' modules and module_utils, the
    inventory, the docs. Every other plugin (node_probe, config_files, the filters, the podman
    connection and what they import) shapes what the roles write into the image."""
    relative = os.path.relpath(path, os.path.join(rig.REPO_ROOT, "plugins"))
    kind, name = os.path.split(relative)
    return kind in ("inventory", "doc_fragments") or (
        kind in ("modules", "module_utils") and name.split("_")[0].removesuffix(".py") in ("aws", "gcp", "local")
    )


def golden_key(extra_vars):
    digest = hashlib.sha256()
    paths = [IMAGE_PLAYBOOK, CLEANUP, VALIDATE, CLOUD_NODE_VARS, os.path.join(rig.REPO_ROOT, "rig", "versions.env")]
    paths += list(_files(os.path.join(rig.REPO_ROOT, "roles")))
    paths += [p for p in _files(os.path.join(rig.REPO_ROOT, "plugins")) if not _runs_on_the_controller_only(p)]
    for path in paths:
        digest.update(os.path.relpath(path, rig.REPO_ROOT).encode() + b"\0")
        with open(path, "rb") as f:
            digest.update(f.read() + b"\0")
    digest.update(json.dumps(extra_vars, sort_keys=True).encode())
    digest.update(rig.podman("image", "inspect", "--format", "{{.Id}}", rig.CLOUD_IMAGE).stdout.encode())
    return digest.hexdigest()[:12]


def golden_tag(key):
    return f"localhost/oce-golden:{key}"


def _wait_systemd(container, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = rig.podman("exec", container, "systemctl", "is-system-running", check=False).stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the builder {container} did not boot within {timeout}s")


# The CloudWatch agent's package cannot be fetched here (monitoring_agent_install=false): a stand-in
# for its control script, as molecule/monitoring installs, so the role's units check out and a
# node's first-boot unit has something to call (each call is recorded).
CLOUDWATCH_STAND_IN = """set -e
mkdir -p /opt/aws/amazon-cloudwatch-agent/bin
cat >/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl <<'EOF'
#!/bin/sh
mkdir -p /var/lib/oce-test && echo "$*" >>/var/lib/oce-test/ctl-calls
EOF
chmod 0755 /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl
"""

# What a clone must not inherit (FACTS.md, Packer): checked in the committed image.
LEFTOVERS = (
    "test ! -s /etc/machine-id",
    "! ls /etc/ssh/ssh_host_*_key 2>/dev/null | grep -q .",
    "test ! -e /var/lib/tailscale",
    "test ! -e /var/lib/cloud/instance",
)


def build_golden(cloud="aws", extra_vars=None, log_dir=None, timeout=1800):
    """The golden image's tag, built unless it exists; and the seconds the build took (0 when cached)."""
    variables = dict(default_vars(cloud), **(extra_vars or {}))
    key = golden_key(variables)
    tag = golden_tag(key)
    os.makedirs(rig.CACHE, exist_ok=True)
    # One builder at a time on this machine (two checkouts' test runs may both want it).
    with open(os.path.join(rig.CACHE, "golden.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if rig.podman("image", "exists", tag, check=False).returncode == 0:
            return tag, 0.0
        started = time.monotonic()
        _build(tag, key, variables, log_dir or rig.CACHE, timeout)
        seconds = time.monotonic() - started
        prune(variables["cloud"], keep=KEEP)
        return tag, seconds


# Golden images kept per cloud: every change to roles/ makes a new one (about 1 GB each). Two, so
# that a run of another checkout still using the previous key keeps its image.
KEEP = 2


def prune(cloud, keep=KEEP):
    """Remove all but the newest ``keep`` golden images of ``cloud`` (an image in use stays)."""
    listed = rig.podman(
        "images", "--filter", f"label=oce.golden.cloud={cloud}", "--format", "{{.ID}} {{.CreatedAt}}", check=False
    ).stdout.splitlines()
    newest_first = sorted((line.split(" ", 1) for line in listed if " " in line), key=lambda p: p[1], reverse=True)
    for image_id, _created in newest_first[keep:]:
        rig.podman("rmi", image_id, check=False)


def _build(tag, key, variables, log_dir, timeout):
    builder = f"oce-golden-build-{key}"
    rig.podman("rm", "-f", "-t", "0", builder, check=False)
    # The builder boots as a cloud instance does (cloud-init's first boot: SSH host keys and the
    # rest, which the roles expect, e.g. `sshd -t`); cleanup.sh then undoes it for the clones.
    seed_dir = seed.write_seed(
        tempfile.mkdtemp(prefix="oce-golden-seed-"), builder, "packer-builder", b"#cloud-config\n"
    )
    rig.podman(
        "run", "-d", "--name", builder, "--hostname", "packer-builder", "--systemd=always",
        "--network", rig.NETWORK, "--add-host", f"{rig.MODELS_HOST}:{rig.REGISTRY_IP}",
        "--cap-add", "NET_ADMIN", "-v", f"{seed_dir}:/var/lib/cloud/seed/nocloud:ro",
        rig.CLOUD_IMAGE, "/sbin/init",
    )  # fmt: skip
    try:
        _wait_systemd(builder)
        booted = rig.podman("exec", builder, "cloud-init", "status", "--wait", timeout=300, check=False)
        if "status: done" not in booted.stdout:
            raise RuntimeError(f"cloud-init on the builder {builder} did not finish: {booted.stdout.strip()}")
        if variables["cloud"] == "aws" and not variables.get("monitoring_agent_install", True):
            rig.podman("exec", "-i", builder, "sh", "-s", input=CLOUDWATCH_STAND_IN)
        log_path = os.path.join(log_dir, f"golden-{key}.log")
        with open(log_path, "wb") as log:
            result = subprocess.run(
                [
                    ANSIBLE_PLAYBOOK, "-i", f"{builder},", "-c", "ollama_cloud.engine.podman",
                    IMAGE_PLAYBOOK, "-e", f"@{rig.RIG_VARS}", "-e", f"@{CLOUD_NODE_VARS}",
                    "-e", json.dumps(variables),
                ],
                cwd=rig.REPO_ROOT, env=dict(rig.env(), ANSIBLE_NOCOLOR="1"),
                stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"packer/image.yml failed on {builder} (rc={result.returncode}): see {log_path}")
        # Then Packer's two shell provisioners, as they run on the builder.
        _script(builder, CLEANUP, log_path)
        validate_env = [
            f"OLLAMA_VERSION={variables['ollama_version']}",
            "MIN_FREE_GB=1",
            f"NVIDIA_DRIVER_SOURCE={variables['nvidia_driver_source']}",
        ]
        _script(builder, VALIDATE, log_path, validate_env)
        rig.podman("stop", "-t", "30", builder, timeout=90)
        # One label per --change: podman commit reads the rest of a LABEL line as the first value.
        labels = ["--change", f"LABEL oce.golden.key={key}", "--change", f"LABEL oce.golden.cloud={variables['cloud']}"]
        rig.podman("commit", "-q", *labels, builder, tag, timeout=600)
    finally:
        rig.podman("rm", "-f", "-t", "0", builder, check=False)
        shutil.rmtree(seed_dir, ignore_errors=True)
    check = rig.podman(
        "run", "--rm", "--entrypoint", "/bin/sh", tag, "-c", " && ".join(LEFTOVERS), check=False, timeout=120
    )
    if check.returncode != 0:
        rig.podman("rmi", tag, check=False)
        raise RuntimeError(f"the golden image kept a builder's identity (one of: {'; '.join(LEFTOVERS)})")


def _script(builder, path, log_path, env=()):
    with open(path) as f:
        script = f.read()
    result = rig.podman("exec", "-i", builder, "env", *env, "bash", "-s", input=script, timeout=600, check=False)
    with open(log_path, "a") as log:
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{os.path.relpath(path, rig.REPO_ROOT)} failed on {builder}: see {log_path}")
