"""cloud=aws end to end on the simulated cloud, from the golden image: the node answers on the tailnet
after first boot alone, then `site.yml` configures it to the model's answer, fetched from this
controller through the node's tailnet URL; stop/start, a converged rerun, destroy.

moto keeps the API side; every instance it runs gets a body that boots the instance's own user data
with Debian's cloud-init, reads its key from moto's Secrets Manager with the role credentials moto's
IMDS gives it at 169.254.169.254, and joins the rig's Headscale over a real TUN device. The
controller reaches the tailnet through a userspace tailscaled. Needs the rig and root (skips
otherwise); every wait is bounded, and each test removes what it made, in moto, podman and Headscale.

`site.yml` from nothing (a stock image: first boot installs Tailscale, configure installs the rest)
is test_site_gcp_simcloud.py; the same roles and bodies, so each path runs once. An AWS node from a
stock image whose key the tailnet refuses is test_site_aws_refused_simcloud.py.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error

from ansible_collections.ollama_cloud.engine.plugins.module_utils import ollama_api

from .aws_account import ours, store_key
from .site_runner import MODEL, SiteRunner, destroyed, generate, lifecycle, on_tailnet


def test_a_golden_image_node_answers_without_configure_then_site_rerun_stop_start_destroy(
    simcloud_aws, golden_image, headscale, controller_tailnet, ssh_key, record_property
):
    cloud, deployment = simcloud_aws, "sim-gold"
    hostname = f"oce-{deployment}"
    headscale.delete_nodes(names=[hostname])
    # The image Packer would have registered under a name of its own (image_name), which the node
    # role's node_image_name selects.
    ami = cloud.ec2.register_image(
        Name="oce-node-sim", RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 30, "VolumeType": "gp3"}}],
    )["ImageId"]  # fmt: skip
    cloud.ec2.create_tags(Resources=[ami], Tags=[{"Key": "oce-image", "Value": "ollama-node-sim"}])
    cloud.bodies.image_for = {ami: golden_image}
    store_key(cloud, deployment, headscale.preauth_key(tags=["tag:ollama"]))
    site = SiteRunner(
        "aws",
        deployment,
        cloud.env,
        controller_tailnet,
        ssh_key,
        {"node_aws_image": "golden", "node_image_name": "ollama-node-sim"},
    )
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
                # Asked only once the model is there, read with a short timeout: a new peer's first
                # connection through the controller's userspace tailscaled can hang until its way to
                # the node is made, and one generate waiting 120 s on it was a failure (seen alone).
                listed = []
                with contextlib.suppress(ollama_api.OllamaError, urllib.error.URLError, OSError):
                    listed = [m["name"] for m in on_tailnet(controller_tailnet, url, timeout=10).tags()]
                if MODEL in listed:
                    answer = generate(controller_tailnet, url, timeout=120)
            if answer is None:
                time.sleep(3)
        seconds = time.monotonic() - started
        record_property("create_to_answer_golden_seconds", round(seconds, 1))
        print(f"\n[simcloud] aws golden image: create to the first answer on the tailnet in {seconds:.0f}s")
        assert answer and answer["response"].strip(), "no answer on the tailnet within 300 s"
        # The image's CloudWatch agent configuration named the log group of the build's deployment
        # (demo); first boot pointed it at this one's, the only one the node's role may write, and
        # applied it (the agent's stand-in records the call).
        (iid,) = ours(cloud, deployment)["instances"]
        agent = json.loads(cloud.bodies.exec(iid, "cat", "/etc/oce/cloudwatch-agent.json").stdout)
        groups = {f["log_group_name"] for f in agent["logs"]["logs_collected"]["files"]["collect_list"]}
        assert groups == {f"/oce/{deployment}"}
        applied = cloud.bodies.exec(iid, "sh", "-c", "sleep 2; cat /var/lib/oce-test/ctl-calls; ls /var/lib/oce").stdout
        assert "-a fetch-config -m ec2 -c file:/etc/oce/cloudwatch-agent.json -s" in applied, applied
        assert "cloudwatch-agent-config.applied" in applied, applied
        # Then the headline command on it: configure over the tailnet, the answer, stop/start, a
        # converged rerun.
        lifecycle(site, cloud.bodies, controller_tailnet, headscale, record_property, image="golden")
    finally:
        destroyed(site, cloud.bodies, headscale)
    assert ours(cloud, deployment) == {"instances": [], "vpcs": []}
