"""cloud=aws end to end on the simulated cloud: `site.yml` from nothing to the model's answer, fetched
from this controller through the node's tailnet URL.

moto keeps the API side; every instance it runs gets a body that boots the instance's own user data
with Debian's cloud-init, reads its key from moto's Secrets Manager with the role credentials moto's
IMDS gives it at 169.254.169.254, and joins the rig's Headscale over a real TUN device. The
controller reaches the tailnet through a userspace tailscaled. Needs the rig and root (skips
otherwise); every wait is bounded, and each test removes what it made, in moto, podman and Headscale.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import pytest

from .site_runner import SiteRunner, changed_tasks, flat, recap

MODEL = "gemma3:270m"


@pytest.fixture
def ssh_key(tmp_path):
    path = str(tmp_path / "oce_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


def store_key(cloud, deployment, key):
    """What a user does once: the tailnet key in Secrets Manager, under the name the node reads."""
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=cloud.url)
    client.create_secret(Name=f"oce/{deployment}/tailscale", SecretString=key)


def via_tailnet(controller, url, body=None, timeout=30):
    """A request from this controller over the tailnet (tailscaled's HTTP proxy), as a client sends it."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": controller.http_proxy}))
    data = json.dumps(body).encode() if body is not None else None
    with opener.open(urllib.request.Request(url, data=data), timeout=timeout) as response:
        return json.loads(response.read())


def ollama_url_of(out):
    """The tailnet URL ask.yml printed for the node."""
    for word in flat(out).split():
        if word.startswith("(http://100.") and word.endswith(":11434)"):
            return word.strip("()")
    raise AssertionError("no tailnet URL in the output:\n" + out[-3000:])


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


def body_address(cloud, deployment):
    (iid,) = ours(cloud, deployment)["instances"]
    return iid, cloud.bodies.body(iid).ip


def refused_outside_the_tailnet(ip):
    """The node's VPC address: the host firewall drops the API (a timeout, not an answer)."""
    try:
        urllib.request.urlopen(f"http://{ip}:11434/api/version", timeout=3)  # noqa: S310
    except (urllib.error.URLError, TimeoutError, OSError):
        return True
    return False


def test_site_from_nothing_to_an_answer_then_rerun_stop_start_destroy(
    simcloud_aws, headscale, controller_tailnet, ssh_key, record_property
):
    cloud, deployment = simcloud_aws, "sim-aws"
    hostname = f"oce-{deployment}"
    headscale.delete_nodes(names=[hostname])  # from an earlier, interrupted run
    store_key(cloud, deployment, headscale.preauth_key(tags=["tag:ollama"]))
    site = SiteRunner("aws", deployment, cloud.env, controller_tailnet, ssh_key, {"node_aws_image": cloud.ami})
    try:
        out, seconds = site.run("site.yml")
        record_property("site_stock_seconds", round(seconds, 1))
        print(f"\n[simcloud] aws site.yml from nothing to the answer: {seconds:.0f}s")
        url = ollama_url_of(out)
        assert f"{MODEL} on {hostname} ({url}) answered" in flat(out)

        # The node joined by itself under its name, tagged by its key; one node, not ephemeral.
        (node,) = headscale.nodes_named(hostname)
        assert node["tags"] == ["tag:ollama"] and node["online"]
        # Ollama answers on the tailnet to the model's canonical name, and not on the VPC address.
        tags = via_tailnet(controller_tailnet, url + "/api/tags")
        assert MODEL in [m["name"] for m in tags["models"]]
        iid, ip = body_address(cloud, deployment)
        assert refused_outside_the_tailnet(ip)
        assert cloud.bodies.exec(iid, "ip", "-o", "link", "show", "tailscale0").returncode == 0

        # A converged rerun changes nothing, on the controller or on the node.
        again, _ = site.run("site.yml")
        assert recap(again) == {"localhost": (0, 0, 0), hostname: (0, 0, 0)}, changed_tasks(again)

        # Stop and start: the same tailnet node answers, with its model, and no new key was needed.
        site.run("playbooks/stop.yml")
        cloud.bodies.settle()
        site.run("playbooks/start.yml")
        cloud.bodies.settle()
        configured, _ = site.run("playbooks/configure.yml")
        assert recap(configured)[hostname] == (0, 0, 0), changed_tasks(configured)
        (after,) = headscale.nodes_named(hostname)
        assert after["id"] == node["id"] and after["online"]
        answer = via_tailnet(
            controller_tailnet, url + "/api/generate", {"model": MODEL, "prompt": "The sky is", "stream": False,
                                                       "options": {"num_predict": 8}}, timeout=300,
        )  # fmt: skip
        assert answer["response"].strip()
    finally:
        gone, _ = site.run("playbooks/destroy.yml", ok=False)
        cloud.bodies.settle()
    assert "failed=0" in gone, gone[-4000:]
    assert ours(cloud, deployment) == {"instances": [], "vpcs": []}
    assert cloud.bodies.bodies == {}
    # Logged out before it went: Headscale has expired it (or it is gone).
    # Logged out before it went. Headscale 0.29 keeps a tagged node after logout (tagged nodes
    # never expire): it is offline, its key no longer valid; its admin deletes it, as here.
    assert "Log the node out of the tailnet" in gone and f"changed: [{hostname}]" in gone, gone[-4000:]
    assert not any(n.get("online") for n in headscale.nodes_named(hostname))
    headscale.delete_nodes(names=[hostname])


def test_a_node_that_cannot_read_its_key_fails_configure_in_time_and_destroy_cleans_up(
    simcloud_aws, headscale, controller_tailnet, ssh_key
):
    """No key in the secret store: the node never joins; the run stops at its deadline and says
    what to check, and destroy still removes everything."""
    cloud, deployment = simcloud_aws, "sim-nokey"
    site = SiteRunner(
        "aws", deployment, cloud.env, controller_tailnet, ssh_key,
        {"node_aws_image": cloud.ami, "node_tailnet_join_timeout": 45},
    )  # fmt: skip
    try:
        started = time.monotonic()
        out, _ = site.run("site.yml", ok=False)
        assert time.monotonic() - started < 400
        text = flat(out)
        assert "oce-sim-nokey (ID i-" in text and "did not come online on the tailnet within 45 s" in text
        assert "get-console-output" in text and "oce/sim-nokey/tailscale" in text
        # The node says why on its console: the secret store's own answer.
        iid, _ip = body_address(cloud, deployment)
        journal = cloud.bodies.exec(iid, "journalctl", "-u", "oce-first-boot", "--no-pager", check=False).stdout
        assert "oce-first-boot: FAILED: reading oce/sim-nokey/tailscale from Secrets Manager" in journal, journal
    finally:
        gone, _ = site.run("playbooks/destroy.yml", ok=False)
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
                try:
                    body = {"model": MODEL, "prompt": "The sky is", "stream": False, "options": {"num_predict": 8}}
                    answer = via_tailnet(controller_tailnet, url + "/api/generate", body, timeout=120)
                except (urllib.error.URLError, OSError):
                    pass
            if answer is None:
                time.sleep(3)
        seconds = time.monotonic() - started
        record_property("create_to_answer_golden_seconds", round(seconds, 1))
        print(f"\n[simcloud] aws golden image: create to the first answer on the tailnet in {seconds:.0f}s")
        assert answer and answer["response"].strip(), "no answer on the tailnet within 300 s"
    finally:
        gone, _ = site.run("playbooks/destroy.yml", ok=False)
        cloud.bodies.settle()
        headscale.delete_nodes(names=[hostname])
    assert "failed=0" in gone, gone[-4000:]
    assert ours(cloud, deployment)["instances"] == []
    assert cloud.bodies.bodies == {}
