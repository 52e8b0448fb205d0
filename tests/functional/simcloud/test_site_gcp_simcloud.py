"""cloud=gcp end to end on the simulated cloud: `site.yml` from nothing to the model's answer, fetched
from this controller through the node's tailnet URL.

The GCE emulator keeps the API side (held to Google's discovery documents); every VM it runs gets a
body that boots the VM's `user-data` metadata with Debian's cloud-init, takes its service account's
token from the emulator's metadata server at 169.254.169.254 and reads its key from the emulator's
Secret Manager, which checks that account's IAM binding (the one gcp_node_identity made). Needs the
rig and root (skips otherwise); every wait is bounded, and the test removes what it made.
"""

from __future__ import annotations

from .site_runner import SiteRunner, destroyed, lifecycle

UBUNTU = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"


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
    headscale.delete_nodes(names=[f"oce-{deployment}"])
    # What a user does once: the tailnet key in Secret Manager (gcloud secrets create ...).
    emu.add_secret(f"oce-{deployment}-tailscale", members=["user:ops@example.com"])
    emu.add_secret_version(f"oce-{deployment}-tailscale", headscale.preauth_key(tags=["tag:ollama"]))
    extra = {"node_gcp_image": UBUNTU, "node_gcp_secret_endpoint": emu.url + "/secretmanager"}
    site = SiteRunner("gcp", deployment, simcloud_gcp.env, controller_tailnet, ssh_key, extra)
    try:
        lifecycle(site, simcloud_gcp.bodies, controller_tailnet, headscale, record_property)
    finally:
        destroyed(site, simcloud_gcp.bodies, headscale)
    assert ours(emu, deployment) == {"instances": [], "networks": [], "service_accounts": []}
