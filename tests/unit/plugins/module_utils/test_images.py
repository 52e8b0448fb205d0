"""images.plan and images.split_in_use: the choice of golden images to prune that both clouds share."""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import images


def image(name, group, age, state="ok"):
    """A cloud-free image: ``age`` orders it (larger is newer); ``state`` picks the verdict."""
    return {"name": name, "group": group, "age": age, "state": state}


def judge(img):
    return {
        "ok": (images.USABLE, None),
        "building": (images.HOLD, "still being built"),
        "broken": (images.STALE, "broken"),
    }[img["state"]]


def plan(found, keep=2, **extra):
    return images.plan(
        found,
        keep,
        group_of=lambda i: i["group"],
        newest=lambda i: (i["age"], i["name"]),
        judge=judge,
        summary=lambda i, group, reason: {"name": i["name"], "group": group, "reason": reason},
        noun="good images",
        **extra,
    )


def names(entries):
    return [e["name"] for e in entries]


def test_keeps_the_newest_of_each_group_groups_by_name_newest_first():
    found = [image(f"b{n}", "b", n) for n in (3, 1, 4, 2)] + [image(f"a{n}", "a", n) for n in (1, 2, 3)]
    kept, candidates, left_alone = plan(found)
    assert names(kept) == ["a3", "a2", "b4", "b3"]
    assert [pair[1]["name"] for pair in candidates] == ["a1", "b2", "b1"]
    assert [pair[0] for pair in candidates] == [found[4], found[3], found[1]]  # the images themselves
    assert left_alone == []
    assert kept[0]["reason"] == "one of the 2 newest good images of a"
    assert candidates[1][1]["reason"] == "older than the 2 newest good images of b"


def test_ties_in_age_fall_back_to_the_rest_of_the_key():
    kept, candidates, _left = plan([image("x-1", "x", 5), image("x-2", "x", 5)], keep=1)
    assert names(kept) == ["x-2"] and candidates[0][1]["name"] == "x-1"


def test_held_images_are_left_alone_and_stale_ones_never_kept():
    found = [
        image("new-building", "g", 9, "building"),
        image("new-broken", "g", 8, "broken"),
        image("good-1", "g", 7),
        image("good-2", "g", 6),
        image("old-broken", "g", 1, "broken"),
    ]
    kept, candidates, left_alone = plan(found, keep=1)
    assert names(kept) == ["good-1"]
    assert left_alone == [{"name": "new-building", "group": "g", "reason": "still being built"}]
    # Stale images are candidates wherever they stand, their note in front of the reason.
    assert [(p[1]["name"], p[1]["reason"]) for p in candidates] == [
        ("new-broken", "broken; older than the 1 newest good images of g"),
        ("good-2", "older than the 1 newest good images of g"),
        ("old-broken", "broken; older than the 1 newest good images of g"),
    ]


def test_a_group_with_nothing_to_keep_loses_nothing_only_when_asked():
    found = [image("r1", "retired", 1, "broken"), image("r2", "retired", 2, "broken"), image("k1", "kept", 1)]
    kept, candidates, left_alone = plan(found, keep=1)
    assert names(kept) == ["k1"] and [p[1]["name"] for p in candidates] == ["r2", "r1"] and left_alone == []

    kept, candidates, left_alone = plan(found, keep=1, hold_when_none_kept=True)
    assert names(kept) == ["k1"] and candidates == []
    assert left_alone == [
        {
            "name": n,
            "group": "retired",
            "reason": "broken; retired has no good images left to keep, so none of its images is pruned",
        }
        for n in ("r2", "r1")
    ]


def test_keep_covers_every_image_and_nothing_found_is_nothing_to_do():
    kept, candidates, left_alone = plan([image("only", "g", 1)], keep=3)
    assert names(kept) == ["only"] and candidates == [] and left_alone == []
    assert plan([], keep=1) == ([], [], [])


def test_split_in_use_sets_aside_what_something_uses():
    found = [image(f"g{n}", "g", n) for n in (1, 2, 3, 4)]
    _kept, candidates, _left = plan(found, keep=1)
    free, in_use = images.split_in_use(candidates, {"g2": "instance i-1 (stopped)"}, lambda i: i["name"])
    assert [pair[1]["name"] for pair in free] == ["g3", "g1"]
    assert in_use == [{"name": "g2", "group": "g", "reason": "in use by instance i-1 (stopped)"}]
    assert images.split_in_use([], {"g2": "x"}, lambda i: i["name"]) == ([], [])


@pytest.mark.parametrize("keep", [0, -3])
def test_keep_below_one_is_a_sentence(keep):
    assert images.keep_problem(keep, "gcp_gpu_instance") == (
        f"keep must be at least 1, not {keep}: the newest image of each group is what gcp_gpu_instance "
        "boots (image=golden), so it is never pruned"
    )


def test_keep_of_one_or_more_is_fine():
    assert images.keep_problem(1, "aws_gpu_instance") is None and images.keep_problem(9, "x") is None
