# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every cloud provider needs around its SDK: retries, waits, errors as sentences, tags.

Nothing here imports a cloud SDK, so the AWS and GCP layers share it. Sleep, clock and the
random source are parameters, so tests run the backoff and the deadlines without waiting.
"""

from __future__ import annotations

import random
import time

from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import (
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    deployment_labels,
)


class CloudError(Exception):
    """A failure told as a sentence a person can act on; ``details`` go to the result, not the message."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


class Clock:
    """Time and sleep in one object, so a test can swap both for a fake."""

    def __init__(self, sleep=time.sleep, now=time.monotonic, rand=random.random):
        self.sleep = sleep
        self.now = now
        self.rand = rand


def backoff_delays(attempts, base=1.0, cap=20.0, rand=random.random):
    """'Full jitter' delays (AWS architecture blog): uniform in [0, min(cap, base * 2**n)]."""
    return [rand() * min(cap, base * 2**n) for n in range(max(attempts - 1, 0))]


def retry(call, is_transient, attempts=6, base=1.0, cap=20.0, clock=None, on_retry=None):
    """Run ``call()``; on an error ``is_transient`` accepts, sleep a jittered delay and try again.

    The last error is raised as it is, so the caller's error mapping still applies.
    """
    clock = clock or Clock()
    delays = backoff_delays(attempts, base, cap, clock.rand)
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
        return value.get("state") or value.get("State") or "unknown"
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
