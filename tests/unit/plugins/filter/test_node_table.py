"""The status table every provider's node records feed."""

from ansible_collections.ollama_cloud.engine.plugins.filter.node_table import node_table


def test_one_line_per_node_with_uptime_and_cost():
    nodes = [
        {
            "name": "oce-demo",
            "cloud": "local",
            "model": "gemma3:270m",
            "state": "running",
            "instance_type": "podman-container",
            "uptime_seconds": 3725,
        },
        {
            "name": "oce-prod",
            "cloud": "aws",
            "model": "codellama:34b-code",
            "state": "stopped",
            "instance_type": "g6e.xlarge",
            "uptime_seconds": 0,
            "hourly_cost": 1.861,
        },
    ]
    header, rule, demo, prod = node_table(nodes)
    assert header.split() == ["NODE", "CLOUD", "MODEL", "STATE", "TYPE", "UPTIME", "USD/H"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert demo.split() == ["oce-demo", "local", "gemma3:270m", "running", "podman-container", "1h02m", "-"]
    assert prod.split() == ["oce-prod", "aws", "codellama:34b-code", "stopped", "g6e.xlarge", "-", "1.861"]
    # Columns line up: every row starts its MODEL cell at the same offset.
    assert demo.index("gemma3") == prod.index("codellama") == header.index("MODEL")


def test_days_and_empty():
    assert node_table([{"name": "n", "uptime_seconds": 2 * 86400 + 3 * 3600}])[2].split()[5] == "2d03h"
    assert node_table([]) == ["no nodes"]
