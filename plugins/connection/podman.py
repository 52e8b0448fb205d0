# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: podman
short_description: Run tasks in a local node's podman container, one C(podman exec) per task
version_added: "0.3.0"
description:
  - How the controller reaches a node of the local target (a systemd container made by
    M(ollama_cloud.engine.local_node)), and what the Molecule scenarios use.
  - Unlike C(containers.podman.podman), it pipelines modules (C(podman exec -i) with the module on
    standard input), so a module task costs one C(podman exec) instead of about five (make a
    temporary directory, C(podman cp), C(chown), run, clean up); whole plays run two to three times
    faster.
  - Files are copied through C(podman exec -i) too, never with C(podman cp) (which pauses the
    container) nor through the container's mount point (a symbolic link inside the container
    would resolve on the controller).
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
"""

import shlex
import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    """podman exec, with pipelining."""

    transport = "ollama_cloud.engine.podman"
    has_pipelining = True

    def _podman(self, args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE):
        executable = self.get_option("podman_executable")
        binary = shutil.which(executable)
        if not binary:
            raise AnsibleError(f"{executable} was not found on the controller's PATH: install podman")
        cmd = [binary] + shlex.split(self.get_option("podman_extra_args") or "") + list(args)
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
        # Nothing to open: every call is its own podman exec. A missing or stopped container is
        # reported by the first one (see _failed), which costs nothing when all is well.
        self._connected = True
        return self

    def _failed(self, proc, stderr):
        """podman's own failure (exit 125, e.g. no such container) is an unreachable node."""
        if proc.returncode == 125 and stderr.startswith(b"Error: "):
            raise AnsibleConnectionFailure(
                f"podman cannot run commands in the container {self._container}: "
                f"{to_native(stderr.strip())}. Start it (playbooks/start.yml) or create it (playbooks/create.yml)"
            )

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        args = self._exec_args(in_data is not None) + shlex.split(to_native(cmd, errors="surrogate_or_strict"))
        proc = self._podman(args, stdin=subprocess.PIPE if in_data is not None else subprocess.DEVNULL)
        stdout, stderr = proc.communicate(in_data)
        self._failed(proc, stderr)
        return proc.returncode, stdout, stderr

    def _transfer(self, command, what, **streams):
        proc = self._podman(self._exec_args("stdin" in streams) + ["/bin/sh", "-c", command], **streams)
        dummy, stderr = proc.communicate()
        self._failed(proc, stderr)
        if proc.returncode != 0:
            raise AnsibleError(f"{what} in container {self._container} failed: {to_native(stderr.strip())}")

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
        self._connected = False
