"""gcp_image_prune in-process against the GCE emulator, and prune_images.yml with image_cloud=gcp.

Golden images are seeded as Packer leaves them (our labels, a family); what holds on to an old one
is real on the emulator: the boot disk of a node gcp_gpu_instance booted from it, a detached disk,
a global or a regional instance template. Every request and response is checked against the
compute.v1 discovery document.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.modules import gcp_gpu_instance, gcp_image_prune
from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server
from ansible_collections.ollama_cloud.engine.tests.functional.gcp import permissions

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OURS = {"oce-managed-by": "ollama_cloud-engine", "oce-deployment": "images"}


def run(capsys, module=gcp_image_prune, **args):
    """Run a module in-process; return its result dict (failed results included)."""
    args.setdefault("auth_kind", "anonymous")
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def golden_name(n, family="ollama-node"):
    return f"{family}-ubuntu2404-202611{n:02d}120000"


def golden(emu, n, family="ollama-node", labels=None, **extra):
    """Our n-th golden image of ``family``: names and creation times order them oldest to newest."""
    return emu.add_image(
        server.PROJECT,
        golden_name(n, family),
        family,
        labels=dict(OURS, **{"oce-image": family}, **(labels or {})),
        # In Pacific time, as GCP writes it (-07:00 in summer).
        created=f"2026-{n:02d}-01T04:00:00.000-0{7 if 3 < n < 11 else 8}:00",
        **extra,
    )


def names(entries):
    return [e["name"] for e in entries]


def deprecations(emu):
    """Image name -> (deprecation state, name of the replacement) of every image in the project."""
    found = {}
    with emu.lock:
        for (project, name), image in emu.images.items():
            status = image.get("deprecated") or {}
            replacement = status.get("replacement")
            if project == server.PROJECT:
                found[name] = (status.get("state"), replacement.rsplit("/", 1)[-1] if replacement else None)
    return found


def boot_node(capsys, image):
    """A node gcp_gpu_instance boots from ``image`` (a path): its boot disk remembers the image."""
    node = run(
        capsys,
        module=gcp_gpu_instance,
        name="oce-old",
        deployment="t1",
        model="gemma3:270m",
        zones=["us-central1-a"],
        subnetwork="oce-private",
        image=image,
        service_account_email="oce-node@oce-test.iam.gserviceaccount.com",
        wait_timeout=30,
    )
    assert node["changed"] is True and not node.get("failed"), node
    return node


@pytest.fixture
def fleet(gce, capsys):
    """Seven ollama-node images and two ollama-cpu ones; four old ones in use; others' images around."""
    node = [golden(gce, n) for n in range(1, 8)]  # oldest first
    cpu = [golden(gce, n, family="ollama-cpu") for n in (1, 2)]
    paths = [f"projects/{server.PROJECT}/global/images/{i['name']}" for i in node]
    boot_node(capsys, paths[1])  # image 2: the boot disk of a stopped-or-running node
    gce.add_instance_template("oce-nodes", paths[2])  # image 3: a global template
    gce.add_instance_template("oce-nodes-eu", f"global/images/{node[3]['name']}", region="europe-west4")
    # Not ours: the same family without our label, someone else's label, and Canonical's image.
    early = "2025-01-01T00:00:00.000-08:00"
    terraform = {"oce-managed-by": "terraform"}
    gce.add_image(server.PROJECT, "ollama-node-handmade", "ollama-node", created=early)
    gce.add_image(server.PROJECT, "ollama-node-terraform", "ollama-node", labels=terraform, created=early)
    # A template and a disk that follow a family hold on to no particular image.
    gce.add_instance_template("follows-family", f"projects/{server.PROJECT}/global/images/family/ollama-node")
    gce.add_disk("us-central1-b", "scratch")
    return {"node": [i["name"] for i in node], "cpu": [i["name"] for i in cpu]}


def test_deprecates_all_but_the_newest_and_never_one_in_use(gce, fleet, capsys):
    node, cpu = fleet["node"], fleet["cpu"]
    before, calls = deprecations(gce), len(gce.changing_calls())  # the node's insert

    preview = run(capsys, keep=2, _ansible_check_mode=True, _ansible_diff=True)
    assert preview["changed"] is True and not preview.get("failed"), preview
    assert names(preview["deprecated"]) == [node[4], node[0]]
    assert len(gce.changing_calls()) == calls and deprecations(gce) == before
    assert preview["diff"]["before"]["images"][node[4]] == "ACTIVE"
    assert preview["diff"]["after"]["images"][node[4]] == "DEPRECATED"
    assert set(preview["diff"]["before"]["images"]) == set(node) | set(cpu)

    pruned = run(capsys, keep=2)
    assert pruned["changed"] is True and not pruned.get("failed"), pruned
    assert names(pruned["kept"]) == [cpu[1], cpu[0], node[6], node[5]]
    assert pruned["kept"][2]["reason"] == "one of the 2 newest active images of ollama-node"
    assert names(pruned["deprecated"]) == [node[4], node[0]]
    assert {d["replacement"] for d in pruned["deprecated"]} == {node[6]}
    assert pruned["deprecated"][0]["reason"] == "older than the 2 newest active images of ollama-node"
    assert pruned["deleted"] == []
    assert {s["name"]: s["reason"] for s in pruned["left_alone"]} == {
        node[1]: "in use by disk oce-old in us-central1-a (attached to instance oce-old)",
        node[2]: "in use by instance template oce-nodes",
        node[3]: "in use by regional instance template oce-nodes-eu in europe-west4",
    }

    after = deprecations(gce)
    assert after[node[4]] == after[node[0]] == ("DEPRECATED", node[6])
    assert {n: after[n] for n in node[1:4] + node[5:] + cpu} == {n: (None, None) for n in node[1:4] + node[5:] + cpu}
    # Not ours: untouched, and the family still boots the newest of ours.
    assert after["ollama-node-handmade"] == after["ollama-node-terraform"] == (None, None)
    assert gce.images[(server.IMAGE_PROJECT, "ubuntu-2204-jammy-v20251001")].get("deprecated") is None
    assert gce.do_images_getFromFamily(server.PROJECT, "ollama-node", {}, None)["name"] == node[6]

    calls = len(gce.changing_calls())
    again = run(capsys, keep=2)
    assert again["changed"] is False and again["deprecated"] == [], again
    assert len(gce.changing_calls()) == calls
    reasons = {s["name"]: s["reason"] for s in again["left_alone"]}
    assert reasons[node[4]] == reasons[node[0]] == f"deprecated already, in favour of {node[6]}"


def test_absent_deletes_old_images_deprecated_and_failed_ones_included(gce, capsys):
    node = [
        golden(gce, 1, deprecated="DEPRECATED")["name"],
        golden(gce, 2, status="FAILED")["name"],
        golden(gce, 3)["name"],
        golden(gce, 4)["name"],
        golden(gce, 5)["name"],
    ]
    gce.add_disk("us-central1-b", "data-1", f"projects/{server.PROJECT}/global/images/{node[3]}")

    preview = run(capsys, keep=1, state="absent", _ansible_check_mode=True)
    assert names(preview["deleted"]) == [node[2], node[1], node[0]] and preview["changed"] is True, preview
    assert gce.changing_calls() == [] and len(deprecations(gce)) == 5

    pruned = run(capsys, keep=1, state="absent")
    assert pruned["changed"] is True and not pruned.get("failed"), pruned
    assert names(pruned["kept"]) == [node[4]] and pruned["deprecated"] == []
    assert [d["reason"] for d in pruned["deleted"]] == [
        "older than the 1 newest active images of ollama-node",
        "FAILED (not READY); older than the 1 newest active images of ollama-node",
        "DEPRECATED; older than the 1 newest active images of ollama-node",
    ]
    assert [s["reason"] for s in pruned["left_alone"]] == ["in use by disk data-1 in us-central1-b"]
    assert sorted(deprecations(gce)) == sorted([node[3], node[4]])

    again = run(capsys, keep=1, state="absent")
    assert again["changed"] is False and again["deleted"] == [], again


def test_the_replacement_follows_the_newest_build(gce, capsys):
    first = [golden(gce, n)["name"] for n in (1, 2)]
    assert names(run(capsys, keep=1)["deprecated"]) == [first[0]]
    assert deprecations(gce)[first[0]] == ("DEPRECATED", first[1])

    # Next week's build: the last one is deprecated too, and the older one now points at the new.
    newer = golden(gce, 3)["name"]
    res = run(capsys, keep=1)
    assert names(res["deprecated"]) == [first[1], first[0]] and res["changed"] is True, res
    assert deprecations(gce)[first[0]] == deprecations(gce)[first[1]] == ("DEPRECATED", newer)

    # What someone made obsolete stays obsolete.
    gce.images[(server.PROJECT, first[0])]["deprecated"] = {"state": "OBSOLETE"}
    golden(gce, 4)
    res = run(capsys, keep=1)
    assert names(res["deprecated"]) == [newer, first[1]]
    obsolete = next(s for s in res["left_alone"] if s["name"] == first[0])
    assert obsolete["reason"] == "OBSOLETE already, which is more than deprecated: left as it is"


def test_what_is_left_alone_and_what_narrows_the_selection(gce, capsys):
    node = [golden(gce, n)["name"] for n in (1, 2, 3)]
    building = golden(gce, 4, status="PENDING")["name"]
    cpu = [golden(gce, n, family="ollama-cpu")["name"] for n in (1, 2)]
    staging = [golden(gce, n, family="ollama-gpu", labels={"oce-deployment": "staging"})["name"] for n in (1, 2)]
    retired = [golden(gce, n, family="ollama-old", deprecated="DEPRECATED")["name"] for n in (1, 2)]
    lone = gce.add_image(server.PROJECT, "ollama-lone", None, labels=OURS)["name"]

    res = run(capsys, keep=1, families=["ollama-cpu"], _ansible_check_mode=True)
    assert names(res["deprecated"]) == [cpu[0]] and names(res["kept"]) == [cpu[1]] and res["left_alone"] == []

    res = run(capsys, keep=1, deployment="staging", _ansible_check_mode=True)
    assert names(res["deprecated"]) == [staging[0]] and names(res["kept"]) == [staging[1]]

    res = run(capsys, keep=1, state="absent", _ansible_check_mode=True)
    assert names(res["deleted"]) == [cpu[0], staging[0], node[1], node[0]]  # families by name
    reasons = {s["name"]: s["reason"] for s in res["left_alone"]}
    assert reasons == {
        building: "still being created (PENDING)",
        # A family with no active image left loses nothing: there would be no image to fall back on.
        retired[1]: "DEPRECATED; ollama-old has no active images left to keep, so none of its images is pruned",
        retired[0]: "DEPRECATED; ollama-old has no active images left to keep, so none of its images is pruned",
        lone: gcp_image_prune.NO_FAMILY,
    }
    assert gce.changing_calls() == []


BAD_INPUTS = {
    "keep zero": ({"keep": 0}, "keep must be at least 1, not 0: the newest image of each group is what gcp_gpu"),
    "keep negative": ({"keep": -1}, "keep must be at least 1, not -1"),
    "bad family": ({"families": ["ollama-node", "Ollama_Node"]}, "families 'Ollama_Node' are not image family names"),
    "bad deployment": ({"deployment": "Not Valid"}, "deployment 'Not Valid' is not valid"),
    "no wait": ({"wait_timeout": 0}, "wait_timeout must be at least 1 second"),
    "bad state": ({"state": "deleted"}, "value of state must be one of: deprecated, absent"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_fails_with_a_sentence_before_any_call(gce, capsys, case):
    golden(gce, 1)
    golden(gce, 2)
    args, message = BAD_INPUTS[case]
    res = run(capsys, **args)
    assert res["failed"] is True and message in res["msg"], res
    assert res.get("changed") is not True
    assert gce.requests == 0 and deprecations(gce) == {golden_name(1): (None, None), golden_name(2): (None, None)}


def test_a_refusal_midway_says_what_was_done_and_a_rerun_finishes(gce, capsys):
    node = [golden(gce, n)["name"] for n in (1, 2, 3)]
    gce.fail("compute.images.deprecate", 403, "forbidden", after=1, message="Required 'compute.images.deprecate'")
    failed = run(capsys, keep=1)
    assert failed["failed"] is True and failed["changed"] is True, failed
    assert failed["msg"] == (
        f"deprecate image {node[0]} failed: "
        + gcp_image_prune.FORBIDDEN_HINT
        + f" (GCP said forbidden: Required 'compute.images.deprecate'); done before the failure: "
        f"deprecated {node[1]}; run again to finish"
    )
    assert names(failed["deprecated"]) == [node[1]] and failed["failed_image"] == node[0]
    assert deprecations(gce)[node[1]] == ("DEPRECATED", node[2]) and deprecations(gce)[node[0]] == (None, None)

    finished = run(capsys, keep=1)
    assert names(finished["deprecated"]) == [node[0]] and finished["changed"] is True, finished
    assert next(s for s in finished["left_alone"] if s["name"] == node[1])["reason"].startswith("deprecated already")


def test_an_operation_that_fails_is_a_sentence_and_changes_nothing_more(gce, capsys):
    node = [golden(gce, n)["name"] for n in (1, 2, 3)]
    gce.op_errors["compute.images.delete"] = (400, "RESOURCE_NOT_READY", "The image is being used by an export")
    failed = run(capsys, keep=2, state="absent")
    assert failed["failed"] is True and failed["changed"] is False, failed
    assert failed["msg"].startswith(f"delete image {node[0]} failed (GCP said RESOURCE_NOT_READY: The image is being")
    assert failed["deleted"] == [] and len(deprecations(gce)) == 3


def test_throttling_is_retried_and_a_refused_listing_changes_nothing(gce, capsys):
    node = [golden(gce, n)["name"] for n in range(1, 6)]  # three pages of images (two a page)
    gce.fail("compute.images.list", 429, "rateLimitExceeded", times=2)
    gce.fail("compute.images.deprecate", 503, "backendError")
    res = run(capsys, keep=4)
    assert res["changed"] is True and names(res["deprecated"]) == [node[0]], res
    assert [r[1] for r in res["retries"]] == ["rateLimitExceeded", "rateLimitExceeded", "backendError"]
    # The retried deprecate carried the same request id: one operation, one change.
    assert len({c[3]["requestId"][0] for c in gce.calls("compute.images.deprecate")}) == 1

    gce.fail("compute.disks.aggregatedList", 403, "forbidden", message="Required 'compute.disks.list'")
    calls = len(gce.changing_calls())
    refused = run(capsys, keep=1)
    assert refused["failed"] is True and refused["changed"] is False, refused
    assert refused["msg"].startswith("list disks failed: " + gcp_image_prune.FORBIDDEN_HINT)
    assert len(gce.changing_calls()) == calls and "failed_image" not in refused


# ---------------------------------------------------------------- the playbook, as a user runs it


def playbook(emu, *extra):
    """prune_images.yml for GCP; the project comes from -e gcp_project only, not the environment."""
    cmd = ["ansible-playbook", "playbooks/prune_images.yml", "-e", "image_cloud=gcp"]
    cmd += ["-e", f"gcp_project={server.PROJECT}"]
    env = {k: v for k, v in emu.cli_env.items() if k != "GCP_PROJECT"}
    proc = subprocess.run(
        cmd + list(extra), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    # The report as one line, whatever quoting and folding the YAML callback chose.
    return proc.returncode, proc.stdout + proc.stderr, " ".join(proc.stdout.replace("''", "'").split())


def test_prune_images_playbook_on_gcp(gce_cli):
    gce_cli.reset()
    node = [golden(gce_cli, n)["name"] for n in (1, 2, 3, 4)]
    cpu = [golden(gce_cli, n, family="ollama-cpu")["name"] for n in (1, 2)]
    gce_cli.add_disk("us-central1-c", "keepsake", f"projects/{server.PROJECT}/global/images/{node[0]}")
    families = ["-e", "image_families=ollama-node, ", "-e", "image_keep=1"]

    code, out, report = playbook(gce_cli, *families, "--check")
    assert code == 0, out[-3000:]
    assert f"would deprecate ['{node[2]}', '{node[1]}'], kept ['{node[3]}']" in report, report
    assert gce_cli.changing_calls() == []

    code, out, report = playbook(gce_cli, *families)
    # Counted as changed, though an image was left alone (a result key "skipped" would hide it).
    assert code == 0 and re.search(r"\bchanged=1\b", out), out[-3000:]
    assert f"deprecated ['{node[2]}', '{node[1]}'], kept ['{node[3]}']" in report, report
    assert f"left alone ['{node[0]}: in use by disk keepsake in us-central1-c']" in report, report
    assert deprecations(gce_cli)[node[1]] == ("DEPRECATED", node[3])
    assert deprecations(gce_cli)[node[0]] == deprecations(gce_cli)[cpu[0]] == (None, None)

    code, out, report = playbook(gce_cli, *families)
    assert code == 0 and re.search(r"\bchanged=0\b", out), out[-3000:]

    code, out, _report = playbook(gce_cli, "-e", "image_keep=0")
    assert code != 0 and "image_keep must be at least 1" in " ".join(out.split()), out[-3000:]
    code, out, _report = playbook(gce_cli, "-e", "image_state=deleted")
    assert code != 0 and "image_state must be deprecated or absent (got deleted)" in " ".join(out.split())
    # The role docs/permissions gives users allows every call the prune made.
    permissions.assert_allowed(gce_cli.served)
