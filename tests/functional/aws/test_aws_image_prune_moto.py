"""aws_image_prune in-process against a moto server on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_image_prune
from ansible_collections.ollama_cloud.engine.tests.functional.aws import permissions

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
OURS = {"oce-managed-by": "ollama_cloud.engine", "oce-deployment": "images"}


def run(capsys, **args):
    """Run the module in-process; return its result dict (failed results included)."""
    with patch_module_args(args), pytest.raises(SystemExit):
        aws_image_prune.main()
    return json.loads(capsys.readouterr().out)


def register(moto, name, tags):
    """A tagged AMI registered from a snapshot; returns (image id, the snapshot id the AMI names).

    moto gives a registered image a root snapshot of its own: read it back from the image.
    """
    volume = moto.ec2.create_volume(AvailabilityZone="us-east-1a", Size=8)["VolumeId"]
    snapshot = moto.ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    image = moto.ec2.register_image(
        Name=name,
        RootDeviceName="/dev/sda1",
        BlockDeviceMappings=[{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": snapshot, "VolumeSize": 8}}],
        VirtualizationType="hvm",
        Architecture="x86_64",
    )["ImageId"]
    if tags:
        moto.ec2.create_tags(Resources=[image], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    (described,) = moto.ec2.describe_images(ImageIds=[image])["Images"]
    (mapping,) = described["BlockDeviceMappings"]
    return image, mapping["Ebs"]["SnapshotId"]


def golden(moto, n, image="ollama-node", **extra):
    """Our n-th golden image of ``image``: names and oce-built-at order them oldest to newest."""
    tags = dict(OURS, **{"oce-image": image, "oce-built-at": f"2026-11-{n:02d}T12:00:00Z"}, **extra)
    return register(moto, f"{image}-ubuntu2404-202611{n:02d}120000", tags)


def image_ids(moto):
    return {i["ImageId"] for i in moto.ec2.describe_images(Owners=["self"])["Images"]}


def snapshot_ids(moto, wanted):
    found = moto.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    return {s["SnapshotId"] for s in found} & set(wanted)


@pytest.fixture
def fleet(moto):
    """Five golden images, one used by a stopped instance, one by a launch template, one not ours."""
    imgs = [golden(moto, n) for n in range(1, 6)]  # [(image, snapshot)], oldest first
    ids = [image for image, snapshot in imgs]

    # The oldest image's instance is terminated: that does not hold on to it.
    gone = moto.ec2.run_instances(ImageId=ids[0], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    moto.ec2.terminate_instances(InstanceIds=[gone])
    # Image 2 runs a stopped instance: still in use.
    user = moto.ec2.run_instances(ImageId=ids[1], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    moto.ec2.stop_instances(InstanceIds=[user])
    # Image 4 is the default version of a launch template whose latest version boots another image.
    template = moto.ec2.create_launch_template(LaunchTemplateName="oce-nodes", LaunchTemplateData={"ImageId": ids[3]})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    moto.ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": moto.ami})

    # Not ours: the same image tag, but managed by someone else; and one with no tags at all.
    foreign = register(moto, "someone-elses-node", {"oce-image": "ollama-node", "oce-managed-by": "terraform"})
    untagged = register(moto, "untagged", {})
    return {
        "ids": ids,
        "snapshots": [snapshot for image, snapshot in imgs],
        "user": user,
        "template": template_id,
        "foreign": [foreign, untagged],
    }


def test_prunes_old_images_but_never_one_in_use_or_not_ours(moto, fleet, capsys):
    ids, snaps = fleet["ids"], fleet["snapshots"]
    foreign_ids = [image for image, snapshot in fleet["foreign"]]
    foreign_snaps = [snapshot for image, snapshot in fleet["foreign"]]

    # Check mode: the plan, and nothing touched.
    preview = run(capsys, keep=1, _ansible_check_mode=True, _ansible_diff=True)
    assert preview["changed"] is True and not preview.get("failed"), preview
    assert [d["image_id"] for d in preview["deleted"]] == [ids[2], ids[0]]
    assert [d["snapshots"] for d in preview["deleted"]] == [[snaps[2]], [snaps[0]]]
    assert image_ids(moto) >= set(ids) | set(foreign_ids)
    assert snapshot_ids(moto, snaps) == set(snaps)
    assert preview["diff"]["before"]["images"] == sorted(ids)
    assert preview["diff"]["after"]["images"] == sorted([ids[1], ids[3], ids[4]])

    pruned = run(capsys, keep=1)
    assert pruned["changed"] is True and not pruned.get("failed"), pruned
    assert [k["image_id"] for k in pruned["kept"]] == [ids[4]]
    assert pruned["kept"][0]["reason"] == "one of the 1 newest available images of ollama-node"
    assert [d["image_id"] for d in pruned["deleted"]] == [ids[2], ids[0]]
    assert pruned["deleted"][0]["reason"] == "older than the 1 newest available images of ollama-node"
    skipped = {s["image_id"]: s["reason"] for s in pruned["left_alone"]}
    assert skipped == {
        ids[3]: f"in use by launch template {fleet['template']} (oce-nodes) version 1 ($Default)",
        ids[1]: f"in use by instance {fleet['user']} (stopped)",
    }
    assert pruned["snapshots_kept"] == []

    # What moto holds now: exactly images 1 and 3 and their snapshots are gone.
    left = image_ids(moto)
    assert ids[0] not in left and ids[2] not in left
    assert {ids[1], ids[3], ids[4]} <= left
    assert snapshot_ids(moto, snaps) == {snaps[1], snaps[3], snaps[4]}
    # Not ours: untouched.
    assert set(foreign_ids) <= left
    assert snapshot_ids(moto, foreign_snaps) == set(foreign_snaps)

    again = run(capsys, keep=1)
    assert again["changed"] is False and again["deleted"] == [], again
    assert image_ids(moto) == left


def test_default_keeps_three_newest_per_group(moto, capsys):
    node = [golden(moto, n)[0] for n in range(1, 5)]
    other = golden(moto, 1, image="ollama-cpu")[0]
    res = run(capsys)
    assert res["changed"] is True, res
    assert [d["image_id"] for d in res["deleted"]] == [node[0]]
    assert [k["image_id"] for k in res["kept"]] == [other, node[3], node[2], node[1]]
    assert {k["group"] for k in res["kept"]} == {"ollama-node", "ollama-cpu"}
    assert run(capsys)["changed"] is False


def test_an_image_an_older_launch_template_version_boots_is_kept(moto, capsys):
    """An Auto Scaling group may pin any version of a template, not only $Latest or $Default."""
    pinned, newest = golden(moto, 1)[0], golden(moto, 2)[0]
    template = moto.ec2.create_launch_template(LaunchTemplateName="oce-pinned", LaunchTemplateData={"ImageId": pinned})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    moto.ec2.create_launch_template_version(LaunchTemplateId=template_id, LaunchTemplateData={"ImageId": newest})
    moto.ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion="2")
    res = run(capsys, keep=1)
    assert res["deleted"] == [], res
    skipped = {s["image_id"]: s["reason"] for s in res["left_alone"]}
    assert skipped == {pinned: f"in use by launch template {template_id} (oce-pinned) version 1"}


def test_image_names_and_deployment_narrow_the_selection(moto, capsys):
    node = [golden(moto, n)[0] for n in range(1, 3)]
    cpu = [golden(moto, n, image="ollama-cpu")[0] for n in range(1, 3)]
    staging = [golden(moto, n, image="ollama-node", **{"oce-deployment": "staging"})[0] for n in (3, 4)]

    res = run(capsys, keep=1, image_names=["ollama-cpu"])
    assert [d["image_id"] for d in res["deleted"]] == [cpu[0]]
    assert {k["image_id"] for k in res["kept"]} == {cpu[1]}

    res = run(capsys, keep=1, deployment="staging")
    assert [d["image_id"] for d in res["deleted"]] == [staging[0]]
    assert image_ids(moto) >= set(node)


class FakeEc2:
    """Canned EC2 answers for what moto cannot show: two AMIs on one snapshot."""

    region = "us-east-1"

    def __init__(self, images):
        self.images = images
        self.calls = []

    def paginate(self, operation, key, **params):
        self.calls.append(operation)
        return {"describe_images": self.images}.get(operation, [])

    def call(self, operation, **params):
        self.calls.append((operation, params))
        return {}


def test_snapshot_shared_with_a_kept_image_is_not_deleted():
    def ami(image_id, day):
        return {
            "ImageId": image_id,
            "Name": f"ollama-node-{day}",
            "State": "available",
            "CreationDate": f"2026-11-{day:02d}T12:00:00.000Z",
            "Tags": [
                {"Key": "oce-image", "Value": "ollama-node"},
                {"Key": "oce-managed-by", "Value": "ollama_cloud.engine"},
            ],
            "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-shared"}}],
        }

    ec2 = FakeEc2([ami("ami-old", 1), ami("ami-new", 2)])
    params = {"keep": 1, "group_tag": "oce-image", "image_names": [], "deployment": None, "delete_snapshots": True}
    res = aws_image_prune.prune(ec2, params, check_mode=False)
    assert [d["image_id"] for d in res["deleted"]] == ["ami-old"] and res["deleted"][0]["snapshots"] == []
    assert res["snapshots_kept"] == [{"snapshot_id": "snap-shared", "reason": "also used by image ami-new"}]
    assert ("deregister_image", {"ImageId": "ami-old"}) in ec2.calls
    assert not [c for c in ec2.calls if c[0] == "delete_snapshot"]


def test_failed_snapshot_deletion_names_what_is_left():
    class Failing(FakeEc2):
        def call(self, operation, **params):
            if operation == "delete_snapshot":
                raise aws_image_prune.cloud.CloudError("delete snapshot failed: the credentials are not allowed")
            return super().call(operation, **params)

    image = {
        "ImageId": "ami-old",
        "Name": "ollama-node-1",
        "State": "failed",
        "CreationDate": "2026-11-01T12:00:00.000Z",
        "Tags": [{"Key": "oce-image", "Value": "ollama-node"}],
        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-1"}}],
    }
    params = {"keep": 1, "group_tag": "oce-image", "image_names": [], "deployment": None, "delete_snapshots": True}
    with pytest.raises(aws_image_prune.cloud.CloudError) as failed:
        aws_image_prune.prune(Failing([image]), params, check_mode=False)
    assert "ami-old is deregistered already but its snapshots snap-1 were not deleted" in failed.value.msg
    assert failed.value.details["snapshots_left"] == ["snap-1"] and failed.value.details["changed"] is True
    assert failed.value.details["deleted"][0]["reason"].startswith("failed (not available)")


def test_delete_snapshots_false_leaves_them(moto, capsys):
    old, snap_old = golden(moto, 1)
    golden(moto, 2)
    res = run(capsys, keep=1, delete_snapshots=False)
    assert [d["image_id"] for d in res["deleted"]] == [old] and res["deleted"][0]["snapshots"] == []
    assert old not in image_ids(moto) and snapshot_ids(moto, [snap_old]) == {snap_old}


BAD_INPUTS = {
    "keep zero": ({"keep": 0}, "keep must be at least 1, not 0"),
    "keep negative": ({"keep": -2}, "keep must be at least 1, not -2"),
    "empty group tag": ({"group_tag": " "}, "group_tag must name a tag"),
    "bad deployment": ({"deployment": "Not Valid"}, "deployment 'Not Valid' is not valid"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_fails_with_a_sentence_before_any_call(moto, capsys, monkeypatch, case):
    before = golden(moto, 1)[0], golden(moto, 2)[0]

    def no_call(*args, **kwargs):
        raise AssertionError("the module must not connect to AWS on bad input")

    monkeypatch.setattr(aws, "connect", no_call)
    extra, message = BAD_INPUTS[case]
    res = run(capsys, **extra)
    assert res.get("failed") is True and message in res["msg"], res
    assert res["changed"] is False
    assert image_ids(moto) >= set(before)


def test_unknown_region_fails_clearly(moto, capsys):
    golden(moto, 1)
    res = run(capsys, region="us-nowhere-1")
    assert res["failed"] is True and "region 'us-nowhere-1' is not an AWS region" in res["msg"]


def playbook(*extra):
    """ansible-playbook playbooks/prune_images.yml on moto (the fixture's AWS_* environment, the playbooks' key)."""
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=permissions.PLAYBOOK_KEY,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="false",
    )
    proc = subprocess.run(
        ["ansible-playbook", "playbooks/prune_images.yml", *extra],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def recap(out):
    """(changed, failed) of the PLAY RECAP."""
    return tuple(sum(int(n) for n in re.findall(rf"\b{key}=(\d+)", out)) for key in ("changed", "failed"))


def test_playbook_prunes_each_region_and_check_mode_changes_nothing(moto, moto_server):
    ids = [golden(moto, n)[0] for n in range(1, 5)]
    user = moto.ec2.run_instances(ImageId=ids[0], MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    extra = ["-e", "image_regions=us-east-1", "-e", "image_keep=1"]

    rc, out = playbook(*extra, "--check")
    assert rc == 0, out[-3000:]
    assert "us-east-1: would delete" in out and ids[1] in out and ids[2] in out
    assert image_ids(moto) >= set(ids)

    # Counted as changed, though an image was left alone (a result key "skipped" would hide it).
    rc, out = playbook(*extra)
    assert rc == 0 and recap(out) == (1, 0), out[-3000:]
    assert f"{ids[0]}: in use by instance {user} (running)" in " ".join(out.replace("''", "'").split())
    left = image_ids(moto)
    assert {ids[0], ids[3]} <= left and not {ids[1], ids[2]} & left

    rc, out = playbook(*extra)
    assert rc == 0 and recap(out) == (0, 0), out[-3000:]

    rc, out = playbook("-e", "image_regions=us-east-1", "-e", "image_keep=0")
    assert rc != 0 and "image_keep must be at least 1" in out, out[-3000:]
    # The policy docs/permissions gives users allows every call the prune made.
    permissions.assert_allowed(moto_server.recording)
