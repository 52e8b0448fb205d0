# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs ollama_model in slices so a long pull shows its progress while it runs.

A module cannot print while it runs, so the module returns after progress_interval seconds
with done=false; this plugin prints a progress line and calls it again, which resumes the pull
(Ollama keeps partial blobs). The final result combines the slices.
"""

from __future__ import annotations

import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

MODULE = "ollama_cloud.engine.ollama_model"
DEFAULT_INTERVAL = 20


def human_seconds(seconds):
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(host, name, progress):
    mb = 1e6
    return (
        f"ollama_model: [{host}] {name} {progress.get('completed', 0) / mb:.1f}/"
        f"{progress.get('total', 0) / mb:.1f} MB ({progress.get('percent', 0):.0f}%) "
        f"{progress.get('rate_bps', 0) / mb:.1f} MB/s ETA {human_seconds(progress.get('eta_seconds'))}"
    )


def _positive_int(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if args.get("progress_interval") is None:
            args["progress_interval"] = DEFAULT_INTERVAL
        timeout = _positive_int(args.get("timeout"), 3600)
        host = (task_vars or {}).get("inventory_hostname", "?")
        started = time.monotonic()
        slices = []
        while True:
            if slices:
                # The deadline covers the whole pull, not each slice.
                remaining = timeout - (time.monotonic() - started)
                if remaining < 1:
                    return dict(
                        slices[-1],
                        failed=True,
                        msg=(
                            f"pulling {args.get('name')} did not finish within timeout={timeout}s: "
                            "check the registry and the network, or raise timeout"
                        ),
                    )
                args["timeout"] = int(remaining)
            res = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
            slices.append(res)
            if res.get("failed") or res.get("done", True):
                break
            display.display(progress_line(host, res.get("name", args.get("name")), res.get("progress") or {}))
        result.update(self.combine(slices, time.monotonic() - started))
        return result

    @staticmethod
    def combine(slices, seconds):
        """One result for the whole pull: the last slice, with totals over all of them."""
        final = dict(slices[-1])
        if len(slices) == 1:
            return final
        first = slices[0]
        fetched = sum((s.get("progress") or {}).get("fetched", 0) for s in slices)
        final["before_digest"] = first.get("before_digest", "")
        # A slice that finds the pull already finished (Ollama may complete it after the
        # previous slice hung up) reports no change; the pull as a whole did change the node.
        final["changed"] = any(s.get("changed") or not s.get("done", True) for s in slices)
        if isinstance(final.get("diff"), dict) and isinstance(first.get("diff"), dict):
            final["diff"] = dict(final["diff"], before=first["diff"].get("before"))
        # Each new slice starts the pull once on purpose: only extra starts are retries.
        final["attempts"] = 1 + sum(max(0, s.get("attempts", 1) - 1) for s in slices)
        final["resumes"] = len(slices) - 1
        final["seconds"] = round(seconds, 2)
        final["mb_per_s"] = round(fetched / seconds / 1e6, 2) if seconds else 0.0
        if isinstance(final.get("progress"), dict):
            final["progress"] = dict(final["progress"], fetched=fetched)
        return final
