#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_gpu_instance_info
short_description: List the Compute Engine GPU nodes that carry our labels
version_added: 0.1.0
description:
  - Returns the node records of the GCP provider (the same shape as
    M(ollama_cloud.engine.aws_gpu_instance_info)), with C(hourly_cost) from the collection's dated
    price table, for the status table and for adding running nodes to the inventory.
  - Looks in every zone of the project (one aggregated list call per page).
options:
  deployment:
    description: Only nodes of this deployment; all of ours in the project when omitted.
    type: str
extends_documentation_fragment:
  - ollama_cloud.engine.gcp
  - ollama_cloud.engine.info_module
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Find the demo deployment's nodes
  ollama_cloud.engine.gcp_gpu_instance_info:
    deployment: demo
    project: my-project
  register: gcp_nodes
"""

RETURN = r"""
nodes:
  description: Node records (see M(ollama_cloud.engine.gcp_gpu_instance) for the keys), sorted by name.
  returned: always
  type: list
  elements: dict
"""

from ansible_collections.ollama_cloud.engine.plugins.module_utils import gcp, node_module


def main():
    node_module.info(gcp, gcp.find_instances, lambda api, raw: gcp.priced_node(raw))


if __name__ == "__main__":
    main()
