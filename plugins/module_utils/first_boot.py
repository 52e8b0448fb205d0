# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cloud node's first boot, with no controller: join the tailnet, then serve the model.

Two halves of one contract:

- on the controller, ``user_data`` renders the cloud-init user data the instance modules pass
  (AWS user data, GCE ``user-data`` metadata). It holds names only, never a secret: the
  deployment, the tailnet settings, *where* the key is stored, the model, this program and
  ``node_secrets.py`` (the same code ``tailscale_up`` runs), and the controller's SSH public key.
- on the node, ``main`` runs from ``oce-first-boot.service`` until it has succeeded once: it
  installs Tailscale when the image lacks it (pinned archive, sha256 checked, the tailscale role's
  layout), reads the auth key from the cloud's secret store with the node's own identity, joins
  with a persistent (non-ephemeral) identity, and, when the image carries Ollama, pulls the model
  and answers to its canonical name. Reboots and stop/start keep the identity on the disk.

The node side uses the standard library only: the image may have nothing but Python.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request

try:
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import node_secrets
except ImportError:  # on the node: node_secrets.py lies beside this file (LIB_DIR)
    import node_secrets  # type: ignore[no-redef]

CONFIG_PATH = "/etc/oce/node.json"
LIB_DIR = "/usr/local/lib/oce"
DONE_PATH = "/var/lib/oce/first-boot.done"
UNIT_NAME = "oce-first-boot.service"
SSH_USER = "oce"
TAILSCALE_DIR = "/opt/tailscale"
TAILSCALE_LINKS = {"tailscaled": "/usr/sbin/tailscaled", "tailscale": "/usr/bin/tailscale"}
TAILSCALE_SOCKET = "/run/tailscale/tailscaled.sock"
TAILSCALE_UNIT = "/etc/systemd/system/tailscaled.service"
TAILSCALE_DEFAULTS = "/etc/default/tailscaled"

# Until it has succeeded once; retried every 30 s, so a key stored late still gets the node in.
# Its output goes to the serial console too: `get-console-output` / the serial port log shows it.
UNIT = f"""[Unit]
Description=ollama_cloud.engine first boot: join the tailnet, serve the model
Wants=network-online.target
After=network-online.target cloud-final.service ollama.service
ConditionPathExists=!{DONE_PATH}
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {LIB_DIR}/first_boot.py
# The key file's directory is under /tmp: a run stopped mid-way (a reboot) leaves none behind.
PrivateTmp=yes
Restart=on-failure
RestartSec=30
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
"""


class BootError(Exception):
    """A sentence a person can act on at the node's console."""


# ---------------------------------------------------------------- controller side


def _packed(text):
    return base64.b64encode(gzip.compress(text.encode(), mtime=0)).decode()


def _source(name):
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), encoding="utf-8") as f:
        return f.read()


def user_data(config, ssh_public_key):
    """The ``#cloud-config`` text (JSON, a subset of YAML) for a node with ``config``."""
    if not ssh_public_key.startswith(("ssh-", "ecdsa-")):
        raise ValueError("ssh_public_key must be an OpenSSH public key (ssh-ed25519 AAAA...)")
    files = [
        {"path": CONFIG_PATH, "permissions": "0644", "content": json.dumps(config, indent=1, sort_keys=True) + "\n"},
        {
            "path": f"{LIB_DIR}/first_boot.py",
            "permissions": "0644",
            "encoding": "gz+b64",
            "content": _packed(_source("first_boot.py")),
        },
        {
            "path": f"{LIB_DIR}/node_secrets.py",
            "permissions": "0644",
            "encoding": "gz+b64",
            "content": _packed(_source("node_secrets.py")),
        },
        {"path": f"/etc/systemd/system/{UNIT_NAME}", "permissions": "0644", "content": UNIT},
    ]
    doc = {
        # The controller's way in: sshd, reachable on the tailnet only (host firewall, no ingress rule).
        "users": [
            "default",
            {
                "name": SSH_USER,
                "gecos": "ollama_cloud.engine controller",
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [ssh_public_key.strip()],
            },
        ],
        "ssh_pwauth": False,
        "write_files": files,
        "runcmd": [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "--no-block", UNIT_NAME]],
    }
    return "#cloud-config\n" + json.dumps(doc, separators=(",", ":")) + "\n"


# ---------------------------------------------------------------- node side


def log(message):
    sys.stdout.write(f"oce-first-boot: {message}\n")
    sys.stdout.flush()


def run(argv, what, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise BootError(f"{what} failed ({proc.returncode}): {detail[0]}")
    return proc.stdout


def write_file(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, 0o644)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def install_tailscale(ts):
    """The pinned static archive, checked, in the tailscale role's layout, with the upstream unit."""
    if all(os.path.exists(p) for p in TAILSCALE_LINKS.values()):
        return False
    version, checksum = ts["version"], ts["checksum"].lower()
    if not checksum.startswith("sha256:"):
        raise BootError(f"no sha256 is known for Tailscale {version}: set tailscale_checksum")
    stage = tempfile.mkdtemp(prefix="oce-tailscale-")
    try:
        archive = os.path.join(stage, "tailscale.tgz")
        log(f"installing Tailscale {version} from {ts['url']}")
        try:
            opener = urllib.request.build_opener()
            with opener.open(ts["url"], timeout=60) as response, open(archive, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise BootError(
                f"downloading {ts['url']} failed: {exc}: check the node's egress (NAT) or the mirror"
            ) from None
        found = sha256_of(archive)
        if found != checksum.split(":", 1)[1]:
            raise BootError(f"{ts['url']} has sha256 {found}, not {checksum}: nothing was installed")
        target = os.path.join(TAILSCALE_DIR, version)
        os.makedirs(target, mode=0o755, exist_ok=True)
        with tarfile.open(archive) as tar:
            top = tar.getnames()[0].split("/")[0]
            for member in ("tailscale", "tailscaled", "systemd/tailscaled.service"):
                source = tar.extractfile(f"{top}/{member}")
                dest = os.path.join(target if "/" not in member else stage, os.path.basename(member))
                with source, open(dest, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(dest, 0o755 if "/" not in member else 0o644)
        with open(os.path.join(target, ".archive-checksum"), "w", encoding="utf-8") as f:
            f.write(checksum + "\n")
        for binary, link in TAILSCALE_LINKS.items():
            if os.path.lexists(link):
                os.unlink(link)
            os.symlink(os.path.join(target, binary), link)
        # The tailscale role's own unit and settings as the controller rendered them: the role's
        # first run finds them as they are, and does not restart tailscaled under its own SSH
        # session. Without them, the archive's unit and the same two settings.
        if ts.get("unit"):
            write_file(TAILSCALE_UNIT, ts["unit"])
        else:
            shutil.copy(os.path.join(stage, "tailscaled.service"), TAILSCALE_UNIT)
        defaults = f'PORT="{ts.get("port", 41641)}"\nFLAGS="{" ".join(ts.get("flags") or [])}"\n'
        write_file(TAILSCALE_DEFAULTS, ts.get("defaults") or defaults)
        run(["systemctl", "daemon-reload"], "systemctl daemon-reload")
        run(["systemctl", "enable", "--now", "tailscaled.service"], "starting tailscaled")
        return True
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def point_logs(logs):
    """Send the CloudWatch agent's logs to this deployment's log group.

    A golden image carries the agent's configuration with the log group of the deployment it was
    built for, and the node's role may write to ``/oce/<its deployment>`` only. Rewritten as the
    monitoring_agent role renders it (``to_nice_json``), so configuring the node later finds it
    as it would write it; then applied again, as the role's handler does.
    """
    if not logs:
        return False
    try:
        with open(logs["agent_config"], encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:  # no agent in the image: configure.yml installs it
        return False
    doc = json.loads(text)
    files = doc.get("logs", {}).get("logs_collected", {}).get("files", {}).get("collect_list", [])
    if all(entry.get("log_group_name") == logs["group"] for entry in files):
        return False
    for entry in files:
        entry["log_group_name"] = logs["group"]
    tail = text[len(text.rstrip()) :]
    write_file(logs["agent_config"], json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + tail)
    with contextlib.suppress(FileNotFoundError):
        os.remove(logs["applied"])
    run(
        ["systemctl", "restart", "--no-block", logs["unit"]],
        f"applying the CloudWatch agent configuration ({logs['unit']})",
    )
    return True


def tailscale_state():
    out = subprocess.run(["tailscale", "status", "--json"], capture_output=True, text=True, check=False)
    try:
        return json.loads(out.stdout).get("BackendState", "")
    except ValueError:
        return ""


def join_tailnet(net, deadline=120):
    """Log in once with the key from the secret store; a logged-in node only comes up again."""
    if not os.path.exists("/usr/bin/tailscale"):
        raise BootError("tailscale is not installed")
    run(["systemctl", "start", "tailscaled.service"], "starting tailscaled")
    end = time.monotonic() + 30
    while not os.path.exists(TAILSCALE_SOCKET) and time.monotonic() < end:
        time.sleep(0.5)
    state = tailscale_state()
    if state == "Running":
        return False
    argv = [
        "tailscale",
        "up",
        "--hostname=" + net["hostname"],
        "--accept-dns=" + str(bool(net.get("accept_dns"))).lower(),
    ]
    if net.get("tags"):  # else the key's own tags (Headscale refuses --advertise-tags with a pre-auth key)
        argv.append("--advertise-tags=" + ",".join(net["tags"]))
    if net.get("login_server"):
        argv.append("--login-server=" + net["login_server"])
    argv.append(f"--timeout={deadline}s")
    if state not in ("NeedsLogin", "NoState", "Stopped", ""):
        raise BootError(f"tailscaled is in state {state}")
    if state == "Stopped":  # logged in, brought down by hand: no key needed
        run(argv, "tailscale up")
        return True
    secret = net["key_secret"]
    log(f"reading the tailnet key from {secret['source']} {secret['name']} with the node's own identity")
    try:
        key = node_secrets.read_secret(secret["source"], secret["name"], secret.get("region"), secret.get("endpoint"))
    except node_secrets.SecretError as exc:
        raise BootError(
            f"{exc}: store a reusable, non-ephemeral auth key there (see the README), "
            "and check that the node's role or service account may read it"
        ) from None
    private = tempfile.mkdtemp(prefix="oce-ts-")  # 0700
    try:
        path = os.path.join(private, "key")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as f:
            f.write(key)
        log(f"joining the tailnet as {net['hostname']}")
        try:
            run(argv + ["--auth-key=file:" + path], "tailscale up (is the key valid, reusable and allowed the tags?)")
        except BootError as exc:  # the console is readable by whoever may read the instance
            raise BootError(str(exc).replace(key, "<auth key>")) from None
    finally:
        del key
        shutil.rmtree(private, ignore_errors=True)
    return True


def ollama_cli():
    return shutil.which("ollama") or ("/usr/local/bin/ollama" if os.path.exists("/usr/local/bin/ollama") else None)


def serve_model(model, port):
    """Pull the deployment's model (image with Ollama only) and give it its canonical name too."""
    binary = ollama_cli()
    if not model or not binary:
        log(
            "no Ollama in this image: the controller installs it (playbooks/configure.yml)"
            if model
            else "no model named"
        )
        return False
    env = dict(os.environ, OLLAMA_HOST=f"127.0.0.1:{port}", HOME="/root")
    end = time.monotonic() + 120
    while subprocess.run([binary, "list"], capture_output=True, env=env, check=False).returncode != 0:
        if time.monotonic() > end:
            raise BootError("Ollama did not answer on 127.0.0.1:%s within 120 s: see journalctl -u ollama" % port)
        time.sleep(2)
    log(f"pulling {model['pull']}")
    run(
        [binary, "pull"] + (["--insecure"] if model.get("insecure") else []) + [model["pull"]],
        f"pulling {model['pull']}",
        env=env,
    )
    if model["pull"] != model["name"]:
        run([binary, "cp", model["pull"], model["name"]], f"copying {model['pull']} to {model['name']}", env=env)
    return True


def main(path=CONFIG_PATH):
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
        if point_logs(config.get("logs")):
            log(f"CloudWatch agent logs go to {config['logs']['group']}")
        if install_tailscale(config["tailscale"]):
            log("Tailscale installed")
        log("joined the tailnet" if join_tailnet(config["tailnet"]) else "already on the tailnet")
        if serve_model(config.get("model"), config.get("ollama_port", 11434)):
            log(f"serving {config['model']['name']}")
        os.makedirs(os.path.dirname(DONE_PATH), exist_ok=True)
        with open(DONE_PATH, "w", encoding="utf-8") as f:
            f.write(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
    except (BootError, OSError, KeyError, ValueError) as exc:
        log(f"FAILED: {exc}")
        return 1
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
