"""The GCE emulator on 127.0.0.1 for the GCP modules, with anonymous credentials by default.

Every test ends by asserting that neither our requests nor the emulator's responses broke the
official discovery documents (compute.v1; iam.v1, cloudresourcemanager.v1 and secretmanager.v1 for
the node identity): the emulator records each violation.
"""

from __future__ import annotations

import json
import os
import subprocess
import types

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import gcp
from ansible_collections.ollama_cloud.engine.tests.emulators.gce import schema, server


@pytest.fixture(scope="session")
def discovery():
    return schema.Discovery()


@pytest.fixture(scope="session")
def gce_server(discovery):
    emu = server.Emulator(discovery)
    yield emu
    emu.stop()


@pytest.fixture
def gce(gce_server, monkeypatch, tmp_path):
    """A fresh emulator state; the process environment cannot reach real Google credentials."""
    for key in list(os.environ):
        if key.startswith(("GCP_", "GOOGLE_", "CLOUDSDK_", "OCE_GCE_")):
            monkeypatch.delenv(key)
    # google-auth must not find a gcloud config or probe the metadata server (169.254.169.254).
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("GCP_PROJECT", server.PROJECT)
    monkeypatch.setenv("OCE_GCE_ENDPOINT", gce_server.endpoint)
    # Fast polls and backoff: the emulator's operations finish in a few polls.
    monkeypatch.setattr(gcp, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(gcp, "RETRY_BASE", 0.01)
    monkeypatch.setattr(gcp, "RETRY_CAP", 0.08)
    gce_server.reset()
    yield gce_server
    assert gce_server.violations == [], "\n".join(gce_server.violations)


@pytest.fixture
def sa_key(gce, tmp_path):
    """A service account key whose token endpoint is the emulator (a real RSA key signs the JWT)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": server.PROJECT,
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": "oce-deployer@oce-test.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": gce.token_uri,
            }
        )
    )
    return types.SimpleNamespace(path=str(path), pem=pem)


@pytest.fixture(scope="module")
def gce_cli(discovery, tmp_path_factory):
    """An emulator for ansible-playbook and ansible-inventory run as a user runs them (subprocesses).

    Operations finish on their first poll (op_steps=1), since the modules' poll interval cannot be
    lowered in another process. The environment has no way to real Google credentials.
    """
    emu = server.Emulator(discovery, op_steps=1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCP_", "GOOGLE_", "CLOUDSDK_", "OCE_GCE_"))}
    env.update(
        OCE_GCE_ENDPOINT=emu.endpoint,
        GCP_PROJECT=server.PROJECT,
        GCP_AUTH_KIND="anonymous",
        CLOUDSDK_CONFIG=str(tmp_path_factory.mktemp("gcloud")),
        NO_GCE_CHECK="True",
        GCE_METADATA_HOST="127.0.0.1:9",
        GCE_METADATA_IP="127.0.0.1:9",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="false",
    )
    emu.cli_env = env
    # The controller's key for the nodes' user (node_ssh_key_file), made once, outside ~/.ssh.
    emu.ssh_key = str(tmp_path_factory.mktemp("ssh") / "oce_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", emu.ssh_key], check=True)
    yield emu
    emu.stop()
    assert emu.violations == [], "\n".join(emu.violations)
