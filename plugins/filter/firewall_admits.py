# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_admits
short_description: Whether a host firewall allow list lets a new connection in
version_added: "0.2.0"
description:
  - True when a valid entry of the allow list (the shape of the C(hardening) role's
    C(hardening_firewall_allow), see P(ollama_cloud.engine.firewall_allow#filter)) admits a new
    connection from O(address) to O(port) over O(proto). Invalid entries admit nothing.
  - The C(hardening) role asks it before it applies a firewall over an SSH connection, so that
    the next connection of Ansible is not dropped.
positional: _input, address, port, proto
options:
  _input:
    description: The allow list.
    type: list
    elements: dict
    required: true
  address:
    description: The client's IPv4 or IPv6 address, as the node sees it.
    type: str
    required: true
  port:
    description: The node's port the client connects to.
    type: int
    required: true
  proto:
    description: C(tcp) or C(udp).
    type: str
    default: tcp
"""

EXAMPLES = r"""
- name: Would Ansible's next SSH connection from 10.64.1.5 to port 22 get in?
  ansible.builtin.debug:
    msg: "{{ hardening_firewall_allow | ollama_cloud.engine.firewall_admits('10.64.1.5', 22) }}"
"""

RETURN = r"""
_value:
  description: True if an entry admits the connection.
  type: bool
"""

import ipaddress

from ansible_collections.ollama_cloud.engine.plugins.filter.firewall_allow import firewall_allow


def _in_ports(port, spec):
    low, _sep, high = spec.partition("-")
    return int(low) <= port <= int(high or low)


def firewall_admits(allow, address, port, proto="tcp"):
    """Whether a valid entry of the allow list lets a new connection from address to port/proto in."""
    try:
        client = ipaddress.ip_address(str(address).strip())
        port = int(port)
    except ValueError:
        return False
    if client.version == 6 and client.ipv4_mapped:
        client = client.ipv4_mapped
    for rule in firewall_allow(allow)["rules"]:
        if rule["proto"] != str(proto).lower() or not _in_ports(port, rule["port"]):
            continue
        if not rule["source"] or client in ipaddress.ip_network(rule["source"]):
            return True
    return False


class FilterModule:
    def filters(self):
        return {"firewall_admits": firewall_admits}
