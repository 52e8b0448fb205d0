# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: node_input_problems
short_description: What is wrong with a cloud node's settings, before anything is created
version_added: 0.3.0
description:
  - Checks the node role's settings that need no cloud call and returns one sentence per problem,
    each saying what to change; an empty list when there is none.
  - The node name (a DNS label, and its tailnet hostname too); zones in the region; on AWS, a VPC
    range that holds every subnet and subnets that do not overlap (/16 to /28).
  - With egress V(none), every source the node downloads from (the model registry mirror, the
    tailnet's control server, the Tailscale package when the image lacks it) must be reachable
    without the internet. An empty source means the public service and is refused.
positional: _input
options:
  _input:
    description:
      - The settings, C(cloud) (V(aws) or V(gcp)), C(deployment), C(name), C(region), C(zones), C(egress);
        on AWS C(vpc_cidr), C(public_cidr), C(private_cidrs); for egress V(none) C(model_mirror),
        C(login_server), C(tailscale_url), C(installs_tailscale) and C(network_cidr).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Check the settings before anything is created
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join(' ') }} Nothing was created."
  vars:
    problems: "{{ {'cloud': 'aws', 'deployment': 'demo', 'name': 'oce-demo', 'region': 'us-east-1',
                   'zones': [], 'egress': 'nat', 'vpc_cidr': '10.64.0.0/16', 'public_cidr': '10.64.0.0/24',
                   'private_cidrs': ['10.64.1.0/24', '10.64.2.0/24']} | ollama_cloud.engine.node_input_problems }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when the settings are good.
  type: list
  elements: str
"""

from ansible.errors import AnsibleFilterError


def node_input_problems(settings):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import node_inputs

    if not isinstance(settings, dict) or settings.get("cloud") not in ("aws", "gcp"):
        raise AnsibleFilterError("node_input_problems: expects a dict with cloud aws or gcp")
    return node_inputs.problems(settings)


class FilterModule:
    def filters(self):
        return {"node_input_problems": node_input_problems}
