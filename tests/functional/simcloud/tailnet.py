"""The rig's tailnet: Headscale's keys and nodes, and the controller's own tailscaled.

Headscale runs in the container oce-headscale (rig/setup headscale); its CLI is reached with
`podman exec`, as molecule/tailscale/prepare.yml does. The controller joins with a userspace
tailscaled: no TUN device, no routes on this machine; it reaches nodes through its SOCKS5 and
HTTP proxies, and SSH through `tailscale nc` as a ProxyCommand.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from . import rig

HEADSCALE = "oce-headscale"
USER = "oce"


def headscale(*args, timeout=60):
    """A Headscale CLI command's JSON answer."""
    result = rig.podman("exec", HEADSCALE, "headscale", *args, "--output", "json", timeout=timeout)
    return json.loads(result.stdout or "null")


def user_id(name=USER):
    users = headscale("users", "list") or []
    found = [u for u in users if u.get("name") == name]
    if not found:
        raise RuntimeError(f"Headscale has no user {name!r}: run rig/setup headscale")
    return str(found[0]["id"])


def preauth_key(tags=(), reusable=True, ephemeral=False, expiration="2h", user=USER):
    """A new pre-auth key: reusable and not ephemeral by default (nodes must survive stop/start)."""
    args = ["preauthkeys", "create", "--user", user_id(user), "--expiration", expiration]
    if reusable:
        args.append("--reusable")
    if ephemeral:
        args.append("--ephemeral")
    if tags:
        args += ["--tags", ",".join(tags)]
    return headscale(*args)["key"]


def nodes():
    return headscale("nodes", "list") or []


def nodes_named(name):
    """Nodes whose hostname or given name is ``name`` (Headscale appends -1, -2 to repeats)."""
    return [n for n in nodes() if name in (n.get("name"), n.get("given_name"))]


def delete_node(node_id):
    rig.podman("exec", HEADSCALE, "headscale", "nodes", "delete", "--identifier", str(node_id), "--force")


def delete_nodes(names=(), prefix=None):
    """Delete the nodes with these names or starting with ``prefix``; return how many went."""
    gone = 0
    for node in nodes():
        name = node.get("given_name") or node.get("name") or ""
        if name in names or node.get("name") in names or (prefix and name.startswith(prefix)):
            delete_node(node["id"])
            gone += 1
    return gone


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ControllerTailscale:
    """A userspace tailscaled for this machine (the controller), joined to the rig's Headscale."""

    def __init__(self, hostname="oce-controller", bin_dir=rig.TAILSCALE_BIN, workdir=None):
        self.hostname = hostname
        self.tailscale = os.path.join(bin_dir, "tailscale")
        self.tailscaled = os.path.join(bin_dir, "tailscaled")
        for path in (self.tailscale, self.tailscaled):
            if not os.access(path, os.X_OK):
                raise FileNotFoundError(f"{path} is missing: run rig/setup tailscale")
        # Short: the socket's path must fit in a sockaddr_un (108 bytes).
        self.dir = workdir or tempfile.mkdtemp(prefix="oce-tailnet-")
        os.makedirs(self.dir, exist_ok=True)
        self.socket = os.path.join(self.dir, "sock")
        self.socks5_port, self.http_port = _free_port(), _free_port()
        self.http_proxy = f"http://127.0.0.1:{self.http_port}"
        self.socks5 = f"127.0.0.1:{self.socks5_port}"
        # For ssh -o ProxyCommand=...: ssh substitutes %h and %p.
        self.proxy_command = f"{self.tailscale} --socket={self.socket} nc %h %p"
        self.proc = None
        self.log = os.path.join(self.dir, "tailscaled.log")

    def command(self):
        return [
            self.tailscaled,
            "--tun=userspace-networking",
            f"--socks5-server=127.0.0.1:{self.socks5_port}",
            f"--outbound-http-proxy-listen=127.0.0.1:{self.http_port}",
            f"--state={self.dir}/state",
            f"--socket={self.socket}",
            f"--statedir={self.dir}",
            "--port=0",
            "--no-logs-no-support",
        ]

    def cli(self, *args, timeout=60, check=True):
        result = subprocess.run(
            [self.tailscale, f"--socket={self.socket}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"tailscale {args[0]} failed: {(result.stderr or result.stdout).strip()}")
        return result

    def start(self, auth_key, login_server=rig.HEADSCALE_URL, timeout=60, extra_up_args=()):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tailscaled did not start:\n" + self.log_tail())
            time.sleep(0.1)
        key_file = os.path.join(self.dir, "auth-key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(auth_key)
        self.cli(
            "up",
            f"--login-server={login_server}",
            f"--auth-key=file:{key_file}",
            f"--hostname={self.hostname}",
            f"--timeout={timeout}s",
            *extra_up_args,
            timeout=timeout + 10,
        )
        os.unlink(key_file)
        return self

    def status(self):
        return json.loads(self.cli("status", "--json").stdout)

    def ip(self):
        return self.cli("ip", "-4").stdout.strip()

    def ping(self, peer, timeout=30):
        """True once `tailscale ping` reaches ``peer`` (a tailnet IP or name)."""
        return self.cli("ping", "--c", "5", "--timeout", "5s", peer, timeout=timeout, check=False).returncode == 0

    def log_tail(self, size=3000):
        try:
            with open(self.log, "rb") as f:
                f.seek(max(0, os.path.getsize(self.log) - size))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, forget=True):
        """Log out (Headscale then expires the node), stop tailscaled, and delete the node if asked."""
        node_ids = []
        if self.proc and self.proc.poll() is None:
            try:
                node_ids = [str(n["id"]) for n in nodes_named(self.hostname)]
                self.cli("logout", timeout=20, check=False)
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError):
                pass
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        if forget:
            for node_id in node_ids:
                delete_node(node_id)
        shutil.rmtree(self.dir, ignore_errors=True)
