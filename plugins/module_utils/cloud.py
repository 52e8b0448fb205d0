# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every cloud provider needs around its SDK: retries, waits, errors as sentences, tags.

Nothing here imports a cloud SDK, so the AWS and GCP layers share it. Sleep, clock and the
random source are parameters, so tests run the backoff and the deadlines without waiting.
"""

from __future__ import annotations

import hashlib
import random
import re
import time

from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import (
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    deployment_labels,
    tailnet_hostname,
)

# The options every cloud's node module (aws_gpu_instance, gcp_gpu_instance) has, alike.
NODE_ARGS = {
    "name": {"type": "str", "required": True},
    "deployment": {"type": "str", "required": True},
    "state": {"type": "str", "default": "running", "choices": ["present", "running", "stopped", "absent"]},
    "model": {"type": "str"},
    "environment": {"type": "str"},
    "catalog": {"type": "dict", "default": {}},
    "wait": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 900},
    # Where the node reads its tailnet key ({source, name}, as first_boot has it): checked to
    # exist before anything is created, never read.
    "key_secret": {"type": "dict", "default": {}, "no_log": False},
    # A stopped node whose zone has no capacity for its type is started again until this passes.
    "capacity_wait": {"type": "int", "default": 300},
}

# A node's name: a DNS label (1-63 lowercase letters, digits, dashes), which EC2's Name tag, a GCE
# VM name and a tailnet hostname all accept; its tailnet hostname must be a label too.
_NODE_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


def node_name_problem(name, deployment):
    """An error sentence for a node name that is not a valid name on every cloud and the tailnet, or None."""
    if not _NODE_NAME_RE.match(name or ""):
        return (
            f"name {name!r} is not a valid node name: use 1-63 lowercase letters, digits or dashes, "
            "starting with a letter and not ending with a dash (it becomes the VM's and the tailnet's hostname)"
        )
    hostname = tailnet_hostname(deployment or "", name)
    if len(hostname) > 63:
        return (
            f"name {name!r} makes the tailnet hostname {hostname!r}, longer than 63 characters: "
            f"use a shorter name or one that starts with oce-{deployment}-"
        )
    return None


def node_input_problems(params):
    """What is wrong with the options every node module shares, as sentences (empty: nothing)."""
    problems = []
    if params["state"] != "absent":
        problems.append(node_name_problem(params["name"], params["deployment"]))
        secret = params.get("key_secret") or {}
        if secret and not (secret.get("name") and secret.get("source")):
            problems.append("key_secret needs a source and a name (where the node reads its tailnet key)")
        if params["wait_timeout"] < 1:
            problems.append("wait_timeout must be at least 1 second")
        if params.get("capacity_wait", 0) < 0:
            problems.append("capacity_wait must be 0 (do not wait) or more seconds")
    return [p for p in problems if p]


class CloudError(Exception):
    """A failure told as a sentence a person can act on; ``details`` go to the result, not the message."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


# How a module that failed part-way says to finish.
FINISH = "run again to finish, or state=absent to remove it"


def failed_part_way(exc, done, msg=None, then=FINISH, actions=None):
    """The CloudError to raise for ``exc`` after the actions ``done``: its sentence (or ``msg``), what
    was done and ``then``; ``changed`` and ``actions`` (``done`` unless given) say it too."""
    msg = exc.msg if msg is None else msg
    if done:
        msg += f" (done before the failure: {'; '.join(done)}; {then})"
    return CloudError(msg, **dict(exc.details, changed=bool(done), actions=done if actions is None else actions))


class Clock:
    """Time and sleep in one object, so a test can swap both for a fake."""

    def __init__(self, sleep=time.sleep, now=time.monotonic, rand=random.random):
        self.sleep = sleep
        self.now = now
        self.rand = rand


def backoff_delays(attempts, base=1.0, cap=20.0, rand=random.random, floor=0.0):
    """Jittered exponential delays (AWS architecture blog), each in [floor * d, d], d = min(cap, base * 2**n).

    ``floor`` 0 is "full jitter" (uniform in [0, d]); 0.5 is "equal jitter", whose total is at
    least half of the uncapped-by-chance sum: use it when the retries must outlast a known
    window (a per-minute quota), see retry_budget.
    """
    return [min(cap, base * 2**n) * (floor + (1.0 - floor) * rand()) for n in range(max(attempts - 1, 0))]


def retry_budget(attempts, base=1.0, cap=20.0, floor=0.0):
    """The least and the most time ``retry`` sleeps before it gives up: (min, max) seconds."""
    most = sum(min(cap, base * 2**n) for n in range(max(attempts - 1, 0)))
    return most * floor, most


def retry(call, is_transient, attempts=6, base=1.0, cap=20.0, clock=None, on_retry=None, floor=0.0):
    """Run ``call()``; on an error ``is_transient`` accepts, sleep a jittered delay and try again.

    The last error is raised as it is, so the caller's error mapping still applies. ``floor``:
    see backoff_delays.
    """
    clock = clock or Clock()
    delays = backoff_delays(attempts, base, cap, clock.rand, floor)
    for attempt in range(attempts):
        try:
            return call()
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            if on_retry:
                on_retry(exc, attempt + 1, delays[attempt])
            clock.sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


def retry_until(call, is_transient, deadline, base=1.0, cap=20.0, clock=None, on_retry=None):
    """Like ``retry``, bounded by time: errors ``is_transient`` accepts are retried until ``deadline``.

    ``deadline`` is a ``clock.now()`` value. For answers that are right for a while after a change
    and then wrong (EC2 does not know an instance it launched a second ago): retried while the
    grace lasts, raised as they are after it. Equal jitter, capped; the last sleep ends at the deadline.
    """
    clock = clock or Clock()
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            left = deadline - clock.now()
            if left <= 0 or not is_transient(exc):
                raise
            delay = min(min(cap, base * 2**attempt) * (0.5 + 0.5 * clock.rand()), left)
            attempt += 1
            if on_retry:
                on_retry(exc, attempt, delay)
            clock.sleep(delay)


def as_error(exc, what):
    """``exc`` as the one failure shape: a CloudError as it is, anything else told as an unexpected error."""
    if isinstance(exc, CloudError):
        return exc
    kind = type(exc).__name__
    return CloudError(f"{what} failed with an unexpected {kind} ({exc}); please report it", code=kind)


def idempotency_key(deployment, name, *generation):
    """The key of one launch of node ``name`` of ``deployment``: the same in every run that sees the same cloud.

    Two runs at once (or a run repeated after a lost answer) send the same key, so the cloud
    returns the first launch to the second instead of launching twice. ``generation`` is what
    tells launches of the same name apart over time (the ids of the node's earlier instances,
    which are gone): a new node after a destroy gets a new key. A hex SHA-256 (64 characters).
    """
    text = "\n".join([str(deployment), str(name)] + sorted(str(g) for g in generation))
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(probe, done, what, timeout, interval=5.0, clock=None, failed=None):
    """Poll ``probe()`` until ``done(value)``; raise CloudError at the deadline or when ``failed(value)``.

    Returns the last value. ``what`` names the wait in the message ("instance i-1 to be running").
    """
    clock = clock or Clock()
    deadline = clock.now() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if failed and failed(value):
            raise CloudError(f"gave up waiting for {what}: it reached {failed(value)}", last=value)
        if clock.now() >= deadline:
            raise CloudError(
                f"gave up waiting for {what} after {timeout:g} s (last seen: {describe(value)}); "
                "raise wait_timeout or look at the resource in the console",
                last=value,
            )
        clock.sleep(min(interval, max(deadline - clock.now(), 0.1)))


def describe(value):
    if isinstance(value, dict):
        return value.get("state") or value.get("State") or value.get("status") or "unknown"
    return str(value)


def our_tags(deployment, model=None, environment=None, name=None, extra=None):
    """Our labels plus the user's extra tags; the user may not overwrite the keys that make it ours."""
    tags = dict(extra or {})
    clash = sorted(set(tags) & {LABEL_DEPLOYMENT, LABEL_MANAGED_BY})
    if clash:
        raise CloudError(f"tags may not set {', '.join(clash)}: those mark what this collection manages")
    tags.update(deployment_labels(deployment, model, environment))
    if name:
        tags["Name"] = name
    return {str(k): str(v) for k, v in tags.items()}


# The keys that make a resource ours: set when it is created, never changed or removed after.
OWNERSHIP_KEYS = frozenset({LABEL_DEPLOYMENT, LABEL_MANAGED_BY})
# Ours, and not removed by a purge when a run does not name them: a run without a model (a start,
# a stop) leaves the node its own.
KEPT_UNLESS_NAMED = frozenset({LABEL_MODEL})


def tag_drift(current, desired, purge=False, reserved=()):
    """How the tags (AWS) or labels (GCP) ``current`` must change to carry ``desired``.

    Returns ``(changes, removals)``: ``changes`` maps every desired key whose value is missing or
    different to the value wanted; ``removals`` lists, only with ``purge``, the keys present but
    not desired, sorted. Our ownership keys and keys starting with one of ``reserved`` (a cloud's
    own prefixes such as ``aws:`` or ``goog-``) are never changed nor removed, and the model's key
    is not removed. Both empty: no drift.
    """
    current = current or {}
    reserved = tuple(reserved)

    def kept(key):
        return key in OWNERSHIP_KEYS or bool(reserved) and key.startswith(reserved)

    changes = {k: v for k, v in sorted(desired.items()) if not kept(k) and current.get(k) != v}
    removals = sorted(k for k in current if purge and k not in desired and not kept(k) and k not in KEPT_UNLESS_NAMED)
    return changes, removals


def with_drift(current, changes, removals):
    """``current`` with ``changes`` and ``removals`` applied: the whole set, as GCP's setLabels wants it."""
    after = {k: v for k, v in (current or {}).items() if k not in removals}
    after.update(changes)
    return dict(sorted(after.items()))


def report_drift(result, what, current, changes, removals):
    """Add a tag or label update to a ``converge`` result: changed, ``<what>_changed`` and the diff.

    ``what`` is the cloud's word (``tags``, ``labels``). Nothing is added when there is no drift.
    """
    if not (changes or removals):
        return result
    result["changed"] = True
    result[f"{what}_changed"] = {"set": dict(changes), "removed": list(removals)}
    diff = result.setdefault("diff", {})
    diff.setdefault("before", {})[what] = dict(sorted((current or {}).items()))
    diff.setdefault("after", {})[what] = with_drift(current, changes, removals)
    return result


# Secrets that must never travel in user data or instance metadata: anyone who can read the
# instance (describe-instances, compute.instances.get) reads them.
SECRET_PATTERNS = (
    (re.compile(r"tskey-[A-Za-z0-9-]+"), "a Tailscale auth key"),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "an AWS access key"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\"type\"\s*:\s*\"service_account\""), "a Google service account key"),
    (re.compile(r"\bya29\.[A-Za-z0-9_-]{20,}"), "a Google OAuth access token"),
)


def secret_in(*texts):
    """What kind of secret one of ``texts`` carries (a phrase), or None."""
    for text in texts:
        for pattern, what in SECRET_PATTERNS:
            if pattern.search(text or ""):
                return what
    return None


def try_placements(
    candidates, attempt, fallback, tried=None, what="the node", label=None, where="placement", quota=frozenset()
):
    """Call ``attempt(place)`` for each candidate in order until one works; return (value, tried).

    A CloudError whose ``code`` is in ``fallback`` or ``quota`` (no capacity here, not offered
    here, no quota for this kind) moves on to the next candidate; any other error stops the search.
    Every placement tried is recorded with its result (a quota's with the cloud's sentence, which
    names the quota and its limit), and the final error ("no capacity for <what> in any <where>")
    lists them all.
    """
    tried = list(tried or [])
    label = label or (lambda place: ", ".join(str(v) for v in place.values()))
    over = False  # a quota was among the answers
    for place in candidates:
        try:
            value = attempt(place)
        except CloudError as exc:
            code = exc.details.get("code")
            if code not in fallback and code not in quota:
                exc.details["placement"] = tried + [dict(place, result=code or "error")]
                raise
            over = over or code in quota
            said = exc.details.get("said") or exc.msg
            tried.append(dict(place, result=f"{code} ({said})" if code in quota else code))
            continue
        tried.append(dict(place, result="launched"))
        return value, tried
    raise CloudError(
        "no {} for {} in any {}: tried {}{}".format(
            "capacity or quota" if over else "capacity",
            what,
            where,
            "; ".join(f"{label(t)}: {t['result']}" for t in tried) or "nothing",
            ". Ask for more of one of these quotas, or choose other types or zones" if over else "",
        ),
        placement=tried,
    )


def undo_failed(exc, ident, undo, made="created", verb="delete", done="deleted", **details):
    """The error to raise when what this run ``made`` failed afterwards (never became ready).

    Calls ``undo()`` (delete what was made) and tells in one sentence whether that worked, or
    what to remove by hand. ``exc`` may be any exception (an unexpected one is told as such), so
    nothing this run made is left behind by a bug. ``details`` (the placement tried) go to the error.
    """
    exc = as_error(exc, f"waiting for {ident}")
    cleanup = f"{done} it"
    try:
        undo()
    except Exception as again:
        cleanup = f"could not {verb} it ({as_error(again, verb).msg}); {verb} {ident} by hand"
    return CloudError(f"{exc.msg}; this run {made} {ident} and {cleanup}", **details)


def start_when_free(provider, raw, wait, clock):
    """Start ``raw``; while its zone has no capacity for its type, ask again until ``wait`` s have passed.

    A stopped node keeps its disk (model, tailnet identity) in its zone, and a disk does not move
    between zones: waiting for capacity there is the one choice that keeps it. When the wait is
    over, the sentence gives the other (recreate in other zones or types) for the person to take.
    """
    codes = provider.capacity_codes
    asked = []

    def stocked_out(exc):
        return isinstance(exc, CloudError) and exc.details.get("code") in codes

    def attempt():
        asked.append(clock.now())
        return provider.start(raw)

    try:
        return retry_until(attempt, stocked_out, clock.now() + wait, base=15.0, cap=60.0, clock=clock)
    except CloudError as exc:
        if not stocked_out(exc):
            raise
        node = provider.node(raw)
        raise CloudError(
            "{name} cannot start: {zone} has no {itype} free (asked {n} times over {s:g} s; the cloud said: {said}). "
            "The stopped node keeps its disk, model and tailnet identity. Either start it again later "
            "(capacity_wait waits longer), or destroy it and create it with other zones or instance types "
            "(it gets a new disk and pulls the model again)".format(
                name=node.get("name"),
                zone=node.get("availability_zone") or "its zone",
                itype=node.get("instance_type") or "capacity",
                n=len(asked),
                s=wait,
                said=exc.msg,
            ),
            code=exc.details.get("code"),
            attempts=len(asked),
        ) from exc


# Where a node state on its way somewhere ends: what a provider's settle waits for.
SETTLES_TO = {"pending": "running", "stopping": "stopped"}


class Provider:
    """The hooks ``converge`` needs from one cloud; ``raw`` is the cloud's own instance object."""

    # The cloud's word for removing an instance, in messages ("terminate" on EC2).
    remove_verb = "delete"
    # The cloud's error codes for "no capacity for this type in this zone now".
    capacity_codes = frozenset()
    # How long a start waits out such an answer (start_when_free), and the clock it waits on.
    capacity_wait = 0
    clock = None
    # What a node to be created lacks (a model, its subnets): input sentences that fail converge
    # when, and only when, it must create the node; starting or stopping one needs none of it.
    create_problems = ()

    def find(self):
        """Our live instances with the module's deployment and name."""
        raise NotImplementedError

    def ident(self, raw):
        raise NotImplementedError

    def state(self, raw):
        """The fleet state (fleet.NODE_STATES) of ``raw``."""
        raise NotImplementedError

    def plan(self):
        """Everything checked before a create, read-only; raises CloudError with a sentence."""
        raise NotImplementedError

    def preview(self, plan):
        """Result keys that describe the create (the request, the cost, the placement) before it runs."""
        raise NotImplementedError

    def create(self, plan):
        """Create, wait, clean up on failure; return (raw, result keys)."""
        raise NotImplementedError

    def start(self, raw):
        raise NotImplementedError

    def stop(self, raw):
        raise NotImplementedError

    def delete(self, raw):
        raise NotImplementedError

    def settle(self, raw):
        """Wait out a transition (pending, stopping) so that start and stop act on a stable state."""
        return raw

    def refresh(self, raw):
        raise NotImplementedError

    def node(self, raw):
        raise NotImplementedError

    def desired_tags(self):
        """The tags (labels) this run wants on the node, checked before any call; None: none kept."""
        return None

    def retag(self, result, desired, check_mode):
        """Bring the tags of a node that was there already to ``desired``; report it in ``result``."""
        return result


def power(provider, raw, state):
    """``raw`` once settled, started (waiting out a zone without capacity) or stopped to ``state``."""
    raw = provider.settle(raw)
    if provider.state(raw) == state:
        return raw
    if state == "running":
        return start_when_free(provider, raw, provider.capacity_wait, provider.clock or Clock())
    return provider.stop(raw)


def converge(provider, state, check_mode, deployment, name):
    """Bring one node to ``state`` (present, running, stopped, absent); the result of the module.

    The same state machine for every cloud: find ours by label, refuse duplicates, create
    through the provider's capacity-aware plan, start or stop only when needed, and in check
    mode report what would happen without calling anything that changes the cloud.
    """
    result = {"changed": False, "node": {}}
    desired = provider.desired_tags() if state != "absent" else None
    found = provider.find()
    before = provider.state(found[0]) if found else "absent"
    if state == "absent":
        # Every instance of the name goes, duplicates too: this is how the message below says to
        # clean them up.
        if found:
            result["changed"] = True
            if not check_mode:
                for raw in found:
                    provider.delete(raw)
        result["diff"] = {"before": {"state": before}, "after": {"state": "absent"}}
        return result
    if len(found) > 1:
        raise CloudError(
            "deployment {} has {} instances named {} ({}): {} the extra ones or use state=absent".format(
                deployment, len(found), name, ", ".join(provider.ident(i) for i in found), provider.remove_verb
            )
        )
    raw = found[0] if found else None

    if raw is None:
        if provider.create_problems:
            raise CloudError("; ".join(provider.create_problems))
        plan = provider.plan()
        result.update(provider.preview(plan), changed=True)
        after = "stopped" if state == "stopped" else "running"
        if check_mode:
            result["diff"] = {"before": {"state": "absent"}, "after": {"state": after}}
            return result
        raw, extra = provider.create(plan)
        result.update(extra)
        if state == "stopped":  # launched running, as clouds do: then stopped, as asked
            raw = power(provider, raw, state)
    elif state in ("running", "stopped") and before != state:
        result["changed"] = True
        if not check_mode:
            raw = power(provider, raw, state)

    if not check_mode:
        raw = provider.refresh(raw)
    result["node"] = provider.node(raw)
    after = state if check_mode and state != "present" else result["node"]["state"]
    result["diff"] = {"before": {"state": before}, "after": {"state": after}}
    if desired is not None and before != "absent":
        # A node that was there already: its tags may have drifted from this run's.
        provider.retag(result, desired, check_mode)
    return result
