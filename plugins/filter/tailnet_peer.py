# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: tailnet_peer
short_description: Find a node on the tailnet by the name it joined with
version_added: 0.2.0
description:
  - Reads the controller's C(tailscale status --json) and returns the peer that joined as the
    hostname given (the live one when an older node of that name lingers), with its tailnet
    address and the URL of its Ollama API.
positional: _input, status
options:
  _input:
    description: The node's tailnet hostname (C(tailnet_hostname) of its node record).
    type: str
    required: true
  status:
    description: The output of C(tailscale status --json), as text or parsed.
    type: raw
    required: true
  port:
    description: Ollama's port on the node.
    type: int
    default: 11434
  known_hosts_file:
    description:
      - With it, the result also says how SSH reaches the node (C(ssh_common_args)), learning its
        host key into this file.
    type: str
    default: ""
  ssh_proxy_command:
    description: An SSH ProxyCommand for a controller whose tailscaled runs in userspace mode.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Where is the node on the tailnet
  ansible.builtin.set_fact:
    peer: "{{ 'oce-demo' | ollama_cloud.engine.tailnet_peer(status.stdout) }}"
"""

RETURN = r"""
_value:
  description:
    - C(hostname), C(address), C(dns_name), C(online), C(tags) and C(ollama_url); when the node has
      not joined, C(online) is false and the address and URL are empty.
    - With O(known_hosts_file), also C(ssh_common_args), the same the fleet inventory gives.
  type: dict
"""

from ansible.errors import AnsibleFilterError

NOT_JOINED = {"address": "", "dns_name": "", "online": False, "tags": [], "ollama_url": ""}


def tailnet_peer(hostname, status, port=11434, known_hosts_file="", ssh_proxy_command=""):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import tailnet

    try:
        peer = tailnet.find_peer(status, hostname)
    except ValueError as exc:
        raise AnsibleFilterError(f"tailnet_peer: not the output of tailscale status --json: {exc}") from None
    if not peer or not peer["address"]:
        found = dict(NOT_JOINED, hostname=hostname)
    else:
        found = dict(peer, ollama_url=tailnet.ollama_url(peer["address"], port))
    if known_hosts_file:
        found["ssh_common_args"] = tailnet.ssh_common_args(known_hosts_file, ssh_proxy_command)
    return found


class FilterModule:
    def filters(self):
        return {"tailnet_peer": tailnet_peer}
