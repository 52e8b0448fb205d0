"""A moto server on 127.0.0.1 for the AWS modules, with fake credentials and a fresh VPC per test."""

from __future__ import annotations

import os
import types

import boto3
import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ollama_cloud.engine.tests.functional.moto_server import FAKE_ENV, MotoServer, stock_image


@pytest.fixture(scope="session")
def moto_server():
    try:
        server = MotoServer(record=True)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    except RuntimeError as e:
        pytest.fail(str(e))
    yield server
    try:
        server.reset()
    except OSError:
        pytest.fail("moto_server stopped answering during the run:\n" + server.log_tail())
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_url(moto_server):
    return moto_server.url


@pytest.fixture
def moto(moto_server, moto_url, monkeypatch):
    """Fresh moto state: a VPC with two subnets in two zones and a bootable image."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    for key, value in dict(FAKE_ENV, AWS_ENDPOINT_URL=moto_url).items():
        monkeypatch.setenv(key, value)
    moto_server.reset()
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=moto_url)
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.42.1.0/24", "us-east-1a"), ("10.42.2.0/24", "us-east-1b"))
    ]
    ami = stock_image(ec2)

    def instances(states=("pending", "running", "stopping", "stopped")):
        reservations = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": list(states)}])
        return [i for r in reservations["Reservations"] for i in r["Instances"]]

    return types.SimpleNamespace(url=moto_url, ec2=ec2, vpc=vpc, subnets=subnets, ami=ami, instances=instances)


@pytest.fixture
def module_warnings(monkeypatch):
    """What the modules run in this process warn (AnsibleModule.warn), recorded for the test: the
    result's own "warnings" come from a process-wide list, which earlier tests of a long run can leave
    in another state (CI of stop 11: the key was missing there, present alone)."""
    warned = []
    original = AnsibleModule.warn

    def warn(self, warning):
        warned.append(warning)
        return original(self, warning)

    monkeypatch.setattr(AnsibleModule, "warn", warn)
    return warned
