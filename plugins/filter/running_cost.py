# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: running_cost
short_description: What a deployment's running nodes cost per hour and per month
version_added: 0.2.0
description:
  - Sums the C(hourly_cost) of the running nodes among node records (the node role's C(node_records))
    and says it per hour and per month, with the month's hours of the collection's price table
    (the same as the C(estimate) of the P(ollama_cloud.engine.model_catalog#lookup) lookup).
  - Returns an empty string when no record has a cost (the local target costs nothing).
positional: _input
options:
  _input:
    description: Node records.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Print what the running nodes cost
  ansible.builtin.debug:
    msg: "{{ node_records | ollama_cloud.engine.running_cost }}"
  when: node_records | ollama_cloud.engine.running_cost | length > 0
"""

RETURN = r"""
_value:
  description:
    - "For example C(2 running node(s): 1.052 USD/h, about 768 USD/month at on-demand prices (instances only).)"
    - Empty when no record has an hourly cost.
  type: str
"""


def _cost(record):
    cost = record.get("hourly_cost")
    return cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None


def running_cost(records):
    # On first use: a worker that templates any filter of the collection loads all of them.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog

    records = records or []
    if all(_cost(r) is None for r in records):
        return ""
    running = [r for r in records if r.get("state") == "running"]
    hourly = sum(_cost(r) for r in running if _cost(r) is not None)
    return (
        f"{len(running)} running node(s): {hourly:.3f} USD/h, about {hourly * catalog.HOURS_PER_MONTH:.0f} "
        "USD/month at on-demand prices (instances only)."
    )


class FilterModule:
    def filters(self):
        return {"running_cost": running_cost}
