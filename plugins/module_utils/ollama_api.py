# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for Ollama's HTTP API, for modules that run on the target node.

Standard library only (urllib), explicit timeouts on every request, NDJSON streaming for
/api/pull and /api/create, Ollama's model-name rules, and a Modelfile parser that turns the text
into the structured /api/create request (the ``modelfile`` field is gone from modern Ollama).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_HOST = "http://127.0.0.1:11434"
# Plain urllib keeps the module free of dependencies on the node; an opener (rather than the
# module-level helper) is what ansible-test's replace-urlopen check expects of such code.
_OPENER = urllib.request.build_opener()
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

# Pull errors that another attempt cannot fix: fail at once instead of retrying to the deadline.
PERMANENT_PULL_ERRORS = (
    "file does not exist",
    "not found",
    "invalid",
    "unauthorized",
    "forbidden",
    "http response to https client",
    "insecure",
    "certificate",
    "no such host",
    "manifest unknown",
    "name unknown",
    "denied",
    "unsupported",
    "tls:",
)
TLS_HINTS = ("http response to https client", "tls:", "certificate")


class OllamaError(Exception):
    """An error with a message a person can act on."""

    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.msg = msg
        self.status = status


class OllamaUnreachable(OllamaError):
    pass


class OllamaTimedOut(OllamaUnreachable):
    """The server took the request but did not answer in time: it may be working on it."""


class OllamaNotFound(OllamaError):
    pass


# A gateway's answers for a server it cannot reach (yet), and Ollama's own 503 when its queue is
# full: the request was not taken.
GATEWAY_ERRORS = (502, 503, 504)


def never_reached(exc):
    """True for a request that never got to Ollama, so that sending it again is safe: a refused
    connection (Ollama still starting), a gateway's 502/503/504 (a proxy such as a userspace
    tailscaled's, whose way to a node that just started is not made yet) or Ollama's own 503 (its
    queue full). Not a timeout."""
    if isinstance(exc, OllamaTimedOut):
        return False
    return isinstance(exc, OllamaUnreachable) or (isinstance(exc, OllamaError) and exc.status in GATEWAY_ERRORS)


# Go's durations (5m, 1h30m, 500ms), which Ollama parses from a string.
_GO_DURATION = re.compile(r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")


def keep_alive_value(text):
    """``keep_alive`` as Ollama's API reads it: a number of seconds as a JSON number (negative: for
    ever), since a string such as "-1" is parsed as a Go duration and refused with a 400; a duration
    as the string it is. None for a value that is neither."""
    text = str(text).strip()
    if re.fullmatch(r"[-+]?\d+", text):
        return int(text)
    return text if _GO_DURATION.fullmatch(text) else None


# ---------------------------------------------------------------- host and model names


def normalize_host(host):
    """Return a base URL for an OLLAMA_HOST style value, following Ollama's own client rules."""
    host = (host or "").strip() or DEFAULT_HOST
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest, port = "http", host, "11434"
    else:
        port = {"http": "80", "https": "443"}.get(scheme.lower())
        if port is None:
            raise OllamaError(f"host {host!r}: the scheme must be http or https")
    hostport, dummy, path = rest.partition("/")
    parsed = urllib.parse.urlsplit("//" + hostport)
    try:
        explicit_port = parsed.port
    except ValueError:
        raise OllamaError(f"host {host!r}: the port is not a number") from None
    name = parsed.hostname or "127.0.0.1"
    if ":" in name:  # IPv6 literal
        name = f"[{name}]"
    url = f"{scheme.lower()}://{name}:{explicit_port or port}"
    return url + ("/" + path.rstrip("/") if path.strip("/") else "")


_EXTRA_CHARS = {"host": ", '.', ':'", "namespace": "", "model": ", '.'", "tag": ", '.'"}


def _valid_part(kind, s):
    limit = 350 if kind == "host" else 80
    if not 1 <= len(s) <= limit or not re.match(r"[A-Za-z0-9_]", s[0]):
        return False
    allowed = r"[A-Za-z0-9_\-{}{}]".format("" if kind == "namespace" else ".", ":" if kind == "host" else "")
    return all(re.match(allowed, c) for c in s[1:])


def parse_model_name(name):
    """Split and validate a model name like Ollama's types/model.ParseName.

    Returns a dict with host, namespace, model, tag (defaults filled in); raises OllamaError
    with the rule that was broken.
    """
    s = (name or "").strip()
    if not s:
        raise OllamaError("the model name is empty")
    if "@" in s:
        raise OllamaError(f"model name {name!r}: digests (@sha256:...) are not supported, use a tag")
    if "://" in s:
        raise OllamaError(f"model name {name!r}: leave out the scheme; use insecure: true for a plain-http registry")
    parts = {"host": DEFAULT_REGISTRY, "namespace": DEFAULT_NAMESPACE, "tag": DEFAULT_TAG}
    if s.rfind(":") > s.rfind("/"):
        s, parts["tag"] = s.rsplit(":", 1)
    pieces = s.split("/")
    if len(pieces) > 3:
        raise OllamaError(f"model name {name!r} has too many '/' parts: use [host[:port]/][namespace/]model[:tag]")
    for kind, value in zip(("host", "namespace", "model")[3 - len(pieces) :], pieces):
        parts[kind] = value
    for kind in ("host", "namespace", "model", "tag"):
        if not _valid_part(kind, parts[kind]):
            raise OllamaError(
                f"model name {name!r}: the {kind} {parts[kind]!r} is not valid: it must start with a letter, "
                f"digit or '_', then use letters, digits, '_', '-'{_EXTRA_CHARS[kind]}, "
                f"at most {350 if kind == 'host' else 80} characters"
            )
    return parts


def canonical_name(name):
    """Full lower-case host/namespace/model:tag, for comparing names (Ollama ignores case)."""
    p = parse_model_name(name)
    return ("{}/{}/{}:{}".format(p["host"], p["namespace"], p["model"], p["tag"])).lower()


def with_registry(name, registry):
    """Point a name that has no registry host at ``registry`` (a private mirror).

    ``gemma3:270m`` becomes ``registry/library/gemma3:270m``; a name with a host stays as it is.
    """
    if not _valid_part("host", registry or ""):
        raise OllamaError(f"registry mirror {registry!r} is not a host[:port]")
    p = parse_model_name(name)
    untagged = name.strip().rsplit(":", 1)[0] if name.rfind(":") > name.rfind("/") else name.strip()
    if untagged.count("/") == 2:
        return name
    return "{}/{}/{}:{}".format(registry, p["namespace"], p["model"], p["tag"])


def display_name(name):
    """The shortest form, as /api/tags lists it."""
    p = parse_model_name(name)
    short = "{}:{}".format(p["model"], p["tag"])
    if p["host"].lower() != DEFAULT_REGISTRY or p["namespace"] != DEFAULT_NAMESPACE:
        short = "{}/{}".format(p["namespace"], short)
    if p["host"].lower() != DEFAULT_REGISTRY:
        short = "{}/{}".format(p["host"], short)
    return short


# ---------------------------------------------------------------- Modelfile

_COMMANDS = ("from", "parameter", "template", "system", "license", "message", "adapter")
_MESSAGE_ROLES = ("system", "user", "assistant", "tool")


def _unquote(value):
    value = value.strip()
    for q in ('"""', '"'):
        if len(value) >= 2 * len(q) and value.startswith(q) and value.endswith(q):
            return value[len(q) : -len(q)]
    return value


def _split_commands(text):
    """Yield (command, args) from Modelfile text; triple-quoted args may span lines."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        cmd, dummy, args = line.partition(" ")
        if cmd.lower() not in _COMMANDS:
            known = ", ".join(c.upper() for c in _COMMANDS)
            raise OllamaError(f"Modelfile line {i}: unknown command {cmd!r} (use one of {known})")
        args = args.strip()
        start = args.find('"""')
        if start != -1 and args.count('"""') == 1:
            while i < len(lines) and '"""' not in lines[i]:
                args += "\n" + lines[i]
                i += 1
            if i >= len(lines):
                raise OllamaError(f'Modelfile: unterminated """ in {cmd.upper()}')
            args += "\n" + lines[i]
            i += 1
        yield cmd.lower(), args


def _typed(value):
    """Ollama's parameters are typed: ints, floats and booleans go over JSON as such."""
    if re.fullmatch(r"[+-]?\d+", value):
        return int(value)
    try:
        return float(value)
    except ValueError:
        pass
    return {"true": True, "false": False}.get(value.lower(), value)


def parse_modelfile(text):
    """Turn Modelfile text into the fields of a structured /api/create request.

    FROM stays a raw string here (a model name or a file path: the caller decides); PARAMETER
    values are typed; ``stop`` is always a list.
    """
    spec = {"parameters": {}}
    for cmd, args in _split_commands(text or ""):
        if cmd == "parameter":
            key, dummy, value = args.partition(" ")
            if not value.strip():
                raise OllamaError(f"Modelfile: PARAMETER {key!r} has no value")
            value = _typed(_unquote(value))
            if key.lower() == "stop":
                spec["parameters"].setdefault("stop", []).append(str(value))
            else:
                spec["parameters"][key.lower()] = value
        elif cmd == "message":
            role, dummy, content = args.partition(" ")
            if role.lower() not in _MESSAGE_ROLES:
                roles = ", ".join(_MESSAGE_ROLES)
                raise OllamaError(f"Modelfile: MESSAGE role {role!r} must be one of {roles}")
            spec.setdefault("messages", []).append({"role": role.lower(), "content": _unquote(content)})
        elif cmd == "license":
            spec.setdefault("license", []).append(_unquote(args))
        elif cmd == "adapter":
            spec.setdefault("adapters", []).append(_unquote(args))
        elif cmd == "from":
            if "from" in spec:
                raise OllamaError("Modelfile: more than one FROM")
            spec["from"] = _unquote(args)
        else:
            spec[cmd] = _unquote(args)
    if not spec["parameters"]:
        del spec["parameters"]
    return spec


def looks_like_path(source):
    return source.startswith(("/", "./", "../", "~")) or source.lower().endswith((".gguf", ".safetensors", ".bin"))


def node_path(path):
    """A file path from a Modelfile (FROM, ADAPTER), with ``~`` expanded as ``ollama create`` does."""
    return os.path.expanduser(path)


def parse_show_parameters(text):
    """Parse /api/show's ``parameters`` text ("key   value" lines, strings quoted)."""
    params = {}
    for line in (text or "").splitlines():
        key, dummy, value = line.strip().partition(" ")
        if not key:
            continue
        value = value.strip()
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except ValueError:
                value = value.strip('"')
        if key == "stop":
            params.setdefault("stop", []).append(str(value))
        else:
            params[key] = _typed(str(value))
    return params


def normalize_param(value):
    """A comparable form: 0.50 and 0.5 match, as do 1 and 1.0."""
    if isinstance(value, list):
        return [normalize_param(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return float(value)


def source_digest_from_show(show):
    """The sha256 of the model weights blob, read from the FROM line /api/show generates."""
    m = re.search(r"^FROM .*sha256-([0-9a-f]{64})\s*$", show.get("modelfile", ""), re.MULTILINE)
    return "sha256:" + m.group(1) if m else None


def sha256_file(path, bufsize=4 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(bufsize), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


# ---------------------------------------------------------------- HTTP client


def http_get(url, headers, timeout):
    """A plain GET (for registry reads); returns the body bytes."""
    with _OPENER.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
        return resp.read()


class OllamaClient:
    """Requests against one Ollama server; every call has a timeout."""

    def __init__(self, host=None, timeout=30, proxy=None):
        self.base = normalize_host(host)
        self.timeout = timeout
        # An explicit proxy (a userspace tailscaled's); without one, the environment's, as urllib reads it.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy})) if proxy else _OPENER

    def _open(self, method, path, body=None, timeout=None, data=None, headers=None):
        url = self.base + path
        hdrs = {"Accept": "application/json", "User-Agent": "ollama_cloud.engine"}
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            return self.opener.open(req, timeout=timeout or self.timeout)
        except urllib.error.HTTPError as e:
            raise self._http_error(e, method, path) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise self._timed_out(method, path, timeout) from None
            raise OllamaUnreachable(
                f"Ollama is not answering at {self.base}: is the ollama service running? "
                f"(systemctl status ollama) [{reason}]"
            ) from None

    def _timed_out(self, method, path, timeout):
        return OllamaTimedOut(
            f"Ollama at {self.base} did not answer {method} {path} within {timeout or self.timeout}s: "
            "is it overloaded or hung? (journalctl -u ollama)"
        )

    def _http_error(self, e, method, path):
        try:
            msg = json.loads(e.read().decode("utf-8", "replace")).get("error") or e.reason
        except (ValueError, AttributeError, OSError):
            msg = e.reason
        if e.code == 403:
            msg = f"{msg} (Ollama refuses Host headers it does not know: point host at localhost or set OLLAMA_ORIGINS)"
        cls = OllamaNotFound if e.code == 404 else OllamaError
        return cls(f"{method} {path}: HTTP {e.code}: {msg}", status=e.code)

    def request(self, method, path, body=None, timeout=None):
        with self._open(method, path, body, timeout) as resp:
            try:
                raw = resp.read()
            except (socket.timeout, TimeoutError):  # the reply stopped mid-way
                raise self._timed_out(method, path, timeout) from None
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            # A proxy's login page or another server at this address, not Ollama.
            raise OllamaError(
                f"{method} {path}: the answer from {self.base} is not Ollama's JSON: check url (or host) "
                "points at Ollama and not at a proxy or another service"
            )
        return answer

    def stream(self, path, body, read_timeout):
        """Yield the NDJSON objects of a streaming POST; an ``error`` line raises OllamaError.

        read_timeout bounds each socket read, so a silent server surfaces as socket.timeout.
        The response is closed when the generator is closed, which stops the server-side work.
        """
        resp = self._open("POST", path, body, timeout=read_timeout)
        try:
            for line in resp:
                line = line.strip()
                if not line:
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise OllamaError(f"{path}: unexpected response line {line[:200]!r}") from None
                if obj.get("error"):
                    raise OllamaError(obj["error"])
                yield obj
        finally:
            resp.close()

    # -- endpoints

    def version(self):
        return self.request("GET", "/api/version").get("version")

    def tags(self):
        return self.request("GET", "/api/tags").get("models") or []

    def find(self, name, models=None):
        """The /api/tags entry for a model name, or None (``models``: a /api/tags list already read)."""
        want = canonical_name(name)
        for m in self.tags() if models is None else models:
            try:
                if canonical_name(m.get("name") or m.get("model")) == want:
                    return m
            except OllamaError:
                continue
        return None

    def show(self, name):
        return self.request("POST", "/api/show", {"model": name})

    def delete(self, name):
        return self.request("DELETE", "/api/delete", {"model": name})

    def copy(self, source, destination):
        """POST /api/copy: ``destination`` becomes a second name for ``source`` (a copy of its
        manifest, the same blobs: no extra disk). An existing ``destination`` is overwritten."""
        return self.request("POST", "/api/copy", {"source": source, "destination": destination})

    def ps(self):
        return self.request("GET", "/api/ps").get("models") or []

    def blob_exists(self, digest):
        try:
            self._open("HEAD", "/api/blobs/" + digest).close()
            return True
        except OllamaNotFound:
            return False

    def push_blob(self, path, digest, timeout):
        """Upload a local file as a blob (HEAD first: the server may have it already)."""
        if self.blob_exists(digest):
            return False
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            self._open(
                "POST",
                "/api/blobs/" + digest,
                data=f,
                timeout=timeout,
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            ).close()
        return True

    def create(self, request, timeout):
        """POST /api/create, streamed so an error line is seen; returns the last status."""
        last = {}
        for obj in self.stream("/api/create", dict(request, stream=True), read_timeout=timeout):
            last = obj
        return last

    def generate(self, body, timeout):
        return self.request("POST", "/api/generate", dict(body, stream=False), timeout=timeout)


# ---------------------------------------------------------------- pulls


class PullProgress:
    """Per-layer byte counts from the pull stream, and the bytes fetched in this session."""

    def __init__(self):
        self.layers = {}  # digest -> [total, completed]
        self.first = {}  # digest -> completed when first seen (resumed bytes do not count as fetched)
        self.status = None

    def update(self, obj):
        self.status = obj.get("status", self.status)
        if self.status == "success":  # the last per-layer lines can lag a little behind the end
            for layer in self.layers.values():
                layer[1] = layer[0]
        digest = obj.get("digest")
        if digest and obj.get("total"):
            self.first.setdefault(digest, obj.get("completed") or 0)
            self.layers[digest] = [obj["total"], obj.get("completed") or 0]

    @property
    def completed(self):
        return sum(completed for dummy, completed in self.layers.values())

    @property
    def total(self):
        return sum(total for total, dummy in self.layers.values())

    @property
    def fetched(self):
        return sum(max(0, completed - self.first.get(digest, 0)) for digest, (dummy, completed) in self.layers.items())

    def _eta(self, left, rate):
        if self.total and not left:
            return 0.0
        return round(left / rate, 1) if rate > 0 else None

    def as_dict(self, seconds):
        rate = self.fetched / seconds if seconds > 0 else 0.0
        left = self.total - self.completed
        return {
            "completed": self.completed,
            "total": self.total,
            "fetched": self.fetched,
            "rate_bps": round(rate, 1),
            "status": self.status,
            "percent": round(100.0 * self.completed / self.total, 1) if self.total else 0.0,
            "eta_seconds": self._eta(left, rate),
        }


def pull_is_permanent(msg):
    low = msg.lower()
    return any(p in low for p in PERMANENT_PULL_ERRORS)


def pull(client, name, insecure, timeout, stall_timeout, budget=0, clock=time.monotonic, sleep=time.sleep):
    """Pull a model, retrying stalled or broken attempts until ``timeout`` seconds have passed.

    Ollama resumes partial blobs, so each retry continues where the last one stopped. With
    ``budget`` > 0 the pull is left running no longer than that: the connection is closed
    (which stops the server-side pull) and the caller resumes it with another call.
    A registry that does not answer at all (no layer of the model seen) gets ``stall_timeout``
    seconds, not the whole ``timeout``: an unreachable mirror should fail in a minute, not in hours.
    Returns a dict: done, attempts, seconds, progress, status.
    """
    start = clock()
    deadline = start + timeout
    stop_at = start + budget if budget else None
    progress = PullProgress()
    attempts = 0
    last_error = None
    while True:
        attempts += 1
        try:
            outcome = _pull_once(client, name, insecure, progress, stall_timeout, deadline, stop_at, clock)
        except OllamaUnreachable as e:
            # The server itself went away: worth a retry only if it comes back before the deadline.
            outcome, last_error = "retry", e.msg
        except OllamaError as e:
            if pull_is_permanent(e.msg):
                hint = ""
                if not insecure and any(t in e.msg.lower() for t in TLS_HINTS):
                    hint = " (a plain-http or self-signed registry needs insecure: true)"
                raise OllamaError(f"pulling {name} failed: {e.msg}{hint}") from None
            outcome, last_error = "retry", e.msg
            if not progress.total and clock() - start >= stall_timeout:
                raise OllamaError(
                    f"pulling {name} failed: the registry did not answer for {stall_timeout}s ({attempts} attempts; "
                    f"last problem: {e.msg}): check that the registry is up and reachable from this node, "
                    "or raise stall_timeout"
                ) from None
        if outcome in ("done", "budget"):
            return {
                "done": outcome == "done",
                "attempts": attempts,
                "seconds": clock() - start,
                "progress": progress.as_dict(clock() - start),
                "last_error": last_error,
            }
        if outcome == "stalled":
            last_error = f"no progress for {stall_timeout}s"
        if clock() + 1 >= deadline:
            raise OllamaError(
                f"pulling {name} did not finish within timeout={timeout}s ({attempts} attempts; "
                f"last problem: {last_error}): check the registry and the network, or raise timeout"
            )
        give_up = deadline if progress.total else min(deadline, start + stall_timeout + 1)
        sleep(min(2 ** min(attempts, 4), max(0.0, give_up - clock() - 1)))


def _pull_once(client, name, insecure, progress, stall_timeout, deadline, stop_at, clock):
    """One streamed /api/pull: 'done', 'stalled', 'budget' or 'retry'.

    Ollama sends progress lines several times a second even when no bytes move, so a stall is
    "completed did not grow for stall_timeout s"; a silent socket for that long is one too.
    """
    body = {"model": name, "insecure": bool(insecure), "stream": True}
    last_move, last_completed = clock(), -1
    gen = client.stream("/api/pull", body, read_timeout=stall_timeout)
    try:
        for obj in gen:
            progress.update(obj)
            now = clock()
            if progress.completed != last_completed or not obj.get("digest"):
                last_move, last_completed = now, progress.completed
            if progress.status == "success":
                return "done"
            if now - last_move >= stall_timeout:
                return "stalled"
            if now >= deadline:
                return "retry"
            # Only once layers are known: before that there is nothing to report, and the caller's
            # next call would restart the registry's stall_timeout.
            if stop_at is not None and now >= stop_at and progress.total:
                return "budget"
    except TimeoutError:
        return "stalled"
    except (OSError, http.client.HTTPException) as e:
        raise OllamaError(f"the connection to Ollama broke during the pull: {e}") from None
    finally:
        gen.close()
    # A stream that ends without "success" is a broken attempt.
    return "retry"
