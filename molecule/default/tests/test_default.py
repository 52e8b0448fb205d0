"""What a converged node must do: serve the pinned Ollama, hold the model, answer, stay sandboxed."""

import base64
import hashlib
import json
import os
import urllib.request

import pytest

API = "http://127.0.0.1:11434"
MODEL = "models.internal:5000/library/gemma3:270m"
CANONICAL = "gemma3:270m"


def api(host, path, body=None, timeout=300):
    """Call Ollama's API from inside the node (curl is in the base image)."""
    cmd = "curl -fsS --max-time %d %s%s" % (timeout, API, path)
    if body is not None:
        cmd += " -H 'Content-Type: application/json' -d '%s'" % json.dumps(body)
    out = host.check_output(cmd)
    return json.loads(out)


def registry_digest():
    """sha256 of the manifest the rig's registry serves: what Ollama must report as digest."""
    req = urllib.request.Request(
        "http://127.0.0.1:%s/v2/library/gemma3/manifests/270m" % os.environ.get("OCE_REGISTRY_PORT", "5000"),
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return hashlib.sha256(resp.read()).hexdigest()


def test_service_active_and_enabled(host):
    svc = host.service("ollama")
    assert svc.is_running
    assert svc.is_enabled


def test_api_reports_pinned_version(host):
    assert api(host, "/api/version")["version"] == os.environ["OCE_OLLAMA_VERSION"]


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:11434").is_listening
    assert not host.socket("tcp://0.0.0.0:11434").is_listening


def test_runs_as_ollama_user(host):
    assert host.user("ollama").exists
    pid = host.check_output("systemctl show -p MainPID --value ollama")
    assert host.check_output("ps -o user= -p %s" % pid).strip() == "ollama"


def test_model_listed_with_registry_digest(host):
    models = {m["name"]: m for m in api(host, "/api/tags")["models"]}
    assert MODEL in models, sorted(models)
    assert models[MODEL]["digest"] == registry_digest()


def test_canonical_name_answers(host):
    # Pulled through the mirror, the model also answers to the name clients use (ollama_models
    # copies it there: the same manifest, so the same digest and no extra disk).
    models = {m["name"]: m["digest"] for m in api(host, "/api/tags")["models"]}
    assert models.get(CANONICAL) == models[MODEL], sorted(models)
    assert api(host, "/api/show", {"model": CANONICAL})["details"]["family"]  # curl -f: a 404 fails


def test_model_generates_text(host):
    answer = api(
        host, "/api/generate", {"model": MODEL, "prompt": "Say hello.", "stream": False, "options": {"num_predict": 16}}
    )
    assert answer["done"] is True
    assert answer["response"].strip()


@pytest.mark.parametrize("limit", [3.0])
def test_exposure_score_under_bar(host, limit):
    out = host.check_output("systemd-analyze security ollama.service --no-pager | tail -n 1")
    # "→ Overall exposure level for ollama.service: 2.4 OK :-)"
    score = float(out.split(":")[1].split()[0])
    assert score <= limit, out


def test_setting_survives_reinstall(host):
    # side_effect.yml set keep-alive to 42m, then removed and reinstalled Ollama.
    env = host.check_output("systemctl show -p Environment --value ollama")
    assert "OLLAMA_KEEP_ALIVE=42m" in env.split()
    assert host.file("/usr/local/bin/ollama").exists


def test_removal_leaves_the_drop_ins_of_others(host):
    # side_effect.yml added 90-someone-else.conf, removed Ollama (ollama_state=absent) and installed
    # it again: the drop-in stayed, and the service runs with it.
    assert host.file("/etc/systemd/system/ollama.service.d/90-someone-else.conf").exists
    assert "OCE_SOMEONE_ELSE=1" in host.check_output("systemctl show -p Environment --value ollama").split()
    assert host.service("ollama").is_running


# converge.yml and side_effect.yml set ollama_extra_env to this made-up secret.
SECRET = " s3cr\"et' $HOME ${X} `id` back\\slash #no-comment %n 100% "
EXTRA_ENV = "/etc/systemd/system/ollama.service.d/extra.env"


def test_extra_env_file_is_root_only(host):
    env_file = host.file(EXTRA_ENV)
    assert env_file.is_file
    assert env_file.mode == 0o600
    assert (env_file.user, env_file.group) == ("root", "root")
    # Not in the world-readable drop-in, nor in what systemctl shows to every user.
    assert "OCE_TEST_SECRET" not in host.file("/etc/systemd/system/ollama.service.d/10-settings.conf").content_string
    assert "s3cr" not in host.check_output("systemctl show -p Environment --value ollama")
    assert host.check_output("systemctl show -p EnvironmentFiles --value ollama").split()[0] == EXTRA_ENV


def test_extra_env_value_reaches_the_service_unmangled(host):
    pid = host.check_output("systemctl show -p MainPID --value ollama")
    environ = host.check_output("base64 -w0 /proc/%s/environ" % pid)  # as root
    variables = dict(entry.split("=", 1) for entry in base64.b64decode(environ).decode().split("\0") if "=" in entry)
    assert variables.get("OCE_TEST_SECRET") == SECRET


def test_drift_is_undone(host):
    # side_effect.yml edited the unit (ProtectSystem=false) and the drop-in's mode, restarted
    # Ollama on that, then applied the role: it wrote both back, reloaded systemd and restarted.
    unit = host.file("/etc/systemd/system/ollama.service")
    assert "ProtectSystem=strict" in unit.content_string.splitlines()
    assert host.file("/etc/systemd/system/ollama.service.d/10-settings.conf").mode == 0o644
    assert host.check_output("systemctl show -p ProtectSystem --value ollama") == "strict"
    drifted = host.file("/root/oce-drifted-invocation").content_string.strip()
    assert drifted and host.check_output("systemctl show -p InvocationID --value ollama") != drifted
