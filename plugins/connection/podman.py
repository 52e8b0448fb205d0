# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: podman
short_description: Run tasks in a local node's podman container through one long-lived C(podman exec)
version_added: "0.3.0"
description:
  - How the controller reaches a node of the local target (a systemd container made by
    M(ollama_cloud.engine.local_node)), and what the Molecule scenarios use.
  - Unlike C(containers.podman.podman), it pipelines modules (the module on standard input), so a
    module task is one command instead of about five (make a temporary directory, C(podman cp),
    C(chown), run, clean up).
  - Like OpenSSH's ControlMaster/ControlPersist, the first command opens a channel that the
    following ones reuse, across tasks and plays; each command then costs a few milliseconds
    instead of a C(podman exec) (about 0.2 s). The channel is one C(podman exec -i) running a small
    Python agent (C(python3) in the container) held by a detached process on the controller, which
    listens on a unix socket under O(control_path_dir) and exits after O(control_persist) idle
    seconds or as soon as the container stops, restarts or is removed. Each command still runs as
    its own process with the environment, user, working directory and exit code a C(podman exec)
    gives it. A container without C(python3) gets one C(podman exec) per command, as does
    O(control_persist=0).
  - As with ssh's ControlPersist, a command sees the supplementary groups the remote user had when
    the channel opened, so run the C(reset_connection) meta task after changing them.
  - Files are copied through the same channel (or C(podman exec -i)), in chunks, never with
    C(podman cp) (which pauses the container) nor through the container's mount point (a symbolic
    link inside the container would resolve on the controller).
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
options:
  remote_addr:
    description:
      - Name or ID of the container.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_podman_host
  remote_user:
    description:
      - User (name or UID) that runs commands in the container. Not set runs them as the
        container's own user (root in our nodes).
    type: str
    ini:
      - section: defaults
        key: remote_user
    env:
      - name: ANSIBLE_REMOTE_USER
    vars:
      - name: ansible_user
  podman_executable:
    description:
      - The podman command.
    type: str
    default: podman
    env:
      - name: ANSIBLE_PODMAN_EXECUTABLE
    vars:
      - name: ansible_podman_executable
  podman_extra_args:
    description:
      - Arguments for podman itself, before C(exec), for example C(--log-level=debug).
    type: str
    default: ""
    env:
      - name: ANSIBLE_PODMAN_EXTRA_ARGS
    vars:
      - name: ansible_podman_extra_args
  pipelining:
    description:
      - Send modules on standard input instead of copying them first. Safe here (no C(requiretty)
        in a container), hence on by default; V(false) behaves like C(containers.podman.podman).
    type: boolean
    default: true
    env:
      - name: ANSIBLE_PIPELINING
    ini:
      - section: connection
        key: pipelining
    vars:
      - name: ansible_pipelining
  control_persist:
    description:
      - Seconds the channel into the container stays open after its last command. V(0) runs every
        command in its own C(podman exec).
    type: int
    default: 60
    env:
      - name: ANSIBLE_PODMAN_CONTROL_PERSIST
    ini:
      - section: podman_connection
        key: control_persist
    vars:
      - name: ansible_podman_control_persist
  control_path_dir:
    description:
      - Directory (made mode 0700, refused if another user owns it) of the channels' unix sockets,
        one per container, user and podman command. Its path must stay short (sockets' 107 bytes).
    type: path
    default: ~/.ansible/cp
    env:
      - name: ANSIBLE_PODMAN_CONTROL_PATH_DIR
    ini:
      - section: podman_connection
        key: control_path_dir
    vars:
      - name: ansible_podman_control_path_dir
"""

import hashlib
import json
import os
import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

from ansible_collections.ollama_cloud.engine.plugins.module_utils import podman_channel

display = Display()

# What decides which podman engine a name means, besides the command line: part of a channel's key.
PODMAN_ENV = ("CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "XDG_RUNTIME_DIR")
SUN_PATH_MAX = 107


class Connection(ConnectionBase):
    """podman exec, with pipelining, through one persistent channel per container."""

    transport = "ollama_cloud.engine.podman"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._no_channel = False  # set once this task knows that no channel can be had
        # Worked out once per connection (a task's commands share it), for the options it was made from.
        self._command_cache = (None, None)
        self._socket_cache = (None, None)

    def _podman_command(self):
        options = (self.get_option("podman_executable"), self.get_option("podman_extra_args") or "")
        if self._command_cache[0] != options:
            binary = shutil.which(options[0])
            if not binary:
                raise AnsibleError(f"{options[0]} was not found on the controller's PATH: install podman")
            self._command_cache = (options, [binary] + shlex.split(options[1]))
        return list(self._command_cache[1])

    def _podman(self, args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE):
        cmd = self._podman_command() + list(args)
        display.vvv(f"RUN {cmd}", host=self._container)
        return subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)

    def _exec_args(self, interactive):
        args = ["exec"] + (["-i"] if interactive else [])
        user = self.get_option("remote_user")
        if user:
            args += ["--user", str(user)]
        return args + [self._container]

    @property
    def _container(self):
        return self.get_option("remote_addr")

    def _connect(self):
        # Nothing to open yet: the first command finds or opens the channel (see _channel), and a
        # missing or stopped container is reported by it (see _failed), at no cost when all is well.
        self._connected = True
        return self

    def _failed(self, returncode, stderr):
        """podman's own failure (exit 125, e.g. no such container) is an unreachable node."""
        if returncode == 125 and stderr.startswith(b"Error: "):
            raise AnsibleConnectionFailure(
                f"podman cannot run commands in the container {self._container}: "
                f"{to_native(stderr.strip())}. Start it (playbooks/start.yml) or create it (playbooks/create.yml)"
            )

    # ------------------------------------------------------------ the persistent channel

    def _channel_socket(self):
        """The container's channel socket, or None when every command is its own podman exec."""
        if self._no_channel or self.get_option("control_persist") <= 0:
            return None
        key = json.dumps(
            [os.getuid(), self._container, self.get_option("remote_user"), self._podman_command()]
            + [os.environ.get(name) for name in PODMAN_ENV]
        )
        cached = (key, self.get_option("control_path_dir"))
        if self._socket_cache[0] == cached:
            return self._socket_cache[1]
        directory = os.path.expanduser(cached[1])
        path = os.path.join(directory, "pm-" + hashlib.sha256(key.encode()).hexdigest()[:20])
        if len(os.fsencode(path)) > SUN_PATH_MAX:
            display.warning(f"control_path_dir {directory} is too long for a unix socket: one podman exec per command")
            self._no_channel = True
            return None
        self._socket_cache = (cached, path)
        return path

    def _channel(self, argv, stdin=None, stdout=None):
        """(rc, stdout, stderr) of argv run through the container's channel, or None: use podman exec.

        stdin: bytes or a seekable binary file; stdout: None, or a binary file to stream it into.
        """
        path = self._channel_socket()
        if path is None:
            return None
        for attempt in range(3):
            try:
                return podman_channel.request(path, argv, stdin=stdin, stdout=stdout)
            except podman_channel.Unavailable as e:
                display.vvv(f"no channel at {path} ({e}): opening one", host=self._container)
            except podman_channel.Lost:
                raise AnsibleConnectionFailure(
                    f"podman cannot run commands in the container {self._container}: its exec ended while "
                    "a command ran (the container stopped or restarted). Start it (playbooks/start.yml) "
                    "or create it (playbooks/create.yml)"
                ) from None
            for stream in (stdin, stdout):  # nothing of it went through: start afresh
                if hasattr(stream, "seek"):
                    stream.seek(0)
                    if stream is stdout:
                        stream.truncate()
            if attempt == 2 or not self._open_channel(path):
                break
        self._no_channel = True
        return None

    def _open_channel(self, path):
        command = self._podman_command() + self._exec_args(True)
        persist = self.get_option("control_persist")
        display.vvv(f"CHANNEL {command} at {path}", host=self._container)
        status = podman_channel.ensure(path, persist, command, retry_after=persist)
        if status.get("ok"):
            return True
        self._failed(status.get("rc"), to_bytes(status.get("stderr") or ""))
        why = status.get("stderr")
        display.vvv(f"no channel into the container ({why}): one podman exec per command", host=self._container)
        return False

    def reset(self):
        """meta: reset_connection: the next command opens a new channel (fresh user, groups, environment)."""
        path = self._channel_socket()
        if path is not None:
            podman_channel.stop(path)

    # ------------------------------------------------------------ the connection's API

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        argv = shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        result = self._channel(argv, stdin=in_data)
        if result is not None:
            return result
        stdin = subprocess.PIPE if in_data is not None else subprocess.DEVNULL
        proc = self._podman(self._exec_args(in_data is not None) + argv, stdin=stdin)
        stdout, stderr = proc.communicate(in_data)
        self._failed(proc.returncode, stderr)
        return proc.returncode, stdout, stderr

    def _transfer(self, command, what, stdin=None, stdout=None):
        argv = ["/bin/sh", "-c", command]
        result = self._channel(argv, stdin=stdin, stdout=stdout)
        if result is None:
            streams = {"stdin": stdin} if stdin is not None else {"stdout": stdout}
            proc = self._podman(self._exec_args(stdin is not None) + argv, **streams)
            dummy, stderr = proc.communicate()
            self._failed(proc.returncode, stderr)
            result = proc.returncode, b"", stderr
        if result[0] != 0:
            raise AnsibleError(f"{what} in container {self._container} failed: {to_native(result[2].strip())}")

    @ensure_connect
    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv(f"PUT {in_path} TO {out_path}", host=self._container)
        try:
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as source:
                self._transfer(f"cat > {shlex.quote(out_path)}", f"copying {in_path} to {out_path}", stdin=source)
        except OSError as e:
            raise AnsibleFileNotFound(f"cannot read {in_path} on the controller: {e}") from None

    @ensure_connect
    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv(f"FETCH {in_path} TO {out_path}", host=self._container)
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb") as target:
            self._transfer(f"cat {shlex.quote(in_path)}", f"fetching {in_path} to {out_path}", stdout=target)

    def close(self):
        # The channel outlives the task on purpose (control_persist); this task is done with it.
        self._connected = False
