"""The podman connection's persistent channel against a real container (the rig's base image).

Every podman call goes through a wrapper that logs its arguments, so the tests count `podman exec`s:
the first command opens the channel (one `podman exec -i <container> python3 ...`), later ones,
from other Connection objects (tasks) or other ansible processes, reuse it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.playbook.play_context import PlayContext

from ansible_collections.ollama_cloud.engine.plugins.connection import podman as plugin
from ansible_collections.ollama_cloud.engine.plugins.module_utils import podman_channel

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[".."] * 4))
IMAGE = os.environ.get("OCE_BASE_IMAGE", "localhost/oce-node:bookworm")

pytestmark = pytest.mark.skipif(
    not os.environ.get("CONTAINERS_CONF") or not shutil.which("podman"),
    reason='needs podman with the rig\'s settings (eval "$(rig/setup --env)")',
)


def podman(*args, check=True):
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check)


def start_container(python=True):
    name = "oce-conn-" + uuid.uuid4().hex[:8]
    podman("run", "-d", "--name", name, IMAGE, "sleep", "infinity")
    if not python:  # a bare image: no python3 on the PATH
        podman("exec", name, "sh", "-c", "rm -f /usr/bin/python3 /usr/local/bin/python3")
    return name


@pytest.fixture(scope="module")
def container():
    name = start_container()
    yield name
    podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def fresh_container():
    """A container of the test's own, for those that restart or remove it."""
    names = []

    def make(python=True):
        names.append(start_container(python))
        return names[-1]

    yield make
    for name in names:
        podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture
def cp_dir():
    """A short control_path_dir of the test's own (unix socket paths are limited to 107 bytes)."""
    path = tempfile.mkdtemp(prefix="oce-cp-")
    yield path
    for name in os.listdir(path):
        if name.startswith("pm-") and "." not in name:
            podman_channel.stop(os.path.join(path, name))
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def wrapper(tmp_path):
    """A podman executable that logs each call; calls() reads (and with reset, empties) the log."""
    log = tmp_path / "podman-calls"
    exe = tmp_path / "podman"
    exe.write_text(f'#!/bin/bash\nargs="$*"\nprintf "%s\\n" "${{args//$\'\\n\'/ }}" >> {log}\nexec podman "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)

    class Wrapper:
        path = str(exe)

        @staticmethod
        def calls(reset=True):
            lines = log.read_text().splitlines() if log.exists() else []
            if reset:
                log.unlink(missing_ok=True)
            return lines

    return Wrapper


@pytest.fixture
def connect(wrapper, cp_dir):
    """connect(container, **options): a new Connection, as Ansible makes one per task."""

    def make(container, **options):
        conn = plugin.Connection(PlayContext(), None)
        conn._options.update(
            remote_addr=container,
            remote_user=None,
            podman_executable=wrapper.path,
            podman_extra_args="",
            pipelining=True,
            control_persist=60,
            control_path_dir=cp_dir,
        )
        conn._options.update(options)
        return conn

    return make


def channel_opens(calls):
    return [c for c in calls if c.startswith("exec -i") and " python3 -I -S -c " in c]


def plain_execs(calls):
    return [c for c in calls if c.startswith("exec") and " python3 -I -S -c " not in c]


def sockets(cp_dir):
    return [os.path.join(cp_dir, n) for n in os.listdir(cp_dir) if n.startswith("pm-") and "." not in n]


def mux_pids(socket_path):
    out = subprocess.run(
        ["pgrep", "-f", f"podman_channel.py mux {socket_path} "], capture_output=True, text=True, check=False
    )
    return out.stdout.split()


def wait_for(predicate, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# ---------------------------------------------------------------- behaves as podman exec


COMMANDS = [
    ("/bin/sh -c 'echo out; echo err >&2; exit 3'", None),
    ("cat", b"line one\n\x00\xffbinary\n" * 1000),
    ("/bin/sh -c 'id; pwd; umask; env | sort'", None),
    ("/bin/sh -c 'read line; echo got $line; kill -9 $$'", b"hello\n"),
    ("/no/such/command", None),
    ("/bin/sh -c 'cd /tmp && exec sh -c \"echo \\$PWD; ls -d .\"'", None),
]


def test_a_command_gives_what_podman_exec_gives(connect, container, wrapper):
    """rc, stdout, stderr, stdin, environment, user, cwd, umask and signals: the channel as plain podman exec."""
    for cmd, stdin in COMMANDS:
        through_channel = connect(container).exec_command(cmd, in_data=stdin)
        plain = connect(container, control_persist=0).exec_command(cmd, in_data=stdin)
        if cmd == "/no/such/command":  # the message differs (runc's or the agent's), the code does not
            assert through_channel[0] == plain[0] == 127
            assert b"/no/such/command" in through_channel[2]
            continue
        assert through_channel == plain, cmd
    rc, out, err = connect(container).exec_command("/bin/sh -c 'echo out; echo err >&2; exit 3'")
    assert (rc, out, err) == (3, b"out\n", b"err\n")
    calls = wrapper.calls()
    assert len(channel_opens(calls)) == 1
    assert len(plain_execs(calls)) == len(COMMANDS)  # control_persist=0: one podman exec per command


def test_later_commands_and_tasks_reuse_the_channel(connect, container, wrapper, cp_dir):
    first = connect(container)
    assert first.exec_command("true")[0] == 0
    assert len(channel_opens(wrapper.calls())) == 1
    for _task in range(3):  # each task has its own Connection
        conn = connect(container)
        for _command in range(5):
            assert conn.exec_command("/bin/sh -c 'echo ok'") == (0, b"ok\n", b"")
        conn.close()
    assert wrapper.calls() == []  # not one more podman call
    [path] = sockets(cp_dir)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(cp_dir).st_mode) == 0o700


def test_a_connection_finds_podman_and_its_socket_once(connect, container, wrapper, monkeypatch):
    conn = connect(container)
    looked_up = []
    real_which = shutil.which
    monkeypatch.setattr(plugin.shutil, "which", lambda name: looked_up.append(name) or real_which(name))
    for _command in range(4):
        assert conn.exec_command("true")[0] == 0
    assert looked_up == [wrapper.path]
    path = conn._channel_socket()
    # Other options are another podman command, and so another channel.
    conn._options.update(podman_extra_args="--log-level=error")
    assert conn.exec_command("/bin/sh -c 'echo ok'") == (0, b"ok\n", b"")
    assert looked_up == [wrapper.path] * 2
    assert conn._channel_socket() != path
    wrapper.calls()


def test_commands_run_side_by_side_on_one_channel(connect, container, wrapper):
    results = {}

    def run(i):
        results[i] = connect(container).exec_command(f"/bin/sh -c 'sleep 1; echo {i}'")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {i: (0, f"{i}\n".encode(), b"") for i in range(4)}
    assert time.monotonic() - start < 4  # they did not wait for each other
    assert len(channel_opens(wrapper.calls())) == 1


# ---------------------------------------------------------------- files


def test_files_go_in_and_out_intact_through_the_channel(connect, container, wrapper, tmp_path):
    conn = connect(container)
    for size in (0, 1, 5 * 1024 * 1024 + 7):
        blob = tmp_path / f"blob{size}"
        blob.write_bytes(os.urandom(size))
        conn.put_file(str(blob), f"/tmp/blob{size}")
        digest = conn.exec_command(f"sha256sum /tmp/blob{size}")[1].split()[0].decode()
        assert digest == hashlib.sha256(blob.read_bytes()).hexdigest()
        conn.fetch_file(f"/tmp/blob{size}", str(tmp_path / f"back{size}"))
        assert (tmp_path / f"back{size}").read_bytes() == blob.read_bytes()
    calls = wrapper.calls()
    assert len(calls) == 1 and channel_opens(calls)  # never podman cp, nor a podman exec per file

    with pytest.raises(AnsibleError, match="copying .* to /no/such/dir/f in container .* failed: .*/no/such/dir/f"):
        conn.put_file(str(tmp_path / "blob1"), "/no/such/dir/f")
    with pytest.raises(AnsibleError, match="fetching /no/such/file .* failed: .*No such file"):
        conn.fetch_file("/no/such/file", str(tmp_path / "nothing"))


def test_a_file_streams_in_chunks(connect, container, tmp_path):
    """A large file is never read whole: put_file reads and fetch_file writes at most CHUNK at a time."""

    class Spy:
        def __init__(self, stream):
            self.stream, self.sizes = stream, []

        def read(self, n=-1):
            data = self.stream.read(n)
            self.sizes.append(len(data))
            return data

        def write(self, data):
            self.sizes.append(len(data))
            return self.stream.write(data)

        def __getattr__(self, name):
            return getattr(self.stream, name)

    blob = tmp_path / "big"
    blob.write_bytes(os.urandom(20 * 1024 * 1024))
    path = connect(container)._channel_socket()
    connect(container).exec_command("true")  # the channel is open
    with open(blob, "rb") as source:
        spy = Spy(source)
        assert podman_channel.request(path, ["/bin/sh", "-c", "cat > /tmp/big"], stdin=spy) == (0, b"", b"")
    assert max(spy.sizes) <= podman_channel.CHUNK and sum(spy.sizes) == blob.stat().st_size
    with open(tmp_path / "big.back", "wb") as target:
        spy = Spy(target)
        assert podman_channel.request(path, ["cat", "/tmp/big"], stdout=spy) == (0, b"", b"")
    assert max(spy.sizes) <= podman_channel.CHUNK
    assert (tmp_path / "big.back").read_bytes() == blob.read_bytes()


# ---------------------------------------------------------------- the channel's life


def test_a_restarted_container_gets_a_new_channel(connect, fresh_container, wrapper, cp_dir):
    name = fresh_container()
    assert connect(name).exec_command("/bin/sh -c 'echo before'") == (0, b"before\n", b"")
    [path] = sockets(cp_dir)
    old = mux_pids(path)
    podman("restart", "-t", "0", name)
    assert connect(name).exec_command("/bin/sh -c 'echo after'") == (0, b"after\n", b"")
    assert len(channel_opens(wrapper.calls())) == 2
    assert wait_for(lambda: not set(old) & set(mux_pids(path)))  # the old mux left with its exec
    assert len(mux_pids(path)) == 1


def test_a_removed_container_is_unreachable_and_its_channel_ends(connect, fresh_container, wrapper, cp_dir):
    name = fresh_container()
    assert connect(name).exec_command("true")[0] == 0
    [path] = sockets(cp_dir)
    assert mux_pids(path)
    podman("rm", "-f", "-t", "0", name)
    assert wait_for(lambda: not mux_pids(path) and not os.path.exists(path))  # it does not outlive the container
    with pytest.raises(AnsibleConnectionFailure) as failure:
        connect(name).exec_command("true")
    message = str(failure.value)
    assert message.startswith(f"podman cannot run commands in the container {name}: Error: ")
    assert message.endswith("Start it (playbooks/start.yml) or create it (playbooks/create.yml)")


def test_a_missing_container_fails_as_with_podman_exec(connect, wrapper):
    with pytest.raises(AnsibleConnectionFailure) as persistent:
        connect("oce-no-such-node").exec_command("true")
    assert len(wrapper.calls()) == 1  # the channel's podman exec tells, no second try
    with pytest.raises(AnsibleConnectionFailure) as plain:
        connect("oce-no-such-node", control_persist=0).exec_command("true")
    assert str(persistent.value) == str(plain.value)
    assert "podman cannot run commands in the container oce-no-such-node: Error: " in str(plain.value)


def test_another_user_has_a_channel_of_its_own(connect, container, wrapper):
    assert connect(container, remote_user="nobody").exec_command("id -un") == (0, b"nobody\n", b"")
    assert connect(container).exec_command("id -un") == (0, b"root\n", b"")
    assert connect(container, remote_user="nobody").exec_command("/bin/sh -c 'echo $HOME; id -u'") == (
        0,
        b"/nonexistent\n65534\n",
        b"",
    )
    opens = channel_opens(wrapper.calls())
    assert len(opens) == 2 and sum("--user nobody" in c for c in opens) == 1


def test_the_channel_ends_when_idle(connect, container, wrapper, cp_dir):
    conn = connect(container, control_persist=2)
    path = conn._channel_socket()
    assert conn.exec_command("true")[0] == 0
    assert wait_for(lambda: not mux_pids(path) and not os.path.exists(path))
    assert podman("exec", container, "pgrep", "-f", "python3 -I -S -c", check=False).returncode == 1  # agent gone
    assert connect(container, control_persist=2).exec_command("true")[0] == 0
    assert len(channel_opens(wrapper.calls())) == 2


def test_reset_connection_ends_the_channel(connect, container, wrapper, cp_dir):
    conn = connect(container)
    conn.exec_command("true")
    [path] = sockets(cp_dir)
    conn.reset()
    assert wait_for(lambda: not mux_pids(path))
    assert conn.exec_command("true")[0] == 0
    assert len(channel_opens(wrapper.calls())) == 2


def test_a_killed_mux_is_replaced(connect, container, wrapper, cp_dir):
    connect(container).exec_command("true")
    [path] = sockets(cp_dir)
    for pid in mux_pids(path):
        os.kill(int(pid), signal.SIGKILL)
    assert os.path.exists(path)  # the socket is left behind
    assert connect(container).exec_command("/bin/sh -c 'echo again'") == (0, b"again\n", b"")
    assert len(channel_opens(wrapper.calls())) == 2


def test_a_command_whose_client_left_is_killed(connect, container, cp_dir):
    connect(container).exec_command("true")
    [path] = sockets(cp_dir)
    script = "import sys; sys.path.insert(0, %r); import podman_channel as c; c.request(%r, ['sleep', '4242'])" % (
        os.path.dirname(podman_channel.__file__),
        path,
    )
    client = subprocess.Popen([shutil.which("python3") or "python3", "-c", script])

    def running():
        return podman("exec", container, "pgrep", "-x", "-f", "sleep 4242", check=False).returncode == 0

    assert wait_for(running)
    client.kill()
    client.wait()
    assert wait_for(lambda: not running())


# ---------------------------------------------------------------- without a channel


def test_without_python3_each_command_is_a_podman_exec(connect, fresh_container, wrapper):
    name = fresh_container(python=False)
    assert connect(name).exec_command("/bin/sh -c 'echo raw'") == (0, b"raw\n", b"")
    calls = wrapper.calls()
    assert len(channel_opens(calls)) == 1 and len(plain_execs(calls)) == 1
    for _attempt in range(3):  # the failure is remembered: no new attempt for control_persist seconds
        assert connect(name).exec_command("/bin/sh -c 'echo raw'") == (0, b"raw\n", b"")
    calls = wrapper.calls()
    assert channel_opens(calls) == [] and len(plain_execs(calls)) == 3


def test_control_persist_zero_is_one_podman_exec_per_command(connect, container, wrapper, cp_dir, tmp_path):
    conn = connect(container, control_persist=0)
    for _attempt in range(3):
        assert conn.exec_command("true")[0] == 0
    (tmp_path / "f").write_bytes(b"data")
    conn.put_file(str(tmp_path / "f"), "/tmp/f")
    conn.fetch_file("/tmp/f", str(tmp_path / "g"))
    assert (tmp_path / "g").read_bytes() == b"data"
    calls = wrapper.calls()
    assert len(plain_execs(calls)) == 5 and not channel_opens(calls)
    assert sockets(cp_dir) == []


def test_a_control_dir_of_another_user_is_not_used(connect, container, wrapper, cp_dir):
    os.chown(cp_dir, 65534, 65534)
    assert connect(container).exec_command("/bin/sh -c 'echo ok'") == (0, b"ok\n", b"")
    calls = wrapper.calls()
    assert not channel_opens(calls) and len(plain_execs(calls)) == 1
    assert sockets(cp_dir) == []
    os.chown(cp_dir, os.getuid(), os.getgid())
    os.chmod(cp_dir, 0o755)  # too open: made 0700 again
    connect(container).exec_command("true")
    assert stat.S_IMODE(os.stat(cp_dir).st_mode) == 0o700


# ---------------------------------------------------------------- through ansible


def test_a_playbook_opens_one_channel_and_the_next_run_reuses_it(container, wrapper, cp_dir, tmp_path):
    """Ansible forks a worker per task: the channel lives outside them, across tasks and runs."""
    (tmp_path / "blob").write_bytes(os.urandom(100_000))
    play = tmp_path / "play.yml"
    play.write_text(
        f"""
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.command: id -un
      register: who
    - ansible.builtin.copy:
        src: {tmp_path}/blob
        dest: /srv/blob
        mode: "0640"
    - ansible.builtin.copy:
        src: {tmp_path}/blob
        dest: /srv/blob
        mode: "0640"
    - ansible.builtin.fetch:
        src: /srv/blob
        dest: {tmp_path}/back
        flat: true
    - ansible.builtin.raw: echo raw
      register: raw
    - ansible.builtin.debug:
        msg: "{{{{ who.stdout }}}} {{{{ raw.stdout | trim }}}}"
"""
    )
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO_ROOT, "collections"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_PODMAN_CONTROL_PATH_DIR=cp_dir,
    )
    cmd = ["ansible-playbook", "-i", f"{container},", "-c", "ollama_cloud.engine.podman", str(play)]
    cmd += ["-e", f"ansible_podman_executable={wrapper.path}", "-e", "ansible_python_interpreter=/usr/bin/python3"]
    for run in (1, 2):
        res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, check=False, timeout=300)
        assert res.returncode == 0, res.stdout + res.stderr
        tasks = json.loads(res.stdout)["plays"][0]["tasks"]
        assert tasks[-1]["hosts"][container]["msg"] == "root raw"
        assert [t["hosts"][container].get("changed", False) for t in tasks[1:3]] == [run == 1, False]
        assert (tmp_path / "back").read_bytes() == (tmp_path / "blob").read_bytes()
        calls = wrapper.calls()
        assert len(calls) == (1 if run == 1 else 0), calls  # the channel's podman exec, once
