"""Unit tests for the ollama_model action plugin: slices, progress lines, combined result."""

from __future__ import annotations

from unittest import mock

import pytest

from ansible_collections.ollama_cloud.engine.plugins.action import (
    ollama_model as action,
)

NAME = "models.internal:5000/library/gemma3:270m"


def make_action(task_args):
    task = mock.MagicMock()
    task.args = task_args
    task.async_val = 0
    task.check_mode = False
    return action.ActionModule(
        task=task,
        connection=mock.MagicMock(),
        play_context=mock.MagicMock(check_mode=False),
        loader=mock.MagicMock(),
        templar=mock.MagicMock(),
        shared_loader_obj=None,
    )


def slice_(done, completed, fetched, attempts=1, **kw):
    res = {
        "changed": done,
        "done": done,
        "name": NAME,
        "attempts": attempts,
        "before_digest": "",
        "digest": "d2" if done else "",
        "progress": {
            "completed": completed,
            "total": 240_100_000,
            "fetched": fetched,
            "percent": round(100.0 * completed / 240_100_000, 1),
            "rate_bps": 35_200_000.0,
            "eta_seconds": 3.4,
        },
    }
    res.update(kw)
    return res


def run(plugin, slices):
    with (
        mock.patch.object(plugin, "_execute_module", side_effect=slices) as execute,
        mock.patch.object(action.display, "display") as display,
    ):
        result = plugin.run(task_vars={"inventory_hostname": "node1"})
    return result, execute, display


def test_progress_line_format():
    line = action.progress_line(
        "node1",
        "gemma3:270m",
        {"completed": 120_500_000, "total": 240_100_000, "percent": 50.2, "rate_bps": 35_200_000, "eta_seconds": 3.4},
    )
    assert line == "ollama_model: [node1] gemma3:270m 120.5/240.1 MB (50%) 35.2 MB/s ETA 3s"
    assert action.human_seconds(None) == "?" and action.human_seconds(3725) == "1h02m"


def test_slices_print_progress_and_combine():
    plugin = make_action({"name": NAME, "insecure": True})
    slices = [
        slice_(False, 80_000_000, 80_000_000, diff=None),
        slice_(False, 160_000_000, 79_000_000, attempts=2),
        slice_(True, 240_100_000, 81_000_000, diff={"before": {"digest": None}, "after": {"digest": "d2"}}),
    ]
    result, execute, display = run(plugin, slices)
    assert execute.call_count == 3
    first_args = execute.call_args_list[0].kwargs
    assert first_args["module_name"] == "ollama_cloud.engine.ollama_model"
    assert first_args["module_args"]["progress_interval"] == action.DEFAULT_INTERVAL
    assert first_args["task_vars"] == {"inventory_hostname": "node1"}
    lines = [c.args[0] for c in display.call_args_list]
    assert len(lines) == 2 and lines[0].startswith(f"ollama_model: [node1] {NAME} 80.0/240.1 MB (33%)")
    assert result["changed"] is True and result["digest"] == "d2"
    assert result["attempts"] == 2 and result["resumes"] == 2  # one real retry in slice 2
    assert result["progress"]["fetched"] == 240_000_000
    assert result["mb_per_s"] > 0 and result["diff"]["after"] == {"digest": "d2"}


def test_explicit_zero_interval_is_kept_and_single_slice_passes_through():
    plugin = make_action({"name": NAME, "progress_interval": 0})
    done = slice_(True, 240_100_000, 240_100_000, seconds=7.0, mb_per_s=34.3)
    result, execute, display = run(plugin, [done])
    assert execute.call_args.kwargs["module_args"]["progress_interval"] == 0
    assert display.call_count == 0
    assert result["seconds"] == 7.0 and result["mb_per_s"] == 34.3


def test_failure_in_a_slice_stops_the_loop():
    plugin = make_action({"name": NAME})
    failed = {"failed": True, "msg": "pulling x failed: boom", "done": True}
    result, execute = run(plugin, [slice_(False, 1, 1), failed, slice_(True, 2, 2)])[:2]
    assert execute.call_count == 2 and result["failed"] is True and result["msg"] == "pulling x failed: boom"


@pytest.mark.parametrize("timeout", [1])
def test_overall_deadline_spans_slices(timeout):
    plugin = make_action({"name": NAME, "timeout": timeout})
    clock = iter([0.0, 0.5, 5.0, 5.0, 5.0])
    with mock.patch.object(action.time, "monotonic", side_effect=lambda: next(clock)):
        result, execute = run(plugin, [slice_(False, 1, 1), slice_(False, 2, 1)])[:2]
    assert execute.call_count == 1
    assert result["failed"] is True and "did not finish within timeout=1s" in result["msg"]


def test_also_as_passes_through_and_the_last_slice_reports_it():
    plugin = make_action({"name": NAME, "also_as": ["gemma3:270m"]})
    names = [{"name": "gemma3:270m", "before_digest": "", "digest": "d2", "action": "copy"}]
    result, execute = run(plugin, [slice_(False, 1, 1), slice_(True, 2, 1, also_as=names)])[:2]
    assert execute.call_args.kwargs["module_args"]["also_as"] == ["gemma3:270m"]
    assert result["changed"] is True and result["also_as"] == names
