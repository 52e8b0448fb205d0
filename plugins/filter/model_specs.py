# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: model_specs
short_description: Normalise a model list and point short names at a registry mirror
version_added: 0.1.0
description:
  - Turns a list of model names or dicts into dicts with C(name), C(state), C(insecure) and C(loaded).
  - With a mirror, names without a registry host are pulled from it instead of registry.ollama.ai
    (C(gemma3:270m) becomes C(mirror.internal:5000/library/gemma3:270m)); names that carry a host
    are kept as they are.
positional: _input, mirror
options:
  _input:
    description: Model names or dicts with C(name) and optional C(state), C(insecure), C(loaded).
    type: list
    elements: raw
    required: true
  mirror:
    description: Registry host[:port]; empty for none.
    type: str
    default: ""
  insecure:
    description: Default for C(insecure).
    type: bool
    default: false
  loaded:
    description:
      - C(true) warms every model that does not set C(loaded) itself.
      - C(false) leaves C(loaded) unset, so whether a model sits in memory is not managed.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Pull from the internal mirror
  ansible.builtin.set_fact:
    specs: "{{ models | ollama_cloud.engine.model_specs('mirror.internal:5000') }}"
  vars:
    models: ["gemma3:270m", {name: "old:1b", state: absent}]
"""

RETURN = r"""
_value:
  description: One dict per model with C(name), C(state), C(insecure), and C(loaded) where it is managed.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError


def model_specs(models, mirror="", insecure=False, loaded=False):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils.ollama_api import with_registry

    specs = []
    for item in models or []:
        spec = {"name": item} if isinstance(item, str) else dict(item)
        if not spec.get("name"):
            raise AnsibleFilterError("every model needs a name; got %r" % (item,))
        spec["name"] = with_registry(spec["name"], mirror) if mirror else spec["name"]
        spec.setdefault("state", "present")
        spec.setdefault("insecure", insecure)
        if loaded:
            spec.setdefault("loaded", True)
        specs.append(spec)
    return specs


class FilterModule:
    def filters(self):
        return {"model_specs": model_specs}
