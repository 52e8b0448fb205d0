"""cloud=aws on the simulated cloud, a node the tailnet refuses: its stored key is one the control
server does not know. The node boots a stock image and reads the key as any other, never joins;
site.yml stops at its deadline and says what to check, and destroy.yml still removes everything.

rig/test's simcloud stage runs it after the AWS end to end (test_site_aws_simcloud.py), in the half
beside GCP's. Needs the rig and root (skips otherwise); every wait is bounded, and the test removes
what it made, in moto, podman and Headscale.
"""

from __future__ import annotations

import re
import time

from .aws_account import ours, store_key
from .site_runner import SiteRunner, flat

# The node role's wait for the tailnet (roles/node/tasks/tailnet.yml): one look every 5 s.
WAIT_TASK = "Ask the controller's tailscaled for the tailnet's nodes"


def first_boot_journal(bodies, name, timeout=180):
    """The first-boot unit's journal once it has reported its first failure: the controller's 45 s
    count from the start of configure.yml, and a body booting slowly (a loaded machine) may still
    be reading its key then. Bounded: after ``timeout`` the journal is returned as it is."""
    deadline = time.monotonic() + timeout
    while True:
        journal = bodies.exec(name, "journalctl", "-u", "oce-first-boot", "--no-pager", check=False).stdout
        if "oce-first-boot: FAILED" in journal or time.monotonic() > deadline:
            return journal
        time.sleep(2)


def test_a_node_whose_key_the_tailnet_refuses_fails_configure_in_time_and_destroy_cleans_up(
    simcloud_aws, headscale, controller_tailnet, ssh_key
):
    """A stored key the control server does not know (a missing one fails before anything is
    created): the node never joins; the run stops at its deadline and says what to check, and
    destroy still removes everything."""
    cloud, deployment = simcloud_aws, "sim-nokey"
    store_key(cloud, deployment, "tskey-auth-" + "0" * 48)
    site = SiteRunner(
        "aws", deployment, cloud.env, controller_tailnet, ssh_key,
        {"node_aws_image": cloud.ami, "node_tailnet_join_timeout": 45},
    )  # fmt: skip
    try:
        out, _seconds = site.run("site.yml", ok=False)
        # In time: the controller asked its tailscaled every 5 s until the 45 s were up (nine
        # retries after the first look, counted rather than timed), and stopped there.
        assert out.count(f"RETRYING: [localhost]: {WAIT_TASK} (") == 45 // 5, out[-4000:]
        text = flat(out)
        assert "oce-sim-nokey (ID i-" in text and "did not come online on the tailnet within 45 s" in text
        assert "get-console-output" in text and "oce/sim-nokey/tailscale" in text
        assert re.search(r"get-console-output --latest --output text --region us-east-1 --instance-id i-\w+", text)
        # The node says why on its console: it read the key, and the control server refused it.
        journal = first_boot_journal(cloud.bodies, f"oce-{deployment}")
        assert "reading the tailnet key from aws_secretsmanager oce/sim-nokey/tailscale" in journal, journal
        assert "oce-first-boot: FAILED: tailscale up (is the key valid, reusable and allowed the tags?)" in journal
    finally:
        gone, _seconds = site.run("playbooks/destroy.yml", ok=False)
        cloud.bodies.settle()
    assert "failed=0" in gone, gone[-4000:]
    assert ours(cloud, deployment) == {"instances": [], "vpcs": []}
    assert headscale.nodes_named(f"oce-{deployment}") == []
