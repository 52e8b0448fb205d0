"""gcp_node_identity in-process against the emulator's IAM, Resource Manager and Secret Manager.

Create, rerun (0 changed), check mode (no mutating request), others' members and bindings kept on
create and destroy, an etag conflict retried once, a missing secret, someone else's account with
our id, bad input before any request, destroy removing exactly ours. The emulator checks every
request and response against iam.v1, cloudresourcemanager.v1 and secretmanager.v1.
"""

from __future__ import annotations

import copy

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import gcp
from ansible_collections.ollama_cloud.engine.plugins.modules import gcp_node_identity
from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module

EMAIL = f"oce-n1-node@{server.PROJECT}.iam.gserviceaccount.com"
MEMBER = "serviceAccount:" + EMAIL
SECRET = f"projects/{server.PROJECT}/secrets/oce-n1-tailscale"
MARK = "oce-deployment=n1 oce-managed-by=ollama_cloud.engine"
OPS = "user:ops@example.com"


def run(capsys, check=False, diff=False, **args):
    args = dict({"deployment": "n1", "auth_kind": "anonymous"}, **args)
    return run_module(gcp_node_identity, capsys, check_mode=check, diff=diff, **args)


def bindings(policy):
    """Bindings as comparable tuples: (role, condition title, sorted members)."""
    return sorted(
        (b["role"], (b.get("condition") or {}).get("title"), tuple(sorted(b["members"])))
        for b in policy.get("bindings") or []
    )


@pytest.fixture
def emu(gce):
    gce.add_secret("oce-n1-tailscale", members=[OPS])
    return gce


def test_create_rerun_and_destroy_keep_everyone_else(emu, capsys):
    project_before = copy.deepcopy(emu.project_policy)
    created = run(capsys, diff=True)
    assert created["changed"] is True and not created.get("failed"), created
    assert created["actions"] == [
        f"create service account {EMAIL}",
        f"grant roles/logging.logWriter, roles/monitoring.metricWriter on project oce-test to {EMAIL}",
        f"grant roles/secretmanager.secretAccessor on secret oce-n1-tailscale to {EMAIL}",
    ]
    assert created["service_account_email"] == EMAIL and created["service_account"]["email"] == EMAIL
    assert created["project_roles"] == ["roles/logging.logWriter", "roles/monitoring.metricWriter"]
    assert created["secret"] == SECRET and created["conflicts"] == []
    assert created["diff"] == {
        "before": {"service_account": None, "project_roles": [], "secret_access": False},
        "after": {
            "service_account": EMAIL,
            "project_roles": ["roles/logging.logWriter", "roles/monitoring.metricWriter"],
            "secret_access": True,
        },
    }
    account = emu.service_accounts[EMAIL]
    assert MARK in account["description"] and "ollama_cloud.engine" in account["displayName"]

    # Ours joined the existing logWriter binding; everything else is as it was, conditions included.
    assert bindings(emu.project_policy) == sorted(
        [
            ("roles/logging.logWriter", None, tuple(sorted([f"serviceAccount:other-app@{server.SA_DOMAIN}", MEMBER]))),
            ("roles/monitoring.metricWriter", None, (MEMBER,)),
            ("roles/owner", None, ("user:owner@example.com",)),
            ("roles/storage.objectViewer", "until-2030", ("group:data@example.com",)),
        ]
    )
    assert emu.project_policy["auditConfigs"] == project_before["auditConfigs"]
    assert bindings(emu.secret_policies[SECRET]) == [("roles/secretmanager.secretAccessor", None, (MEMBER, OPS))]
    # Exactly one secret: no other secret's policy and no project-wide Secret Manager role.
    assert "roles/secretmanager.secretAccessor" not in {b["role"] for b in emu.project_policy["bindings"]}

    emu.log.clear()
    again = run(capsys)
    assert again["changed"] is False and again["actions"] == [] and again["service_account_email"] == EMAIL
    assert emu.changing_calls() == []

    gone = run(capsys, state="absent", diff=True)
    assert gone["changed"] is True and gone["actions"] == [
        f"revoke roles/secretmanager.secretAccessor on secret oce-n1-tailscale from {EMAIL}",
        f"revoke roles/logging.logWriter, roles/monitoring.metricWriter on project oce-test from {EMAIL}",
        f"delete service account {EMAIL}",
    ]
    assert gone["diff"]["after"] == {"service_account": None, "project_roles": [], "secret_access": False}
    assert EMAIL not in emu.service_accounts and f"other-app@{server.SA_DOMAIN}" in emu.service_accounts
    # The bindings were removed before the account: no deleted:serviceAccount:... left behind.
    assert bindings(emu.project_policy) == bindings(project_before)
    assert emu.project_policy["auditConfigs"] == project_before["auditConfigs"]
    assert bindings(emu.secret_policies[SECRET]) == [("roles/secretmanager.secretAccessor", None, (OPS,))]
    assert SECRET in emu.secrets  # the secret is the user's: it stays

    again = run(capsys, state="absent")
    assert again["changed"] is False and again["actions"] == []


def test_check_mode_sends_no_mutating_request(emu, capsys):
    planned = run(capsys, check=True, diff=True)
    assert planned["changed"] is True and len(planned["actions"]) == 3, planned
    assert planned["service_account_email"] == EMAIL and planned["service_account"] == {}
    assert planned["diff"]["after"]["service_account"] == EMAIL
    assert emu.changing_calls() == [] and EMAIL not in emu.service_accounts
    # Only reads: GETs and Resource Manager's getIamPolicy (a POST that changes nothing).
    assert {c[0] for c in emu.calls() if c[1] != "GET"} == {"cloudresourcemanager.projects.getIamPolicy"}

    run(capsys)
    emu.log.clear()
    planned = run(capsys, check=True, state="absent")
    assert planned["changed"] is True and planned["actions"][-1] == f"delete service account {EMAIL}"
    assert emu.changing_calls() == [] and EMAIL in emu.service_accounts
    assert "roles/monitoring.metricWriter" in {b["role"] for b in emu.project_policy["bindings"]}


def test_etag_conflict_is_retried_once_and_keeps_the_other_change(emu, capsys):
    emu.policy_races = 1  # someone grants roles/viewer between our read and our write of the project
    created = run(capsys)
    assert created["changed"] is True and not created.get("failed"), created
    assert created["conflicts"] == ["project oce-test"]
    sets = emu.calls("cloudresourcemanager.projects.setIamPolicy")
    assert len(sets) == 2 and len(emu.calls("cloudresourcemanager.projects.getIamPolicy")) == 2
    assert ("roles/viewer", None, ("user:racer@example.com",)) in bindings(emu.project_policy)
    assert ("roles/monitoring.metricWriter", None, (MEMBER,)) in bindings(emu.project_policy)

    # Twice in a row: no third try, a sentence instead.
    emu.policy_races = 2
    failed = run(capsys, state="absent")
    assert failed["failed"] is True
    assert "IAM policy of secret oce-n1-tailscale kept changing under us (twice in a row); run again" in failed["msg"]
    assert failed["changed"] is False and "done before the failure" not in failed["msg"]
    # Nothing after the failed step ran: the account is not deleted while it still holds roles.
    assert EMAIL in emu.service_accounts and MEMBER in emu.members(emu.project_policy, "roles/logging.logWriter")


def test_missing_secret_fails_with_the_command_and_creates_nothing(gce, capsys):
    for state in ("present",):
        failed = run(capsys, state=state)
        assert failed["failed"] is True and failed["changed"] is False
        assert "secret oce-n1-tailscale does not exist in project oce-test" in failed["msg"]
        assert "gcloud secrets create oce-n1-tailscale --project oce-test --data-file=-" in failed["msg"], failed["msg"]
    checked = run(capsys, check=True)
    assert checked["failed"] is True and "gcloud secrets create oce-n1-tailscale" in checked["msg"]
    assert gce.changing_calls() == [] and EMAIL not in gce.service_accounts
    # absent without the secret: nothing of ours, nothing to do, no failure.
    gone = run(capsys, state="absent")
    assert gone["changed"] is False and not gone.get("failed")


def test_someone_elses_account_with_our_id_is_refused(emu, capsys):
    emu.add_service_account("oce-n1-node", "Our team's n1 node", "Not made by ollama_cloud.engine")
    before = copy.deepcopy(emu.project_policy)
    for state in ("present", "absent"):
        failed = run(capsys, state=state)
        assert failed["failed"] is True and failed["changed"] is False, failed
        assert f"service account {EMAIL} exists in project oce-test but is not deployment n1's" in failed["msg"]
        assert "will not adopt, grant or delete it" in failed["msg"]
    assert emu.changing_calls() == [] and EMAIL in emu.service_accounts
    assert emu.project_policy == before


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ({"deployment": "N1"}, {}, "deployment 'N1' is not valid"),
        ({"deployment": "a-deployment-name-of-25"}, {}, "use at most 21"),
        ({}, {"GCP_PROJECT": None}, "no GCP project given"),
        ({"project": "My Project"}, {}, "'My Project' is not a GCP project id"),
    ],
)
def test_bad_input_fails_before_any_request(emu, capsys, monkeypatch, args, env, message):
    for key, value in env.items():
        monkeypatch.delenv(key) if value is None else monkeypatch.setenv(key, value)
    requests = emu.requests
    failed = run(capsys, **args)
    assert failed["failed"] is True and message in failed["msg"], failed["msg"]
    assert emu.requests == requests


def test_new_account_not_known_yet_is_waited_for(emu, capsys, monkeypatch):
    monkeypatch.setattr(gcp_node_identity, "PROPAGATION_PAUSE", 0.01)
    emu.sa_propagation = 2  # IAM refuses the first two grants to the new account
    created = run(capsys)
    assert created["changed"] is True and not created.get("failed"), created
    assert len(emu.calls("cloudresourcemanager.projects.setIamPolicy")) == 3
    assert ("roles/monitoring.metricWriter", None, (MEMBER,)) in bindings(emu.project_policy)


def test_throttling_is_retried_and_permission_errors_say_what_to_grant(emu, capsys):
    emu.fail("secretmanager.projects.secrets.setIamPolicy", 503, "UNAVAILABLE")
    created = run(capsys)
    assert created["changed"] is True and created["retries"][0][:2] == [
        f"POST v1/{SECRET}:setIamPolicy",
        "UNAVAILABLE",
    ]
    run(capsys, state="absent")
    emu.fail(
        "iam.projects.serviceAccounts.create",
        403,
        "PERMISSION_DENIED",
        message="Permission 'iam.serviceAccounts.create' denied on resource (or it may not exist).",
    )
    failed = run(capsys)
    assert failed["failed"] is True and failed["changed"] is False
    assert f"create service account {EMAIL} failed: the credentials are not allowed to do this" in failed["msg"]
    assert "iam.serviceAccounts.create" in failed["msg"] and "roles/iam.serviceAccountAdmin" in failed["msg"]
    assert "ya29." not in failed["msg"] and "accountId" not in failed["msg"]


def test_absent_cleans_what_a_deleted_account_left_behind(emu, capsys):
    run(capsys)
    # Someone deleted the account by hand: its bindings stay as deleted:serviceAccount:...?uid=...
    emu.do_iam_projects_serviceAccounts_delete(server.PROJECT, EMAIL, {}, None)
    assert any(m.startswith("deleted:" + MEMBER) for b in emu.project_policy["bindings"] for m in b["members"])
    gone = run(capsys, state="absent")
    assert gone["changed"] is True and "delete service account" not in " ".join(gone["actions"])
    assert not any("oce-n1-node" in m for b in emu.project_policy["bindings"] for m in b["members"])
    assert bindings(emu.secret_policies[SECRET]) == [("roles/secretmanager.secretAccessor", None, (OPS,))]


def test_one_endpoint_points_every_api_at_the_emulator(monkeypatch):
    monkeypatch.delenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", raising=False)
    assert gcp.api_endpoint("iam") == "https://iam.googleapis.com/"
    assert gcp.api_endpoint("iam", "http://127.0.0.1:8089/compute/v1/") == "http://127.0.0.1:8089/iam/"
    assert gcp.api_endpoint("compute", "http://127.0.0.1:8089/compute/v1") == "http://127.0.0.1:8089/compute/v1/"
    # A Private Service Connect or regional Compute endpoint says nothing about the other APIs.
    psc = "https://compute-myendpoint.p.googleapis.com/compute/v1/"
    assert gcp.api_endpoint("secretmanager", psc) == "https://secretmanager.googleapis.com/"
    monkeypatch.setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM", "https://iam-myendpoint.p.googleapis.com")
    assert gcp.api_endpoint("iam", psc) == "https://iam-myendpoint.p.googleapis.com/"
