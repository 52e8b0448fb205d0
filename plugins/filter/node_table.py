# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: node_table
short_description: Format node records as the fleet status table
version_added: 0.1.0
description:
  - Turns the node records every provider returns into one text table
    (node, cloud, model, state, instance type, uptime, hourly cost), as lines for C(debug).
positional: _input
options:
  _input:
    description: Node records.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the fleet
  ansible.builtin.debug:
    msg: "{{ nodes | ollama_cloud.engine.node_table }}"
"""

RETURN = r"""
_value:
  description: The table, one string per line (a header, a rule, one line per node).
  type: list
  elements: str
"""

COLUMNS = (
    ("NODE", "name"),
    ("CLOUD", "cloud"),
    ("MODEL", "model"),
    ("STATE", "state"),
    ("TYPE", "instance_type"),
    ("UPTIME", "uptime"),
    ("USD/H", "hourly_cost"),
)


def _uptime(seconds):
    seconds = int(seconds or 0)
    if not seconds:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return "%dd%02dh" % (days, hours)
    return "%dh%02dm" % (hours, minutes) if hours else "%dm" % minutes


def _cell(node, key):
    if key == "uptime":
        return _uptime(node.get("uptime_seconds"))
    if key == "hourly_cost":
        cost = node.get("hourly_cost")
        return "%.3f" % cost if isinstance(cost, (int, float)) else "-"
    value = node.get(key)
    return "-" if value in (None, "") else str(value)


def node_table(nodes):
    rows = [[_cell(node, key) for _title, key in COLUMNS] for node in nodes or []]
    header = [title for title, _key in COLUMNS]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    if not rows:
        return ["no nodes"]
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


class FilterModule:
    def filters(self):
        return {"node_table": node_table}
