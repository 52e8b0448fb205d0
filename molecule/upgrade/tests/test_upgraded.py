"""After older -> pinned -> older -> pinned: the pinned release runs, settings and models survived."""

import json
import os

MODEL = "models.internal:5000/library/gemma3:270m"


def api(host, path, body=None):
    cmd = "curl -fsS --max-time 300 http://127.0.0.1:11434%s" % path
    if body is not None:
        cmd += " -H 'Content-Type: application/json' -d '%s'" % json.dumps(body)
    return json.loads(host.check_output(cmd))


def test_runs_the_pinned_release(host):
    assert api(host, "/api/version")["version"] == os.environ["OCE_OLLAMA_VERSION"]
    target = host.check_output("readlink -f /usr/local/bin/ollama")
    assert "/%s/" % os.environ["OCE_OLLAMA_VERSION"] in target


def test_setting_survived_every_switch(host):
    env = host.check_output("systemctl show -p Environment --value ollama").split()
    assert "OLLAMA_KEEP_ALIVE=13m" in env


def test_model_pulled_by_the_older_release_still_answers(host):
    assert MODEL in [m["name"] for m in api(host, "/api/tags")["models"]]
    out = api(host, "/api/generate", {"model": MODEL, "prompt": "Hi", "stream": False, "options": {"num_predict": 8}})
    assert out["response"].strip()
