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


@pytest.mark.parametrize(
    "keys", [{}, {"access_key": "a", "secret_key": "b"}], ids=["no-keys", "keys-of-the-environment"]
)
def test_profile_that_does_not_exist(monkeypatch, keys):
    # Keys the environment gives (a shell's, a CI job's) do not stand in for the profile named.
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "a")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "b")
    with pytest.raises(cloud.CloudError, match="AWS profile 'nope' does not exist"):
        aws.connect({"region": "us-east-1", "profile": "nope", **keys}, "ec2")


def test_a_profile_wins_over_the_keys_of_the_environment(monkeypatch, tmp_path):
    config = tmp_path / "credentials"
    config.write_text("[ml]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(config))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "e")
    # As a module's options are filled: the keys from the environment (env_fallback), and the profile.
    params = {"region": "us-east-1", "profile": "ml", "access_key": "AKIAENVIRONMENT", "secret_key": "e"}
    api = aws.connect(params, "ec2")
    assert api.client._request_signer._credentials.access_key == "AKIAPROFILE"


def test_a_profile_beside_keys_given_as_options_is_an_error(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    with pytest.raises(cloud.CloudError, match=r"both a profile \(ml\) and access_key, secret_key are given"):
        aws.connect({"region": "us-east-1", "profile": "ml", "access_key": "a", "secret_key": "b"}, "ec2")


def test_an_endpoint_without_a_scheme_and_half_a_key_pair_fail_before_any_client():
    with pytest.raises(cloud.CloudError, match="'localhost:4566' is not a URL: give its scheme"):
        aws.connect({"region": "us-east-1", "endpoint_url": "localhost:4566"}, "ec2")
    with pytest.raises(cloud.CloudError, match="access_key and secret_key .* go together"):
        aws.connect({"region": "us-east-1", "secret_key": "s"}, "ec2")


@pytest.mark.parametrize(
    "config",
    [
        "[profile broken]\ncredential_process = /nonexistent/helper\n",  # a helper that is not installed
        "[profile broken]\ncredential_process = /bin/false\n",  # a helper that fails
        "[profile broken]\nrole_arn = arn:aws:iam::123456789012:role/x\n",  # a role without its source
    ],
    ids=["helper-missing", "helper-fails", "role-without-source"],
)
def test_a_profile_whose_credentials_cannot_be_loaded_fails_with_a_sentence(monkeypatch, tmp_path, config):
    path = tmp_path / "config"
    path.write_text(config)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(cloud.CloudError, match="the AWS credentials could not be loaded .*check the profile's entries"):
        aws.connect({"region": "us-east-1", "profile": "broken"}, "ec2")


class Raises:
    """A client whose every operation raises ``exc``."""

    def __init__(self, exc):
        self.exc = exc

    def __getattr__(self, _name):
        def operation(**_params):
            raise self.exc

        return operation


def test_an_mfa_prompt_and_a_connect_timeout_become_sentences():
    # botocore reads an MFA code from stdin while it signs; a module has none.
    with pytest.raises(cloud.CloudError, match="describe instances failed: the AWS profile asks for an MFA code"):
        aws.Api(Raises(EOFError()), "us-east-1", FakeClock()).call("describe_instances")
    timeout = aws.bexc.ConnectTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")
    assert aws.is_transient(timeout)
    clock = FakeClock()
    with pytest.raises(cloud.CloudError, match="could not reach the AWS endpoint for describe instances"):
        aws.Api(Raises(timeout), "us-east-1", clock, attempts=3).call("describe_instances")
    assert len(clock.sleeps) == 2
