"""The status playbook's cost line, with the month's hours of the price table."""

from ansible_collections.ollama_cloud.engine.plugins.filter.running_cost import running_cost
from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog


def test_sums_the_running_nodes_only():
    records = [
        {"name": "a", "state": "running", "hourly_cost": 0.526},
        {"name": "b", "state": "running", "hourly_cost": 0.54},
        {"name": "c", "state": "stopped", "hourly_cost": 1.0},
    ]
    assert running_cost(records) == (
        "2 running node(s): 1.066 USD/h, about 778 USD/month at on-demand prices (instances only)."
    )
    assert round(1.066 * catalog.HOURS_PER_MONTH) == 778


def test_nothing_to_say_without_costs():
    assert running_cost([{"name": "local", "state": "running", "hourly_cost": None}]) == ""
    assert running_cost([]) == ""


def test_stopped_nodes_with_a_cost_say_none_run():
    line = running_cost([{"state": "stopped", "hourly_cost": 0.5}])
    assert line.startswith("0 running node(s): 0.000 USD/h, about 0 USD/month")
