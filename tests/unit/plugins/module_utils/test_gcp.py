"""The GCP layer, the GCP catalog and the discovery-document checker of the test emulator."""

from __future__ import annotations

import json

import pytest
import requests

from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog, cloud, fleet, gcp
from ansible_collections.ollama_cloud.engine.tests.emulators.gce import schema


class FakeClock(cloud.Clock):
    def __init__(self):
        self.t = 0.0
        self.sleeps = []
        super().__init__(sleep=self._sleep, now=lambda: self.t, rand=lambda: 1.0)

    def _sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


class Response:
    def __init__(self, status, body):
        self.status_code, self._body = status, body
        self.reason = "Reason"
        self.content = b"x"

    def json(self):
        return self._body


class FakeSession:
    """Answers in order; records what was asked (never looked at by the code under test)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.asked = []

    def request(self, method, url, params=None, data=None, headers=None, timeout=None):
        self.asked.append((method, url, params, timeout))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Response(*answer)


def error(status, reason, message):
    return (status, {"error": {"code": status, "message": message, "errors": [{"reason": reason, "message": message}]}})


@pytest.fixture(scope="module")
def discovery():
    return schema.Discovery()


# ---------------------------------------------------------------- the schema checker


def test_checker_accepts_a_good_insert_body(discovery):
    body = {
        "name": "oce-1",
        "machineType": "zones/us-central1-a/machineTypes/n1-standard-4",
        "scheduling": {"onHostMaintenance": "TERMINATE"},
        "disks": [{"boot": True, "initializeParams": {"diskSizeGb": "30"}}],
        "labels": {"oce-deployment": "demo"},
    }
    assert discovery.check("Instance", body, request_of="compute.instances.insert") == []


@pytest.mark.parametrize(
    "body, problem",
    [
        ({"name": "x", "machinetype": "n1"}, "request.machinetype: unknown field"),
        ({"name": "x", "disks": [{"initializeParams": {"diskSizeGb": 30}}]}, "expected a string (int64), got 30"),
        (
            {"name": "x", "disks": [{"initializeParams": {"diskSizeGb": "big"}}]},
            "expected an int64 as a decimal string",
        ),
        ({"name": "x", "scheduling": {"onHostMaintenance": "STOP"}}, "'STOP' is not one of MIGRATE, TERMINATE"),
        ({"name": "x", "canIpForward": "no"}, "request.canIpForward: expected a boolean"),
        ({"name": "x", "labels": {"a": 1}}, "request.labels['a']: expected a string"),
        ({"name": "x", "status": "RUNNING"}, "request.status: output-only field sent in a request"),
        ({"name": "x", "guestAccelerators": {"acceleratorType": "t4"}}, "expected an array, got dict"),
        ({"machineType": "n1"}, "request.name: required by compute.instances.insert, missing"),
    ],
)
def test_checker_finds_what_the_api_would_refuse(discovery, body, problem):
    problems = discovery.check("Instance", body, "request", request_of="compute.instances.insert")
    assert any(problem in p for p in problems), problems


def test_checker_routes_requests_and_checks_query_parameters(discovery):
    method, variables = discovery.route("POST", "/compute/v1/projects/p/zones/z/instances/vm/start")
    assert method.id == "compute.instances.start" and variables == {"project": "p", "zone": "z", "instance": "vm"}
    method, _vars = discovery.route("GET", "/compute/v1/projects/p/global/images/family/ubuntu")
    assert method.id == "compute.images.getFromFamily"
    assert discovery.route("POST", "/compute/v1/projects/p/zones/z/instances/vm/reboot") == (None, None)
    agg, _vars = discovery.route("GET", "/compute/v1/projects/p/aggregated/instances")
    assert discovery.check_query(agg, {"filter": ["x"], "pageToken": ["1"]}) == []
    assert discovery.check_query(agg, {"returnPartialSuccess": ["true"]}) == [
        "query parameter 'returnPartialSuccess' is not a parameter of compute.instances.aggregatedList"
    ]


# ---------------------------------------------------------------- labels, names, sentences


def test_labels_are_made_valid_for_gcp_and_ours_cannot_be_overridden():
    labels = gcp.our_labels("demo", "qwen2.5-coder:32b", "Prod EU", {"team": "ml"})
    assert labels == {
        "oce-deployment": "demo",
        "oce-managed-by": "ollama_cloud-engine",
        "oce-model": "qwen2-5-coder-32b",
        "oce-environment": "prod-eu",
        "team": "ml",
    }
    assert len(gcp.label_value("x" * 100)) == 63
    with pytest.raises(cloud.CloudError, match="'Team' are not valid GCP label keys"):
        gcp.our_labels("demo", extra={"Team": "x"})
    with pytest.raises(cloud.CloudError, match="may not set oce-managed-by"):
        gcp.our_labels("demo", extra={"oce-managed-by": "me"})
    assert gcp.valid_name("oce-demo-1") and not gcp.valid_name("oce-") and not gcp.valid_name("1oce")


def test_messages_are_shortened_and_secrets_masked():
    text = gcp.shorten("Invalid value 'tskey-auth-abc123' and ya29." + "a" * 40 + " " + "z" * 400)
    assert "tskey" not in text and "ya29." not in text and text.count("<redacted>") == 2
    assert len(text) == 300 and text.endswith("...")


def test_transient_errors_are_retried_with_backoff():
    session = FakeSession(
        error(429, "rateLimitExceeded", "slow down"), error(503, "backendError", "oops"), (200, {"a": 1})
    )
    api = gcp.Api(session, "p", "http://127.0.0.1:1/compute/v1", FakeClock())
    assert api.call("GET", "projects/p/zones/z") == {"a": 1}
    assert api.clock.sleeps == [1.0, 2.0]
    assert [r[1] for r in api.retries] == ["rateLimitExceeded", "backendError"]
    assert all(asked[3] == gcp.TIMEOUT for asked in session.asked)
    assert session.asked[0][1] == "http://127.0.0.1:1/compute/v1/projects/p/zones/z"


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
def test_rate_limits_answered_with_403_are_retried(reason):
    session = FakeSession(error(403, reason, "Quota exceeded for quota metric 'Queries'"), (200, {"a": 1}))
    api = gcp.Api(session, "p", None, FakeClock())
    assert api.call("GET", "projects/p/zones/z") == {"a": 1}
    assert [r[1] for r in api.retries] == [reason] and len(session.asked) == 2


@pytest.mark.parametrize("reason", ["forbidden", "accessNotConfigured", "authError"])
def test_other_403s_are_not_retried(reason):
    session = FakeSession(error(403, reason, "no"))
    api = gcp.Api(session, "p", None, FakeClock())
    with pytest.raises(cloud.CloudError):
        api.call("GET", "projects/p/zones/z")
    assert api.retries == [] and len(session.asked) == 1


def test_the_retries_of_one_call_outlast_a_quota_window():
    least, most = cloud.retry_budget(gcp.RETRY_ATTEMPTS, gcp.RETRY_BASE, gcp.RETRY_CAP, gcp.RETRY_FLOOR)
    assert least >= gcp.QUOTA_WINDOW and most <= 3 * gcp.QUOTA_WINDOW
    # The same with the worst luck the jitter can have (rand() == 0) and the best (rand() == 1).
    for luck in (0.0, 1.0):
        clock = FakeClock()
        clock.rand = lambda luck=luck: luck
        answers = [error(403, "rateLimitExceeded", "slow down")] * gcp.RETRY_ATTEMPTS
        api = gcp.Api(FakeSession(*answers), "p", None, clock)
        with pytest.raises(cloud.CloudError, match="the API rate limit was hit and stayed hit"):
            api.call("GET", "projects/p/zones/z")
        assert sum(clock.sleeps) == pytest.approx(least if luck == 0.0 else most)
        assert max(clock.sleeps) <= gcp.RETRY_CAP


def test_client_errors_fail_at_once_with_a_sentence():
    session = FakeSession(error(403, "accessNotConfigured", "Compute Engine API has not been used in project p"))
    api = gcp.Api(session, "p", None, FakeClock())
    with pytest.raises(cloud.CloudError) as err:
        api.call(
            "POST", "projects/p/zones/z/instances", body={"name": "x", "metadata": "secret-body"}, action="create x"
        )
    assert "create x failed: the Compute Engine API is not enabled" in err.value.msg
    assert "secret-body" not in err.value.msg and api.retries == []
    assert err.value.details == {"code": "accessNotConfigured", "status": 403}


def test_connection_errors_are_retried_then_told_without_details():
    session = FakeSession(*[requests.ConnectionError("boom at http://user:pw@host")] * 3)
    api = gcp.Api(session, "p", None, FakeClock())
    gcp_attempts = gcp.RETRY_ATTEMPTS
    try:
        gcp.RETRY_ATTEMPTS = 3
        with pytest.raises(cloud.CloudError) as err:
            api.call("GET", "projects/p/zones/z", action="look up zone z")
    finally:
        gcp.RETRY_ATTEMPTS = gcp_attempts
    assert (
        err.value.msg
        == "look up zone z failed: could not reach the Compute Engine endpoint; check endpoint and the network"
    )
    assert len(session.asked) == 3 and len(api.retries) == 2  # retried, then told


def test_operations_are_polled_to_a_deadline():
    running = (200, {"name": "op-1", "status": "RUNNING"})
    api = gcp.Api(FakeSession(*[running] * 100), "p", None, FakeClock())
    with pytest.raises(cloud.CloudError, match="gave up waiting for stop x to finish after 10 s"):
        api.wait(
            {
                "name": "op-1",
                "selfLink": "https://compute.googleapis.com/compute/v1/projects/p/zones/z/operations/op-1",
            },
            10,
            "stop x",
        )
    assert sum(api.clock.sleeps) == pytest.approx(10)


def test_operation_errors_become_sentences_with_their_code():
    done = {
        "name": "op-1",
        "status": "DONE",
        "error": {
            "errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED", "message": "The zone does not have enough resources"}]
        },
    }
    api = gcp.Api(FakeSession((200, done)), "p", None, FakeClock())
    with pytest.raises(cloud.CloudError) as err:
        api.wait({"name": "op-1", "selfLink": "projects/p/zones/z/operations/op-1"}, 10, "create x")
    assert err.value.details["code"] == "ZONE_RESOURCE_POOL_EXHAUSTED"
    assert (
        "create x failed: the zone has no capacity" in err.value.msg
        and "does not have enough resources" in err.value.msg
    )


def test_impersonation_wraps_the_source_credentials(monkeypatch):
    from google.auth import impersonated_credentials

    monkeypatch.setattr(gcp.google.auth, "default", lambda scopes: (gcp.AnonymousCredentials(), None))
    creds = gcp.credentials(
        {"auth_kind": "application", "impersonate_service_account": "node@p.iam.gserviceaccount.com"}
    )
    assert isinstance(creds, impersonated_credentials.Credentials)
    assert creds.service_account_email == "node@p.iam.gserviceaccount.com"
    with pytest.raises(cloud.CloudError, match="needs real credentials"):
        gcp.credentials(
            {"auth_kind": "anonymous", "endpoint": "http://127.0.0.1:1/", "impersonate_service_account": "x"}
        )
    with pytest.raises(cloud.CloudError, match="no GCP project given"):
        gcp.connect({"auth_kind": "anonymous", "endpoint": "http://127.0.0.1:1/"})


def test_instance_node_keeps_the_model_name_and_maps_states():
    instance = {
        "id": "123",
        "name": "oce-1",
        "zone": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a",
        "machineType": "zones/us-central1-a/machineTypes/g2-standard-8",
        "status": "TERMINATED",
        "labels": {"oce-deployment": "d", "oce-model": "llama3-8b-instruct-q5_1"},
        "metadata": {"items": [{"key": "oce-model", "value": "llama3:8b-instruct-q5_1"}]},
        "networkInterfaces": [{"networkIP": "10.0.0.5", "subnetwork": "regions/us-central1/subnetworks/s"}],
        "guestAccelerators": [
            {"acceleratorType": "zones/us-central1-a/acceleratorTypes/nvidia-l4", "acceleratorCount": 1}
        ],
    }
    node = gcp.priced_node(instance)
    assert node["state"] == "stopped" and node["model"] == "llama3:8b-instruct-q5_1" and node["region"] == "us-central1"
    assert node["hourly_cost"] == pytest.approx(0.294 + 0.56) and node["subnet_id"] == "s" and node["public_ip"] is None


def test_every_instance_status_of_compute_v1_has_a_node_state():
    with open(schema.DOCUMENT, encoding="utf-8") as document:
        statuses = json.load(document)["schemas"]["Instance"]["properties"]["status"]["enum"]
    assert sorted(gcp.STATES) == sorted(statuses)
    assert set(gcp.STATES.values()) <= set(fleet.NODE_STATES)


# ---------------------------------------------------------------- the GCP catalog and placements


def test_gcp_options_fit_and_are_priced():
    cat = catalog.merge()
    for model in catalog.MODELS:
        for option in catalog.gcp_options(cat, model):
            catalog.check_gcp_fit(cat, model, option)
    options = catalog.gcp_options(cat, "codellama:7b-code")
    assert [(o["machine_type"], o["attach_accelerators"], o["disk_type"]) for o in options] == [
        ("n1-standard-8", True, "pd-balanced"),
        ("g2-standard-8", False, "pd-balanced"),
    ]
    est = catalog.gcp_estimate(cat, "codellama:7b-code", options[0])
    assert est["instance_hourly"] == pytest.approx(0.38 + 0.35)
    assert est["hourly"] == pytest.approx(0.73 + 100 * 0.10 / 730 + 0.0014, abs=1e-3)


@pytest.mark.parametrize(
    "option, message",
    [
        ({"machine_type": "e2-standard-4", "accelerator": "nvidia-l4"}, "not of a GPU family this collection knows"),
        ({"machine_type": "n1-standard-4", "accelerator": "nvidia-k80"}, "needs an accelerator, one of"),
        (
            {"machine_type": "n1-standard-4", "accelerator": "nvidia-tesla-t4", "count": 0},
            "count must be a number >= 1",
        ),
        ({"machine_type": "n1-standard-4", "accelerator": "nvidia-tesla-t4", "gpus": 1}, "unknown keys gpus"),
    ],
)
def test_malformed_gcp_options_fail_clearly(option, message):
    with pytest.raises(catalog.CatalogError, match=message):
        catalog.merge({"models": {"mistral:7b": {"gcp": [option]}}})


def test_try_placements_moves_on_only_for_capacity():
    def attempt(place):
        if place["zone"] != "c":
            raise cloud.CloudError("full", code="ZONE_RESOURCE_POOL_EXHAUSTED")
        return "vm"

    value, tried = cloud.try_placements([{"zone": z} for z in "abc"], attempt, {"ZONE_RESOURCE_POOL_EXHAUSTED"})
    assert value == "vm" and [t["result"] for t in tried] == ["ZONE_RESOURCE_POOL_EXHAUSTED"] * 2 + ["launched"]

    def refused(place):
        raise cloud.CloudError("quota", code="QUOTA_EXCEEDED")

    with pytest.raises(cloud.CloudError) as err:
        cloud.try_placements([{"zone": "a"}, {"zone": "b"}], refused, {"ZONE_RESOURCE_POOL_EXHAUSTED"})
    assert err.value.details["placement"] == [{"zone": "a", "result": "QUOTA_EXCEEDED"}]


@pytest.mark.parametrize(
    "body",
    [{"error": "Not Found"}, {"error": {"errors": ["x"]}}, ["not", "an", "object"], None],
    ids=["error-a-string", "errors-of-strings", "a-list", "not-json"],
)
def test_an_error_answer_of_another_shape_keeps_its_status(body):
    class NotJson(Response):
        def json(self):
            if self._body is None:
                raise ValueError("Expecting value")
            return self._body

    api = gcp.Api(FakeSession(), "p", None, FakeClock())
    api.session.request = lambda *a, **k: NotJson(404, body)
    with pytest.raises(cloud.CloudError, match=r"GET x failed \(HTTP 404\)"):
        api.call("GET", "x")


def test_a_2xx_answer_that_is_not_an_object_says_to_check_the_endpoint():
    api = gcp.Api(FakeSession((200, ["a", "list"])), "p", None, FakeClock())
    with pytest.raises(cloud.CloudError, match="not Compute Engine's JSON .*check endpoint"):
        api.list("zones/z/instances", action="list instances")


def test_an_operation_without_a_name_fails_with_a_sentence():
    with pytest.raises(cloud.CloudError, match="stop oce-1 failed: Compute Engine answered without an operation"):
        gcp.Api(FakeSession(), "p", None, FakeClock()).wait({}, 60, "stop oce-1")


def test_application_credentials_that_cannot_be_read_fail_with_a_sentence(monkeypatch, tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path))  # a directory
    with pytest.raises(cloud.CloudError, match="GOOGLE_APPLICATION_CREDENTIALS|Application Default Credentials"):
        gcp.credentials({"auth_kind": "application"})
    missing = tmp_path / "missing.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    with pytest.raises(cloud.CloudError, match="no Application Default Credentials found .*missing.json"):
        gcp.credentials({"auth_kind": "application"})


def test_a_token_endpoint_out_of_reach_says_to_check_the_network():
    import google.auth.exceptions

    down = google.auth.exceptions.TransportError("HTTPSConnectionPool(host='oauth2.googleapis.com', port=443)")
    api = gcp.Api(FakeSession(*[down] * 8), "p", None, FakeClock())
    with pytest.raises(cloud.CloudError, match="could not reach Google's token endpoint .*check the network, proxy"):
        api.call("GET", "x", action="list instances")
