"""Every role's meta/argument_specs.yml types each input, and its defaults equal defaults/main.yml."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from ansible_collections.ollama_cloud.engine.plugins.module_utils import fleet

ROLES = sorted(p for p in (pathlib.Path(__file__).parents[3] / "roles").iterdir() if p.is_dir())


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_argument_specs_match_defaults(role):
    defaults = load(role / "defaults" / "main.yml")
    options = load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults), "inputs without a spec or spec without a default"
    for name, spec in options.items():
        assert spec.get("type"), "%s has no type" % name
        assert spec.get("description"), "%s has no description" % name
        assert spec.get("default") == defaults[name], "%s: spec default %r != defaults/main.yml %r" % (
            name,
            spec.get("default"),
            defaults[name],
        )


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_variables_carry_the_role_prefix(role):
    prefix = role.name + "_"
    for name in load(role / "defaults" / "main.yml"):
        assert name.startswith(prefix), "%s in role %s lacks the %s prefix" % (name, role.name, prefix)


def test_the_node_role_names_the_gcp_project_variables_the_modules_read():
    # Its messages show the project a GCP module would use; the modules read fleet.GCP_ENV.
    node_vars = load(ROLES[0].parent / "node" / "vars" / "main.yml")
    assert node_vars["__node_gcp_project_env"] == fleet.GCP_ENV["project"]
