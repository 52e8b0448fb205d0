"""cloud=gcp end to end on the simulated cloud: `site.yml` from nothing to the model's answer, fetched
from this controller through the node's tailnet URL.

The GCE emulator keeps the API side (held to Google's discovery documents); every VM it runs gets a
body that boots the VM's `user-data` metadata with Debian's cloud-init, takes its service account's
token from the emulator's metadata server at 169.254.169.254 and reads its key from the emulator's
Secret Manager, which checks that account's IAM binding (the one gcp_node_identity made). Needs the
rig and root (skips otherwise); every wait is bounded, and the test removes what it made.
"""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server as gce_server

from .site_runner import SiteRunner, changed_tasks, flat, recap
from .test_site_aws_simcloud import MODEL, ollama_url_of, refused_outside_the_tailnet, via_tailnet

UBUNTU = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"


@pytest.fixture
def ssh_key(tmp_path):
    path = str(tmp_path / "oce_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


def ours(emu, deployment):
    with emu.lock:
        return {
            "instances": [n for (_z, n), v in emu.instances.items() if v["labels"].get("oce-deployment") == deployment],
            "networks": [n for n in emu.networks if n.startswith(f"oce-{deployment}")],
            "service_accounts": [e for e in emu.service_accounts if e.startswith(f"oce-{deployment}-node@")],
        }


def test_site_from_nothing_to_an_answer_then_rerun_stop_start_destroy(
    simcloud_gcp, headscale, controller_tailnet, ssh_key, record_property
):
    emu, deployment = simcloud_gcp.emu, "sim-gcp"
    hostname = f"oce-{deployment}"
    headscale.delete_nodes(names=[hostname])
    # What a user does once: the tailnet key in Secret Manager (gcloud secrets create ...).
    emu.add_secret(f"oce-{deployment}-tailscale", members=["user:ops@example.com"])
    emu.add_secret_version(f"oce-{deployment}-tailscale", headscale.preauth_key(tags=["tag:ollama"]))
    extra = {"node_gcp_image": UBUNTU, "node_gcp_secret_endpoint": emu.url + "/secretmanager"}
    site = SiteRunner("gcp", deployment, simcloud_gcp.env, controller_tailnet, ssh_key, extra)
    try:
        out, seconds = site.run("site.yml")
        record_property("site_stock_seconds", round(seconds, 1))
        print(f"\n[simcloud] gcp site.yml from nothing to the answer: {seconds:.0f}s")
        url = ollama_url_of(out)
        assert f"{MODEL} on {hostname} ({url}) answered" in flat(out)
        (node,) = headscale.nodes_named(hostname)
        assert node["tags"] == ["tag:ollama"] and node["online"]
        tags = via_tailnet(controller_tailnet, url + "/api/tags")
        assert MODEL in [m["name"] for m in tags["models"]]
        assert refused_outside_the_tailnet(simcloud_gcp.bodies.body(hostname).ip)

        again, _ = site.run("site.yml")
        assert recap(again) == {"localhost": (0, 0, 0), hostname: (0, 0, 0)}, changed_tasks(again)

        site.run("playbooks/stop.yml")
        simcloud_gcp.bodies.settle()
        site.run("playbooks/start.yml")
        simcloud_gcp.bodies.settle()
        configured, _ = site.run("playbooks/configure.yml")
        assert recap(configured)[hostname] == (0, 0, 0), changed_tasks(configured)
        (after,) = headscale.nodes_named(hostname)
        assert after["id"] == node["id"] and after["online"]
        body = {"model": MODEL, "prompt": "The sky is", "stream": False, "options": {"num_predict": 8}}
        assert via_tailnet(controller_tailnet, url + "/api/generate", body, timeout=300)["response"].strip()
    finally:
        gone, _ = site.run("playbooks/destroy.yml", ok=False)
        simcloud_gcp.bodies.settle()
    assert "failed=0" in gone, gone[-4000:]
    assert ours(emu, deployment) == {"instances": [], "networks": [], "service_accounts": []}
    assert simcloud_gcp.bodies.bodies == {}
    # Logged out before it went. Headscale 0.29 keeps a tagged node after logout (tagged nodes
    # never expire): it is offline, its key no longer valid; its admin deletes it, as here.
    assert "Log the node out of the tailnet" in gone and f"changed: [{hostname}]" in gone, gone[-4000:]
    assert not any(n.get("online") for n in headscale.nodes_named(hostname))
    headscale.delete_nodes(names=[hostname])
    assert gce_server.PROJECT  # the emulator's project held every call (violations checked by the fixture)
