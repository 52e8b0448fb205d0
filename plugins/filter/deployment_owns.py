# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_owns
short_description: Whether a resource's tags or labels mark it as a deployment's
version_added: 0.2.0
description:
  - True when the tags or labels carry the deployment's C(oce-deployment) and the collection's
    C(oce-managed-by), as M(ollama_cloud.engine.aws_gpu_instance) and the other modules write them;
    false otherwise (also for no tags at all). Other tags are ignored.
  - The check the modules make before they change or delete anything, for the resources the
    roles manage through other collections' modules.
positional: _input, deployment
options:
  _input:
    description: The resource's tags or labels (a dict); none counts as no tags.
    type: dict
    required: true
  deployment:
    description: The deployment's name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Delete the deployment's log group only if it is ours
  amazon.aws.cloudwatchlogs_log_group:
    log_group_name: /oce/demo
    state: absent
  when: log_group.tags | ollama_cloud.engine.deployment_owns('demo')
"""

RETURN = r"""
_value:
  description: Whether the tags mark the resource as the deployment's.
  type: bool
"""


def deployment_owns(labels, deployment):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet

    return fleet.is_ours(labels if isinstance(labels, dict) else {}, deployment)


class FilterModule:
    def filters(self):
        return {"deployment_owns": deployment_owns}
