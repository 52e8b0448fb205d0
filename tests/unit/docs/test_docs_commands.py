"""The commands the docs give users name playbooks, inventories and variables that exist.

A renamed variable or playbook would otherwise leave a runbook command that fails at 3 a.m.
"""

from __future__ import annotations

import functools
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
DOCS = sorted(
    [ROOT / "README.md", ROOT / "packer" / "README.md"]
    + list((ROOT / "docs").rglob("*.md"))
    + list((ROOT / "roles").glob("*/README.md"))
)


@functools.cache
def known_variables():
    """Every role option (argument specs) and every name the playbooks and inventories read."""
    names = set()
    for spec in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names.update(entry.get("options", {}))
    for path in list((ROOT / "playbooks").rglob("*.yml")) + list((ROOT / "inventories").rglob("*")):
        if path.is_file():
            names.update(re.findall(r"[a-z_][a-z0-9_]*", path.read_text()))
    return names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_command_names_what_exists(doc):
    text = doc.read_text()
    missing = [p for p in re.findall(r"\bplaybooks/[a-z_]+\.yml\b", text) if not (ROOT / p).is_file()]
    missing += [i for i in re.findall(r"-i (inventories/[a-z_]+)", text) if not (ROOT / i).exists()]
    variables = known_variables()
    missing += [v for v in re.findall(r"(?<![\w-])-e ([a-z_][a-z0-9_]*)=", text) if v not in variables]
    assert missing == [], f"{doc.relative_to(ROOT)} names what does not exist: {sorted(set(missing))}"
