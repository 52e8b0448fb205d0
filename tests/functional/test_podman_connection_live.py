"""The ollama_cloud.engine.podman connection against a real container: one podman exec per module
(none once its channel is open), files in and out intact, another user, and a clear unreachable for a
container that is not there.

Every podman call goes through a wrapper (ansible_podman_executable) that logs its arguments.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import uuid

import pytest

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IMAGE = os.environ.get("OCE_BASE_IMAGE", "localhost/oce-node:bookworm")

pytestmark = pytest.mark.skipif(
    not os.environ.get("CONTAINERS_CONF"), reason="needs the rig's podman settings: run through rig/test"
)


@pytest.fixture(scope="module")
def container():
    name = "oce-conn-" + uuid.uuid4().hex[:8]
    subprocess.run(["podman", "run", "-d", "--name", name, IMAGE, "sleep", "infinity"], check=True, capture_output=True)
    yield name
    subprocess.run(["podman", "rm", "-f", "-t", "0", name], check=False, capture_output=True)


@pytest.fixture
def ansible(tmp_path):
    """Run ansible or ansible-playbook; return (result, podman calls made)."""
    log = tmp_path / "podman-calls"
    wrapper = tmp_path / "podman"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec podman "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )

    def run(command, target, *args):
        log.unlink(missing_ok=True)
        cmd = [command, "-i", f"{target},", "-c", "ollama_cloud.engine.podman"]
        cmd += ["-e", f"ansible_podman_executable={wrapper}", "-e", "ansible_python_interpreter=/usr/bin/python3"]
        res = subprocess.run(cmd + list(args), cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        calls = log.read_text().splitlines() if log.exists() else []
        return res, calls

    return run


def test_a_module_is_one_podman_exec(ansible, container):
    # Without the kept channel (control_persist 0), as containers.podman.podman runs but pipelined.
    plain = ("-e", "ansible_podman_control_persist=0")
    res, calls = ansible("ansible", container, "all", "-m", "ansible.builtin.ping", *plain)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(calls) == 1 and calls[0].startswith(f"exec -i {container} /bin/sh -c ")

    # Without pipelining the same module takes the long way: temporary directory, copy, run, clean up.
    unpiped = ("-e", "ansible_pipelining=false")
    res, calls = ansible("ansible", container, "all", "-m", "ansible.builtin.ping", *unpiped, *plain)
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(calls) >= 3 and not any(c.startswith("cp ") for c in calls)


def test_the_kept_channel_makes_later_modules_cost_no_podman_exec(ansible, container):
    res, calls = ansible("ansible", container, "all", "-m", "ansible.builtin.ping")
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(calls) <= 1 and all(c.startswith(f"exec -i {container} ") for c in calls)  # the channel, if not open yet
    res, calls = ansible("ansible", container, "all", "-m", "ansible.builtin.ping")
    assert res.returncode == 0, res.stdout + res.stderr
    assert calls == []


def test_files_go_in_and_out_intact(ansible, container, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    play = tmp_path / "files.yml"
    play.write_text(
        f"""
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.copy:
        src: {blob}
        dest: /srv/blob.bin
        mode: "0640"
    - ansible.builtin.stat:
        path: /srv/blob.bin
        checksum_algorithm: sha256
      register: copied
    - ansible.builtin.fetch:
        src: /srv/blob.bin
        dest: {tmp_path}/back.bin
        flat: true
    - ansible.builtin.debug:
        msg: "{{{{ copied.stat.checksum }}}} {{{{ copied.stat.mode }}}}"
"""
    )
    res, calls = ansible("ansible-playbook", container, str(play))
    assert res.returncode == 0, res.stdout + res.stderr
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    tasks = json.loads(res.stdout)["plays"][0]["tasks"]
    assert tasks[-1]["hosts"][container]["msg"] == f"{digest} 0640"
    assert (tmp_path / "back.bin").read_bytes() == blob.read_bytes()
    assert not any(c.startswith(("cp ", "mount ")) for c in calls)  # never podman cp nor the mount point


def test_another_user_runs_the_commands(ansible, container):
    res, dummy = ansible("ansible", container, "all", "-m", "ansible.builtin.command", "-a", "id -un", "-u", "nobody")
    assert res.returncode == 0, res.stdout + res.stderr
    assert '"stdout": "nobody"' in res.stdout


def test_a_missing_container_is_unreachable_with_what_to_do(ansible):
    res, calls = ansible("ansible", "oce-no-such-node", "all", "-m", "ansible.builtin.ping")
    assert res.returncode == 4  # unreachable
    assert "podman cannot run commands in the container oce-no-such-node" in res.stdout
    assert "create it (playbooks/create.yml)" in res.stdout
    assert len(calls) == 1
