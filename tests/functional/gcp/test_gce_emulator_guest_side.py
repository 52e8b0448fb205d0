"""The emulator as a guest sees it: the metadata server and Secret Manager's versions with IAM.

The simulated cloud (tests/functional/simcloud) DNATs each body's 169.254.169.254 to the emulator
and binds the body's address to its instance; here the test itself is the guest, from 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import metadata as guest
from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server

ZONE = "us-central1-a"
NODE_SA = f"oce-node@{server.SA_DOMAIN}"
OTHER_SA = f"other-app@{server.SA_DOMAIN}"
SECRET = f"projects/{server.PROJECT}/secrets/oce-t-tailscale"


def get(emu, path, headers=None):
    """(status, headers, body bytes) of a GET to the emulator."""
    request = urllib.request.Request(emu.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def post(emu, path, body, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    request = urllib.request.Request(emu.url + path, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metadata(emu, key):
    return get(emu, "/computeMetadata/v1/" + key, {"Metadata-Flavor": "Google"})


@pytest.fixture
def node(gce):
    """An instance running as oce-node@, whose body is this test (127.0.0.1)."""
    gce.add_subnetwork("us-central1", "us-central1-private")
    instance = gce.add_instance(ZONE, "oce-t-n1", "n1-standard-4", {"deployment": "t"}, {"user-data": "#cloud-config"})
    instance["serviceAccounts"] = [{"email": NODE_SA, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    gce.bind_body("127.0.0.1", ZONE, "oce-t-n1")
    return instance


def test_metadata_needs_the_flavor_header_as_google_does(gce, node):
    status, _headers, body = get(gce, "/computeMetadata/v1/instance/name")
    assert status == 403 and b"Metadata-Flavor" in body
    forwarded = {"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}
    assert get(gce, "/computeMetadata/v1/instance/name", forwarded)[0] == 403


def test_metadata_describes_the_calling_instance(gce, node):
    expected = {
        "instance/name": "oce-t-n1",
        "instance/id": node["id"],
        "instance/zone": f"projects/{guest.PROJECT_NUMBER}/zones/{ZONE}",
        "instance/hostname": f"oce-t-n1.{ZONE}.c.{server.PROJECT}.internal",
        "instance/attributes/user-data": "#cloud-config",
        "instance/service-accounts/default/email": NODE_SA,
        "project/project-id": server.PROJECT,
    }
    for key, value in expected.items():
        status, headers, body = metadata(gce, key)
        assert (status, body.decode()) == (200, value), key
        assert headers["Metadata-Flavor"] == "Google"
    status, headers, body = metadata(gce, "instance/service-accounts/default/token")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"access_token": "ya29.sim." + NODE_SA, "expires_in": 3599, "token_type": "Bearer"}


def test_an_instance_without_a_service_account_has_no_token(gce, node):
    node["serviceAccounts"] = []
    assert metadata(gce, "instance/service-accounts/default/token")[0] == 404
    assert metadata(gce, "instance/name")[0] == 200


def test_an_address_that_is_no_instance_gets_no_answer(gce, node):
    gce.unbind_body("127.0.0.1")
    status, _headers, body = metadata(gce, "instance/name")
    assert status == 404 and b"no instance is bound to 127.0.0.1" in body
    assert metadata(gce, "project/project-id")[0] == 200


def test_secret_access_follows_the_secrets_iam_policy(gce, node):
    gce.add_secret("oce-t-tailscale", members=[f"serviceAccount:{NODE_SA}"])
    # The deployer adds versions (any credentials but a metadata token are the deployer's).
    for value in (b"tskey-old", b"tskey-new"):
        status, version = post(gce, f"/secretmanager/v1/{SECRET}:addVersion", {"payload": {"data": b64(value)}})
        assert status == 200 and version["state"] == "ENABLED", version
    assert version["name"] == SECRET + "/versions/2"

    token = json.loads(metadata(gce, "instance/service-accounts/default/token")[2])["access_token"]
    status, answer = access(gce, "latest", token)
    assert status == 200 and base64.b64decode(answer["payload"]["data"]) == b"tskey-new"
    assert answer["name"] == SECRET + "/versions/2" and answer["payload"]["dataCrc32c"] == str(
        server.crc32c(b"tskey-new")
    )
    assert base64.b64decode(access(gce, "1", token)[1]["payload"]["data"]) == b"tskey-old"

    # Another instance's account is refused, in google.rpc form; and so is adding a version.
    status, refused = access(gce, "latest", "ya29.sim." + OTHER_SA)
    assert status == 403 and refused["error"]["status"] == "PERMISSION_DENIED"
    assert "secretmanager.versions.access" in refused["error"]["message"]
    status, refused = post(gce, f"/secretmanager/v1/{SECRET}:addVersion", {"payload": {"data": b64(b"x")}}, token)
    assert status == 403 and refused["error"]["status"] == "PERMISSION_DENIED"


def test_a_project_wide_grant_lets_an_account_read_every_secret(gce, node):
    gce.add_secret("oce-t-tailscale")
    gce.add_secret_version("oce-t-tailscale", "tskey-1")
    assert access(gce, "latest", "ya29.sim." + NODE_SA)[0] == 403
    gce.project_policy["bindings"].append(
        {"role": "roles/secretmanager.secretAccessor", "members": [f"serviceAccount:{NODE_SA}"]}
    )
    assert access(gce, "latest", "ya29.sim." + NODE_SA)[0] == 200


def test_missing_versions_and_secrets_are_not_found(gce, node):
    gce.add_secret("oce-t-tailscale")
    status, missing = access(gce, "latest")
    assert status == 404 and missing["error"]["status"] == "NOT_FOUND"
    assert access(gce, "7")[0] == 404
    status, missing = get_json(gce, f"/secretmanager/v1/projects/{server.PROJECT}/secrets/nope/versions/latest:access")
    assert status == 404 and missing["error"]["status"] == "NOT_FOUND"


def test_a_payload_whose_checksum_is_wrong_is_refused(gce, node):
    gce.add_secret("oce-t-tailscale")
    body = {"payload": {"data": b64(b"tskey"), "dataCrc32c": "1"}}
    status, refused = post(gce, f"/secretmanager/v1/{SECRET}:addVersion", body)
    assert status == 400 and refused["error"]["status"] == "INVALID_ARGUMENT"
    good = {"payload": {"data": b64(b"tskey"), "dataCrc32c": str(server.crc32c(b"tskey"))}}
    status, version = post(gce, f"/secretmanager/v1/{SECRET}:addVersion", good)
    assert status == 200 and version["clientSpecifiedPayloadChecksum"] is True


def test_crc32c_is_castagnoli():
    # The check value of CRC-32C (RFC 3720, B.4).
    assert server.crc32c(b"123456789") == 0xE3069283


def b64(data):
    return base64.b64encode(data).decode()


def get_json(emu, path, token=None):
    status, _headers, body = get(emu, path, {"Authorization": "Bearer " + token} if token else {})
    return status, json.loads(body)


def access(emu, version, token=None):
    return get_json(emu, f"/secretmanager/v1/{SECRET}/versions/{version}:access", token)
