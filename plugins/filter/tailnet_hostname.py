# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: tailnet_hostname
short_description: The name a cloud node joins the tailnet with
version_added: 0.3.0
description:
  - The hostname a node of a deployment takes on the tailnet at first boot, as its node record's
    C(tailnet_hostname) says once it exists - its own name, with the C(oce-<deployment>) prefix
    unless it has it. For asking the tailnet about a node that does not exist yet.
positional: _input, name
options:
  _input:
    description: The deployment's name.
    type: str
    required: true
  name:
    description: The node's name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The tailnet name of the node gpu1 of deployment prod (oce-prod-gpu1)
  ansible.builtin.debug:
    msg: "{{ 'prod' | ollama_cloud.engine.tailnet_hostname('gpu1') }}"
"""

RETURN = r"""
_value:
  description: The tailnet hostname, for example C(oce-prod) or C(oce-prod-gpu1).
  type: str
"""


def tailnet_hostname(deployment, name):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet

    return fleet.tailnet_hostname(deployment, name)


class FilterModule:
    def filters(self):
        return {"tailnet_hostname": tailnet_hostname}
