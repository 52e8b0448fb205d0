"""What the fleet inventory tests share: ansible-inventory as a user runs it, and a request counter for moto."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
import urllib.parse

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def plain(value):
    """ansible-inventory --list marks values from a plugin as unsafe ({"__ansible_unsafe": v}): unwrap."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def hosts(inv, group):
    return sorted(inv.get(group, {}).get("hosts", []))


def ansible_inventory(path, env, *args, ok=True):
    """``ansible-inventory -i path --list`` in a subprocess; the parsed inventory, or the process when not ``ok``."""
    res = subprocess.run(
        ["ansible-inventory", "-i", str(path), "--list", *args],
        cwd=REPO_ROOT,
        env=dict(env, ANSIBLE_INVENTORY_UNPARSED_FAILED="true"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if not ok:
        return res
    assert res.returncode == 0, res.stderr[-3000:]
    return plain(json.loads(res.stdout))


class CountingProxy:
    """A loopback HTTP proxy to a moto server that counts what goes through it (moto keeps no count).

    ``calls`` keeps each request's region and form parameters (EC2's query API), in order of arrival.
    ``timeout`` bounds each answer of moto (a page among 10,000 instances takes minutes on a busy machine).
    """

    def __init__(self, upstream, timeout=60):
        self.upstream = urllib.parse.urlsplit(upstream).netloc
        self.timeout = timeout
        self.requests = 0
        self.calls = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy.lock:
                    proxy.requests += 1
                    proxy.calls.append(
                        (signed_region(self.headers), dict(urllib.parse.parse_qsl(body.decode(errors="replace"))))
                    )
                skip = ("host", "connection", "content-length")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
                conn = http.client.HTTPConnection(proxy.upstream, timeout=proxy.timeout)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def signed_region(headers):
    """The region a SigV4 request was signed for (``Credential=KEY/DATE/REGION/SERVICE/aws4_request``)."""
    credential = headers.get("Authorization", "").partition("Credential=")[2]
    return credential.split("/")[2] if credential.count("/") >= 4 else None


def tailnet_status_command(directory, peers):
    """A stand-in for this controller's ``tailscale status --json`` seeing ``peers`` (hostname -> IP).

    The inventory tests are about the clouds; the real tailnet is the simulated cloud's (tests/functional/simcloud).
    """
    status = {
        "BackendState": "Running",
        "Peer": {
            f"nodekey:{i}": {"HostName": h, "TailscaleIPs": [ip], "Online": True, "Tags": ["tag:ollama"]}
            for i, (h, ip) in enumerate(peers.items())
        },
    }
    path = os.path.join(str(directory), "tailscale-status.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(status, f)
    # `python3 -c CODE status --json`: the arguments the plugin adds are ignored.
    return [sys.executable, "-c", f"print(open({path!r}).read())"]
