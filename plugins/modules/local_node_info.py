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
extends_documentation_fragment:
  - ollama_cloud.engine.info_module
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

from ansible_collections.ollama_cloud.engine.plugins.module_utils import node_module, podman


def main():
    node_module.info(podman, podman.find_nodes, podman.record, lambda base: base.client(base.module))


if __name__ == "__main__":
    main()
