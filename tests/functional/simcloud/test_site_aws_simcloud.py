"""cloud=aws end to end on the simulated cloud: `site.yml` from nothing to the model's answer, fetched
from this controller through the node's tailnet URL.

moto keeps the API side; every instance it runs gets a body that boots the instance's own user data
with Debian's cloud-init, reads its key from moto's Secrets Manager with the role credentials moto's
IMDS gives it at 169.254.169.254, and joins the rig's Headscale over a real TUN device. The
controller reaches the tailnet through a userspace tailscaled. Needs the rig and root (skips
otherwise); every wait is bounded, and each test removes what it made, in moto, podman and Headscale.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error

import boto3
import pytest

from .site_runner import SiteRunner, destroyed, flat, generate, lifecycle


@pytest.fixture
def ssh_key(tmp_path):
    path = str(tmp_path / "oce_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


def store_key(cloud, deployment, key):
    """What a user does once: the tailnet key in Secrets Manager, under the name the node reads."""
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=cloud.url)
    client.create_secret(Name=f"oce/{deployment}/tailscale", SecretString=key)


def ours(cloud, deployment):
    ec2 = cloud.ec2
    tag = [{"Name": "tag:oce-deployment", "Values": [deployment]}]
    live = [
        i["InstanceId"]
        for r in ec2.describe_instances(Filters=tag)["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    return {"instances": live, "vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tag)["Vpcs"]]}


def test_site_from_nothing_to_an_answer_then_rerun_stop_start_destroy(
    simcloud_aws, headscale, controller_tailnet, ssh_key, record_property
):
    cloud, deployment = simcloud_aws, "sim-aws"
    headscale.delete_nodes(names=[f"oce-{deployment}"])  # from an earlier, interrupted run
    store_key(cloud, deployment, headscale.preauth_key(tags=["tag:ollama"]))
    site = SiteRunner("aws", deployment, cloud.env, controller_tailnet, ssh_key, {"node_aws_image": cloud.ami})
    try:
        lifecycle(site, cloud.bodies, controller_tailnet, headscale, record_property)
    finally:
        destroyed(site, cloud.bodies, headscale)
    assert ours(cloud, deployment) == {"instances": [], "vpcs": []}


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
        started = time.monotonic()
        out, _seconds = site.run("site.yml", ok=False)
        assert time.monotonic() - started < 400
        text = flat(out)
        assert "oce-sim-nokey (ID i-" in text and "did not come online on the tailnet within 45 s" in text
        assert "get-console-output" in text and "oce/sim-nokey/tailscale" in text
        # The node says why on its console: it read the key, and the control server refused it.
        journal = cloud.bodies.exec(
            f"oce-{deployment}", "journalctl", "-u", "oce-first-boot", "--no-pager", check=False
        ).stdout
        assert "reading the tailnet key from aws_secretsmanager oce/sim-nokey/tailscale" in journal, journal
        assert "oce-first-boot: FAILED: tailscale up (is the key valid, reusable and allowed the tags?)" in journal
    finally:
        gone, _seconds = site.run("playbooks/destroy.yml", ok=False)
        cloud.bodies.settle()
    assert "failed=0" in gone, gone[-4000:]
    assert ours(cloud, deployment) == {"instances": [], "vpcs": []}
    assert headscale.nodes_named(f"oce-{deployment}") == []


def test_a_node_from_the_golden_image_answers_on_the_tailnet_without_configure(
    simcloud_aws, golden_image, headscale, controller_tailnet, ssh_key, record_property
):
    cloud, deployment = simcloud_aws, "sim-gold"
    hostname = f"oce-{deployment}"
    headscale.delete_nodes(names=[hostname])
    # The image Packer would have registered, with the tags image=golden looks for.
    ami = cloud.ec2.register_image(
        Name="oce-node-sim", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}}],
    )["ImageId"]  # fmt: skip
    cloud.ec2.create_tags(Resources=[ami], Tags=[{"Key": "oce-image", "Value": "ollama-node"}])
    cloud.bodies.image_for = {ami: golden_image}
    store_key(cloud, deployment, headscale.preauth_key(tags=["tag:ollama"]))
    site = SiteRunner("aws", deployment, cloud.env, controller_tailnet, ssh_key, {"node_aws_image": "golden"})
    try:
        started = time.monotonic()
        site.run("playbooks/create.yml")
        cloud.bodies.settle()
        # No configure.yml: first boot alone joins the tailnet and pulls the model.
        answer, deadline = None, time.monotonic() + 300
        while answer is None and time.monotonic() < deadline:
            peer = next(
                (p for p in (controller_tailnet.status().get("Peer") or {}).values() if p["HostName"] == hostname), None
            )
            if peer and peer.get("Online"):
                url = f"http://{peer['TailscaleIPs'][0]}:11434"
                with contextlib.suppress(urllib.error.URLError, OSError):
                    answer = generate(controller_tailnet, url, timeout=120)
            if answer is None:
                time.sleep(3)
        seconds = time.monotonic() - started
        record_property("create_to_answer_golden_seconds", round(seconds, 1))
        print(f"\n[simcloud] aws golden image: create to the first answer on the tailnet in {seconds:.0f}s")
        assert answer and answer["response"].strip(), "no answer on the tailnet within 300 s"
    finally:
        gone, _seconds = site.run("playbooks/destroy.yml", ok=False)
        cloud.bodies.settle()
        headscale.delete_nodes(names=[hostname])
    assert "failed=0" in gone, gone[-4000:]
    assert ours(cloud, deployment)["instances"] == []
    assert cloud.bodies.bodies == {}
