"""After older -> pinned -> older -> pinned, and then every mistake of mistakes.yml: the pinned
release runs, settings and models survived, and no failed run left anything behind."""

import json
import os

MODEL = "models.internal:5000/library/gemma3:270m"


def api(host, path, body=None):
    cmd = "curl -fsS --max-time 300 http://127.0.0.1:11434%s" % path
    if body is not None:
        cmd += " -H 'Content-Type: application/json' -d '%s'" % json.dumps(body)
    return json.loads(host.check_output(cmd))


def test_runs_the_pinned_release(host):
    assert host.service("ollama").is_running
    assert api(host, "/api/version")["version"] == os.environ["OCE_OLLAMA_VERSION"]
    target = host.check_output("readlink -f /usr/local/bin/ollama")
    assert "/%s/" % os.environ["OCE_OLLAMA_VERSION"] in target


def test_setting_survived_every_switch_and_mistake(host):
    env = host.check_output("systemctl show -p Environment --value ollama").split()
    assert "OLLAMA_KEEP_ALIVE=13m" in env


def test_no_failed_version_left_installed(host):
    assert not host.file("/opt/ollama/0.24.1").exists


def test_only_the_good_model_is_there(host):
    # ollama_models also publishes the mirrored model under the name as given (also_as).
    assert sorted(m["name"] for m in api(host, "/api/tags")["models"]) == ["gemma3:270m", MODEL]


def test_model_pulled_by_the_older_release_still_answers(host):
    out = api(host, "/api/generate", {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 8}})
    assert out["response"].strip()
