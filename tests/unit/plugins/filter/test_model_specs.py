"""Model lists normalised and pointed at a private registry mirror."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ollama_cloud.engine.plugins.filter.model_specs import model_specs


def test_short_names_go_to_the_mirror_hosts_stay():
    specs = model_specs(
        ["gemma3:270m", "team/coder:7b", {"name": "ghcr.example:443/x/y:1", "state": "latest"}],
        "models.internal:5000",
        insecure=True,
    )
    assert [s["name"] for s in specs] == [
        "models.internal:5000/library/gemma3:270m",
        "models.internal:5000/team/coder:7b",
        "ghcr.example:443/x/y:1",
    ]
    assert [s["state"] for s in specs] == ["present", "present", "latest"]
    assert all(s["insecure"] is True for s in specs)
    assert all("loaded" not in s for s in specs)  # memory is left alone unless asked


def test_no_mirror_keeps_names_and_loaded_default_applies():
    specs = model_specs(["mistral:7b", {"name": "x:1", "loaded": False}], loaded=True)
    assert specs == [
        {"name": "mistral:7b", "state": "present", "insecure": False, "loaded": True},
        {"name": "x:1", "state": "present", "insecure": False, "loaded": False},
    ]


@pytest.mark.parametrize("bad", [{"state": "absent"}, {"name": ""}])
def test_entry_without_name_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="every model needs a name"):
        model_specs([bad])


def test_bad_mirror_is_refused():
    with pytest.raises(Exception, match="is not a host"):
        model_specs(["gemma3:270m"], "http://mirror/")
