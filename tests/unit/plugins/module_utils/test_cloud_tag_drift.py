"""cloud.tag_drift and its helpers: the one label/tag diff both clouds' node modules use."""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, gcp

OURS = {"oce-deployment": "demo", "oce-managed-by": "ollama_cloud.engine"}


def test_no_drift_when_every_desired_value_is_there():
    current = dict(OURS, **{"oce-model": "gemma3:270m", "Name": "oce-demo", "someone-elses": "x"})
    desired = cloud.our_tags("demo", "gemma3:270m", name="oce-demo")
    assert cloud.tag_drift(current, desired) == ({}, [])
    assert cloud.tag_drift(current, desired, purge=True) == ({}, ["someone-elses"])


def test_changed_and_missing_values_are_set():
    current = dict(OURS, **{"oce-model": "gemma3:270m", "team": "ml"})
    desired = cloud.our_tags("demo", "mistral:7b", "prod", extra={"team": "ml", "cost-center": "42"})
    changes, removals = cloud.tag_drift(current, desired)
    assert changes == {"cost-center": "42", "oce-environment": "prod", "oce-model": "mistral:7b"}
    assert removals == []
    assert list(changes) == sorted(changes)  # a stable order for the diff and the API call


def test_without_purge_nothing_is_removed():
    current = dict(OURS, **{"oce-environment": "dev", "team": "ml", "oce-model": "m"})
    # No environment, no extra labels asked for: they are left as they are.
    assert cloud.tag_drift(current, cloud.our_tags("demo", "m")) == ({}, [])


def test_purge_removes_what_is_not_desired_but_never_ours_nor_reserved():
    current = dict(
        OURS,
        **{
            "oce-environment": "dev",
            "team": "ml",
            "oce-model": "m",
            "goog-ops-agent-policy": "v2",
            "aws:cloudformation:stack-name": "s",
        },
    )
    desired = cloud.our_tags("demo", "m")
    changes, removals = cloud.tag_drift(current, desired, purge=True, reserved=("goog-", "aws:"))
    assert changes == {} and removals == ["oce-environment", "team"]
    # Without the reserved prefixes, the cloud's own keys would be purged too.
    assert "goog-ops-agent-policy" in cloud.tag_drift(current, desired, purge=True)[1]


@pytest.mark.parametrize("purge", [False, True])
def test_ownership_keys_are_never_touched(purge):
    # Even a desired set that disagrees (it cannot, find() matched them) does not change them,
    # and a purge with a desired set that lacks them does not remove them.
    current = dict(OURS, **{"oce-model": "m"})
    changes, removals = cloud.tag_drift(current, {"oce-deployment": "other", "oce-model": "m"}, purge=purge)
    assert changes == {} and removals == []
    changes, removals = cloud.tag_drift(current, {}, purge=purge)
    assert set(changes) | set(removals) <= {"oce-model"}
    assert not cloud.OWNERSHIP_KEYS & (set(changes) | set(removals))


def test_no_current_tags_at_all():
    changes, removals = cloud.tag_drift(None, {"oce-model": "m", "oce-deployment": "d"}, purge=True)
    assert changes == {"oce-model": "m"} and removals == []


def test_with_drift_is_the_whole_set_after_the_change():
    current = dict(OURS, **{"oce-model": "a", "team": "ml", "old": "x"})
    after = cloud.with_drift(current, {"oce-model": "b", "new": "y"}, ["old"])
    assert after == dict(OURS, **{"oce-model": "b", "team": "ml", "new": "y"})
    assert current["oce-model"] == "a" and "old" in current  # the input is left alone


def test_gcp_labels_drift_with_sanitised_values():
    current = gcp.our_labels("demo", "gemma3:270m", "Dev Team", {"team": "ml"})
    desired = gcp.our_labels("demo", "codellama:7b-code", "Dev Team", {"team": "ml"})
    assert cloud.tag_drift(current, desired) == ({"oce-model": "codellama-7b-code"}, [])


def test_report_drift_adds_changed_the_return_key_and_the_diff():
    result = {"changed": False, "diff": {"before": {"state": "running"}, "after": {"state": "running"}}}
    current = dict(OURS, **{"oce-model": "a", "old": "x"})
    cloud.report_drift(result, "labels", current, {"oce-model": "b"}, ["old"])
    assert result["changed"] is True
    assert result["labels_changed"] == {"set": {"oce-model": "b"}, "removed": ["old"]}
    assert result["diff"]["before"] == {"state": "running", "labels": dict(sorted(current.items()))}
    assert result["diff"]["after"] == {"state": "running", "labels": dict(OURS, **{"oce-model": "b"})}


def test_report_drift_without_drift_changes_nothing():
    result = {"changed": False, "diff": {"before": {"state": "stopped"}, "after": {"state": "stopped"}}}
    assert cloud.report_drift(result, "tags", {"a": "b"}, {}, []) == {
        "changed": False,
        "diff": {"before": {"state": "stopped"}, "after": {"state": "stopped"}},
    }
