"""The model_catalog lookup: its logic directly, and once through ansible itself."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.ollama_cloud.engine.plugins.lookup.model_catalog import lookup

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def test_entry_with_types_and_estimate():
    (entry,) = lookup(["codellama:34b-code"])
    assert entry["name"] == "codellama:34b-code" and entry["aws"][0] == "g6e.xlarge"
    assert entry["aws_types"]["g6e.xlarge"]["gpu"] == "L40S"
    assert entry["estimate"]["instance_hourly"] == 1.861


def test_whole_catalog_without_terms():
    (cat,) = lookup([])
    assert "gemma3:270m" in cat["models"] and cat["prices"]["date"] == "2025"


def test_user_override_is_merged():
    over = {"models": {"ourco/coder:14b": {"size_gb": 9, "min_vram_gb": 12, "disk_gb": 120, "aws": ["g6.xlarge"]}}}
    (entry,) = lookup(["ourco/coder:14b"], overrides=over)
    assert entry["estimate"]["instance_hourly"] == 0.805


@pytest.mark.parametrize(
    "terms, kwargs, message",
    [
        (["nope:1b"], {}, "model 'nope:1b' is not in the catalog"),
        (["llama3.3:70b"], {"instance_type": "g6e.xlarge"}, "needs 64 GB of GPU memory but g6e.xlarge has 48 GB"),
        (["mistral:7b"], {"overrides": {"models": {"mistral:7b": {"size_gb": -1}}}}, "size_gb must be a number"),
    ],
)
def test_errors_are_sentences(terms, kwargs, message):
    with pytest.raises(AnsibleLookupError, match=message):
        lookup(terms, **kwargs)


def test_through_ansible_with_inventory_style_override():
    expr = (
        "{{ lookup('ollama_cloud.engine.model_catalog', 'mistral:7b', "
        "overrides={'models': {'mistral:7b': {'disk_gb': 64}}}) }}"
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, "collections"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
    )
    out = subprocess.run(
        ["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": expr})],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    result = json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert result["disk_gb"] == 64 and result["aws"][0] == "g5.xlarge"
