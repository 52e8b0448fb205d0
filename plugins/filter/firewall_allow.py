# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: firewall_allow
short_description: Check and normalize a host firewall allow list
version_added: "0.2.0"
description:
  - >-
    Reads an allow list of the C(hardening) role (C(hardening_firewall_allow)), entries of
    C(port) (a number or a range such as C(8000-8100)), C(proto) (C(tcp) or C(udp), default C(tcp)),
    C(source) (an IPv4 or IPv6 address or network; any source when empty or missing) and an
    optional C(comment).
  - Returns the entries normalized for an nftables template (C(rules)) and one sentence per
    mistake (C(problems)), so a role can refuse bad input before it changes anything.
positional: _input
options:
  _input:
    description: The allow list.
    type: list
    elements: dict
    required: true
seealso:
  - plugin: ollama_cloud.engine.firewall_admits
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Refuse a bad allow list
  ansible.builtin.assert:
    that: (hardening_firewall_allow | ollama_cloud.engine.firewall_allow).problems | length == 0
    fail_msg: "{{ (hardening_firewall_allow | ollama_cloud.engine.firewall_allow).problems | join(' ') }}"

# [{port: 22, proto: tcp, source: 35.235.240.0/20}] gives
# rules: [{port: "22", proto: tcp, family: ip, source: 35.235.240.0/20, comment: ""}], problems: []
"""

RETURN = r"""
_value:
  description: The normalized entries and the mistakes found.
  type: dict
  contains:
    rules:
      description:
        - One per valid entry. C(port) is a string (C(22) or C(8000-8100)); C(family) is C(ip),
          C(ip6) or empty (any source); C(source) is the network in its canonical form
          (a single address becomes C(/32) or C(/128)).
      type: list
      elements: dict
    problems:
      description: One sentence per mistake, naming the entry and what to write instead.
      type: list
      elements: str
"""

import ipaddress
import re

KEYS = ("port", "proto", "source", "comment")
PROTOS = ("tcp", "udp")
PORT_RE = re.compile(r"^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$")
COMMENT_RE = re.compile(r'^[^"\\\n\r]{0,128}$')


def _port(value):
    """'22' or '8000-8100' for a valid port or range, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 1 <= value <= 65535 else None
    match = PORT_RE.match(str(value))
    if not match:
        return None
    low = int(match.group(1))
    high = int(match.group(2)) if match.group(2) else None
    if not 1 <= low <= 65535 or (high is not None and not low < high <= 65535):
        return None
    return "%d-%d" % (low, high) if high else str(low)


def _network(value):
    """(network, None) for a valid source, else (None, the problem)."""
    text = str(value).strip()
    try:
        return ipaddress.ip_network(text, strict=True), None
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return None, "source %r is not an IPv4 or IPv6 address or network (such as 10.0.0.0/8 or fd7a::/48)" % text
        return None, "source %r has host bits set: write %s (or %s/%d for that one address)" % (
            text,
            loose,
            text.split("/", maxsplit=1)[0],
            loose.max_prefixlen,
        )


def _entry(index, entry):
    """(rule, problems) of one allow-list entry."""
    where = "hardening_firewall_allow entry %d (%r)" % (index, entry)
    if not isinstance(entry, dict):
        return None, ["%s must be a dict with port, and optionally proto, source and comment." % where]
    problems = []
    unknown = sorted(str(k) for k in entry if k not in KEYS)
    if unknown:
        problems.append(
            "%s has unknown keys %s: use only port, proto, source and comment." % (where, ", ".join(unknown))
        )
    port = _port(entry.get("port")) if "port" in entry else None
    if port is None:
        problems.append(
            "%s: port must be a number from 1 to 65535 or a range such as 8000-8100 (got %r)."
            % (where, entry.get("port"))
        )
    proto = str(entry.get("proto") or "tcp").strip().lower()
    if proto not in PROTOS:
        problems.append("%s: proto must be tcp or udp (got %r)." % (where, entry.get("proto")))
    network, family = None, ""
    source = entry.get("source")
    if source not in (None, ""):
        network, problem = _network(source)
        if problem:
            problems.append("%s: %s." % (where, problem))
        else:
            family = "ip" if network.version == 4 else "ip6"
    comment = entry.get("comment")
    comment = "" if comment is None else str(comment)
    if not COMMENT_RE.match(comment):
        problems.append(
            "%s: comment must be at most 128 characters, without quotes, backslashes or line breaks." % where
        )
    if problems:
        return None, problems
    rule = {
        "port": port,
        "proto": proto,
        "family": family,
        "source": str(network) if network else "",
        "comment": comment,
    }
    return rule, []


def firewall_allow(allow):
    if allow is None:
        allow = []
    if not isinstance(allow, (list, tuple)):
        return {
            "rules": [],
            "problems": ["hardening_firewall_allow must be a list of {port, proto, source} (got %r)." % (allow,)],
        }
    rules, problems = [], []
    for index, entry in enumerate(allow, start=1):
        rule, found = _entry(index, entry)
        problems += found
        if rule is not None:
            rules.append(rule)
    return {"rules": rules, "problems": problems}


class FilterModule:
    def filters(self):
        return {"firewall_allow": firewall_allow}
