"""The shared cloud layer and the AWS layer: backoff, deadlines, tags, errors as sentences."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud


class FakeClock(cloud.Clock):
    """Time that moves only when the code sleeps; the random source is fixed."""

    def __init__(self, rand=0.5):
        self.t = 0.0
        self.sleeps = []
        super().__init__(sleep=self._sleep, now=lambda: self.t, rand=lambda: rand)

    def _sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


def stubbed(service="ec2", clock=None, attempts=6):
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return aws.Api(client, "us-east-1", clock or FakeClock(), attempts=attempts), Stubber(client)


def test_backoff_is_jittered_exponential_and_capped():
    assert cloud.backoff_delays(6, base=1, cap=20, rand=lambda: 1.0) == [1, 2, 4, 8, 16]
    assert cloud.backoff_delays(8, base=1, cap=20, rand=lambda: 1.0)[-2:] == [20, 20]
    assert cloud.backoff_delays(4, base=1, cap=20, rand=lambda: 0.25) == [0.25, 0.5, 1.0]


def test_equal_jitter_keeps_half_of_each_delay():
    assert cloud.backoff_delays(4, base=1, cap=20, rand=lambda: 0.0, floor=0.5) == [0.5, 1.0, 2.0]
    assert cloud.backoff_delays(4, base=1, cap=20, rand=lambda: 1.0, floor=0.5) == [1, 2, 4]
    assert cloud.retry_budget(4, base=1, cap=3, floor=0.5) == (3.0, 6)


def test_throttling_is_retried_with_backoff():
    clock = FakeClock(rand=1.0)
    api, stub = stubbed(clock=clock)
    stub.add_client_error("describe_instances", "RequestLimitExceeded", "Request limit exceeded.", 503)
    stub.add_client_error("describe_instances", "Throttling", "Rate exceeded", 400)
    stub.add_response("describe_instances", {"Reservations": []})
    with stub:
        assert api.call("describe_instances")["Reservations"] == []
    stub.assert_no_pending_responses()
    assert clock.sleeps == [1.0, 2.0]
    assert [r[:2] for r in api.retries] == [
        ("describe_instances", "RequestLimitExceeded"),
        ("describe_instances", "Throttling"),
    ]


def test_throttling_that_never_ends_fails_with_a_sentence():
    api, stub = stubbed(attempts=3)
    for _attempt in range(3):
        stub.add_client_error("describe_instances", "RequestLimitExceeded", "Request limit exceeded.", 503)
    with stub, pytest.raises(cloud.CloudError) as err:
        api.call("describe_instances")
    assert "describe instances failed" in err.value.msg and "RequestLimitExceeded" in err.value.msg
    assert len(api.retries) == 2


def test_client_errors_are_not_retried_and_say_what_to_do():
    api, stub = stubbed()
    stub.add_client_error("run_instances", "VcpuLimitExceeded", "You have requested more vCPU capacity", 400)
    with stub, pytest.raises(cloud.CloudError) as err:
        api.call("run_instances", ImageId="ami-1", MinCount=1, MaxCount=1)
    assert "request a quota increase" in err.value.msg and err.value.details["code"] == "VcpuLimitExceeded"
    assert api.retries == [] and api.clock.sleeps == []


def test_wait_for_gives_up_at_the_deadline():
    clock = FakeClock()
    with pytest.raises(cloud.CloudError) as err:
        cloud.wait_for(lambda: {"state": "pending"}, lambda v: False, "i-1 to be running", 30, interval=5, clock=clock)
    assert "after 30 s" in err.value.msg and "last seen: pending" in err.value.msg
    assert sum(clock.sleeps) == pytest.approx(30)


def test_wait_for_stops_at_a_failed_state():
    with pytest.raises(cloud.CloudError, match="it reached terminated"):
        cloud.wait_for(lambda: "terminated", lambda v: v == "running", "x", 30, clock=FakeClock(), failed=lambda v: v)


def test_our_tags_cannot_be_overridden():
    tags = cloud.our_tags("demo", "gemma3:270m", "dev", "oce-demo", {"team": "ml"})
    assert tags == {
        "oce-deployment": "demo",
        "oce-managed-by": "ollama_cloud.engine",
        "oce-model": "gemma3:270m",
        "oce-environment": "dev",
        "Name": "oce-demo",
        "team": "ml",
    }
    with pytest.raises(cloud.CloudError, match="may not set oce-deployment"):
        cloud.our_tags("demo", extra={"oce-deployment": "other"})


@pytest.mark.parametrize("keys", [{}, {"access_key": "a", "secret_key": "b"}], ids=["no-keys", "keys-as-options"])
def test_profile_that_does_not_exist(monkeypatch, keys):
    # With keys given as well (the fleet inventory reads them from the environment), boto3 has
    # credentials without the profile, and the profile fails when the client reads its config.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with pytest.raises(cloud.CloudError, match="AWS profile 'nope' does not exist"):
        aws.connect({"region": "us-east-1", "profile": "nope", **keys}, "ec2")
