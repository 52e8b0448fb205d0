"""ansible-playbook against localhost from the repository root, as the role tests run their plays."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).parents[3]


def run_playbook(playbook, *args):
    """Run ``playbook`` on localhost with the repository's ansible.cfg (the venv's ansible-playbook)."""
    beside = pathlib.Path(sys.executable).parent / "ansible-playbook"
    return subprocess.run(
        [str(beside) if beside.exists() else "ansible-playbook", "-i", "localhost,", str(playbook), *args],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
