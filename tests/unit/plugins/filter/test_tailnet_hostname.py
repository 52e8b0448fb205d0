"""tailnet_hostname: the name a node joins the tailnet with, as its record will say."""

from __future__ import annotations

from ansible_collections.ollama_cloud.engine.plugins.filter.tailnet_hostname import tailnet_hostname
from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet


def test_the_prefix_is_added_unless_the_name_has_it():
    assert tailnet_hostname("prod", "oce-prod") == "oce-prod"
    assert tailnet_hostname("prod", "oce-prod-gpu1") == "oce-prod-gpu1"
    assert tailnet_hostname("prod", "gpu1") == "oce-prod-gpu1"
    # The same rule as the node records and the first-boot user data.
    assert tailnet_hostname("ml", "prod") == fleet.tailnet_hostname("ml", "prod")
