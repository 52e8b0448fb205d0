# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: node_probe_differs
short_description: The paths a role wants that are not as M(ollama_cloud.engine.node_probe) read them
version_added: "0.3.0"
description:
  - Compares what a role wants at each path with what M(ollama_cloud.engine.node_probe) read there
    (its RV(ollama_cloud.engine.node_probe#module:paths)), and returns the wants that differ, so that
    a role writes, links or creates only those.
  - A want is a dict. With C(path), its other keys among C(type), C(mode), C(owner), C(group),
    C(target), C(sha1) and C(sha1_matches) are what the probe must have read there (the probe's
    names and values, C(mode) such as V(0644)); other keys are carried along unread.
  - With C(dest), it is a file of M(ollama_cloud.engine.config_files) (C(dest), C(content),
    C(mode), C(owner), C(group), C(validate)) and must be a regular file holding C(content), with
    that module's defaults (V(0644), V(root), V(root)). It is returned as that module takes it, so
    the result can be given to its O(ollama_cloud.engine.config_files#module:files) as it is.
positional: _input, wants, contents
options:
  _input:
    description: The probe's RV(ollama_cloud.engine.node_probe#module:paths).
    type: dict
    required: true
  wants:
    description:
      - A list of wants, or a dict of named wants (a role's steps); every path must be one the probe read.
    type: raw
    required: true
  contents:
    description:
      - The content of each file want, in the order of O(wants), for wants that do not carry their
        own C(content) (for example one C(query('ansible.builtin.template', ...)) of their templates).
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Read the node
  ollama_cloud.engine.node_probe:
    paths: [/etc/default/tailscaled, /etc/tailscale/extra.conf, /usr/bin/tailscale]
  register: probe

- name: Write the files that differ
  ollama_cloud.engine.config_files:
    files: >-
      {{ probe.paths | ollama_cloud.engine.node_probe_differs(files,
           query('ansible.builtin.template', 'tailscaled.defaults.j2', 'extra.conf.j2')) }}
  vars:
    files:
      - {dest: /etc/default/tailscaled}
      - {dest: /etc/tailscale/extra.conf, mode: "0600"}

- name: Link what is not linked yet
  ansible.builtin.file:
    src: "{{ item.target }}"
    dest: "{{ item.path }}"
    state: link
  loop: "{{ probe.paths | ollama_cloud.engine.node_probe_differs(links) }}"
  vars:
    links:
      - {path: /usr/bin/tailscale, type: link, target: /opt/tailscale/1.90.6/tailscale}
"""

RETURN = r"""
_value:
  description:
    - For a list of wants, the wants that differ, in their order; a file want as
      M(ollama_cloud.engine.config_files) takes it, with its content.
    - For a dict of wants, the names of those that differ, in its order.
  type: list
"""

import hashlib

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes

# What node_probe reads of a path, and what config_files writes (its defaults: FILE_DEFAULTS).
PROBED = ("type", "mode", "owner", "group", "target", "sha1", "sha1_matches")
FILE_KEYS = ("dest", "content", "mode", "owner", "group", "validate")


def _file(want, content):
    """A config_files file from a file want, and what the probe must have read for it."""
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils.node_files import FILE_DEFAULTS

    if content is None:
        raise AnsibleFilterError(f"node_probe_differs: {want['dest']} has no content: give it content or contents")
    entry = {**FILE_DEFAULTS, **{key: want[key] for key in FILE_KEYS if key in want}, "content": content}
    expected = {key: entry[key] for key in FILE_DEFAULTS}
    expected.update(type="file", sha1=hashlib.sha1(to_bytes(content)).hexdigest())
    return entry["dest"], expected, entry


def _compare(paths, want, content):
    """(differs, what to return) for one want."""
    if not isinstance(want, dict) or not ("path" in want or "dest" in want):
        raise AnsibleFilterError(f"node_probe_differs: a want must be a dict with path or dest, got {want!r}")
    if "dest" in want:
        path, expected, returned = _file(want, want.get("content", content))
    else:
        path, returned = want["path"], want
        expected = {key: want[key] for key in PROBED if key in want}
    if path not in paths:
        raise AnsibleFilterError(f"node_probe_differs: the probe did not read {path}: add it to node_probe's paths")
    have = paths[path]
    return any(have.get(key) != value for key, value in expected.items()), returned


def node_probe_differs(paths, wants, contents=None):
    """The wants (or, for a dict, the names of those) that are not as the probe read them."""
    if not isinstance(paths, dict):
        raise AnsibleFilterError("node_probe_differs: its input must be node_probe's paths (a dict by path)")
    named = isinstance(wants, dict)
    items = list(wants.items()) if named else list(enumerate(wants or []))
    if contents is not None and len(contents) != len(items):
        raise AnsibleFilterError(f"node_probe_differs: {len(contents)} contents for {len(items)} wants")
    out = []
    for i, (name, want) in enumerate(items):
        differs, returned = _compare(paths, want, contents[i] if contents is not None else None)
        if differs:
            out.append(name if named else returned)
    return out


class FilterModule:
    def filters(self):
        return {"node_probe_differs": node_probe_differs}
