#!/usr/bin/env python3
"""Model pull throughput from the rig's private registry: Ollama's /api/pull vs curl of the same blob.

Starts a throwaway `ollama serve` on loopback with an empty models dir, pulls the test model
from the registry, then downloads the model's largest blob with curl. Prints MB/s of each and
the ratio. Run after `rig/setup`: `eval "$(rig/setup --env)"; python bench/pull_throughput.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

REGISTRY = "127.0.0.1:%s" % os.environ.get("OCE_REGISTRY_PORT", "5000")
MODEL = "%s/library/%s" % (REGISTRY, os.environ.get("OCE_TEST_MODEL", "gemma3:270m"))
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("ollama did not answer at %s" % url)


def ollama_pull(base):
    """Seconds for the whole pull, and per layer digest the seconds from its first to last byte."""
    body = json.dumps({"model": MODEL, "insecure": True, "stream": True}).encode()
    req = urllib.request.Request(base + "/api/pull", data=body, headers={"Content-Type": "application/json"})
    start = time.monotonic()
    first, done = {}, {}
    with urllib.request.urlopen(req, timeout=600) as resp:
        for line in resp:
            msg = json.loads(line)
            if "error" in msg:
                raise SystemExit("pull failed: %s" % msg["error"])
            digest, now = msg.get("digest"), time.monotonic()
            if digest and msg.get("total"):
                first.setdefault(digest, now)
                if msg.get("completed", 0) >= msg["total"]:
                    done.setdefault(digest, now)
    layers = {d: done[d] - first[d] for d in done if d in first}
    return time.monotonic() - start, layers


def largest_blob():
    repo, tag = MODEL.split("/", 1)[1].rsplit(":", 1)
    req = urllib.request.Request(
        "http://%s/v2/%s/manifests/%s" % (REGISTRY, repo, tag), headers={"Accept": MANIFEST_TYPE}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        manifest = json.load(resp)
    layer = max(manifest["layers"], key=lambda entry: entry["size"])
    total = sum(entry["size"] for entry in manifest["layers"]) + manifest["config"]["size"]
    return "http://%s/v2/%s/blobs/%s" % (REGISTRY, repo, layer["digest"]), layer["size"], total


def curl_seconds(url):
    start = time.monotonic()
    # -L: the registry redirects blob reads to its blob store, as Ollama expects.
    subprocess.run(["curl", "-fsSL", "-o", os.devnull, url], check=True)
    return time.monotonic() - start


def main():
    binary = os.environ["OCE_HOST_OLLAMA"]
    port = free_port()
    models = tempfile.mkdtemp(prefix="oce-bench-models-")
    env = dict(os.environ, OLLAMA_HOST="127.0.0.1:%d" % port, OLLAMA_MODELS=models, OLLAMA_NO_CLOUD="1")
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = "http://127.0.0.1:%d" % port
        wait_for(base + "/api/version")
        pull_s, layers = ollama_pull(base)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(models, ignore_errors=True)
    blob_url, blob_size, total = largest_blob()
    digest = blob_url.rsplit("/", 1)[1]
    blob_s = layers.get(digest) or pull_s
    curl_s = min(curl_seconds(blob_url) for _ in range(3))
    blob_rate = blob_size / blob_s / 1e6
    curl_rate = blob_size / curl_s / 1e6
    print("model              %s (%.1f MB, %d layers)" % (MODEL, total / 1e6, len(layers)))
    print(
        "ollama /api/pull   %.2f s whole pull, %.1f MB/s (Ollama starts layers about 1 s apart)"
        % (pull_s, total / pull_s / 1e6)
    )
    print("ollama blob        %.2f s  %.1f MB/s (first to last byte, as streamed)" % (blob_s, blob_rate))
    print("curl largest blob  %.2f s  %.1f MB/s (best of 3, %.1f MB)" % (curl_s, curl_rate, blob_size / 1e6))
    print(
        "ratio pull/curl    %.2f (largest blob)   %.2f (whole pull)"
        % (blob_rate / curl_rate, total / pull_s / 1e6 / curl_rate)
    )


if __name__ == "__main__":
    main()
