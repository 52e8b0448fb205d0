# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: deployment_names
short_description: The names a deployment's resources take when none is given
version_added: 0.3.0
description:
  - The default names of a deployment's resources, as the collection's modules give them when their
    name options are omitted, so that the roles' defaults and messages never restate them.
  - The name is not checked here; the node role and the modules check it before they use it.
positional: _input
options:
  _input:
    description: The deployment's name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The Secrets Manager secret the nodes of deployment prod read their key from (oce/prod/tailscale)
  ansible.builtin.debug:
    msg: "{{ ('prod' | ollama_cloud.engine.deployment_names).aws_key_secret }}"
"""

RETURN = r"""
_value:
  description: The names, by what they name.
  type: dict
  contains:
    base:
      description: The node's, its network's and (AWS) its role's name, and its tailnet name's prefix.
      type: str
      sample: oce-prod
    aws_key_secret:
      description: The Secrets Manager secret holding the nodes' Tailscale auth key.
      type: str
      sample: oce/prod/tailscale
    aws_log_group:
      description: The CloudWatch Logs group of the nodes' journals.
      type: str
      sample: /oce/prod
    aws_alerts_topic:
      description: The SNS topic the alarms notify.
      type: str
      sample: oce-prod-alerts
    gcp_service_account:
      description: The account id of the service account the collection manages for the nodes.
      type: str
      sample: oce-prod-node
    gcp_key_secret:
      description: The Secret Manager secret that account may read, holding the nodes' Tailscale auth key.
      type: str
      sample: oce-prod-tailscale
"""


def deployment_names(deployment):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet

    return fleet.deployment_names(deployment)


class FilterModule:
    def filters(self):
        return {"deployment_names": deployment_names}
