#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_image_prune
short_description: Deprecate or delete our old golden images on GCP
version_added: "0.2.0"
description:
  - Finds the golden images of this collection in one project, marked as ours by their label
    C(oce-managed-by=ollama_cloud-engine) (as C(packer/gcp.pkr.hcl) writes it), and groups them by
    image family.
  - In each family the newest O(keep) active images are kept - active meaning C(READY) and not
    deprecated - newest by C(creationTimestamp), then by name. The family then still points at the
    newest one, which M(ollama_cloud.engine.gcp_gpu_instance) boots with C(image=golden).
  - With O(state=deprecated) the older images are marked C(DEPRECATED), with the newest kept image
    of their family as the replacement; they can still boot by name. With O(state=absent) they
    are deleted.
  - Never touches an image that is still in use - by a disk made from it (the boot disk of an
    instance in any state, or a detached disk) or by an instance template, global or regional,
    that makes disks from it - nor one still being created (C(PENDING)). A family that has no
    active image left is not touched at all. Those images are returned in RV(left_alone) with the
    reason.
  - An image of ours with no family is left alone (there is no newest image to keep for it).
  - Idempotent, a second run with the same options changes nothing. An image already deprecated
    in favour of the newest kept image, or already C(OBSOLETE) or C(DELETED), is not deprecated
    again.
  - In check mode nothing is changed; the result says what would be deprecated or deleted.
options:
  families:
    description:
      - Only these image families, for example V(ollama-node) (the Packer variable C(image_name)).
        Empty means every family of our images.
    type: list
    elements: str
    default: []
  state:
    description:
      - V(deprecated) marks the older images C(DEPRECATED), each with the newest kept image of its
        family as the replacement.
      - V(absent) deletes the older images, deprecated ones included. Deleting cannot be undone.
    type: str
    choices: [deprecated, absent]
    default: deprecated
  wait_timeout:
    description: Seconds to follow each deprecate or delete operation before giving up.
    type: int
    default: 600
extends_documentation_fragment:
  - ollama_cloud.engine.gcp
  - ollama_cloud.engine.image_prune
attributes:
  check_mode:
    support: full
    description: Deprecates and deletes nothing; RV(deprecated) and RV(deleted) list what would be.
  diff_mode:
    support: full
    description: Shows the selected images with their status or deprecation state, before and after.
notes:
  - The credentials need C(compute.images.list), C(compute.disks.list),
    C(compute.instanceTemplates.list) and C(compute.images.deprecate) or C(compute.images.delete),
    for example C(roles/compute.storageAdmin) with C(roles/compute.viewer).
  - Only this project is looked at. Disks and instance templates in other projects that use an
    image shared with them are not seen; keep such images out of the selection (or raise O(keep)).
    A template or disk that names an image family (C(.../global/images/family/F)) follows the
    family and holds on to no old image.
  - C(playbooks/prune_images.yml) runs it with C(-e image_cloud=gcp).
seealso:
  - module: ollama_cloud.engine.aws_image_prune
    description: The same on AWS, for AMIs and their snapshots.
  - module: ollama_cloud.engine.gcp_gpu_instance
    description: Boots the newest image of the family (its O(ollama_cloud.engine.gcp_gpu_instance#module:image=golden)).
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Deprecate all but the three newest golden images of each family
  ollama_cloud.engine.gcp_image_prune:
    project: my-project
  register: pruned

- name: Preview what deleting all but the newest ollama-node image would delete
  ollama_cloud.engine.gcp_image_prune:
    project: my-project
    families: [ollama-node]
    keep: 1
    state: absent
  check_mode: true

- name: Against an emulator
  ollama_cloud.engine.gcp_image_prune:
    project: oce-test
    auth_kind: anonymous
    endpoint: http://127.0.0.1:8089/compute/v1/
    keep: 2
"""

RETURN = r"""
kept:
  description: The newest O(keep) active images of each family, newest first, families by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The image's name.
      type: str
      sample: ollama-node-ubuntu2404-20261122140000
    family:
      description: The image family (null for an image without one).
      type: str
      sample: ollama-node
    creation_timestamp:
      description: When GCP created the image (RFC 3339).
      type: str
      sample: "2026-11-22T06:12:31.118-08:00"
    status:
      description: The image's status (C(READY), C(PENDING), C(FAILED), C(DELETING)).
      type: str
      sample: READY
    deprecation_state:
      description: Its deprecation state before this run (C(ACTIVE) when it is not deprecated).
      type: str
      sample: ACTIVE
    reason:
      description: Why it is kept.
      type: str
      sample: one of the 3 newest active images of ollama-node
  sample:
    - name: ollama-node-ubuntu2404-20261122140000
      family: ollama-node
      creation_timestamp: "2026-11-22T06:12:31.118-08:00"
      status: READY
      deprecation_state: ACTIVE
      reason: one of the 3 newest active images of ollama-node
deprecated:
  description:
    - With O(state=deprecated), the images marked C(DEPRECATED) (in check mode, that would be), each
      with the same keys as RV(kept) plus C(replacement), the name of the image that replaces it.
      Empty with O(state=absent).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ollama-node-ubuntu2404-20261001140000
      family: ollama-node
      creation_timestamp: "2026-10-01T07:10:02.204-07:00"
      status: READY
      deprecation_state: ACTIVE
      replacement: ollama-node-ubuntu2404-20261122140000
      reason: older than the 3 newest active images of ollama-node
deleted:
  description:
    - With O(state=absent), the images deleted (in check mode, that would be), each with the same
      keys as RV(kept). Empty with O(state=deprecated).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ollama-node-ubuntu2404-20260901140000
      family: ollama-node
      creation_timestamp: "2026-09-01T07:09:45.530-07:00"
      status: READY
      deprecation_state: DEPRECATED
      reason: DEPRECATED; older than the 3 newest active images of ollama-node
left_alone:
  description:
    - Images that are not kept yet were left alone, each with the same keys as RV(kept); C(reason)
      says why (what still uses it, still being created, already deprecated in favour of the
      newest image).
  returned: always
  type: list
  elements: dict
  sample:
    - name: ollama-node-ubuntu2404-20260801140000
      family: ollama-node
      creation_timestamp: "2026-08-01T07:09:45.530-07:00"
      status: READY
      deprecation_state: ACTIVE
      reason: in use by disk oce-demo in us-central1-a (attached to instance oce-demo)
retries:
  description: API calls retried after throttling or a server error, as C([method path, reason, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import re
import uuid

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, fleet, gcp, images, node_module

# Deprecation states that already say more than DEPRECATED: state=deprecated leaves them as they are.
BEYOND_DEPRECATED = ("OBSOLETE", "DELETED")
# What pruning needs, said instead of the layer's hint for a refusal (which names the node's roles).
FORBIDDEN_HINT = (
    "the credentials are not allowed to do this: pruning needs compute.images.list, "
    "compute.images.deprecate or compute.images.delete, compute.disks.list and "
    "compute.instanceTemplates.list (roles/compute.storageAdmin with roles/compute.viewer)"
)
NO_FAMILY = "has no image family, so there is no newest image to keep it for: left alone"
GONE = "gone already (deleted by someone else during this run)"
# An image path in a self link or a partial URL; an image family (.../images/family/F) never matches.
_IMAGE_REF = re.compile(r"(?:^|/)(?:projects/([^/]+)/)?global/images/([^/]+)$")


def check_inputs(params):
    """Error sentences for bad options, found before any API call."""
    problems = [images.keep_problem(params["keep"], "gcp_gpu_instance")]
    bad = [f for f in params["families"] if not gcp.valid_name(f)]
    if bad:
        problems.append(
            f"families {', '.join(map(repr, bad))} are not image family names: use up to 63 lowercase "
            "letters, digits or dashes, starting with a letter (for example ollama-node)"
        )
    if params["deployment"]:
        problems.append(fleet.validate_deployment(params["deployment"]))
    if params["wait_timeout"] < 1:
        problems.append("wait_timeout must be at least 1 second")
    return [p for p in problems if p]


def image_path(ref, project):
    """``projects/P/global/images/NAME`` for an image link or partial URL (``global/images/NAME``
    means ``project``); None for anything else, an image family among them."""
    match = _IMAGE_REF.search(ref or "")
    if not match:
        return None
    return f"projects/{match.group(1) or project}/global/images/{match.group(2)}"


def deprecation(image):
    return (image.get("deprecated") or {}).get("state") or "ACTIVE"


def judge(image):
    """An image's verdict for images.plan: READY and not deprecated ones may be kept."""
    status = image.get("status")
    if status == "PENDING":
        return images.HOLD, "still being created (PENDING)"
    if status == "DELETING":
        return images.HOLD, "being deleted already (DELETING)"
    if status != "READY":
        return images.STALE, f"{status} (not READY)"
    state = deprecation(image)
    if state != "ACTIVE":
        return images.STALE, state
    return images.USABLE, None


def newest_first(image):
    return (gcp.epoch(image.get("creationTimestamp")) or 0.0, image.get("name") or "")


def summary(image, family, reason):
    return {
        "name": image["name"],
        "family": family,
        "creation_timestamp": image.get("creationTimestamp"),
        "status": image.get("status"),
        "deprecation_state": deprecation(image),
        "reason": reason,
    }


def our_images(api, params):
    """Our images in the project (our labels, the deployment's if given), of the families asked for."""
    labels = {fleet.LABEL_MANAGED_BY: gcp.MANAGED_BY}
    if params["deployment"]:
        labels[fleet.LABEL_DEPLOYMENT] = gcp.label_value(params["deployment"])
    found = api.list(
        f"projects/{api.project}/global/images", params={"filter": gcp.label_filter(labels)}, action="list images"
    )
    # The filter is the server's; check again so a lax server cannot make us touch others' images.
    found = [i for i in found if all((i.get("labels") or {}).get(k) == v for k, v in labels.items())]
    families = set(params["families"])
    return [i for i in found if not families or i.get("family") in families]


def disk_user(disk):
    where = gcp.last(disk.get("zone") or disk.get("region"))
    attached = ", ".join(gcp.last(u) for u in disk.get("users") or [])
    return f"disk {disk['name']} in {where}" + (f" (attached to instance {attached})" if attached else "")


def template_user(template):
    if template.get("region"):
        return f"regional instance template {template['name']} in {gcp.last(template['region'])}"
    return f"instance template {template['name']}"


def image_users(api):
    """Image path -> what still uses it: a disk made from it, else an instance template that makes disks from it."""
    users = {}
    disks = api.aggregated("disks", action="list disks")
    for disk in sorted(disks, key=lambda d: d.get("selfLink") or ""):
        path = image_path(disk.get("sourceImage"), api.project)
        if path:
            users.setdefault(path, disk_user(disk))
    templates = api.aggregated("instanceTemplates", action="list instance templates")
    for template in sorted(templates, key=lambda t: t.get("selfLink") or ""):
        for disk in (template.get("properties") or {}).get("disks") or []:
            path = image_path((disk.get("initializeParams") or {}).get("sourceImage"), api.project)
            if path:
                users.setdefault(path, template_user(template))
    return users


class Pruner:
    """One run: the plan, then the deprecations or deletions, with what was done kept for a failure."""

    def __init__(self, api, params, check_mode):
        self.api, self.params, self.check = api, params, check_mode
        # Not "skipped": Ansible takes a truthy result key of that name for a skipped task.
        self.result = {"changed": False, "kept": [], "deprecated": [], "deleted": [], "left_alone": []}
        self.replacement = {}  # family -> the newest kept image, which replaces the deprecated ones
        self.current = None  # the image being deprecated or deleted, for a failure

    def ident(self, image):
        return image_path(image.get("selfLink") or f"global/images/{image['name']}", self.api.project)

    def plan(self, found):
        """The (image, entry) pairs to deprecate or delete; fills kept and left_alone."""
        result, state = self.result, self.params["state"]
        lone = [i for i in found if not i.get("family")]
        kept, candidates, left_alone = images.plan(
            [i for i in found if i.get("family")],
            self.params["keep"],
            group_of=lambda image: image["family"],
            newest=newest_first,
            judge=judge,
            summary=summary,
            noun="active images",
            hold_when_none_kept=True,
        )
        left_alone.extend(summary(image, None, NO_FAMILY) for image in sorted(lone, key=lambda i: i["name"]))
        result.update(kept=kept, left_alone=left_alone)
        by_name = {image["name"]: image for image in found}
        for entry in kept:
            self.replacement.setdefault(entry["family"], by_name[entry["name"]])

        todo = []
        for image, entry in candidates:
            current = deprecation(image)
            if state == "deprecated" and current in BEYOND_DEPRECATED:
                why = f"{current} already, which is more than deprecated: left as it is"
                left_alone.append(dict(entry, reason=why))
            elif state == "deprecated" and current == "DEPRECATED" and self.replaced_by_newest(image):
                newest = self.replacement[image["family"]]["name"]
                left_alone.append(dict(entry, reason=f"deprecated already, in favour of {newest}"))
            else:
                todo.append((image, entry))
        if not todo:
            return []
        todo, in_use = images.split_in_use(todo, image_users(self.api), self.ident)
        left_alone.extend(in_use)
        return todo

    def replaced_by_newest(self, image):
        have = (image.get("deprecated") or {}).get("replacement")
        return image_path(have, self.api.project) == self.ident(self.replacement[image["family"]])

    def apply(self, todo):
        result = self.result
        for image, entry in todo:
            if self.params["state"] == "deprecated":
                newest = self.replacement[image["family"]]
                entry = dict(entry, replacement=newest["name"])
                body = {"state": "DEPRECATED", "replacement": newest["selfLink"]}
                if self.operate("POST", image, f"{self.ident(image)}/deprecate", body, "deprecate"):
                    result["deprecated"].append(entry)
            elif self.operate("DELETE", image, self.ident(image), None, "delete"):
                result["deleted"].append(entry)
            else:
                result["left_alone"].append(dict(entry, reason=GONE))

    def operate(self, method, image, path, body, verb):
        """Send one deprecate or delete and follow its operation; False when the image is gone already."""
        if self.check:
            self.result["changed"] = True
            return True
        action = f"{verb} image {image['name']}"
        self.current = image["name"]
        try:
            op = self.api.call(method, path, body=body, params={"requestId": str(uuid.uuid4())}, action=action)
        except cloud.CloudError as exc:
            if verb == "delete" and exc.details.get("status") == 404:
                return False
            raise
        self.result["changed"] = True
        self.api.wait(op, self.params["wait_timeout"], action)
        return True

    def failed(self, exc):
        """``exc`` with what this run did before it, in the message and in the details."""
        done = [f"deprecated {e['name']}" for e in self.result["deprecated"]]
        done += [f"deleted {e['name']}" for e in self.result["deleted"]]
        msg = exc.msg
        if exc.details.get("code") == "forbidden":
            msg = msg.replace(gcp.SENTENCES["forbidden"], FORBIDDEN_HINT, 1)
        if done and not self.check:
            msg += f"; done before the failure: {', '.join(done)}; run again to finish"
        details = dict(exc.details, **self.result)
        details["changed"] = bool(done) and not self.check
        if self.current:
            details["failed_image"] = self.current
        return cloud.CloudError(msg, **details)


def condition(image):
    """How the diff shows an image: its deprecation state when READY, else its status."""
    return deprecation(image) if image.get("status") == "READY" else image.get("status")


def prune(api, params, check_mode):
    pruner = Pruner(api, params, check_mode)
    try:
        found = our_images(api, params)
        pruner.apply(pruner.plan(found))
    except cloud.CloudError as exc:
        raise pruner.failed(exc) from None
    result = pruner.result
    before = {image["name"]: condition(image) for image in sorted(found, key=lambda i: i["name"])}
    after = dict(before)
    for entry in result["deprecated"]:
        after[entry["name"]] = "DEPRECATED"
    for entry in result["deleted"]:
        after.pop(entry["name"], None)
    result["diff"] = {"before": {"images": before}, "after": {"images": after}}
    return result


def main():
    base = node_module.NodeModule(
        gcp,
        dict(
            images.PRUNE_ARGS,
            families={"type": "list", "elements": "str", "default": []},
            state={"type": "str", "default": "deprecated", "choices": ["deprecated", "absent"]},
            wait_timeout={"type": "int", "default": 600},
        ),
    )
    base.check(check_inputs(base.params))
    base.run(lambda: prune(base.client(), base.params, base.check_mode))


if __name__ == "__main__":
    main()
