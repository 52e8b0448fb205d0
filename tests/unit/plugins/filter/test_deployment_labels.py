"""The ownership labels YAML reads from the collection instead of restating them."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ollama_cloud.engine.plugins.filter.deployment_labels import deployment_labels
from ansible_collections.ollama_cloud.engine.plugins.filter.deployment_owns import deployment_owns


def test_tags_are_the_modules_labels():
    assert deployment_labels("demo") == {"oce-deployment": "demo", "oce-managed-by": "ollama_cloud.engine"}
    assert deployment_labels("demo", environment="prod", model="codellama:7b-code") == {
        "oce-deployment": "demo",
        "oce-managed-by": "ollama_cloud.engine",
        "oce-model": "codellama:7b-code",
        "oce-environment": "prod",
    }


def test_filters_for_the_aws_info_modules():
    assert deployment_labels("demo", form="filters") == {
        "tag:oce-deployment": "demo",
        "tag:oce-managed-by": "ollama_cloud.engine",
    }


def test_marker_for_resources_without_tags():
    assert deployment_labels("demo", form="marker") == "[oce-deployment=demo oce-managed-by=ollama_cloud.engine]"


def test_unknown_form_fails_with_the_choices():
    with pytest.raises(AnsibleFilterError, match="tags, filters, marker"):
        deployment_labels("demo", form="yaml")


@pytest.mark.parametrize(
    "tags, ours",
    [
        ({"oce-deployment": "demo", "oce-managed-by": "ollama_cloud.engine", "Name": "x"}, True),
        ({"oce-deployment": "other", "oce-managed-by": "ollama_cloud.engine"}, False),
        ({"oce-deployment": "demo"}, False),
        ({}, False),
        (None, False),
    ],
)
def test_owns_needs_both_labels(tags, ours):
    assert deployment_owns(tags, "demo") is ours
