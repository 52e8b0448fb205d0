"""MotoServer on another address than 127.0.0.1, and the IMDS it serves there (the simulated cloud's)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from ansible_collections.ollama_cloud.engine.tests.functional.moto_server import MotoServer


@pytest.fixture(scope="module")
def moto_elsewhere():
    # 127.0.0.2 is loopback too, but not the default: proves the address is the one asked for.
    try:
        server = MotoServer(host="127.0.0.2")
    except FileNotFoundError as e:
        pytest.skip(str(e))
    yield server
    server.stop()


def call(url, method="GET", headers=None):
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=b"" if method == "PUT" else None)
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.read().decode()


def test_listens_on_the_address_asked_for(moto_elsewhere):
    assert moto_elsewhere.url == "http://127.0.0.2:%d" % moto_elsewhere.port
    assert moto_elsewhere.host == "127.0.0.2"
    moto_elsewhere.reset()


def test_serves_imdsv2_as_a_guest_asks_for_it(moto_elsewhere):
    # What node_secrets does on a node: token by PUT, then the role and its credentials.
    base = moto_elsewhere.url
    token = call(base + "/latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": "300"})
    assert token
    headers = {"X-aws-ec2-metadata-token": token, "Host": "169.254.169.254"}
    role = call(base + "/latest/meta-data/iam/security-credentials/", headers=headers).split("\n")[0]
    creds = json.loads(call(base + "/latest/meta-data/iam/security-credentials/" + role, headers=headers))
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(creds)
    assert call(base + "/latest/meta-data/placement/region", headers=headers) == "us-east-1"
