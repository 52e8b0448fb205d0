"""cloud.converge, the state machine every cloud shares, on a provider that only records calls."""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud


class RecordingProvider(cloud.Provider):
    """Instances are dicts {id, state}; every call that would change the cloud is recorded."""

    remove_verb = "terminate"
    capacity_codes = ()
    capacity_wait = 0

    def __init__(self, found):
        self.found = [dict(i) for i in found]
        self.calls = []
        self.clock = None

    def find(self):
        return self.found

    def ident(self, raw):
        return raw["id"]

    def state(self, raw):
        return raw["state"]

    def plan(self):
        return {}

    def preview(self, plan):
        return {}

    def create(self, plan):
        self.calls.append("create")
        return {"id": "i-new", "state": "running"}, {}

    def settle(self, raw):
        return raw

    def stop(self, raw):
        self.calls.append(("stop", raw["id"]))
        return dict(raw, state="stopped")

    def delete(self, raw):
        self.calls.append(("delete", raw["id"]))

    def refresh(self, raw):
        return raw

    def node(self, raw):
        return {"id": raw["id"], "state": raw["state"]}


def test_absent_removes_every_instance_of_the_name():
    """Two instances of one name (the error below says to use state=absent): both go."""
    provider = RecordingProvider([{"id": "i-1", "state": "running"}, {"id": "i-2", "state": "stopped"}])
    result = cloud.converge(provider, "absent", False, "d", "n")
    assert result["changed"] is True and provider.calls == [("delete", "i-1"), ("delete", "i-2")]
    assert cloud.converge(provider, "absent", True, "d", "n")["changed"] is True
    assert len(provider.calls) == 2  # check mode deletes nothing
    with pytest.raises(cloud.CloudError, match=r"has 2 instances named n \(i-1, i-2\): terminate the extra ones"):
        cloud.converge(provider, "running", False, "d", "n")


@pytest.mark.parametrize("check_mode", [False, True])
def test_stopped_on_a_missing_node_creates_it_stopped(check_mode):
    provider = RecordingProvider([])
    result = cloud.converge(provider, "stopped", check_mode, "d", "n")
    assert result["changed"] is True and result["diff"]["after"] == {"state": "stopped"}
    assert provider.calls == ([] if check_mode else ["create", ("stop", "i-new")])
    if not check_mode:
        assert result["node"]["state"] == "stopped"
