#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_node_info
short_description: List local Ollama nodes (systemd containers) that carry our labels
version_added: 0.1.0
description:
  - Returns the node records of the local provider, the same shape as the AWS and GCP info
    modules, for the status table and for adding running nodes to the inventory.
options:
  deployment:
    description: Only nodes of this deployment; all of ours when omitted.
    type: str
  podman_executable:
    description: The podman program.
    type: str
    default: podman
attributes:
  check_mode:
    support: full
    description: Reads only; runs the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Find the demo deployment's nodes
  ollama_cloud.engine.local_node_info:
    deployment: demo
  register: local_nodes
"""

RETURN = r"""
nodes:
  description: Node records (see M(ollama_cloud.engine.local_node) for the keys), sorted by name.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import (
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    MANAGED_BY,
)
from ansible_collections.ollama_cloud.engine.plugins.module_utils.podman import (
    Podman,
    PodmanError,
    container_node,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "deployment": {"type": "str"},
            "podman_executable": {"type": "str", "default": "podman"},
        },
        supports_check_mode=True,
    )
    podman = Podman(module, module.params["podman_executable"])
    try:
        if module.params["deployment"]:
            found = podman.list_by_label(LABEL_DEPLOYMENT, module.params["deployment"])
        else:
            found = podman.list_by_label(LABEL_MANAGED_BY, MANAGED_BY)
    except PodmanError as exc:
        module.fail_json(msg=str(exc))
    nodes = [container_node(info) for info in found if info]
    module.exit_json(changed=False, nodes=sorted(nodes, key=lambda n: n["name"]))


if __name__ == "__main__":
    main()
