#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: local_node
short_description: A local Ollama node as a systemd container (the C(cloud=local) provider)
version_added: 0.1.0
description:
  - Creates, starts, stops and removes a podman container that boots systemd and plays an
    Ollama node, with the same states and the same returned node record as the AWS and GCP
    providers.
  - The Ollama API port is published on 127.0.0.1 only; nothing else is exposed.
  - Idempotent by name plus our deployment label. A container with the same name that does
    not carry the label is never touched.
  - A container that was created by this run but never finished booting is removed before
    the module fails, so nothing is left half-built.
options:
  name:
    description: Container name, also the node's hostname.
    type: str
    required: true
  deployment:
    description: Deployment label; marks the container as ours. Lowercase letters, digits, dashes.
    type: str
    required: true
  state:
    description:
      - C(present) creates the node if missing (running) and leaves an existing one as it is.
      - C(running) and C(stopped) also start or stop it; C(absent) removes it.
    type: str
    choices: [present, running, stopped, absent]
    default: running
  model:
    description: Model the node serves, recorded as a label.
    type: str
  environment:
    description: Environment (dev, staging, prod), recorded as a label.
    type: str
  image:
    description: A systemd image to boot (C(rig/setup image) builds a Debian 12 one).
    type: str
    default: localhost/oce-node:bookworm
  network:
    description: Podman network to join; the podman default network when omitted.
    type: str
  extra_hosts:
    description: Extra C(/etc/hosts) entries, name to IP (for example a private model registry).
    type: dict
    default: {}
  api_port:
    description: Port on 127.0.0.1 that forwards to Ollama's port 11434 in the node. C(0) publishes nothing.
    type: int
    default: 11434
  capabilities:
    description:
      - Linux capabilities added to podman's default set (C(podman run --cap-add)), with or without
        the C(CAP_) prefix, in any case. A node whose host firewall the C(hardening) role manages
        needs C(NET_ADMIN) (nftables in the node's own network namespace).
      - C(ALL) is refused; name the capabilities the node needs.
      - Read only when the node is created. An existing node that lacks one of them is left as it
        is, with a warning; remove it (C(state=absent)) to create it again with them.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  boot_timeout:
    description: Seconds to wait for systemd in the node to finish booting.
    type: int
    default: 120
  podman_executable:
    description: The podman program.
    type: str
    default: podman
attributes:
  check_mode:
    support: full
    description: Reports what would change and returns the podman command it would run.
  diff_mode:
    support: full
    description: Shows the node state before and after.
notes:
  - On machines where podman needs settings (runtime, cgroup manager, ulimits) pass them through
    the C(CONTAINERS_CONF) environment variable; C(rig/setup --env) prints it.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Create a local node for the demo
  ollama_cloud.engine.local_node:
    name: oce-demo
    deployment: demo
    model: gemma3:270m
    network: oce-rig
    extra_hosts:
      models.internal: 10.89.42.2

- name: A node whose host firewall the hardening role manages (nftables needs CAP_NET_ADMIN)
  ollama_cloud.engine.local_node:
    name: oce-demo
    deployment: demo
    network: oce-rig
    capabilities: [NET_ADMIN]

- name: Stop it (the models stay on its disk)
  ollama_cloud.engine.local_node:
    name: oce-demo
    deployment: demo
    state: stopped

- name: Remove it
  ollama_cloud.engine.local_node:
    name: oce-demo
    deployment: demo
    state: absent
"""

RETURN = r"""
node:
  description: The node record, the same keys on every provider. Empty after C(absent).
  returned: always
  type: dict
  sample:
    cloud: local
    name: oce-demo
    id: 3f2a9c0d11aa
    state: running
    deployment: demo
    model: gemma3:270m
    environment: dev
    instance_type: podman-container
    region: localhost
    private_ip: 10.89.42.7
    api_url: http://127.0.0.1:11434
    uptime_seconds: 42
    image: localhost/oce-node:bookworm
command:
  description: The podman command that creates the node (run, or that would run in check mode).
  returned: when the node is created
  type: list
  elements: str
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import (
    deployment_labels,
    is_ours,
    validate_deployment,
)
from ansible_collections.ollama_cloud.engine.plugins.module_utils.podman import (
    Podman,
    PodmanError,
    container_node,
)

CAPABILITY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


def capability_names(capabilities):
    """NET_ADMIN for net_admin, CAP_NET_ADMIN or NET_ADMIN; sorted, without repeats."""
    names = set()
    for cap in capabilities or []:
        name = str(cap).strip().upper()
        names.add(name[4:] if name.startswith("CAP_") else name)
    return sorted(names)


def capability_problems(capabilities):
    problems = []
    for name in capability_names(capabilities):
        if name == "ALL":
            problems.append("capabilities: ALL would give the node the host's powers; name the capabilities it needs")
        elif not CAPABILITY_RE.match(name):
            problems.append("capabilities: %r is not a capability name (such as NET_ADMIN)" % name)
    return problems


def missing_capabilities(info, capabilities):
    """Requested capabilities an existing container was not created with."""
    added = (info.get("HostConfig") or {}).get("CapAdd") or []
    have = set(capability_names(added))
    return [name for name in capability_names(capabilities) if name not in have]


def run_args(params):
    labels = deployment_labels(params["deployment"], params["model"], params["environment"])
    args = ["run", "-d", "--name", params["name"], "--hostname", params["name"], "--systemd=always"]
    for key, value in sorted(labels.items()):
        args += ["--label", f"{key}={value}"]
    if params["network"]:
        args += ["--network", params["network"]]
    for host, ip in sorted(params["extra_hosts"].items()):
        args += ["--add-host", f"{host}:{ip}"]
    for name in capability_names(params.get("capabilities")):
        args += ["--cap-add", name]
    if params["api_port"]:
        # Loopback only: the node is private, as on the clouds.
        args += ["-p", "127.0.0.1:%d:11434" % params["api_port"]]
    return args + [params["image"], "/sbin/init"]


def check_inputs(module, podman):
    """Everything that can be wrong before anything is created."""
    params = module.params
    problems = [validate_deployment(params["deployment"])]
    if not 0 <= params["api_port"] <= 65535:
        problems.append("api_port %d is not a TCP port (0-65535)" % params["api_port"])
    problems += capability_problems(params["capabilities"])
    if not podman.image_exists(params["image"]):
        problems.append("image {} does not exist: build it with `rig/setup image` or set image".format(params["image"]))
    if params["network"] and not podman.network_exists(params["network"]):
        problems.append("podman network {} does not exist: create it or leave network unset".format(params["network"]))
    problems = [p for p in problems if p]
    if problems:
        module.fail_json(msg="; ".join(problems))


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "deployment": {"type": "str", "required": True},
            "state": {"type": "str", "default": "running", "choices": ["present", "running", "stopped", "absent"]},
            "model": {"type": "str"},
            "environment": {"type": "str"},
            "image": {"type": "str", "default": "localhost/oce-node:bookworm"},
            "network": {"type": "str"},
            "extra_hosts": {"type": "dict", "default": {}},
            "api_port": {"type": "int", "default": 11434},
            "capabilities": {"type": "list", "elements": "str", "default": []},
            "boot_timeout": {"type": "int", "default": 120},
            "podman_executable": {"type": "str", "default": "podman"},
        },
        supports_check_mode=True,
    )
    params = module.params
    podman = Podman(module, params["podman_executable"])
    name, state = params["name"], params["state"]
    result = {"changed": False, "node": {}}

    try:
        info = podman.inspect(name)
        if info is not None and not is_ours((info.get("Config") or {}).get("Labels"), params["deployment"]):
            module.fail_json(
                msg="a container named {} exists but is not part of deployment {}: "
                "pick another name or remove it yourself".format(name, params["deployment"])
            )
        before = container_node(info, params["api_port"])["state"] if info else "absent"
        if info is not None and state != "absent":
            missing = missing_capabilities(info, params["capabilities"])
            if missing:
                module.warn(
                    "node {} was created without the capabilities {}, which are only added at creation: "
                    "remove it (state=absent) and create it again to have them".format(name, ", ".join(missing))
                )

        if state == "absent":
            if info is not None:
                result["changed"] = True
                if not module.check_mode:
                    podman.run("rm", "-f", "-t", "10", name)
            result["diff"] = {"before": {"state": before}, "after": {"state": "absent"}}
            module.exit_json(**result)

        if info is None:
            check_inputs(module, podman)
            result["command"] = [podman.executable] + run_args(params)
            result["changed"] = True
            if module.check_mode:
                result["diff"] = {"before": {"state": "absent"}, "after": {"state": "running"}}
                module.exit_json(**result)
            podman.run(*run_args(params))
            try:
                podman.wait_for_systemd(name, params["boot_timeout"])
            except PodmanError:
                podman.run("rm", "-f", "-t", "0", name, check=False)
                raise
        elif state == "running" and before != "running":
            result["changed"] = True
            if not module.check_mode:
                podman.run("start", name)
                podman.wait_for_systemd(name, params["boot_timeout"])
        elif state == "stopped" and before not in ("stopped",):
            result["changed"] = True
            if not module.check_mode:
                podman.run("stop", "-t", "30", name)

        info = podman.inspect(name) if not module.check_mode else info
        result["node"] = container_node(info, params["api_port"]) if info else {}
        after = state if module.check_mode and state != "present" else result["node"].get("state", before)
        result["diff"] = {"before": {"state": before}, "after": {"state": after}}
    except PodmanError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
