"""One ad hoc `ansible localhost -m debug` of a template, as a user's play would evaluate it: how the
tests of lookups and filters check them through Ansible itself."""

from __future__ import annotations

import json
import os
import subprocess

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def debug(expr, drop_env=()):
    """(returncode, msg) of a debug of ``expr`` on localhost: the value, or the failure's message."""
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, "collections"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
    )
    for name in drop_env:
        env.pop(name, None)
    out = subprocess.run(
        ["ansible", "localhost", "-m", "ansible.builtin.debug", "-a", json.dumps({"msg": expr})],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    try:
        result = json.loads(out.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, LookupError):
        raise AssertionError(f"ansible gave no result (rc {out.returncode}): {out.stderr}{out.stdout}") from None
    return out.returncode, result.get("msg")
