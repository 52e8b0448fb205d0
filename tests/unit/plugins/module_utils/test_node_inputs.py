"""The node role's settings checked before anything is created (node_inputs, the node_input_problems filter)."""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import node_inputs

AWS = {
    "cloud": "aws",
    "deployment": "demo",
    "name": "oce-demo",
    "region": "us-east-1",
    "zones": [],
    "egress": "nat",
    "vpc_cidr": "10.64.0.0/16",
    "public_cidr": "10.64.0.0/24",
    "private_cidrs": ["10.64.1.0/24", "10.64.2.0/24"],
}
GCP = {"cloud": "gcp", "deployment": "demo", "name": "oce-demo", "region": "us-central1", "zones": ["us-central1-a"]}
# egress=none with every source inside the network.
PRIVATE = {
    "egress": "none",
    "model_mirror": "10.64.3.10:5000",
    "login_server": "https://headscale.corp.internal",
    "tailscale_url": "https://oce-mirror.s3.us-east-1.amazonaws.com/tailscale_1.96.5_amd64.tgz",
    "installs_tailscale": True,
    "tailscale_version": "1.96.5",
    "tailscale_checksum": "sha256:" + "ab" * 32,
    "network_cidr": "10.64.0.0/16",
}


def test_good_settings_have_no_problem():
    assert node_inputs.problems(AWS) == []
    assert node_inputs.problems(dict(AWS, zones=["us-east-1a", "us-east-1-bos-1a"])) == []
    assert node_inputs.problems(dict(AWS, **PRIVATE)) == []
    assert node_inputs.problems(GCP) == []
    gcp_private = dict(GCP, **dict(PRIVATE, tailscale_url="https://storage.googleapis.com/b/tailscale.tgz"))
    assert node_inputs.problems(gcp_private) == []


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(AWS, zones=["eu-west-1a"]), "node_aws_zones eu-west-1a are not in node_aws_region us-east-1"),
        (dict(AWS, zones=["us-east-1"]), "node_aws_zones us-east-1 are not in node_aws_region"),
        (dict(GCP, zones=["europe-west4-a"]), "node_gcp_zones europe-west4-a are not in node_gcp_region us-central1"),
        (dict(AWS, vpc_cidr="10.64.0.0/33"), "node_aws_vpc_cidr '10.64.0.0/33' is not an IPv4 network"),
        (dict(AWS, vpc_cidr="10.64.0.1/16"), "node_aws_vpc_cidr '10.64.0.1/16' is not an IPv4 network"),
        (dict(AWS, vpc_cidr="10.0.0.0/8"), "node_aws_vpc_cidr 10.0.0.0/8 is a /8: AWS takes /16 to /28"),
        (
            dict(AWS, private_cidrs=["10.65.1.0/24", "10.64.2.0/24"]),
            "node_aws_private_subnet_cidrs 10.65.1.0/24 is not inside node_aws_vpc_cidr 10.64.0.0/16",
        ),
        (
            dict(AWS, private_cidrs=["10.64.0.0/23", "10.64.2.0/24"]),
            "node_aws_private_subnet_cidrs 10.64.0.0/23 overlaps node_aws_public_subnet_cidr 10.64.0.0/24",
        ),
        (
            dict(AWS, private_cidrs=["10.64.1.0/24", "10.64.1.128/25"]),
            "node_aws_private_subnet_cidrs 10.64.1.128/25 overlaps node_aws_private_subnet_cidrs 10.64.1.0/24",
        ),
        (dict(AWS, name="Oce_Demo"), "name 'Oce_Demo' is not a valid node name"),
        (dict(GCP, name="node-"), "name 'node-' is not a valid node name"),
        (dict(AWS, name="x" * 60), "longer than 63 characters"),
        (
            dict(AWS, **dict(PRIVATE, model_mirror="")),
            "node_aws_egress=none leaves the node no internet, but ollama_models_registry_mirror is empty, which "
            "means the public model registry",
        ),
        (
            dict(AWS, **dict(PRIVATE, login_server="")),
            "node_tailnet_login_server is empty, which means Tailscale's public control plane",
        ),
        (
            dict(GCP, **dict(PRIVATE, tailscale_url="")),
            "node_gcp_egress=none leaves the node no internet, but node_tailscale_download_url is empty",
        ),
        (
            dict(AWS, **dict(PRIVATE, tailscale_url="https://pkgs.tailscale.com/stable/ts.tgz")),
            "node_tailscale_download_url https://pkgs.tailscale.com/stable/ts.tgz is on the internet",
        ),
        (
            dict(AWS, **dict(PRIVATE, model_mirror="8.8.8.8:5000")),
            "ollama_models_registry_mirror 8.8.8.8:5000 is on the internet",
        ),
    ],
)
def test_bad_settings_say_what_to_change(settings, message):
    found = node_inputs.problems(settings)
    assert any(message in p for p in found), found


def test_a_golden_image_with_tailscale_needs_no_package_server():
    assert node_inputs.problems(dict(AWS, **dict(PRIVATE, tailscale_url="", installs_tailscale=False))) == []


@pytest.mark.parametrize(
    ("checksum", "message"),
    [
        ("", "no sha256 is known for Tailscale 1.96.5: set tailscale_checksum"),
        ("sha256:", "tailscale_checksum 'sha256:' is not sha256: followed by 64 hex digits"),
        ("md5:" + "ab" * 16, "is not sha256: followed by 64 hex digits"),
    ],
)
def test_a_node_that_installs_tailscale_needs_its_sha256_before_create(checksum, message):
    """First boot checks the archive: without a known sha256 the node would fail there, after create."""
    (problem,) = node_inputs.problems(dict(AWS, **dict(PRIVATE, tailscale_checksum=checksum)))
    assert message in problem
    assert node_inputs.problems(dict(AWS, **dict(PRIVATE, tailscale_checksum=checksum, installs_tailscale=False))) == []
