"""The simulated cloud's fixtures (fixtures.py), for the tests of this directory."""

# pytest finds fixtures by the names a conftest holds: these imports are their use.
# pylint: disable=unused-import

from ansible_collections.ollama_cloud.engine.tests.functional.simcloud.fixtures import (  # noqa: F401
    controller_tailnet,
    golden_image,
    headscale,
    simcloud_aws,
    simcloud_gce,
    simcloud_gcp,
    simcloud_moto,
    simcloud_rig,
    ssh_key,
)
