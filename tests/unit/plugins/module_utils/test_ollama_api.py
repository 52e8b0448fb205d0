"""Unit tests for the Ollama HTTP client, name rules, Modelfile parser and pull retries."""

from __future__ import annotations

import time

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import (
    ollama_api as api,
)

DIGEST = "sha256:" + "a" * 64
LAYER = {"status": "pulling aaaa", "digest": DIGEST, "total": 1000}


# ---------------------------------------------------------------- names and hosts


@pytest.mark.parametrize(
    "name,expected",
    [
        ("gemma3", ("registry.ollama.ai", "library", "gemma3", "latest")),
        ("gemma3:270m", ("registry.ollama.ai", "library", "gemma3", "270m")),
        ("me/llama:7b-q4_K_M", ("registry.ollama.ai", "me", "llama", "7b-q4_K_M")),
        ("models.internal:5000/library/gemma3:270m", ("models.internal:5000", "library", "gemma3", "270m")),
        ("127.0.0.1:5000/oce-test/gemma3:270m", ("127.0.0.1:5000", "oce-test", "gemma3", "270m")),
    ],
)
def test_parse_model_name_valid(name, expected):
    p = api.parse_model_name(name)
    assert (p["host"], p["namespace"], p["model"], p["tag"]) == expected


@pytest.mark.parametrize(
    "name,needle",
    [
        ("", "empty"),
        ("gemma3:-bad", "the tag '-bad'"),
        ("gemma3:" + "a" * 81, "at most 80"),
        ("gemma3:ok!", "the tag"),
        ("a/b.c/model", "the namespace 'b.c'"),
        ("h/n/m/x:1", "too many '/'"),
        ("http://h/n/m:1", "leave out the scheme"),
        ("gemma3@sha256:abc", "digests"),
        ("bad name", "the model 'bad name'"),
    ],
)
def test_parse_model_name_invalid(name, needle):
    with pytest.raises(api.OllamaError) as e:
        api.parse_model_name(name)
    assert needle in e.value.msg


def test_display_and_canonical_names_match_ollama_tags():
    assert api.display_name("gemma3") == "gemma3:latest"
    assert api.display_name("registry.ollama.ai/me/x:1") == "me/x:1"
    assert api.display_name("h:5000/library/g:1") == "h:5000/library/g:1"
    assert api.canonical_name("Gemma3") == api.canonical_name("registry.ollama.ai/library/gemma3:latest")


@pytest.mark.parametrize(
    "host,url",
    [
        (None, "http://127.0.0.1:11434"),
        ("127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("ollama.internal", "http://ollama.internal:11434"),
        ("http://ollama.internal", "http://ollama.internal:80"),
        ("https://ollama.internal/", "https://ollama.internal:443"),
        ("[::1]:8080", "http://[::1]:8080"),
        ("localhost:8080/prefix/", "http://localhost:8080/prefix"),
    ],
)
def test_normalize_host(host, url):
    assert api.normalize_host(host) == url


@pytest.mark.parametrize("host,needle", [("ftp://x", "scheme"), ("h:port", "port is not a number")])
def test_normalize_host_invalid(host, needle):
    with pytest.raises(api.OllamaError, match=needle):
        api.normalize_host(host)


# ---------------------------------------------------------------- Modelfile

MODELFILE = '''
# a comment
FROM ./gemma.gguf
PARAMETER temperature 0.7
PARAMETER stop "<end>"
PARAMETER stop x y
PARAMETER num_ctx 2048
PARAMETER use_mmap true
TEMPLATE """{{ .System }}
{{ .Prompt }}"""
SYSTEM You are terse.
MESSAGE user Hi
MESSAGE assistant "Hello"
LICENSE MIT
ADAPTER /srv/lora.gguf
'''


def test_parse_modelfile_builds_structured_create_fields():
    spec = api.parse_modelfile(MODELFILE)
    assert spec == {
        "from": "./gemma.gguf",
        "parameters": {"temperature": 0.7, "stop": ["<end>", "x y"], "num_ctx": 2048, "use_mmap": True},
        "template": "{{ .System }}\n{{ .Prompt }}",
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "license": ["MIT"],
        "adapters": ["/srv/lora.gguf"],
    }


@pytest.mark.parametrize(
    "text,needle",
    [
        ("FROM x\nRUN rm -rf /", "unknown command 'RUN'"),
        ('FROM x\nTEMPLATE """never closed', "unterminated"),
        ("FROM x\nMESSAGE robot hi", "role 'robot'"),
        ("FROM x\nFROM y", "more than one FROM"),
        ("FROM x\nPARAMETER temperature", "has no value"),
    ],
)
def test_parse_modelfile_errors(text, needle):
    with pytest.raises(api.OllamaError, match=needle):
        api.parse_modelfile(text)


def test_show_parameters_compare_equal_to_modelfile_parameters():
    shown = "\n".join(
        [
            "temperature                    0.5",
            "num_ctx                        2048",
            'stop                           "<end>"',
            'stop                           "x y"',
        ]
    )
    have = {k: api.normalize_param(v) for k, v in api.parse_show_parameters(shown).items()}
    want = api.parse_modelfile(
        "FROM x\nPARAMETER temperature 0.50\nPARAMETER num_ctx 2048\nPARAMETER stop <end>\nPARAMETER stop x y"
    )
    assert all(have[k] == api.normalize_param(v) for k, v in want["parameters"].items())


def test_source_digest_from_show():
    show = {"modelfile": "# generated\nFROM /var/lib/ollama/blobs/sha256-" + "b" * 64 + "\nTEMPLATE x\n"}
    assert api.source_digest_from_show(show) == "sha256:" + "b" * 64
    assert api.source_digest_from_show({"modelfile": "FROM gemma3:270m\n"}) is None


def test_sha256_file(tmp_path):
    f = tmp_path / "x.gguf"
    f.write_bytes(b"abc")
    assert api.sha256_file(str(f)) == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# ---------------------------------------------------------------- client


def test_connection_refused_says_what_to_do(closed_port_url):
    client = api.OllamaClient(closed_port_url, timeout=3)
    with pytest.raises(api.OllamaUnreachable) as e:
        client.tags()
    assert e.value.msg.startswith(f"Ollama is not answering at {closed_port_url}: is the ollama service running?")
    assert "systemctl status ollama" in e.value.msg


def test_http_errors_carry_ollamas_message(fake_ollama):
    fake_ollama.routes[("POST", "/api/show")] = (404, {"error": "model 'x:1' not found"})
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    with pytest.raises(api.OllamaNotFound, match="model 'x:1' not found"):
        client.show("x:1")


def test_an_answer_that_is_not_ollamas_json_says_to_check_the_url(fake_ollama):
    def login_page(req, _body):
        page = b"<html><body>Sign in to the proxy</body></html>"
        req.send_response(200)
        req.send_header("Content-Type", "text/html")
        req.send_header("Content-Length", str(len(page)))
        req.end_headers()
        req.wfile.write(page)

    fake_ollama.routes[("GET", "/api/tags")] = login_page
    fake_ollama.routes[("GET", "/api/ps")] = ["a", "list"]
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    for call in (client.tags, client.ps):
        with pytest.raises(api.OllamaError, match="is not Ollama's JSON: check url"):
            call()


def test_find_matches_names_as_ollama_lists_them(fake_ollama):
    fake_ollama.routes[("GET", "/api/tags")] = {
        "models": [
            {"name": "gemma3:270m", "digest": "d1"},
            {"name": "models.internal:5000/library/gemma3:270m", "digest": "d2"},
        ]
    }
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    assert client.find("registry.ollama.ai/library/gemma3:270m")["digest"] == "d1"
    assert client.find("models.internal:5000/library/gemma3:270m")["digest"] == "d2"
    assert client.find("gemma3:1b") is None


def test_find_in_a_tags_list_already_read_makes_no_request(fake_ollama):
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    models = [{"name": "gemma3:270m", "digest": "d1"}, {"name": "not a valid name", "digest": "x"}]
    assert client.find("registry.ollama.ai/library/gemma3:270m", models)["digest"] == "d1"
    assert client.find("gemma3:1b", models) is None
    assert fake_ollama.log == []


def test_copy_posts_source_and_destination(fake_ollama):
    fake_ollama.routes[("POST", "/api/copy")] = (200, None)  # Ollama answers 200 with an empty body
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    assert client.copy("models.internal:5000/library/gemma3:270m", "gemma3:270m") == {}
    assert fake_ollama.calls("POST", "/api/copy")[0][2] == {
        "source": "models.internal:5000/library/gemma3:270m",
        "destination": "gemma3:270m",
    }


def test_copy_of_a_missing_model_is_not_found(fake_ollama):
    fake_ollama.routes[("POST", "/api/copy")] = (404, {"error": 'model "nope:1" not found'})
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    with pytest.raises(api.OllamaNotFound, match='POST /api/copy: HTTP 404: model "nope:1" not found'):
        client.copy("nope:1", "other:1")


def test_push_blob_heads_first_and_skips_known_blobs(fake_ollama, tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF" * 100)
    digest = api.sha256_file(str(f))
    path = "/api/blobs/" + digest
    fake_ollama.routes[("HEAD", path)] = (404, None)
    fake_ollama.routes[("POST", path)] = (201, None)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    assert client.push_blob(str(f), digest, timeout=5) is True
    assert fake_ollama.calls("POST", path)[0][2] == b"GGUF" * 100
    fake_ollama.routes[("HEAD", path)] = (200, None)
    assert client.push_blob(str(f), digest, timeout=5) is False
    assert len(fake_ollama.calls("POST", path)) == 1


def test_create_fails_on_error_line(fake_ollama):
    def create(req, body):
        req.start_stream()
        req.line({"status": "parsing GGUF"})
        req.line({"error": "llama-quantize unavailable"})

    fake_ollama.routes[("POST", "/api/create")] = create
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    with pytest.raises(api.OllamaError, match="llama-quantize unavailable"):
        client.create({"model": "m:1", "from": "x"}, timeout=5)
    assert fake_ollama.calls("POST", "/api/create")[0][2]["stream"] is True


# ---------------------------------------------------------------- pulls


def pull_route(*attempts):
    """A /api/pull handler playing one script per attempt; the last one repeats."""
    scripts = list(attempts)

    def handler(req, body):
        script = scripts.pop(0) if len(scripts) > 1 else scripts[0]
        req.start_stream()
        for step in script:
            if step == "drop":
                return
            if isinstance(step, (int, float)):
                time.sleep(step)
                continue
            req.line(step)

    return handler


def progress(completed):
    return dict(LAYER, completed=completed)


OK = [
    {"status": "pulling manifest"},
    progress(0),
    progress(500),
    progress(1000),
    {"status": "verifying sha256 digest"},
    {"status": "writing manifest"},
    {"status": "success"},
]


def test_pull_success_reports_bytes_and_one_attempt(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route(OK)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "h:5000/library/m:1", True, timeout=20, stall_timeout=5)
    assert out["done"] is True and out["attempts"] == 1
    assert out["progress"]["completed"] == out["progress"]["total"] == 1000
    assert out["progress"]["fetched"] == 1000
    sent = fake_ollama.calls("POST", "/api/pull")[0][2]
    assert sent == {"model": "h:5000/library/m:1", "insecure": True, "stream": True}


def test_pull_error_line_with_http_200_fails_without_retry(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route(
        [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
    )
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    with pytest.raises(api.OllamaError) as e:
        api.pull(client, "nope:1", False, timeout=20, stall_timeout=5, sleep=lambda s: None)
    assert "pull model manifest: file does not exist" in e.value.msg
    assert len(fake_ollama.calls("POST", "/api/pull")) == 1


def test_pull_stall_is_retried_and_resumes(fake_ollama):
    # First attempt: progress lines keep coming but bytes stop moving.
    stalled = [{"status": "pulling manifest"}, progress(0), progress(400)] + [0.2, progress(400)] * 15
    resumed = [progress(400), progress(1000), {"status": "success"}]
    fake_ollama.routes[("POST", "/api/pull")] = pull_route(stalled, resumed)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "m:1", False, timeout=30, stall_timeout=1, sleep=lambda s: None)
    assert out["done"] is True and out["attempts"] == 2
    assert out["last_error"] == "no progress for 1s"
    assert out["progress"]["fetched"] == 1000


def test_pull_silent_server_is_a_stall(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route([progress(100), 3], OK)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "m:1", False, timeout=30, stall_timeout=1, sleep=lambda s: None)
    assert out["done"] is True and out["attempts"] == 2


def test_pull_dropped_connection_is_retried(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route([progress(300), "drop"], OK)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "m:1", False, timeout=30, stall_timeout=5, sleep=lambda s: None)
    assert out["done"] is True and out["attempts"] == 2


def test_pull_transient_error_line_is_retried(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route([progress(300), {"error": "unexpected EOF"}], OK)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "m:1", False, timeout=30, stall_timeout=5, sleep=lambda s: None)
    assert out["attempts"] == 2 and out["last_error"] == "unexpected EOF"


def test_pull_gives_up_at_the_deadline(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route([progress(300), "drop"])
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    started = time.monotonic()
    with pytest.raises(api.OllamaError) as e:
        api.pull(client, "m:1", False, timeout=3, stall_timeout=1, sleep=lambda s: time.sleep(min(s, 0.2)))
    assert time.monotonic() - started < 10
    assert "did not finish within timeout=3s" in e.value.msg


REFUSED = [
    {"status": "pulling manifest"},
    {"error": 'pull model manifest: Get "http://h:5000/v2/library/m/manifests/1": connect: connection refused'},
]


@pytest.mark.parametrize("budget", [0, 0.5])
def test_pull_of_an_unanswering_registry_fails_after_stall_timeout(fake_ollama, budget):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route(REFUSED)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    started = time.monotonic()
    with pytest.raises(api.OllamaError) as e:
        api.pull(client, "h:5000/library/m:1", True, timeout=600, stall_timeout=2, budget=budget)
    assert 2 <= time.monotonic() - started < 6  # stall_timeout, not timeout, and no early budget return
    assert e.value.msg.startswith("pulling h:5000/library/m:1 failed: the registry did not answer for 2s (")
    assert "connection refused" in e.value.msg and e.value.msg.endswith("or raise stall_timeout")
    assert len(fake_ollama.calls("POST", "/api/pull")) >= 2


def test_pull_of_a_registry_that_comes_back_goes_on(fake_ollama):
    fake_ollama.routes[("POST", "/api/pull")] = pull_route(REFUSED, REFUSED, OK)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "h:5000/library/m:1", True, timeout=600, stall_timeout=30, sleep=lambda s: None)
    assert out["done"] is True and out["attempts"] == 3 and "connection refused" in out["last_error"]


def test_pull_budget_returns_early_with_progress(fake_ollama):
    slow = [progress(0)] + [x for i in range(1, 30) for x in (0.1, progress(i * 10))]
    fake_ollama.routes[("POST", "/api/pull")] = pull_route(slow)
    client = api.OllamaClient(fake_ollama.url, timeout=3)
    out = api.pull(client, "m:1", False, timeout=30, stall_timeout=5, budget=1)
    assert out["done"] is False and out["attempts"] == 1
    assert 0 < out["progress"]["completed"] < 1000
    assert out["progress"]["rate_bps"] > 0 and out["progress"]["eta_seconds"] > 0


def test_progress_counts_resumed_bytes_as_not_fetched():
    p = api.PullProgress()
    p.update(progress(600))
    p.update(progress(900))
    d = p.as_dict(3.0)
    assert (d["completed"], d["total"], d["fetched"], d["percent"]) == (900, 1000, 300, 90.0)
    assert d["rate_bps"] == 100.0 and d["eta_seconds"] == 1.0


def test_never_reached_is_safe_to_send_again_and_nothing_else():
    assert api.never_reached(api.OllamaUnreachable("connection refused"))
    assert all(api.never_reached(api.OllamaError("gateway", status=code)) for code in (502, 503, 504))
    # A timeout may be Ollama still working on it; its own errors stand.
    assert not api.never_reached(api.OllamaTimedOut("did not answer within 5s"))
    assert not api.never_reached(api.OllamaError("boom", status=500))
    assert not api.never_reached(ValueError("not ours"))


def test_a_timeout_is_told_as_one(fake_ollama):
    def stall(handler, _body):
        time.sleep(2)
        handler.send_json(200, {"models": []})

    fake_ollama.routes[("GET", "/api/tags")] = stall
    with pytest.raises(api.OllamaTimedOut, match="did not answer GET /api/tags within 1s"):
        api.OllamaClient(fake_ollama.url, timeout=1).tags()
