"""Unit tests for the ollama_model module against an in-process fake Ollama."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.module_utils import (
    ollama_api as api,
)
from ansible_collections.ollama_cloud.engine.plugins.modules import ollama_model

NAME = "models.internal:5000/library/gemma3:270m"
WEIGHTS = "sha256:" + "c" * 64


def run_module(args, capsys):
    """Run main() with these args; return (exit code, parsed JSON result)."""
    with patch_module_args(args), pytest.raises(SystemExit) as e:
        ollama_model.main()
    return e.value.code, json.loads(capsys.readouterr().out)


def tags(*models):
    return {"models": [{"name": n, "model": n, "digest": d, "size": 42} for n, d in models]}


def stream(*lines):
    def handler(req, body):
        req.start_stream()
        for line in lines:
            req.line(line)

    return handler


PULL_OK = stream(
    {"status": "pulling manifest"},
    {"status": "pulling cccc", "digest": WEIGHTS, "total": 100, "completed": 100},
    {"status": "success"},
)


@pytest.fixture
def ollama(fake_ollama):
    fake_ollama.routes[("GET", "/api/tags")] = tags()
    fake_ollama.routes[("GET", "/api/ps")] = {"models": []}
    return fake_ollama


def args(ollama, **kw):
    return dict({"name": NAME, "host": ollama.url, "request_timeout": 5}, **kw)


def test_present_existing_model_only_reads(ollama, capsys):
    ollama.routes[("GET", "/api/tags")] = tags((NAME, "d1"))
    rc, res = run_module(args(ollama, insecure=True), capsys)
    assert rc == 0 and res["changed"] is False and res["digest"] == "d1"
    assert ollama.changing_calls() == []


def test_present_missing_model_pulls(ollama, capsys):
    def pull(req, body):
        ollama.routes[("GET", "/api/tags")] = tags((NAME, "d2"))
        PULL_OK(req, body)

    ollama.routes[("POST", "/api/pull")] = pull
    rc, res = run_module(args(ollama, insecure=True), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "pull"
    assert res["digest"] == "d2" and res["before_digest"] == "" and res["attempts"] == 1
    assert res["diff"] == {"before": {"name": NAME, "digest": None}, "after": {"name": NAME, "digest": "d2"}}
    assert ollama.calls("POST", "/api/pull")[0][2] == {"model": NAME, "insecure": True, "stream": True}


def test_check_mode_pulls_nothing(ollama, capsys):
    rc, res = run_module(args(ollama, _ansible_check_mode=True), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "pull"
    assert ollama.changing_calls() == []


def test_latest_same_digest_is_unchanged(ollama, capsys):
    ollama.routes[("GET", "/api/tags")] = tags((NAME, "d1"))
    ollama.routes[("POST", "/api/pull")] = PULL_OK
    rc, res = run_module(args(ollama, state="latest"), capsys)
    assert rc == 0 and res["changed"] is False
    assert len(ollama.calls("POST", "/api/pull")) == 1


def test_latest_new_digest_is_changed(ollama, capsys):
    ollama.routes[("GET", "/api/tags")] = tags((NAME, "d1"))

    def pull(req, body):
        ollama.routes[("GET", "/api/tags")] = tags((NAME, "d2"))
        PULL_OK(req, body)

    ollama.routes[("POST", "/api/pull")] = pull
    rc, res = run_module(args(ollama, state="latest"), capsys)
    assert rc == 0 and res["changed"] is True
    assert (res["before_digest"], res["digest"]) == ("d1", "d2")


def test_pull_error_line_fails_with_ollamas_message(ollama, capsys):
    ollama.routes[("POST", "/api/pull")] = stream(
        {"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}
    )
    rc, res = run_module(args(ollama), capsys)
    assert rc == 1 and res["failed"] is True
    assert res["msg"] == f"pulling {NAME} failed: pull model manifest: file does not exist"


def test_progress_interval_returns_not_done(ollama, capsys):
    def slow(req, body):
        req.start_stream()
        for i in range(40):
            req.line({"status": "pulling", "digest": WEIGHTS, "total": 1000, "completed": i * 10})
            __import__("time").sleep(0.1)

    ollama.routes[("POST", "/api/pull")] = slow
    rc, res = run_module(args(ollama, progress_interval=1), capsys)
    assert rc == 0 and res["done"] is False
    assert 0 < res["progress"]["completed"] < 1000 and res["progress"]["total"] == 1000
    assert "diff" not in res


def test_absent_deletes(ollama, capsys):
    ollama.routes[("GET", "/api/tags")] = tags((NAME, "d1"))
    ollama.routes[("DELETE", "/api/delete")] = {}
    rc, res = run_module(args(ollama, state="absent"), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "delete"
    assert ollama.calls("DELETE", "/api/delete")[0][2] == {"model": NAME}


def test_absent_missing_is_unchanged(ollama, capsys):
    rc, res = run_module(args(ollama, state="absent"), capsys)
    assert rc == 0 and res["changed"] is False and ollama.changing_calls() == []


@pytest.mark.parametrize("name", ["gemma3:-bad", "a/b.c/m:1", "x:" + "t" * 81])
def test_bad_name_fails_before_any_request(ollama, capsys, name):
    rc, res = run_module(args(ollama, name=name), capsys)
    assert rc == 1 and "is not valid" in res["msg"]
    assert ollama.log == []


def test_unreachable_ollama(closed_port_url, capsys):
    rc, res = run_module({"name": "gemma3:270m", "host": closed_port_url}, capsys)
    assert rc == 1
    assert res["msg"].startswith(
        f"Ollama is not answering at {closed_port_url}: is the ollama service running? (systemctl status ollama)"
    )


def test_host_from_environment(ollama, capsys, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", ollama.url.replace("http://", ""))
    ollama.routes[("GET", "/api/tags")] = tags(("gemma3:270m", "d1"))
    rc, res = run_module({"name": "gemma3:270m"}, capsys)
    assert rc == 0 and res["digest"] == "d1"


def test_missing_gguf_fails_before_any_request(ollama, capsys, tmp_path):
    rc, res = run_module(args(ollama, name="mine:1", from_file=str(tmp_path / "nope.gguf")), capsys)
    assert rc == 1 and "does not exist on this node: copy the GGUF file there first" in res["msg"]
    assert ollama.log == []


def show_for(digest, parameters="", system=""):
    return {
        "modelfile": "FROM /m/blobs/sha256-{}\n".format(digest.split(":")[1]),
        "parameters": parameters,
        "system": system,
        "template": "{{ .Prompt }}",
    }


@pytest.fixture
def gguf(tmp_path):
    f = tmp_path / "gemma.gguf"
    f.write_bytes(b"GGUF fake weights")
    return str(f), api.sha256_file(str(f))


def test_create_from_file_uploads_and_creates(ollama, capsys, gguf):
    path, digest = gguf
    ollama.routes[("HEAD", "/api/blobs/" + digest)] = (404, None)
    ollama.routes[("POST", "/api/blobs/" + digest)] = (201, None)

    def create(req, body):
        ollama.routes[("GET", "/api/tags")] = tags(("mine:1", "d9"))
        stream({"status": "success"})(req, body)

    ollama.routes[("POST", "/api/create")] = create
    rc, res = run_module(
        args(ollama, name="mine:1", from_file=path, modelfile="PARAMETER temperature 0\nSYSTEM Be terse."), capsys
    )
    assert rc == 0 and res["changed"] is True and res["action"] == "create" and res["digest"] == "d9"
    body = ollama.calls("POST", "/api/create")[0][2]
    assert body == {
        "model": "mine:1",
        "files": {"gemma.gguf": digest},
        "parameters": {"temperature": 0},
        "system": "Be terse.",
        "stream": True,
    }
    assert "modelfile" not in body


def test_create_same_definition_is_unchanged(ollama, capsys, gguf):
    path, digest = gguf
    ollama.routes[("GET", "/api/tags")] = tags(("mine:1", "d9"))
    ollama.routes[("POST", "/api/show")] = show_for(digest, "temperature                    0", "Be terse.")
    rc, res = run_module(
        args(ollama, name="mine:1", from_file=path, modelfile="PARAMETER temperature 0.0\nSYSTEM Be terse."), capsys
    )
    assert rc == 0 and res["changed"] is False
    assert ollama.changing_calls() == []


def test_create_changed_parameter_recreates(ollama, capsys, gguf):
    path, digest = gguf
    ollama.routes[("GET", "/api/tags")] = tags(("mine:1", "d9"))
    ollama.routes[("POST", "/api/show")] = show_for(digest, "temperature                    0")
    ollama.routes[("HEAD", "/api/blobs/" + digest)] = (200, None)
    ollama.routes[("POST", "/api/create")] = stream({"status": "success"})
    rc, res = run_module(args(ollama, name="mine:1", from_file=path, modelfile="PARAMETER temperature 0.8"), capsys)
    assert rc == 0 and res["changed"] is True and res["reason"] == "parameter temperature"
    assert ollama.calls("POST", "/api/blobs/" + digest) == []  # the server had the blob


def test_create_check_mode_changes_nothing(ollama, capsys, gguf):
    path = gguf[0]
    rc, res = run_module(args(ollama, name="mine:1", from_file=path, _ansible_check_mode=True), capsys)
    assert rc == 0 and res["changed"] is True and ollama.changing_calls() == []


def test_create_from_missing_base_model(ollama, capsys):
    ollama.routes[("POST", "/api/show")] = (404, {"error": "model 'base:1' not found"})
    rc, res = run_module(args(ollama, name="derived:1", modelfile="FROM base:1\nPARAMETER num_ctx 4096"), capsys)
    assert rc == 1 and "FROM base:1: that model is not on the server: pull it first" in res["msg"]
    assert ollama.changing_calls() == []


def serves_a_load(ollama):
    """The model is on the server, and /api/ps lists it once a generate has loaded it."""
    ollama.routes[("GET", "/api/tags")] = tags((NAME, "d1"))

    def generate(req, body):
        ollama.routes[("GET", "/api/ps")] = {"models": [{"name": NAME}]}
        req.send_json(200, {"done": True, "done_reason": "load"})

    ollama.routes[("POST", "/api/generate")] = generate


def test_loaded_warms_model_once(ollama, capsys):
    serves_a_load(ollama)
    rc, res = run_module(args(ollama, loaded=True, keep_alive="10m"), capsys)
    assert rc == 0 and res["changed"] is True and res["loaded"] is True
    assert ollama.calls("POST", "/api/generate")[0][2] == {"model": NAME, "keep_alive": "10m", "stream": False}
    rc, res = run_module(args(ollama, loaded=True), capsys)
    assert rc == 0 and res["changed"] is False and len(ollama.calls("POST", "/api/generate")) == 1


def test_keep_alive_in_seconds_goes_as_a_number_and_a_bad_one_fails_before_any_call(ollama, capsys):
    serves_a_load(ollama)
    # Ollama parses a string as a Go duration: "-1" would be refused with a 400; -1 keeps it for ever.
    rc, res = run_module(args(ollama, loaded=True, keep_alive="-1"), capsys)
    assert rc == 0 and res["loaded"] is True, res
    assert ollama.calls("POST", "/api/generate")[0][2]["keep_alive"] == -1

    rc, res = run_module(args(ollama, loaded=True, keep_alive="for ever"), capsys)
    assert rc == 1 and "keep_alive must be a duration such as 5m" in res["msg"] and "'for ever'" in res["msg"]
    assert len(ollama.calls("POST", "/api/generate")) == 1


@pytest.mark.parametrize(
    ("text", "sent"),
    [("5m", "5m"), ("1h30m", "1h30m"), ("1.5h", "1.5h"), ("500ms", "500ms"), ("-1", -1), ("300", 300), ("0", 0),
     ("-5m", "-5m"), ("5", 5), ("forever", None), ("5 m", None), ("", None), ("m", None)],
)  # fmt: skip
def test_keep_alive_value(text, sent):
    assert api.keep_alive_value(text) == sent


def test_loaded_fails_when_ps_does_not_list_it(ollama, capsys):
    ollama.routes[("GET", "/api/tags")] = tags((NAME, "d1"))
    ollama.routes[("POST", "/api/generate")] = {"done": True}
    rc, res = run_module(args(ollama, loaded=True), capsys)
    assert rc == 1 and "/api/ps does not list it" in res["msg"]


@pytest.mark.parametrize("key", ["timeout", "stall_timeout"])
def test_non_positive_timeouts_are_refused(ollama, capsys, key):
    rc, res = run_module(args(ollama, **{key: 0}), capsys)
    assert rc == 1 and res["msg"] == f"{key} must be a positive number of seconds"
    assert ollama.log == []


@pytest.mark.parametrize("registry_body,changed", [(b"manifest-v1", False), (b"manifest-v2", True)])
def test_latest_check_mode_compares_registry_manifest(ollama, capsys, registry_body, changed):
    import hashlib

    host = ollama.url.split("://")[1]
    name = f"{host}/library/gemma3:270m"
    ollama.routes[("GET", "/api/tags")] = tags((name, hashlib.sha256(b"manifest-v1").hexdigest()))
    ollama.routes[("GET", "/v2/library/gemma3/manifests/270m")] = lambda req, body: (
        req.send_response(200),
        req.send_header("Content-Length", str(len(registry_body))),
        req.end_headers(),
        req.wfile.write(registry_body),
    )
    rc, res = run_module(args(ollama, name=name, state="latest", insecure=True, _ansible_check_mode=True), capsys)
    assert rc == 0 and res["changed"] is changed
    assert ollama.calls("POST", "/api/pull") == [] and ollama.changing_calls() == [
        ("GET", "/v2/library/gemma3/manifests/270m", b"")
    ]


# ---------------------------------------------------------------- also_as: more names for the model

CANONICAL = "gemma3:270m"


class Models:
    """The fake's models as a dict name -> digest, kept up to date by /api/copy and /api/delete."""

    def __init__(self, ollama, **models):
        self.m = dict(models)
        ollama.routes[("GET", "/api/tags")] = lambda req, body: req.send_json(200, tags(*self.m.items()))
        ollama.routes[("POST", "/api/copy")] = self.copy
        ollama.routes[("DELETE", "/api/delete")] = self.delete

    def copy(self, req, body):
        if body["source"] not in self.m:
            return req.send_json(404, {"error": "model %r not found" % body["source"]})
        self.m[body["destination"]] = self.m[body["source"]]
        req.send_json(200, None)

    def delete(self, req, body):
        if self.m.pop(body["model"], None) is None:
            return req.send_json(404, {"error": "model %r not found" % body["model"]})
        req.send_json(200, None)


def test_also_as_copies_a_missing_name_then_leaves_it(ollama, capsys):
    models = Models(ollama, **{NAME: "d1"})
    rc, res = run_module(args(ollama, also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "none"
    assert res["also_as"] == [{"name": CANONICAL, "before_digest": "", "digest": "d1", "action": "copy"}]
    assert ollama.calls("POST", "/api/copy")[0][2] == {"source": NAME, "destination": CANONICAL}
    assert models.m == {NAME: "d1", CANONICAL: "d1"}
    assert res["diff"]["before"]["also_as"] == {CANONICAL: None}
    assert res["diff"]["after"]["also_as"] == {CANONICAL: "d1"}

    ollama.log.clear()
    rc, res = run_module(args(ollama, also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is False
    assert res["also_as"] == [{"name": CANONICAL, "before_digest": "d1", "digest": "d1", "action": "none"}]
    assert ollama.changing_calls() == []
    # A model and its names as asked: one request, the /api/tags listing that serves both.
    assert [(method, path) for method, path, _body in ollama.log] == [("GET", "/api/tags")]


def test_also_as_after_a_first_pull(ollama, capsys):
    models = Models(ollama)

    def pull(req, body):
        models.m[NAME] = "d2"
        PULL_OK(req, body)

    ollama.routes[("POST", "/api/pull")] = pull
    rc, res = run_module(args(ollama, insecure=True, also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "pull"
    assert [c[1] for c in ollama.changing_calls()] == ["/api/pull", "/api/copy"]
    assert models.m == {NAME: "d2", CANONICAL: "d2"}


def test_also_as_follows_a_latest_pull(ollama, capsys):
    models = Models(ollama, **{NAME: "d1", CANONICAL: "d1"})

    def pull(req, body):
        models.m[NAME] = "d2"
        PULL_OK(req, body)

    ollama.routes[("POST", "/api/pull")] = pull
    rc, res = run_module(args(ollama, state="latest", also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is True and (res["before_digest"], res["digest"]) == ("d1", "d2")
    assert res["also_as"] == [{"name": CANONICAL, "before_digest": "d1", "digest": "d2", "action": "copy"}]
    assert models.m[CANONICAL] == "d2"


def test_also_as_latest_with_no_new_digest_is_unchanged(ollama, capsys):
    Models(ollama, **{NAME: "d1", CANONICAL: "d1"})
    ollama.routes[("POST", "/api/pull")] = PULL_OK
    rc, res = run_module(args(ollama, state="latest", also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is False and ollama.calls("POST", "/api/copy") == []


def test_also_as_takes_over_a_name_at_another_digest(ollama, capsys):
    models = Models(ollama, **{NAME: "d1", CANONICAL: "d0"})
    rc, res = run_module(args(ollama, also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is True and res["also_as"][0]["action"] == "copy"
    assert models.m[CANONICAL] == "d1"


def test_also_as_check_mode_reports_without_copying(ollama, capsys):
    Models(ollama, **{NAME: "d1"})
    rc, res = run_module(args(ollama, also_as=[CANONICAL], _ansible_check_mode=True), capsys)
    assert rc == 0 and res["changed"] is True
    assert res["also_as"] == [{"name": CANONICAL, "before_digest": "", "digest": "d1", "action": "copy"}]
    assert res["diff"]["after"]["also_as"] == {CANONICAL: "d1"}
    assert ollama.changing_calls() == []


def test_also_as_check_mode_on_a_missing_model(ollama, capsys):
    Models(ollama)
    rc, res = run_module(args(ollama, also_as=[CANONICAL], _ansible_check_mode=True), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "pull"
    assert res["also_as"][0]["action"] == "copy" and ollama.changing_calls() == []


def test_absent_removes_the_also_as_names_first(ollama, capsys):
    models = Models(ollama, **{NAME: "d1", CANONICAL: "d1", "other:1": "d9"})
    rc, res = run_module(args(ollama, state="absent", also_as=[CANONICAL, "gone:1"]), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "delete"
    assert [c[2]["model"] for c in ollama.calls("DELETE", "/api/delete")] == [CANONICAL, NAME]
    assert models.m == {"other:1": "d9"}
    assert res["also_as"] == [
        {"name": CANONICAL, "before_digest": "d1", "digest": "", "action": "delete"},
        {"name": "gone:1", "before_digest": "", "digest": "", "action": "none"},
    ]
    assert res["diff"]["before"]["also_as"] == {CANONICAL: "d1", "gone:1": None}
    assert res["diff"]["after"]["also_as"] == {CANONICAL: None, "gone:1": None}

    ollama.log.clear()
    rc, res = run_module(args(ollama, state="absent", also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is False and ollama.changing_calls() == []


def test_absent_check_mode_removes_nothing(ollama, capsys):
    models = Models(ollama, **{NAME: "d1", CANONICAL: "d1"})
    rc, res = run_module(args(ollama, state="absent", also_as=[CANONICAL], _ansible_check_mode=True), capsys)
    assert rc == 0 and res["changed"] is True and res["also_as"][0]["action"] == "delete"
    assert ollama.changing_calls() == [] and len(models.m) == 2
    # --check --diff shows the model gone, as a run would leave it.
    assert res["digest"] == "" and res["diff"]["after"]["digest"] is None
    assert res["diff"]["before"]["digest"] == res["before_digest"] != ""


def test_absent_removes_a_name_left_when_the_model_is_gone(ollama, capsys):
    models = Models(ollama, **{CANONICAL: "d1"})
    rc, res = run_module(args(ollama, state="absent", also_as=[CANONICAL]), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "none"
    assert models.m == {}


def test_also_as_repeats_are_copied_once(ollama, capsys):
    models = Models(ollama, **{NAME: "d1"})
    rc, res = run_module(
        args(ollama, also_as=[CANONICAL, "registry.ollama.ai/library/gemma3:270m", "Gemma3:270m"]), capsys
    )
    assert rc == 0 and len(res["also_as"]) == 1 and len(ollama.calls("POST", "/api/copy")) == 1
    assert models.m == {NAME: "d1", CANONICAL: "d1"}


def test_also_as_on_a_created_model(ollama, capsys, gguf):
    path, digest = gguf
    models = Models(ollama)
    ollama.routes[("HEAD", "/api/blobs/" + digest)] = (200, None)

    def create(req, body):
        models.m["mine:1"] = "d9"
        stream({"status": "success"})(req, body)

    ollama.routes[("POST", "/api/create")] = create
    rc, res = run_module(args(ollama, name="mine:1", from_file=path, also_as=["team/mine:1"]), capsys)
    assert rc == 0 and res["changed"] is True and res["action"] == "create"
    assert res["also_as"] == [{"name": "team/mine:1", "before_digest": "", "digest": "d9", "action": "copy"}]


@pytest.mark.parametrize(
    "also_as,needle",
    [
        ([NAME], "is the model's own name"),
        (["MODELS.internal:5000/library/gemma3:270m"], "is the model's own name"),
        (["gemma3:-bad"], "also_as: model name 'gemma3:-bad': the tag '-bad' is not valid"),
    ],
)
def test_also_as_bad_names_fail_before_any_request(ollama, capsys, also_as, needle):
    rc, res = run_module(args(ollama, also_as=also_as), capsys)
    assert rc == 1 and needle in res["msg"]
    assert ollama.log == []


def test_also_as_copy_failure_is_reported(ollama, capsys):
    Models(ollama, **{NAME: "d1"})
    ollama.routes[("POST", "/api/copy")] = (500, {"error": "open manifests: permission denied"})
    rc, res = run_module(args(ollama, also_as=[CANONICAL]), capsys)
    assert rc == 1 and res["msg"] == "POST /api/copy: HTTP 500: open manifests: permission denied"
    assert res["also_as"] == [{"name": CANONICAL, "before_digest": "", "digest": "d1", "action": "copy"}]
