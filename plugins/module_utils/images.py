# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which golden images to prune: what aws_image_prune and gcp_image_prune share, knowing no cloud.

A cloud module lists its images and tells, for each one, its group (the AMI's ``oce-image`` tag,
the GCP image family), how new it is and a verdict: ``USABLE`` (it may be kept: an available AMI,
a READY image that is not deprecated), ``HOLD`` (never touched, with a reason: still being
created) or ``STALE`` (never kept, with a note: failed, deprecated). ``plan`` keeps the newest
``keep`` usable images of each group and makes the rest candidates; ``split_in_use`` sets aside
the candidates something still uses. What is done to the remaining ones is the cloud's business.
"""

from __future__ import annotations

USABLE, HOLD, STALE = "usable", "hold", "stale"

# The options every pruning module has (doc fragment ollama_cloud.engine.image_prune).
PRUNE_ARGS = {
    "keep": {"type": "int", "default": 3},
    "deployment": {"type": "str"},
}


def keep_problem(keep, booted_by):
    """The sentence for a ``keep`` below 1, or None. ``booted_by`` names the module that boots the newest."""
    if keep >= 1:
        return None
    return (
        f"keep must be at least 1, not {keep}: the newest image of each group is what {booted_by} "
        "boots (image=golden), so it is never pruned"
    )


def plan(images, keep, group_of, newest, judge, summary, noun, hold_when_none_kept=False):
    """Split ``images`` into ``(kept, candidates, left_alone)``, group by group in name order.

    ``group_of(image)`` names the group; ``newest(image)`` is a sort key, larger is newer;
    ``judge(image)`` returns ``(USABLE, None)``, ``(HOLD, reason)`` or ``(STALE, note)``;
    ``summary(image, group, reason)`` is the dict the module reports; ``noun`` words the images a
    group keeps ("available images"). In a group, images are taken newest first: the first
    ``keep`` usable ones are kept, held ones are left alone with their reason, all others are
    candidates, as ``(image, summary)`` pairs, newest first. With ``hold_when_none_kept`` a group
    that has no usable image at all loses nothing: its candidates are left alone instead.
    """
    groups = {}
    for image in images:
        groups.setdefault(group_of(image), []).append(image)
    kept, candidates, left_alone = [], [], []
    for group in sorted(groups):
        usable, older = 0, []
        for image in sorted(groups[group], key=newest, reverse=True):
            verdict, text = judge(image)
            if verdict == HOLD:
                left_alone.append(summary(image, group, text))
            elif verdict == USABLE and usable < keep:
                usable += 1
                kept.append(summary(image, group, f"one of the {keep} newest {noun} of {group}"))
            else:
                older.append((image, text if verdict == STALE else None))
        if hold_when_none_kept and not usable:
            # Every image of the group is stale: with nothing to fall back on, none is touched.
            why = f"{group} has no {noun} left to keep, so none of its images is pruned"
            left_alone.extend(summary(image, group, f"{note}; {why}") for image, note in older)
            continue
        why = f"older than the {keep} newest {noun} of {group}"
        candidates.extend((image, summary(image, group, f"{note}; {why}" if note else why)) for image, note in older)
    return kept, candidates, left_alone


def split_in_use(candidates, users, ident):
    """``(free, in_use)`` of ``candidates`` (pairs from ``plan``).

    ``users`` maps ``ident(image)`` to what still uses the image (a phrase: "instance i-1
    (stopped)"); such images go to ``in_use`` as summaries whose reason says so.
    """
    free, in_use = [], []
    for image, entry in candidates:
        user = users.get(ident(image))
        if user:
            in_use.append(dict(entry, reason=f"in use by {user}"))
        else:
            free.append((image, entry))
    return free, in_use
