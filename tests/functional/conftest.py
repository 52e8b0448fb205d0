"""Fixtures for tests against a real Ollama: its own `ollama serve`, the rig's registry, a shim.

The shim is an HTTP proxy between Ollama and the registry. It plays the registry's redirect to
its blob store (Ollama downloads blobs from the redirect target, see ollama/ollama#7244) under
another host name, so blob bytes pass through it too, and injects faults: drop the connection or
stall after N blob bytes.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

REGISTRY = os.environ.get("OCE_REGISTRY_URL", "http://127.0.0.1:5000")
RIG_REPO, RIG_TAG = "library/gemma3", "270m"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw.strip() else {}


# ---------------------------------------------------------------- the registry


def _registry(method, path, data=None, headers=None, timeout=120):
    req = urllib.request.Request(REGISTRY + path, data=data, method=method, headers=headers or {})
    return urllib.request.urlopen(req, timeout=timeout)


def manifest_exists(repo, tag):
    try:
        _registry("HEAD", f"/v2/{repo}/manifests/{tag}", headers={"Accept": MANIFEST_V2}).close()
        return True
    except (urllib.error.URLError, OSError):
        return False


class RegistryShim:
    """A loopback HTTP proxy to the registry that plays its blob-store redirect and injects faults."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.reset()
        shim = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self.forward()

            def do_GET(self):
                self.forward()

            def forward(self):
                blob_get = "/blobs/" in self.path and self.command == "GET"
                if blob_get and self.headers.get("Host", "").startswith("127.0.0.1"):
                    # Play the registry's redirect to its blob store under another host name,
                    # so the blob bytes (and the faults) come through this shim too.
                    self.send_response(307)
                    self.send_header("Location", "http://localhost:%d%s" % (shim.port, self.path))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn, resp = shim.upstream_request(self.command, "http://" + shim.upstream + self.path, headers)
                blob = blob_get and resp.status in (200, 206)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.end_headers()
                try:
                    while self.command == "GET":
                        chunk = resp.read(64 * 1024)
                        if not chunk:
                            break
                        if blob and shim.fault(len(chunk)) == "drop":
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        self.wfile.write(chunk)
                except OSError:
                    self.close_connection = True  # the client went away
                finally:
                    conn.close()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # clients that hang up mid-transfer are part of these tests

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = "127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def upstream_request(method, url, headers, hops=3):
        """Send the request upstream, following the registry's redirect to its blob store."""
        for _hop in range(hops):
            parts = urllib.parse.urlsplit(url)
            conn = http.client.HTTPConnection(parts.netloc, timeout=30)
            conn.request(method, parts.path + ("?" + parts.query if parts.query else ""), headers=headers)
            resp = conn.getresponse()
            if resp.status not in (301, 302, 303, 307, 308):
                return conn, resp
            url = urllib.parse.urljoin(url, resp.getheader("Location"))
            resp.read()
            conn.close()
        raise OSError("too many redirects upstream")

    def reset(self):
        self.lock = threading.Lock()
        self.blob_bytes = 0
        self.drop_at = None  # blob bytes after which connections are dropped ...
        self.drops_left = 0  # ... this many times
        self.stall_at = None  # blob bytes after which every blob read hangs ...
        self.stall_until = 0.0  # ... until this time.monotonic()
        self.drops = 0

    def fault(self, n):
        with self.lock:
            self.blob_bytes += n
            if self.drop_at is not None and self.blob_bytes >= self.drop_at and self.drops_left > 0:
                self.drops_left -= 1
                self.drops += 1
                return "drop"
            stall = self.stall_at is not None and self.blob_bytes >= self.stall_at
        if stall:
            time.sleep(max(0.0, self.stall_until - time.monotonic()))
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def ollama_bin():
    path = os.environ.get("OCE_HOST_OLLAMA")
    if not path:
        pytest.skip("OCE_HOST_OLLAMA is not set: run through rig/test (or export it) to test against a real Ollama")
    assert os.access(path, os.X_OK), f"OCE_HOST_OLLAMA={path} is not an executable: run rig/setup"
    return path


@pytest.fixture(scope="session")
def gguf():
    path = os.environ.get("OCE_GGUF")
    assert path and os.path.isfile(path), f"OCE_GGUF={path!r} is not a file: run rig/setup"
    return path


@pytest.fixture(scope="session")
def ollama(ollama_bin):
    """A private `ollama serve` on a free loopback port with a temporary models directory."""
    work = tempfile.mkdtemp(prefix="oce-ollama-")
    port = free_port()
    env = dict(
        os.environ,
        OLLAMA_HOST=f"127.0.0.1:{port}",
        OLLAMA_MODELS=os.path.join(work, "models"),
        OLLAMA_NO_CLOUD="1",
        HOME=work,
    )
    log_path = os.path.join(work, "serve.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([ollama_bin, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            http_json("GET", url + "/api/version", timeout=2)
            break
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                with open(log_path) as f:
                    raise AssertionError("ollama serve did not start: " + f.read()[-2000:]) from None
            time.sleep(0.2)
    yield type("Ollama", (), {"url": url, "models": env["OLLAMA_MODELS"], "log": log_path, "proc": proc})
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def registry_repo():
    """The registry repository holding the test model, pushed by rig/setup with the real ollama."""
    try:
        _registry("GET", "/v2/").close()
    except (urllib.error.URLError, OSError) as e:
        raise AssertionError(f"the rig's registry does not answer at {REGISTRY}: run rig/setup ({e})") from None
    assert manifest_exists(RIG_REPO, RIG_TAG), f"{RIG_REPO}:{RIG_TAG} is not in the registry: run rig/setup model"
    return RIG_REPO


@pytest.fixture(scope="session")
def shim_server():
    shim = RegistryShim(REGISTRY.split("://", 1)[1])
    yield shim
    shim.stop()


@pytest.fixture
def shim(shim_server):
    shim_server.reset()
    yield shim_server
    shim_server.reset()


@pytest.fixture
def model_name(shim, registry_repo):
    return f"{shim.host}/{registry_repo}:{RIG_TAG}"


@pytest.fixture
def clean(ollama):
    """Remove every model before the test, so each starts from an empty server."""
    for m in http_json("GET", ollama.url + "/api/tags")["models"]:
        http_json("DELETE", ollama.url + "/api/delete", {"model": m["name"]})
    blobs = os.path.join(ollama.models, "blobs")
    for name in os.listdir(blobs) if os.path.isdir(blobs) else ():
        if "-partial" in name:  # left by an interrupted pull; a test that wants a resume makes its own
            os.remove(os.path.join(blobs, name))
    return ollama
