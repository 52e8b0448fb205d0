"""Fixtures of the simulated cloud, for this directory's conftest and for any test that wants them
(``from ansible_collections.ollama_cloud.engine.tests.functional.simcloud.fixtures import *`` in a
conftest, or ``pytest_plugins`` naming this module).

Everything skips, with the reason, when the rig is missing (rig.missing()).
"""

from __future__ import annotations

import os
import subprocess
import time
import types

import pytest

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server as gce_server
from ansible_collections.ollama_cloud.engine.tests.functional.moto_server import FAKE_ENV, MotoServer

from . import golden, rig, tailnet
from .bodies import AwsCloud, Bodies, GcpCloud

AWS_ENV = FAKE_ENV


@pytest.fixture(scope="session")
def simcloud_rig():
    """The rig module (addresses, images, mirror URLs), or a skip saying what is missing."""
    reason = rig.missing()
    if reason:
        pytest.skip("simulated cloud: " + reason)
    return rig


@pytest.fixture(scope="session")
def simcloud_moto(simcloud_rig):
    """moto on the rig's gateway: the controller's AWS endpoint and the bodies' IMDS (/latest/)."""
    server = MotoServer(host=rig.GATEWAY)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def simcloud_gce(simcloud_rig):
    """The GCE emulator on the rig's gateway: API, Secret Manager and the bodies' metadata server.

    Operations finish on their first poll, as in gce_cli (subprocesses cannot lower poll delays).
    """
    emu = gce_server.Emulator(op_steps=1, host=rig.GATEWAY)
    yield emu
    emu.stop()


def _ami(ec2):
    found = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "root-device-type", "Values": ["ebs"]}])
    return sorted(i["ImageId"] for i in found["Images"])[0]


@pytest.fixture
def simcloud_aws(simcloud_moto, monkeypatch):
    """A fresh moto whose instances get bodies: namespace(url, ec2, vpc, subnet, ami, bodies, env).

    ``bodies`` is started (it polls every second); its image map starts empty (stock cloud image):
    set ``bodies.image_for`` before the instances are made to boot golden images.
    """
    import boto3

    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    env = dict(AWS_ENV, AWS_ENDPOINT_URL=simcloud_moto.url)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    simcloud_moto.reset()
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=simcloud_moto.url)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    bodies = Bodies(AwsCloud(ec2, simcloud_moto.url)).start()
    try:
        yield types.SimpleNamespace(
            url=simcloud_moto.url,
            ec2=ec2,
            vpc=vpc,
            subnet=subnet["SubnetId"],
            ami=_ami(ec2),
            bodies=bodies,
            env=env,
        )
    finally:
        bodies.close()


@pytest.fixture
def simcloud_gcp(simcloud_gce):
    """A fresh emulator whose instances get bodies: namespace(emu, bodies, env); violations checked."""
    simcloud_gce.reset()
    bodies = Bodies(GcpCloud(simcloud_gce)).start()
    env = {
        "OCE_GCE_ENDPOINT": simcloud_gce.endpoint,
        "GCP_PROJECT": gce_server.PROJECT,
        "GCP_AUTH_KIND": "anonymous",
        "NO_GCE_CHECK": "True",
    }
    try:
        yield types.SimpleNamespace(emu=simcloud_gce, bodies=bodies, env=env)
    finally:
        bodies.close()
    assert simcloud_gce.violations == [], "\n".join(simcloud_gce.violations)


@pytest.fixture
def ssh_key(tmp_path):
    """A new key pair for the controller's SSH to the nodes (node_ssh_key_file): its private key's path."""
    path = str(tmp_path / "oce_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    return path


def _golden(cloud):
    tag, seconds = golden.build_golden(cloud)
    if seconds:
        print(f"\n[simcloud] {cloud} golden image {tag} built in {seconds:.0f}s")
    return tag


@pytest.fixture(scope="session")
def golden_image(simcloud_rig):
    """Tag of the AWS golden image (CPU), built from packer/image.yml unless its key is cached
    (about 140 s when built). Map an AMI to it with ``bodies.image_for = {ami: golden_image}``."""
    return _golden("aws")


@pytest.fixture(scope="session")
def headscale(simcloud_rig):
    """The rig's Headscale: the tailnet module (preauth_key, nodes, nodes_named, delete_nodes)."""
    try:
        tailnet.user_id()
    except RuntimeError as e:
        pytest.skip(f"simulated cloud: {e}")
    return tailnet


@pytest.fixture(scope="session")
def controller_tailnet(headscale):
    """This machine on the tailnet (userspace tailscaled): socket, http_proxy, socks5, proxy_command."""
    name = f"oce-controller-{os.getpid()}"
    try:
        controller = tailnet.ControllerTailscale(hostname=name)
    except FileNotFoundError as e:
        pytest.skip(f"simulated cloud: {e}")
    started = time.monotonic()
    try:
        controller.start(headscale.preauth_key())
    except Exception:
        log = controller.log_tail()
        controller.stop()
        raise AssertionError("the controller could not join the tailnet:\n" + log) from None
    controller.joined_in = time.monotonic() - started
    yield controller
    controller.stop()
