"""ollama_model against a real Ollama (OCE_HOST_OLLAMA) and the rig's registry.

Every pull goes through the shim (see conftest.py), which also cuts or stalls transfers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.modules import ollama_model
from ansible_collections.ollama_cloud.engine.tests.functional.conftest import free_port, http_json

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MB = 1e6


def run(ollama, capsys, **args):
    """Run the module in-process; return its result dict (failed results included)."""
    with patch_module_args(dict({"host": ollama.url, "request_timeout": 30}, **args)), pytest.raises(SystemExit):
        ollama_model.main()
    return json.loads(capsys.readouterr().out)


def tag_names(ollama):
    return sorted(m["name"] for m in http_json("GET", ollama.url + "/api/tags")["models"])


def test_pull_private_registry_then_idempotent(clean, capsys, model_name):
    first = run(clean, capsys, name=model_name, insecure=True, timeout=300)
    assert first["changed"] is True and not first.get("failed"), first
    assert len(first["digest"]) == 64 and first["size"] > 200 * MB
    assert first["mb_per_s"] > 0 and first["attempts"] == 1
    sys.stderr.write(f"\npull throughput: {first['mb_per_s']} MB/s over {first['seconds']} s\n")
    # /api/tags lists a private-registry model under its full name, host included.
    assert tag_names(clean) == [model_name]
    second = run(clean, capsys, name=model_name, insecure=True)
    assert second["changed"] is False and second["digest"] == first["digest"]
    latest = run(clean, capsys, name=model_name, insecure=True, state="latest", timeout=300)
    assert latest["changed"] is False and latest["digest"] == first["digest"]


def test_check_mode_creates_nothing(clean, capsys, model_name):
    res = run(clean, capsys, name=model_name, insecure=True, _ansible_check_mode=True)
    assert res["changed"] is True and res["action"] == "pull"
    assert tag_names(clean) == []


def test_absent_removes(clean, capsys, model_name):
    assert run(clean, capsys, name=model_name, insecure=True, timeout=300)["changed"] is True
    res = run(clean, capsys, name=model_name, state="absent")
    assert res["changed"] is True and tag_names(clean) == []
    assert run(clean, capsys, name=model_name, state="absent")["changed"] is False


def test_pull_cut_mid_way_is_resumed(clean, capsys, model_name, shim):
    # Every blob connection is dropped at 60 MB for a while: Ollama's own part retries give up
    # or stall, and the module's retry loop has to finish the pull from the partial blob.
    shim.drop_at, shim.drops_left = 60 * MB, 40
    res = run(clean, capsys, name=model_name, insecure=True, timeout=240, stall_timeout=5)
    assert res.get("failed") is not True, res
    assert res["changed"] is True and shim.drops > 0
    assert res["attempts"] >= 2, res  # the module resumed it, not only Ollama's own part retries
    assert tag_names(clean) == [model_name]


def test_stalled_pull_is_retried(clean, capsys, model_name, shim):
    shim.stall_at, shim.stall_until = 50 * MB, time.monotonic() + 8
    res = run(clean, capsys, name=model_name, insecure=True, timeout=240, stall_timeout=3)
    assert res.get("failed") is not True, res
    assert res["changed"] is True and res["attempts"] >= 2
    assert res["retried_after"] == "no progress for 3s"


def test_progress_interval_resumes_partial_blobs(clean, capsys, model_name, shim):
    # Slow the blobs down, take a 2 s slice, then check the next call starts from the partial.
    shim.stall_at, shim.stall_until = 30 * MB, time.monotonic() + 4
    part = run(clean, capsys, name=model_name, insecure=True, progress_interval=2, stall_timeout=30)
    assert part["done"] is False and 0 < part["progress"]["completed"] < part["progress"]["total"]
    shim.reset()
    rest = run(clean, capsys, name=model_name, insecure=True, timeout=300)
    assert rest["done"] is True and rest["changed"] is True
    # The resumed pull did not fetch the bytes the first slice left on disk.
    assert rest["progress"]["fetched"] <= rest["progress"]["total"] - part["progress"]["completed"] + 8 * MB


def test_unknown_model_fails_with_registry_message(clean, capsys, shim):
    res = run(clean, capsys, name=f"{shim.host}/library/no-such-model:1", insecure=True, timeout=60)
    assert res["failed"] is True
    assert "pull model manifest: file does not exist" in res["msg"]
    assert tag_names(clean) == []


def test_unreachable_registry_fails_within_stall_timeout(clean, capsys):
    host = f"127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    started = time.monotonic()
    res = run(clean, capsys, name=f"{host}/library/gemma3:270m", insecure=True, timeout=3600, stall_timeout=3)
    assert res["failed"] is True and time.monotonic() - started < 30
    assert res["msg"].startswith(f"pulling {host}/library/gemma3:270m failed: the registry did not answer for 3s (")
    assert "connection refused" in res["msg"]
    assert tag_names(clean) == []


def test_plain_http_registry_without_insecure_fails(clean, capsys, model_name):
    started = time.monotonic()
    res = run(clean, capsys, name=model_name, timeout=60)
    assert res["failed"] is True and res["msg"].endswith("needs insecure: true)")
    assert time.monotonic() - started < 10  # failed at once, no retries to the deadline


@pytest.mark.parametrize("name", ["gemma3:-bad", "a/b.c/m:1", "bad name:1"])
def test_bad_names_fail_before_any_change(clean, capsys, name):
    res = run(clean, capsys, name=name)
    assert res["failed"] is True and "is not valid" in res["msg"]
    assert tag_names(clean) == []


def test_ollama_not_answering(capsys, ollama):
    url = f"http://127.0.0.1:{free_port()}"
    with patch_module_args({"name": "gemma3:270m", "host": url}), pytest.raises(SystemExit):
        ollama_model.main()
    res = json.loads(capsys.readouterr().out)
    assert res["msg"].startswith(f"Ollama is not answering at {url}: is the ollama service running?")


def test_missing_gguf(clean, capsys, tmp_path):
    res = run(clean, capsys, name="local-gemma:1", from_file=str(tmp_path / "missing.gguf"))
    assert res["failed"] is True and "does not exist on this node" in res["msg"]
    assert tag_names(clean) == []


def test_create_from_gguf(clean, capsys, gguf):
    res = run(
        clean,
        capsys,
        name="local-gemma:270m",
        from_file=gguf,
        modelfile="PARAMETER temperature 0\nSYSTEM Answer briefly.",
        timeout=300,
    )
    assert res["changed"] is True and not res.get("failed"), res
    assert tag_names(clean) == ["local-gemma:270m"]
    again = run(
        clean,
        capsys,
        name="local-gemma:270m",
        from_file=gguf,
        modelfile="PARAMETER temperature 0\nSYSTEM Answer briefly.",
    )
    assert again["changed"] is False


def test_create_from_modelfile_is_idempotent(clean, capsys, model_name):
    assert run(clean, capsys, name=model_name, insecure=True, timeout=300)["changed"] is True
    modelfile = f"FROM {model_name}\nPARAMETER num_ctx 2048\nPARAMETER stop <end>\nSYSTEM You are terse.\n"
    first = run(clean, capsys, name="terse:1", modelfile=modelfile, timeout=120)
    assert first["changed"] is True and first["action"] == "create", first
    show = http_json("POST", clean.url + "/api/show", {"model": "terse:1"})
    assert show["system"] == "You are terse." and "num_ctx" in show["parameters"]
    second = run(clean, capsys, name="terse:1", modelfile=modelfile)
    assert second["changed"] is False, second
    changed = run(clean, capsys, name="terse:1", modelfile=modelfile.replace("2048", "4096"))
    assert changed["changed"] is True and changed["reason"] == "parameter num_ctx"


def test_loaded_and_generate(clean, capsys, model_name):
    assert run(clean, capsys, name=model_name, insecure=True, timeout=300)["changed"] is True
    res = run(clean, capsys, name=model_name, loaded=True, keep_alive="2m", timeout=180)
    assert res["changed"] is True and res["loaded"] is True
    assert any(m["name"] == model_name for m in http_json("GET", clean.url + "/api/ps")["models"])
    assert run(clean, capsys, name=model_name, loaded=True)["changed"] is False
    out = http_json(
        "POST",
        clean.url + "/api/generate",
        {"model": model_name, "prompt": "Say hello.", "stream": False, "options": {"num_predict": 16}},
        timeout=180,
    )
    assert out["response"].strip()


def tag_digests(ollama):
    return {m["name"]: m["digest"] for m in http_json("GET", ollama.url + "/api/tags")["models"]}


def status_of(ollama, path, body, timeout=30):
    """The HTTP status Ollama answers (a 404 is an answer here, not an exception)."""
    try:
        http_json("POST", ollama.url + path, body, timeout=timeout)
        return 200
    except urllib.error.HTTPError as e:
        return e.code


def test_also_as_publishes_the_canonical_name(clean, capsys, model_name):
    """A mirrored model answers to gemma3:270m too, at no disk cost, idempotently, and goes with it."""
    canonical = "gemma3:270m"
    assert status_of(clean, "/api/show", {"model": canonical}) == 404  # what a client gets without it
    checked = run(clean, capsys, name=model_name, insecure=True, also_as=[canonical], _ansible_check_mode=True)
    assert checked["changed"] is True and checked["also_as"][0]["action"] == "copy" and tag_names(clean) == []

    first = run(clean, capsys, name=model_name, insecure=True, also_as=[canonical], timeout=300)
    assert first["changed"] is True and not first.get("failed"), first
    digest = first["digest"]
    assert first["also_as"] == [{"name": canonical, "before_digest": "", "digest": digest, "action": "copy"}]
    assert tag_digests(clean) == {model_name: digest, canonical: digest}
    blobs = sorted(os.listdir(os.path.join(clean.models, "blobs")))
    assert status_of(clean, "/api/show", {"model": canonical}) == 200
    answer = http_json(
        "POST",
        clean.url + "/api/generate",
        {"model": canonical, "prompt": "Say hello.", "stream": False, "options": {"num_predict": 4}},
        timeout=180,
    )
    assert answer["done"] is True

    again = run(clean, capsys, name=model_name, insecure=True, also_as=[canonical])
    assert again["changed"] is False and again["also_as"][0]["action"] == "none", again
    latest = run(clean, capsys, name=model_name, insecure=True, also_as=[canonical], state="latest", timeout=300)
    assert latest["changed"] is False, latest
    assert sorted(os.listdir(os.path.join(clean.models, "blobs"))) == blobs  # the second name took no disk

    # The name at another digest (as after a new pull of the mirrored model) is brought back to it.
    http_json(
        "POST",
        clean.url + "/api/create",
        {"model": canonical, "from": model_name, "parameters": {"num_ctx": 1024}, "stream": False},
        timeout=120,
    )
    assert tag_digests(clean)[canonical] != digest
    follow = run(clean, capsys, name=model_name, insecure=True, also_as=[canonical])
    assert follow["changed"] is True and follow["also_as"][0]["action"] == "copy", follow
    assert tag_digests(clean) == {model_name: digest, canonical: digest}

    gone = run(clean, capsys, name=model_name, state="absent", also_as=[canonical])
    assert gone["changed"] is True and tag_names(clean) == []
    assert run(clean, capsys, name=model_name, state="absent", also_as=[canonical])["changed"] is False


def test_role_publishes_the_canonical_name_through_a_mirror(clean, shim, registry_repo, tmp_path):
    """The ollama_models role with the shim as its mirror: gemma3:270m answers, a second run changes nothing."""
    playbook = tmp_path / "role.yml"
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          roles:
            - role: ollama_cloud.engine.ollama_models
              vars:
                ollama_models_list: ["gemma3:270m"]
                ollama_models_registry_mirror: "{shim.host}"
                ollama_models_insecure: true
                ollama_models_api_url: "{clean.url}"
                ollama_models_timeout: 300
        """)
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)]
    runs = [
        subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        for dummy in range(2)
    ]
    for res in runs:
        assert res.returncode == 0, res.stdout + res.stderr
    assert "changed=1" in runs[0].stdout and "changed=0" in runs[1].stdout, runs[1].stdout
    mirrored = f"{shim.host}/{registry_repo}:270m"
    digests = tag_digests(clean)
    assert set(digests) == {mirrored, "gemma3:270m"} and digests[mirrored] == digests["gemma3:270m"]
    assert status_of(clean, "/api/show", {"model": "gemma3:270m"}) == 200


def test_playbook_prints_progress_and_supports_check_and_diff(clean, model_name, shim, tmp_path):
    """Through ansible-playbook: the action plugin's progress lines, check mode and --diff."""
    playbook = tmp_path / "pull.yml"
    playbook.write_text(
        textwrap.dedent(f"""\
        - hosts: localhost
          gather_facts: false
          tasks:
            - name: Pull the model
              ollama_cloud.engine.ollama_model:
                name: "{model_name}"
                insecure: true
                host: "{clean.url}"
                progress_interval: 1
                stall_timeout: 30
              register: pulled
            - name: Save the result
              ansible.builtin.copy:
                content: "{{{{ pulled | to_json }}}}"
                dest: "{tmp_path}/result.json"
                mode: "0600"
        """)
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO_ROOT, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        ANSIBLE_STDOUT_CALLBACK="default",
    )
    cmd = ["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook)]

    check = subprocess.run(
        cmd + ["--check", "--diff"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "changed=2" in check.stdout and tag_names(clean) == [], check.stdout
    assert '"digest": null' in check.stdout or "digest: null" in check.stdout  # the diff's before side

    # Hold the blobs back for a few seconds so the pull outlives two slices.
    shim.stall_at, shim.stall_until = 20 * MB, time.monotonic() + 3
    threading.Timer(3.5, shim.reset).start()
    assert tag_names(clean) == []
    real = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert real.returncode == 0, real.stdout + real.stderr
    lines = [ln for ln in real.stdout.splitlines() if ln.startswith("ollama_model: [localhost]")]
    assert lines and " MB/s ETA " in lines[0] and "/253.1 MB (" in lines[0], real.stdout
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["changed"] is True and result["resumes"] >= 1 and result["mb_per_s"] > 0, (result, real.stdout)
