"""deployment_names: the names a deployment's resources take by default, one source for all."""

from __future__ import annotations

from ansible_collections.ollama_cloud.engine.plugins.filter.deployment_names import deployment_names
from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_node_identity, aws_node_monitoring


def test_each_name_of_a_deployment():
    assert deployment_names("prod") == {
        "base": "oce-prod",
        "aws_key_secret": "oce/prod/tailscale",
        "aws_log_group": "/oce/prod",
        "aws_alerts_topic": "oce-prod-alerts",
        "gcp_service_account": "oce-prod-node",
        "gcp_key_secret": "oce-prod-tailscale",
    }


def test_the_modules_defaults_are_these_names():
    names = fleet.deployment_names("prod")
    assert aws_node_identity.defaults({"deployment": "prod"}) == (
        names["base"],
        names["aws_log_group"],
        names["aws_key_secret"],
    )
    assert aws_node_monitoring.defaults({"deployment": "prod"}) == (names["aws_log_group"], names["aws_alerts_topic"])
    # The tailnet name's prefix is the base name.
    assert fleet.tailnet_hostname("prod", "gpu1") == names["base"] + "-gpu1"
