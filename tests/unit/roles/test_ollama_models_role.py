"""The ollama_models role through ansible-playbook, against the in-process fake Ollama.

With a registry mirror, every model the mirror rewrote is also published under the name as given
(ollama_model's also_as), so clients asking for gemma3:270m find the mirrored model.
"""

from __future__ import annotations

import json
import pathlib
import sys

import pytest
import yaml

from ansible_collections.ollama_cloud.engine.tests.unit.roles.playbook_runner import run_playbook

ROOT = pathlib.Path(__file__).parents[3]
MIRROR = "models.internal:5000"


class Node:
    """A stateful fake: /api/tags lists what pulls, copies and deletes left."""

    def __init__(self, fake, **models):
        self.fake = fake
        self.models = dict(models)
        fake.routes[("GET", "/api/tags")] = lambda req, body: req.send_json(
            200, {"models": [{"name": n, "model": n, "digest": d, "size": 42} for n, d in self.models.items()]}
        )
        fake.routes[("GET", "/api/ps")] = {"models": []}
        fake.routes[("POST", "/api/pull")] = self.pull
        fake.routes[("POST", "/api/copy")] = self.copy
        fake.routes[("DELETE", "/api/delete")] = self.delete

    def pull(self, req, body):
        self.models[body["model"]] = "d-" + body["model"].rsplit("/", 1)[-1]
        req.start_stream()
        req.line({"status": "pulling x", "digest": "sha256:" + "c" * 64, "total": 10, "completed": 10})
        req.line({"status": "success"})

    def copy(self, req, body):
        self.models[body["destination"]] = self.models[body["source"]]
        req.send_json(200, None)

    def delete(self, req, body):
        del self.models[body["model"]]
        req.send_json(200, None)

    def changing(self):
        return [(m, p, b.get("model") or b.get("destination")) for m, p, b in self.fake.changing_calls()]


def play(node, tmp_path, check=False, **role_vars):
    """Run the role on localhost; return (recap changed count, ollama_models_resolved)."""
    out = tmp_path / "resolved.json"
    playbook = tmp_path / "models.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "connection": "local",
                    "gather_facts": False,
                    "vars": {"ansible_python_interpreter": sys.executable},
                    "roles": [
                        {
                            "role": "ollama_cloud.engine.ollama_models",
                            "vars": dict({"ollama_models_api_url": node.fake.url}, **role_vars),
                        }
                    ],
                    "tasks": [
                        {
                            "name": "Save the resolved names",
                            "ansible.builtin.copy": {
                                "content": "{{ ollama_models_resolved | to_json }}",
                                "dest": str(out),
                                "mode": "0600",
                            },
                            "check_mode": False,
                            "changed_when": False,
                        }
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    result = run_playbook(playbook, *(["--check"] if check else []))
    assert result.returncode == 0, result.stdout + result.stderr
    recap = result.stdout.rsplit("PLAY RECAP", 1)[1]
    changed = int(recap.split("changed=", 1)[1].split()[0])
    return changed, json.loads(out.read_text())


@pytest.fixture
def node(fake_ollama):
    return Node(fake_ollama)


def test_mirrored_models_answer_to_the_names_as_given(node, tmp_path):
    models = ["gemma3:270m", {"name": "other.host:5000/team/m:1"}, {"name": "qwen3:1b", "also_as": ["coder:1"]}]
    settings = {"ollama_models_list": models, "ollama_models_registry_mirror": MIRROR, "ollama_models_insecure": True}
    changed, resolved = play(node, tmp_path, **settings)
    assert changed == 1
    assert resolved == [f"{MIRROR}/library/gemma3:270m", "other.host:5000/team/m:1", f"{MIRROR}/library/qwen3:1b"]
    assert node.models == {
        f"{MIRROR}/library/gemma3:270m": "d-gemma3:270m",
        "gemma3:270m": "d-gemma3:270m",  # the name as given
        "other.host:5000/team/m:1": "d-m:1",  # had a host: pulled as it is, no second name
        f"{MIRROR}/library/qwen3:1b": "d-qwen3:1b",
        "coder:1": "d-qwen3:1b",  # also_as of the list item, and the name as given
        "qwen3:1b": "d-qwen3:1b",
    }

    node.fake.log.clear()
    changed, dummy = play(node, tmp_path, **settings)
    assert changed == 0 and node.changing() == []
    changed, dummy = play(node, tmp_path, check=True, **settings)
    assert changed == 0 and node.changing() == []

    settings["ollama_models_list"] = [{"name": "gemma3:270m", "state": "absent"}]
    changed, resolved = play(node, tmp_path, **settings)
    assert changed == 1 and resolved == []
    assert node.changing() == [
        ("DELETE", "/api/delete", "gemma3:270m"),
        ("DELETE", "/api/delete", f"{MIRROR}/library/gemma3:270m"),
    ]


def test_check_mode_copies_nothing(node, tmp_path):
    node.models[f"{MIRROR}/library/gemma3:270m"] = "d1"
    changed, dummy = play(
        node, tmp_path, check=True, ollama_models_list=["gemma3:270m"], ollama_models_registry_mirror=MIRROR
    )
    assert changed == 1 and node.changing() == []


@pytest.mark.parametrize(
    "settings",
    [
        {"ollama_models_registry_mirror": ""},  # no mirror: the names are the names as given
        {"ollama_models_registry_mirror": MIRROR, "ollama_models_canonical_names": False},
    ],
    ids=["no-mirror", "turned-off"],
)
def test_no_second_name(node, tmp_path, settings):
    changed, resolved = play(node, tmp_path, ollama_models_list=["gemma3:270m"], **settings)
    assert changed == 1 and len(node.models) == 1
    assert node.fake.calls("POST", "/api/copy") == []


@pytest.mark.parametrize(
    ("play_vars", "url"), [({}, "http://127.0.0.1:11434"), ({"ollama_port": 11500}, "http://127.0.0.1:11500")]
)
def test_the_api_url_follows_the_ollama_roles_port(play_vars, url):
    """The models are pulled where the ollama role made Ollama listen, when a play moves its port."""
    from ansible.template import Templar, trust_as_template

    defaults = yaml.safe_load((ROOT / "roles/ollama_models/defaults/main.yml").read_text())
    template = trust_as_template(defaults["ollama_models_api_url"])  # as Ansible trusts a role's files
    assert Templar(loader=None, variables=play_vars).template(template) == url
