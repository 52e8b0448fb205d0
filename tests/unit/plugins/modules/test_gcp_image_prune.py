"""gcp_image_prune's pure parts: image references, the order of GCP timestamps, verdicts, inputs."""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import images
from ansible_collections.ollama_cloud.engine.plugins.modules import gcp_image_prune

P = "projects/oce-test/global/images"


@pytest.mark.parametrize(
    "ref, path",
    [
        (f"https://www.googleapis.com/compute/v1/{P}/node-1", f"{P}/node-1"),
        (f"https://compute.googleapis.com/compute/v1/{P}/node-1", f"{P}/node-1"),
        (f"{P}/node-1", f"{P}/node-1"),
        ("global/images/node-1", f"{P}/node-1"),  # a template's own project
        ("projects/ubuntu-os-cloud/global/images/ubuntu-2404", "projects/ubuntu-os-cloud/global/images/ubuntu-2404"),
        # A family follows its newest image: it holds on to no particular one.
        (f"{P}/family/ollama-node", None),
        ("global/images/family/ollama-node", None),
        ("projects/oce-test/global/snapshots/snap-1", None),
        ("", None),
        (None, None),
    ],
)
def test_image_path(ref, path):
    assert gcp_image_prune.image_path(ref, "oce-test") == path


def test_newest_is_by_instant_not_by_text():
    # 01:30 PDT is 08:30 UTC; 01:10 PST, an hour of the same night later, is 09:10 UTC.
    summer = {"name": "a", "creationTimestamp": "2026-11-01T01:30:00.000-07:00"}
    winter = {"name": "b", "creationTimestamp": "2026-11-01T01:10:00.000-08:00"}
    assert sorted([winter, summer], key=gcp_image_prune.newest_first) == [summer, winter]
    # Same instant: the name decides; no timestamp at all is oldest.
    twin = dict(summer, name="c")
    assert max([summer, twin], key=gcp_image_prune.newest_first) is twin
    assert min([summer, {"name": "z"}], key=gcp_image_prune.newest_first) == {"name": "z"}


@pytest.mark.parametrize(
    "image, verdict",
    [
        ({"status": "READY"}, (images.USABLE, None)),
        ({"status": "READY", "deprecated": {"state": "ACTIVE"}}, (images.USABLE, None)),
        ({"status": "READY", "deprecated": {"state": "DEPRECATED"}}, (images.STALE, "DEPRECATED")),
        ({"status": "READY", "deprecated": {"state": "OBSOLETE"}}, (images.STALE, "OBSOLETE")),
        ({"status": "FAILED"}, (images.STALE, "FAILED (not READY)")),
        ({"status": "PENDING"}, (images.HOLD, "still being created (PENDING)")),
        ({"status": "DELETING"}, (images.HOLD, "being deleted already (DELETING)")),
    ],
)
def test_judge(image, verdict):
    assert gcp_image_prune.judge(image) == verdict


def params(**extra):
    base = {"keep": 3, "families": [], "deployment": None, "wait_timeout": 600}
    base.update(extra)
    return base


def test_good_inputs_have_no_problem():
    assert gcp_image_prune.check_inputs(params(families=["ollama-node", "a"], deployment="images")) == []


def test_every_bad_input_is_named_at_once():
    problems = gcp_image_prune.check_inputs(
        params(keep=0, families=["ok", "-bad", "x" * 64], deployment="Bad", wait_timeout=0)
    )
    assert len(problems) == 4, problems
    assert problems[0].startswith("keep must be at least 1, not 0")
    assert problems[1].startswith(f"families '-bad', '{'x' * 64}' are not image family names")
    assert problems[2].startswith("deployment 'Bad' is not valid")
    assert problems[3] == "wait_timeout must be at least 1 second"
