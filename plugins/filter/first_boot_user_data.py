# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: first_boot_user_data
short_description: The cloud-init user data a cloud node boots with
version_added: 0.2.0
description:
  - Renders the C(#cloud-config) user data that C(aws_gpu_instance) and C(gcp_gpu_instance) pass to
    a node. At first boot, with no controller, the node installs Tailscale if its image lacks it
    (pinned archive, sha256 checked), reads its auth key from the cloud's secret store with its own
    identity, joins the tailnet with a persistent identity and, when the image carries Ollama,
    pulls the model. It also creates the user C(oce) that the controller reaches over the tailnet
    with the given SSH public key.
  - It holds names only, never a secret (where the key is stored, not the key).
positional: _input, ssh_public_key
options:
  _input:
    description:
      - The node's first-boot settings, written to C(/etc/oce/node.json) on the node; keys
        C(deployment), C(node), C(cloud), C(tailnet) (C(tags), C(login_server), C(key_secret), and
        C(hostname), by default the node record's C(tailnet_hostname)), C(tailscale) (C(version),
        C(url), C(checksum), C(flags), C(port), and C(unit) and C(defaults), the texts of
        C(/etc/systemd/system/tailscaled.service) and C(/etc/default/tailscaled), by default the
        archive's unit and the port and flags),
        C(model) (C(name), C(pull), C(insecure)) and C(ollama_port).
    type: dict
    required: true
  ssh_public_key:
    description: The controller's OpenSSH public key for the user C(oce).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Render a node's user data
  ansible.builtin.set_fact:
    node_user_data: "{{ first_boot | ollama_cloud.engine.first_boot_user_data(public_key) }}"
  vars:
    public_key: "{{ lookup('ansible.builtin.file', '~/.ssh/oce_ed25519.pub') }}"
"""

RETURN = r"""
_value:
  description: The user data, C(#cloud-config) in JSON form (a subset of YAML).
  type: str
"""

from ansible.errors import AnsibleFilterError

REQUIRED = {
    "": ("deployment", "node", "cloud"),
    "tailnet": ("key_secret",),
    "tailscale": ("version", "url", "checksum"),
}


def first_boot_user_data(config, ssh_public_key):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import first_boot, fleet

    for section, keys in REQUIRED.items():
        missing = [k for k in keys if not ((config.get(section) if section else config) or {}).get(k)]
        if missing:
            raise AnsibleFilterError(f"first_boot_user_data: {section or 'the settings'} need {', '.join(missing)}")
    # The name the controller looks the node up by (its node record's tailnet_hostname).
    tailnet = dict(config["tailnet"])
    tailnet.setdefault("hostname", fleet.tailnet_hostname(config["deployment"], config["node"]))
    config = dict(config, tailnet=tailnet)
    try:
        return first_boot.user_data(config, ssh_public_key)
    except ValueError as exc:
        raise AnsibleFilterError(f"first_boot_user_data: {exc}") from None


class FilterModule:
    def filters(self):
        return {"first_boot_user_data": first_boot_user_data}
