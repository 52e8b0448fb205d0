#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_image_prune
short_description: Deregister our old golden images (AMIs) and delete their snapshots
version_added: "0.2.0"
description:
  - Finds the golden images of this collection in one region, owned by this account and marked as
    ours by their tags (C(oce-managed-by=ollama_cloud.engine) and the O(group_tag) tag, as
    C(packer/aws.pkr.hcl) writes them), and groups them by the value of O(group_tag).
  - In each group the newest O(keep) available images are kept (newest by C(CreationDate), then by
    the C(oce-built-at) tag). Older ones, and failed ones, are deregistered and their EBS snapshots
    deleted.
  - Never touches an image that is still in use - by an instance in any state but C(terminated), or
    by any version of a launch template (an Auto Scaling group may pin an old one) - nor one still being created
    (C(pending)). Those are returned in RV(left_alone) with the reason.
  - A snapshot that another image of the account still uses is not deleted.
  - Idempotent, a second run with the same options finds nothing to delete.
  - In check mode nothing is changed; the result says what would be deleted.
options:
  group_tag:
    description:
      - The tag whose value groups the images (one golden image name per group). Only images that
        carry it are considered.
    type: str
    default: oce-image
  image_names:
    description:
      - Only these values of O(group_tag), for example V(ollama-node). Empty means every group.
    type: list
    elements: str
    default: []
  delete_snapshots:
    description:
      - Delete the EBS snapshots of each deregistered image. V(false) leaves them (they still cost
        storage).
    type: bool
    default: true
extends_documentation_fragment:
  - ollama_cloud.engine.aws
  - ollama_cloud.engine.image_prune
attributes:
  check_mode:
    support: full
    description: Deregisters and deletes nothing; RV(deleted) lists what would be deleted.
  diff_mode:
    support: full
    description: Shows the image ids of the selected groups before and after.
notes:
  - The credentials need C(ec2:DescribeImages), C(ec2:DescribeInstances),
    C(ec2:DescribeLaunchTemplates), C(ec2:DescribeLaunchTemplateVersions) (statement PruneImages of
    docs/permissions/aws-controller-policy.json), and C(ec2:DeregisterImage) and
    C(ec2:DeleteSnapshot) on resources tagged C(oce-managed-by=ollama_cloud.engine) (statement PruneOurImagesOnly).
  - Only this account and region are looked at. An image shared with other accounts, launch
    templates that name an image through an SSM parameter (C(resolve:ssm:...)), and Auto Scaling
    launch configurations are not seen; keep such images out of the selection (or raise O(keep)).
  - Run it once per region; C(playbooks/prune_images.yml) does, for the regions the images are
    copied to.
seealso:
  - module: ollama_cloud.engine.aws_gpu_instance
    description: Boots the newest golden image (its O(ollama_cloud.engine.aws_gpu_instance#module:image=golden)).
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Keep the three newest golden images of each name in us-east-1
  ollama_cloud.engine.aws_image_prune:
    region: us-east-1
  register: pruned

- name: Preview what keeping only the newest ollama-node image would delete
  ollama_cloud.engine.aws_image_prune:
    region: eu-west-1
    image_names: [ollama-node]
    keep: 1
  check_mode: true

- name: Against a moto server
  ollama_cloud.engine.aws_image_prune:
    region: us-east-1
    endpoint_url: http://127.0.0.1:5000
    keep: 2
"""

RETURN = r"""
kept:
  description: The newest O(keep) available images of each group, newest first.
  returned: always
  type: list
  elements: dict
  contains:
    image_id:
      description: The AMI id.
      type: str
      sample: ami-0123456789abcdef0
    name:
      description: The AMI name.
      type: str
      sample: ollama-node-ubuntu2404-20261122140000
    group:
      description: The value of O(group_tag).
      type: str
      sample: ollama-node
    creation_date:
      description: When AWS created the AMI (ISO 8601).
      type: str
      sample: "2026-11-22T14:12:31.000Z"
    reason:
      description: Why it is kept.
      type: str
      sample: one of the 3 newest available images of ollama-node
  sample:
    - image_id: ami-0123456789abcdef0
      name: ollama-node-ubuntu2404-20261122140000
      group: ollama-node
      creation_date: "2026-11-22T14:12:31.000Z"
      reason: one of the 3 newest available images of ollama-node
deleted:
  description:
    - The images deregistered (in check mode, that would be), each with the same keys as RV(kept)
      plus C(snapshots), the snapshot ids deleted with it.
  returned: always
  type: list
  elements: dict
  sample:
    - image_id: ami-0fedcba9876543210
      name: ollama-node-ubuntu2404-20261001140000
      group: ollama-node
      creation_date: "2026-10-01T14:10:02.000Z"
      snapshots: [snap-0123456789abcdef0]
      reason: older than the 3 newest available images of ollama-node
left_alone:
  description:
    - Images older than the newest O(keep) that were left alone, each with the same keys as
      RV(kept); C(reason) says what still uses them.
  returned: always
  type: list
  elements: dict
  sample:
    - image_id: ami-0aaaaaaaaaaaaaaaa
      name: ollama-node-ubuntu2404-20260901140000
      group: ollama-node
      creation_date: "2026-09-01T14:09:45.000Z"
      reason: in use by instance i-0123456789abcdef0 (stopped)
snapshots_kept:
  description: Snapshots of deleted images that were not deleted, as C({snapshot_id, reason}).
  returned: always
  type: list
  elements: dict
  sample: [{snapshot_id: snap-0123456789abcdef0, reason: also used by image ami-0bbbbbbbbbbbbbbbb}]
retries:
  description: API calls retried after throttling or a server error, as C([operation, code, delay seconds]).
  returned: always
  type: list
  elements: list
"""

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud, fleet, images, node_module

# Every state of an instance but terminated still holds on to its image.
HOLDING_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"]
# Filter values per call (EC2 allows 200).
CHUNK = 200


def check_inputs(params):
    """Error sentences for bad options, found before any API call."""
    problems = [images.keep_problem(params["keep"], "aws_gpu_instance")]
    if not (params["group_tag"] or "").strip():
        problems.append("group_tag must name a tag, for example oce-image")
    if params["deployment"]:
        problem = fleet.validate_deployment(params["deployment"])
        if problem:
            problems.append(problem)
    return [p for p in problems if p]


def our_images(ec2, params):
    """Our images (owner self, our tags), each with its tags as a dict."""
    filters = [
        {"Name": f"tag:{fleet.LABEL_MANAGED_BY}", "Values": [fleet.MANAGED_BY]},
        {"Name": "tag-key", "Values": [params["group_tag"]]},
    ]
    if params["image_names"]:
        filters.append({"Name": f"tag:{params['group_tag']}", "Values": params["image_names"]})
    if params["deployment"]:
        filters.append({"Name": f"tag:{fleet.LABEL_DEPLOYMENT}", "Values": [params["deployment"]]})
    images = ec2.paginate("describe_images", "Images", Owners=["self"], Filters=filters, IncludeDeprecated=True)
    return [dict(image, tags=aws.tag_dict(image.get("Tags"))) for image in images]


def newest_first(image):
    return (
        image.get("CreationDate") or "",
        image["tags"].get("oce-built-at", ""),
        image.get("Name") or "",
        image["ImageId"],
    )


def summary(image, group_tag, reason):
    return {
        "image_id": image["ImageId"],
        "name": image.get("Name"),
        "group": image["tags"].get(group_tag),
        "creation_date": image.get("CreationDate"),
        "reason": reason,
    }


def judge(image):
    """An AMI's verdict for images.plan: available ones may be kept, pending ones are left alone."""
    state = image.get("State")
    if state == "pending":
        return images.HOLD, "still being created (pending)"
    if state == "available":
        return images.USABLE, None
    return images.STALE, f"{state} (not available)"


def plan(found, keep, group_tag):
    """Split images into (kept, candidates, left_alone) by group; candidates may still be in use."""
    return images.plan(
        found,
        keep,
        group_of=lambda image: image["tags"][group_tag],
        newest=newest_first,
        judge=judge,
        summary=lambda image, group, reason: summary(image, group_tag, reason),
        noun="available images",
    )


def chunks(items, size=CHUNK):
    return [items[i : i + size] for i in range(0, len(items), size)]


def instance_users(ec2, image_ids):
    """image id -> 'instance i-... (state)' for every instance not terminated that runs it."""
    users = {}
    for ids in chunks(sorted(image_ids)):
        reservations = ec2.paginate(
            "describe_instances",
            "Reservations",
            Filters=[
                {"Name": "image-id", "Values": ids},
                {"Name": "instance-state-name", "Values": HOLDING_STATES},
            ],
        )
        for instance in sorted(
            (i for r in reservations for i in r.get("Instances", [])), key=lambda i: i["InstanceId"]
        ):
            users.setdefault(instance["ImageId"], f"instance {instance['InstanceId']} ({instance['State']['Name']})")
    return users


def template_users(ec2, image_ids):
    """image id -> 'launch template lt-... (name) version N ($Latest)', over every version: an Auto
    Scaling group or a fleet may pin any one of them, not only $Latest or $Default."""
    users = {}
    templates = ec2.paginate("describe_launch_templates", "LaunchTemplates")
    for template in sorted(templates, key=lambda t: t["LaunchTemplateId"]):
        versions = ec2.paginate(
            "describe_launch_template_versions", "LaunchTemplateVersions", LaunchTemplateId=template["LaunchTemplateId"]
        )
        for version in sorted(versions, key=lambda v: -v.get("VersionNumber", 0)):
            image_id = (version.get("LaunchTemplateData") or {}).get("ImageId")
            if image_id in image_ids and image_id not in users:
                which = []
                if version.get("VersionNumber") == template.get("LatestVersionNumber"):
                    which.append("$Latest")
                if version.get("DefaultVersion") or version.get("VersionNumber") == template.get(
                    "DefaultVersionNumber"
                ):
                    which.append("$Default")
                users[image_id] = "launch template {} ({}) version {}{}".format(
                    template["LaunchTemplateId"],
                    template.get("LaunchTemplateName", ""),
                    version.get("VersionNumber"),
                    f" ({', '.join(which)})" if which else "",
                )
    return users


def snapshots_of(image):
    return [
        m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings") or [] if (m.get("Ebs") or {}).get("SnapshotId")
    ]


def shared_snapshots(ec2, doomed_ids):
    """snapshot id -> image id of every image of the account, outside ``doomed_ids``, that uses it."""
    users = {}
    for image in ec2.paginate("describe_images", "Images", Owners=["self"], IncludeDeprecated=True):
        if image["ImageId"] not in doomed_ids:
            for snapshot in snapshots_of(image):
                users.setdefault(snapshot, image["ImageId"])
    return users


def prune(ec2, params, check_mode):
    keep, group_tag = params["keep"], params["group_tag"]
    found = our_images(ec2, params)
    kept, candidates, left_alone = plan(found, keep, group_tag)
    # Not "skipped": Ansible takes a truthy result key of that name for a skipped task.
    result = {"changed": False, "kept": kept, "deleted": [], "left_alone": left_alone, "snapshots_kept": []}
    before = sorted(i["ImageId"] for i in found)

    doomed = []
    if candidates:
        ids = {pair[0]["ImageId"] for pair in candidates}
        in_use = instance_users(ec2, ids)
        in_use.update({k: v for k, v in template_users(ec2, ids).items() if k not in in_use})
        doomed, held = images.split_in_use(candidates, in_use, lambda image: image["ImageId"])
        left_alone.extend(held)

    if doomed:
        elsewhere = shared_snapshots(ec2, {pair[0]["ImageId"] for pair in doomed}) if params["delete_snapshots"] else {}
        for image, entry in doomed:
            snapshots = []
            for snapshot in snapshots_of(image) if params["delete_snapshots"] else []:
                if snapshot in elsewhere:
                    result["snapshots_kept"].append(
                        {"snapshot_id": snapshot, "reason": f"also used by image {elsewhere[snapshot]}"}
                    )
                else:
                    snapshots.append(snapshot)
            entry = dict(entry, snapshots=snapshots)
            if check_mode:
                result["deleted"].append(entry)
                continue
            left = list(snapshots)
            try:
                ec2.call("deregister_image", ImageId=image["ImageId"])
                result["changed"] = True
                result["deleted"].append(entry)
                for snapshot in snapshots:
                    ec2.call("delete_snapshot", SnapshotId=snapshot)
                    left.remove(snapshot)
            except cloud.CloudError as exc:
                # What was done before the failure goes into the result. A deregistered image is no
                # longer found by a rerun, so its remaining snapshots are named for the person.
                if result["deleted"] and result["deleted"][-1] is entry:
                    exc.msg += (
                        f"; {image['ImageId']} is deregistered already but its snapshots "
                        f"{', '.join(left)} were not deleted: delete them with aws ec2 delete-snapshot"
                    )
                exc.details.update(result, failed_image=image["ImageId"], snapshots_left=left)
                raise
        result["changed"] = True

    gone = {entry["image_id"] for entry in result["deleted"]}
    result["diff"] = {
        "before": {"images": before},
        "after": {"images": [i for i in before if i not in gone]},
    }
    return result


def main():
    base = node_module.NodeModule(
        aws,
        dict(
            images.PRUNE_ARGS,
            group_tag={"type": "str", "default": "oce-image"},
            image_names={"type": "list", "elements": "str", "default": []},
            delete_snapshots={"type": "bool", "default": True},
        ),
    )
    base.check(check_inputs(base.params))
    base.run(lambda: prune(base.client("ec2"), base.params, base.check_mode))


if __name__ == "__main__":
    main()
