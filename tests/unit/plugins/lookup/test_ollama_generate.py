"""The ollama_generate lookup, through ansible itself, against the in-process fake Ollama."""

from __future__ import annotations

from ansible_collections.ollama_cloud.engine.tests import adhoc

ANSWER = {"model": "gemma3:270m", "response": " Rayleigh scattering.", "done": True, "total_duration": 1500000000}


def ask(url, **options):
    """(rc, the lookup's answer or ansible's output) of one ad hoc debug of the lookup."""
    args = "".join(f", {k}={v!r}" for k, v in options.items())
    call = f"query('ollama_cloud.engine.ollama_generate', 'Why?', url={url!r}, model='gemma3:270m'{args})"
    expr = f"{{{{ {call} | first }}}}"
    return adhoc.debug(expr, drop_env=("http_proxy",))


def test_the_answer_is_ollamas_object_and_the_request_as_asked(fake_ollama):
    fake_ollama.routes[("POST", "/api/generate")] = ANSWER
    options = {"num_predict": 48, "stop": ["Question:"]}
    rc, answer = ask(fake_ollama.url, options=options)
    assert rc == 0 and answer == ANSWER
    ((method, path, body),) = fake_ollama.log
    assert (method, path) == ("POST", "/api/generate")
    assert body == {"model": "gemma3:270m", "prompt": "Why?", "stream": False, "options": options}


def test_through_a_proxy_as_a_userspace_tailscaled_gives(fake_ollama, closed_port_url):
    # The proxy is asked for the node's URL itself: nothing listens there, only the proxy answers.
    fake_ollama.routes[("POST", closed_port_url + "/api/generate")] = ANSWER
    rc, answer = ask(closed_port_url, proxy=fake_ollama.url)
    assert rc == 0 and answer["response"] == " Rayleigh scattering."
    assert [c[1] for c in fake_ollama.log] == [closed_port_url + "/api/generate"]


def test_an_ollama_that_does_not_answer_fails_with_what_to_check(closed_port_url):
    rc, msg = ask(closed_port_url, timeout=5, settle=0)
    assert rc != 0
    assert f"asking gemma3:270m at {closed_port_url} failed: Ollama is not answering" in msg
    assert "systemctl status ollama" in msg


def test_a_refused_connection_is_tried_again_until_settle_ends(closed_port_url):
    rc, msg = ask(closed_port_url, timeout=5, settle=3)
    assert rc != 0 and "failed (sent again for 3 s): Ollama is not answering" in msg


def test_a_gateways_502_is_sent_again_until_the_way_is_made(fake_ollama):
    # A userspace tailscaled's proxy, right after the node started: 502 twice, then Ollama answers.
    answers = [(502, {"error": "no route to the node"})] * 2 + [(200, ANSWER)]

    def gateway(handler, _body):
        handler.send_json(*answers.pop(0))

    fake_ollama.routes[("POST", "/api/generate")] = gateway
    rc, answer = ask(fake_ollama.url, settle=30)
    assert rc == 0 and answer == ANSWER
    assert len(fake_ollama.calls("POST", "/api/generate")) == 3


def test_ollamas_own_error_is_told_at_once(fake_ollama):
    fake_ollama.routes[("POST", "/api/generate")] = (404, {"error": "model 'gemma3:270m' not found"})
    rc, msg = ask(fake_ollama.url)
    assert rc != 0 and "failed: POST /api/generate: HTTP 404: model 'gemma3:270m' not found" in msg
    assert len(fake_ollama.calls("POST", "/api/generate")) == 1
