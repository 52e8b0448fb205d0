# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: ollama_model
short_description: Pull, create, remove and warm Ollama models over Ollama's HTTP API
version_added: 0.1.0
description:
  - Makes a model present, absent or up to date on an Ollama server, over its HTTP API (never
    the C(ollama) command).
  - Pulls from the public library or from a private registry named in the model name
    (V(models.internal:5000/library/gemma3:270m)); the pull streams its progress, retries a stalled
    or broken transfer until O(timeout) (Ollama resumes partial blobs) and reports size and speed.
  - Creates a model from a GGUF file on the node (O(from_file)) or from Modelfile text
    (O(modelfile)), sent as the structured C(/api/create) request.
  - Idempotent. A model that is there, with the same source weights, parameters, template and
    system prompt, is left alone, and checking it makes only read requests (C(/api/tags), C(/api/show)).
  - Publishes the model under more names with O(also_as), for example a model pulled through a
    registry mirror under its canonical name, so that clients asking for V(gemma3:270m) find it.
  - In a playbook the module runs through its action plugin, which resumes a long pull every
    O(progress_interval) seconds and prints a progress line (bytes, rate, ETA) each time.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
extends_documentation_fragment:
  - ollama_cloud.engine.ollama
attributes:
  check_mode:
    support: full
    description: Reports what would change without changing anything. With O(state=latest) it
      compares the registry's manifest digest with the local one (a read-only registry request).
  diff_mode:
    support: full
    description: Shows the model digest (and whether it is loaded) before and after, and the digest
      of each O(also_as) name.
  action_group:
    description: Use C(group/ollama_cloud.engine.ollama) in C(module_defaults) to set O(host) and
      O(request_timeout) once for all the modules of the group.
    support: full
    membership:
      - ollama_cloud.engine.ollama
  platform:
    description: Runs on the Ollama node (or any POSIX host that can reach O(host)).
    support: full
    platforms: posix
options:
  name:
    description:
      - The model, C([host[:port]/][namespace/]model[:tag]); the tag defaults to V(latest), the
        namespace to V(library), the host to C(registry.ollama.ai).
      - Checked against Ollama's naming rules before any request is made.
    type: str
    required: true
    aliases: [model]
  state:
    description:
      - V(present) pulls (or creates) the model if it is missing, or creates it again when its
        O(from_file)/O(modelfile) definition changed.
      - V(latest) also pulls when the model is there, and reports a change only if the digest changed.
      - V(absent) deletes it.
    type: str
    choices: [present, absent, latest]
    default: present
  insecure:
    description:
      - Allow a plain-http (or self-signed) registry for the pull, as C(ollama pull --insecure).
    type: bool
    default: false
  from_file:
    description:
      - A GGUF file on the target node to create the model from. It is uploaded as a blob (HEAD,
        then POST C(/api/blobs/sha256:<hex>)) unless Ollama has it already.
      - Its sha256 is computed on every run to detect a changed file, which takes time for big files.
      - May be combined with O(modelfile) if the Modelfile has no C(FROM) line.
    type: path
  modelfile:
    description:
      - Modelfile text (C(FROM), C(PARAMETER), C(TEMPLATE), C(SYSTEM), C(LICENSE), C(MESSAGE),
        C(ADAPTER)). C(FROM) may name a model already on the server or a file path on the node.
      - Changes to the source weights, parameters, template and system prompt are detected;
        changes to only messages, licenses or adapters are not.
    type: str
  quantize:
    description:
      - Quantize the weights while creating (for example V(q4_K_M)); F16/F32 sources only.
    type: str
  loaded:
    description:
      - V(true) loads the model into memory (an empty C(/api/generate) with O(keep_alive)) and checks
        that C(/api/ps) lists it; V(false) unloads it. Not set leaves it as it is.
    type: bool
  keep_alive:
    description:
      - How long Ollama keeps the model loaded after O(loaded=true), in Ollama's duration format
        (V(5m), V(24h)) or a number of seconds (V(-1) keeps it for ever). Not set uses the server's
        C(OLLAMA_KEEP_ALIVE).
    type: str
  timeout:
    description:
      - Overall seconds allowed for a pull (all retries together), a blob upload, a create or a model load.
    type: int
    default: 3600
  stall_timeout:
    description:
      - A pull whose byte count does not grow for this many seconds is dropped and started again
        (it resumes where it stopped).
      - A registry that does not answer at all (connection refused, no manifest) is retried for this
        many seconds, then the pull fails, rather than for the whole O(timeout).
    type: int
    default: 60
  progress_interval:
    description:
      - Seconds after which the module returns from a pull still running, with RV(done=false) and
        RV(progress); the action plugin calls it again, which resumes the pull, and prints a line.
      - If not set, the action plugin uses V(20); V(0) runs the pull to the end in one call.
    type: int
  also_as:
    description:
      - More names for the model, made with C(/api/copy). Each is a second manifest for the same
        blobs, so it takes no extra disk and answers C(/api/generate), C(/api/chat) and C(/api/show)
        like O(name).
      - The use it is made for is a model pulled through a private registry mirror, which Ollama
        lists with the mirror's host (V(models.internal:5000/library/gemma3:270m)) and which a client
        asking for V(gemma3:270m) would not find; set O(also_as=[gemma3:270m]). The
        C(ollama_cloud.engine.ollama_models) role does this for every model it pulls through its mirror.
      - Idempotent by digest. A name that already lists the model's digest is left alone; a name
        that is missing, or lists another digest (after O(state=latest) pulled a new one, or a model
        that was there under that name before), is copied over, so the names follow the model.
      - With O(state=absent) the names are removed too, before the model itself.
      - Names follow the rules of O(name); the model's own name may not be one of them.
      - O(loaded) applies to O(name) only.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
notes:
  - "Pulling from a plain Docker Distribution registry fails in Ollama with
    C(http: no Location header in response) (ollama/ollama#7244). The registry, or a proxy in front
    of it, must answer blob requests with a C(Location) header or a redirect."
  - A long pull is resumed by closing the stream and pulling again, which Ollama continues from the
    partial blobs it kept; a few in-flight bytes are fetched twice at each progress line.
seealso:
  - name: Ollama API
    description: The HTTP API this module uses.
    link: https://github.com/ollama/ollama/blob/main/docs/api.md
"""

EXAMPLES = r"""
- name: Pull a model from a private plain-http registry
  ollama_cloud.engine.ollama_model:
    name: models.internal:5000/library/gemma3:270m
    insecure: true

- name: Pull through a mirror, and answer to the canonical name too
  ollama_cloud.engine.ollama_model:
    name: models.internal:5000/library/gemma3:270m
    insecure: true
    state: latest
    also_as:
      - gemma3:270m

- name: Keep a model at its newest digest and loaded for a day
  ollama_cloud.engine.ollama_model:
    name: qwen2.5-coder:32b
    state: latest
    loaded: true
    keep_alive: 24h
    timeout: 7200

- name: Create a model from a GGUF file on the node
  ollama_cloud.engine.ollama_model:
    name: gemma-local:270m
    from_file: /srv/models/gemma-3-270m-q4_k_m.gguf

- name: Create a tuned variant of a model that is already there
  ollama_cloud.engine.ollama_model:
    name: gemma-terse:270m
    modelfile: |
      FROM models.internal:5000/library/gemma3:270m
      PARAMETER temperature 0
      PARAMETER num_ctx 8192
      SYSTEM You answer in one sentence.

- name: Remove a model
  ollama_cloud.engine.ollama_model:
    name: codellama:7b-code
    state: absent
"""

RETURN = r"""
name:
  description: The model name as Ollama lists it.
  returned: always
  type: str
  sample: models.internal:5000/library/gemma3:270m
digest:
  description: The model's manifest digest after the task (empty when absent).
  returned: always
  type: str
  sample: 5946b8d332b1437af54c15e1b2bce851e376972a2ef29cfdb06b29c5f825a355
before_digest:
  description: The digest before the task (empty when the model was not there).
  returned: always
  type: str
size:
  description: The model's size in bytes.
  returned: when the model is present
  type: int
  sample: 253113404
action:
  description: What was done (or would be done in check mode).
  returned: always
  type: str
  choices: [none, pull, create, delete]
done:
  description: False when the module returned from a pull still running (O(progress_interval)).
  returned: always
  type: bool
progress:
  description: Bytes of the pull, for the progress line.
  returned: after a pull
  type: dict
  contains:
    completed: {description: Bytes on disk for the model's layers., type: int}
    total: {description: Bytes of all layers., type: int}
    fetched: {description: Bytes fetched from the registry in this call., type: int}
    rate_bps: {description: Bytes per second fetched in this call., type: float}
    percent: {description: Share of the total on disk., type: float}
    eta_seconds: {description: Seconds left at the current rate (null when unknown)., type: float}
    status: {description: Ollama's last status line., type: str}
attempts:
  description: How many times the pull was started (1 when nothing went wrong).
  returned: after a pull
  type: int
seconds:
  description: How long the pull or create took.
  returned: after a pull or create
  type: float
mb_per_s:
  description: Megabytes (10^6) fetched per second during the pull.
  returned: after a pull
  type: float
loaded:
  description: Whether C(/api/ps) lists the model after the task.
  returned: when O(loaded) is set
  type: bool
also_as:
  description: The O(also_as) names, each as Ollama lists it, with its digest before and after.
  returned: when O(also_as) is set
  type: list
  elements: dict
  version_added: 0.2.0
  contains:
    name: {description: The name as C(/api/tags) lists it., type: str, sample: "gemma3:270m"}
    before_digest: {description: Its digest before the task (empty when the name was not there)., type: str}
    digest: {description: Its digest after the task (empty when absent)., type: str}
    action:
      description: What was done (or would be done in check mode) to the name.
      type: str
      choices: [none, copy, delete]
"""

import contextlib  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, env_fallback  # noqa: E402

from ansible_collections.ollama_cloud.engine.plugins.module_utils import ollama_api as api  # noqa: E402


def argument_spec():
    return {
        "name": {"type": "str", "required": True, "aliases": ["model"]},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "latest"]},
        "host": {"type": "str", "fallback": (env_fallback, ["OLLAMA_HOST"])},
        "request_timeout": {"type": "float", "default": 30},
        "insecure": {"type": "bool", "default": False},
        "from_file": {"type": "path"},
        "modelfile": {"type": "str"},
        "quantize": {"type": "str"},
        "loaded": {"type": "bool"},
        "keep_alive": {"type": "str", "no_log": False},
        "timeout": {"type": "int", "default": 3600},
        "stall_timeout": {"type": "int", "default": 60},
        "progress_interval": {"type": "int"},
        "also_as": {"type": "list", "elements": "str", "default": []},
    }


class ModelTask:
    """One run of the module: read the current state, decide, change only when needed."""

    def __init__(self, module, client):
        self.module = module
        self.p = module.params
        self.client = client
        self.check = module.check_mode
        self.result = {"changed": False, "done": True, "action": "none", "digest": "", "before_digest": ""}

    # -- create definitions

    def desired_spec(self):
        """The /api/create fields and the local files to upload, or None for a pulled model."""
        if not self.p["from_file"] and not self.p["modelfile"]:
            return None
        spec = api.parse_modelfile(self.p["modelfile"] or "")
        if self.p["from_file"]:
            if spec.get("from"):
                raise api.OllamaError("set either from_file or a FROM line in modelfile, not both")
            spec["from"] = self.p["from_file"]
        if not spec.get("from"):
            raise api.OllamaError("modelfile has no FROM line: add one (a model name or a GGUF path) or set from_file")
        if self.p["quantize"]:
            spec["quantize"] = self.p["quantize"]
        spec["paths"] = {}
        if self.p["from_file"]:
            # type=path has already expanded ~ and $VARS in the option.
            spec["paths"]["model"] = self._local_file(spec.pop("from"), "from_file")
        elif api.looks_like_path(spec["from"]) or os.path.exists(spec["from"]):
            spec["paths"]["model"] = self._local_file(api.node_path(spec.pop("from")), "FROM")
        for i, path in enumerate(spec.pop("adapters", [])):
            spec["paths"][f"adapter{i}"] = self._local_file(api.node_path(path), "ADAPTER")
        return spec

    def _local_file(self, path, what):
        path = os.path.abspath(path)
        if not os.path.isfile(path):
            raise api.OllamaError(
                f"{what}: {path} does not exist on this node: copy the GGUF file there "
                "first (ansible.builtin.copy or get_url) or fix the path"
            )
        if not os.access(path, os.R_OK):
            raise api.OllamaError(
                f"{what}: {path} is not readable by uid {os.geteuid()}: fix its permissions or use become"
            )
        return path

    def source_digests(self, spec):
        digests = {key: api.sha256_file(path) for key, path in spec["paths"].items()}
        if "from" in spec:
            try:
                base = self.client.show(spec["from"])
            except api.OllamaNotFound:
                raise api.OllamaError(
                    f"FROM {spec['from']}: that model is not on the server: pull it first "
                    "(an ollama_model task before this one)"
                ) from None
            digests["model"] = api.source_digest_from_show(base)
        return digests

    def create_differs(self, spec, digests):
        """Why the existing model does not match the definition, or '' if it does."""
        show = self.client.show(self.p["name"])
        if digests.get("model") and api.source_digest_from_show(show) != digests["model"]:
            return "source weights"
        have = {k: api.normalize_param(v) for k, v in api.parse_show_parameters(show.get("parameters")).items()}
        for key, value in spec.get("parameters", {}).items():
            if have.get(key) != api.normalize_param(value):
                return "parameter " + key
        for key in ("template", "system"):
            if key in spec and (show.get(key) or "").strip() != spec[key].strip():
                return key
        return ""

    def create(self, spec, digests):
        started = time.monotonic()
        request = {k: v for k, v in spec.items() if k != "paths"}
        request["model"] = self.p["name"]
        for key, path in spec["paths"].items():
            self.client.push_blob(path, digests[key], timeout=self.p["timeout"])
            name = os.path.basename(path)
            if key == "model":
                request.setdefault("files", {})[name] = digests[key]
            else:
                request.setdefault("adapters", {})[name] = digests[key]
        self.client.create(request, timeout=self.p["timeout"])
        self.result["seconds"] = round(time.monotonic() - started, 2)

    # -- pulls

    def remote_digest(self):
        """Read the registry's manifest digest (read-only), for check mode with state=latest."""
        import hashlib

        n = api.parse_model_name(self.p["name"])
        scheme = "http" if self.p["insecure"] else "https"
        url = f"{scheme}://{n['host']}/v2/{n['namespace']}/{n['model']}/manifests/{n['tag']}"
        accept = {"Accept": "application/vnd.docker.distribution.manifest.v2+json"}
        try:
            return hashlib.sha256(api.http_get(url, accept, self.p["request_timeout"])).hexdigest()
        except (OSError, ValueError) as e:  # a best-effort probe: any failure means "would pull"
            self.module.warn(f"could not read {url} ({e}): assuming the pull would change the model")
            return None

    def pull(self):
        budget = self.p["progress_interval"] or 0
        out = api.pull(
            self.client, self.p["name"], self.p["insecure"], self.p["timeout"], self.p["stall_timeout"], budget=budget
        )
        prog = out["progress"]
        self.result.update(
            done=out["done"],
            attempts=out["attempts"],
            progress=prog,
            seconds=round(out["seconds"], 2),
            mb_per_s=round(prog["fetched"] / out["seconds"] / 1e6, 2) if out["seconds"] else 0.0,
        )
        if out["last_error"]:
            self.result["retried_after"] = out["last_error"]

    # -- loading

    def is_loaded(self):
        want = api.canonical_name(self.p["name"])
        return any(api.canonical_name(m.get("name") or m.get("model")) == want for m in self.client.ps())

    def ensure_loaded(self):
        want, was = self.p["loaded"], self.is_loaded()
        self.result["loaded"] = was
        if want == was:
            return
        self.result["changed"] = True
        if self.check:
            self.result["loaded"] = want
            return
        body = {"model": self.p["name"]}
        if not want:
            body["keep_alive"] = 0
        elif self.p["keep_alive"] is not None:
            body["keep_alive"] = api.keep_alive_value(self.p["keep_alive"])
        self.client.generate(body, timeout=self.p["timeout"])
        self.result["loaded"] = self.is_loaded()
        if want and not self.result["loaded"]:
            raise api.OllamaError(
                f"{self.p['name']} was loaded but /api/ps does not list it: "
                "check the memory free for it and journalctl -u ollama"
            )

    # -- more names

    def alias_names(self):
        """The also_as names, checked, without repeats; the model's own name is refused."""
        own = api.canonical_name(self.p["name"])
        names, seen = [], set()
        for alias in self.p["also_as"]:
            try:
                key = api.canonical_name(alias)
            except api.OllamaError as e:
                raise api.OllamaError("also_as: " + e.msg) from None
            if key == own:
                raise api.OllamaError(
                    f"also_as: {alias!r} is the model's own name ({api.display_name(self.p['name'])}): "
                    "list only the other names it should answer to"
                )
            if key not in seen:
                seen.add(key)
                names.append(alias.strip())
        return names

    def sync_aliases(self, aliases, models):
        """Point every also_as name at the model's digest (copy), or remove them (state=absent).

        ``models``: the /api/tags listing as it is now.
        """
        absent = self.p["state"] == "absent"
        target = self.result["digest"]  # after the model's own change (a placeholder in check mode)
        report = self.result["also_as"] = []  # filled as it goes: a failure reports the names done
        for alias in aliases:
            have = self.client.find(alias, models)
            before = have["digest"] if have else ""
            if absent:
                action, after = ("delete" if have else "none"), ""
            else:
                action, after = ("copy" if before != target else "none"), target
            report.append({"name": api.display_name(alias), "before_digest": before, "digest": after, "action": action})
            if action == "none":
                continue
            self.result["changed"] = True
            if self.check:
                continue
            if absent:
                with contextlib.suppress(api.OllamaNotFound):  # gone since /api/tags was read
                    self.client.delete(alias)
            else:
                self.client.copy(self.p["name"], alias)
        if not self.check and any(r["action"] != "none" for r in report):
            models = self.client.tags()  # report what Ollama lists now, not what was asked for
            for alias, entry in zip(aliases, report):
                now = self.client.find(alias, models)
                entry["digest"] = now["digest"] if now else ""

    # -- the whole run

    def run(self):
        name = self.p["name"]
        api.parse_model_name(name)
        aliases = self.alias_names()
        spec = self.desired_spec() if self.p["state"] != "absent" else None
        # One /api/tags listing serves the model and its names, read again only after a change.
        models = self.client.tags()
        current = self.client.find(name, models)
        before = current["digest"] if current else ""
        self.result.update(name=api.display_name(name), before_digest=before, digest=before)

        if self.p["state"] == "absent":
            if aliases:  # the names first: a run that fails half way leaves the model for the next run
                self.sync_aliases(aliases, models)
                models = None
            self._absent(current)
        elif spec is not None:
            self._created(spec, current)
        else:
            self._pulled(current)
        if not self.result["done"]:
            return self.result

        if not self.check and (self.result["action"] != "none" or models is None):
            models = self.client.tags()  # what Ollama lists after the change
            current = self.client.find(name, models)
        if not self.check or self.result["action"] == "none":
            self.result["digest"] = current["digest"] if current else ""
            if current:
                self.result["size"] = current.get("size")
        if self.p["state"] != "absent" and aliases:
            self.sync_aliases(aliases, models)
        if self.p["state"] != "absent" and self.p["loaded"] is not None:
            if current:
                self.ensure_loaded()
            else:  # check mode on a model that is not there yet: it would be loaded after the pull
                self.result.update(loaded=self.p["loaded"], changed=self.result["changed"] or self.p["loaded"])
        if self.result["action"] == "pull" and not self.check:
            self.result["changed"] = self.result["digest"] != before or self.result["changed"]
        self.result["diff"] = {
            "before": {"name": self.result["name"], "digest": before or None},
            "after": {"name": self.result["name"], "digest": self.result["digest"] or None},
        }
        if aliases:
            for side, key in (("before", "before_digest"), ("after", "digest")):
                self.result["diff"][side]["also_as"] = {a["name"]: a[key] or None for a in self.result["also_as"]}
        return self.result

    def _absent(self, current):
        if not current:
            return
        self.result.update(changed=True, action="delete")
        if self.check:
            self.result["digest"] = ""  # what the diff shows: gone
        else:
            self.client.delete(self.p["name"])

    def _created(self, spec, current):
        digests = self.source_digests(spec)
        why = "missing" if not current else self.create_differs(spec, digests)
        if not why:
            return
        self.result.update(changed=True, action="create", reason=why)
        if self.check:
            self.result["digest"] = "(would be created)"
        else:
            self.create(spec, digests)

    def _pulled(self, current):
        if current and self.p["state"] == "present":
            return
        self.result["action"] = "pull"
        if self.check:
            remote = self.remote_digest() if current else None
            changed = not current or remote is None or remote != current["digest"]
            after = (remote or "(would be pulled)") if changed else current["digest"]
            self.result.update(changed=changed, digest=after)
            return
        self.pull()


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    p = module.params
    for key in ("timeout", "stall_timeout", "request_timeout"):
        if p[key] <= 0:
            module.fail_json(msg=f"{key} must be a positive number of seconds")
    if p["progress_interval"] is not None and p["progress_interval"] < 0:
        module.fail_json(msg="progress_interval must be 0 (no progress) or a number of seconds")
    if p["keep_alive"] is not None and api.keep_alive_value(p["keep_alive"]) is None:
        module.fail_json(
            msg=f"keep_alive must be a duration such as 5m, 24h or 1h30m, or a number of seconds (-1: for ever), "
            f"not {p['keep_alive']!r}"
        )
    task = None
    try:
        client = api.OllamaClient(p["host"], timeout=p["request_timeout"])
        task = ModelTask(module, client)
        result = task.run()
    except api.OllamaError as e:
        partial = {k: v for k, v in (task.result if task else {}).items() if k not in ("changed", "diff")}
        module.fail_json(msg=e.msg, **partial)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
