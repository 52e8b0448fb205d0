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
    gateway: 10.89.42.1
nodes:
  description:
    - The records of every node of O(deployment) after the task, sorted by name, as
      M(ollama_cloud.engine.local_node_info) returns them (in check mode, as they are now).
    - The C(node) role reads them instead of looking the deployment up again.
  returned: always
  type: list
  elements: dict
  version_added: 0.3.0
command:
  description: The podman command that creates the node (run, or that would run in check mode).
  returned: when the node is created
  type: list
  elements: str
"""

import re

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, node_module, podman
from ansible_collections.ollama_cloud.engine.plugins.module_utils.fleet import (
    deployment_labels,
    is_ours,
    validate_deployment,
)
from ansible_collections.ollama_cloud.engine.plugins.module_utils.podman import container_node

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


def check_inputs(params, client):
    """Everything that can be wrong before anything is created, as sentences."""
    problems = [validate_deployment(params["deployment"])]
    if not 0 <= params["api_port"] <= 65535:
        problems.append("api_port %d is not a TCP port (0-65535)" % params["api_port"])
    problems += capability_problems(params["capabilities"])
    if not client.image_exists(params["image"]):
        problems.append("image {} does not exist: build it with `rig/setup image` or set image".format(params["image"]))
    if params["network"] and not client.network_exists(params["network"]):
        problems.append("podman network {} does not exist: create it or leave network unset".format(params["network"]))
    return [p for p in problems if p]


class LocalNode(cloud.Provider):
    """The local_node side of cloud.converge: a systemd container plays the node."""

    remove_verb = "remove"

    def __init__(self, client, params, warn=None):
        self.podman = client
        self.params = params
        self.warn = warn or (lambda msg: None)

    def find(self):
        params, name = self.params, self.params["name"]
        info = self.podman.inspect(name)
        if info is None:
            return []
        if not is_ours((info.get("Config") or {}).get("Labels"), params["deployment"]):
            raise cloud.CloudError(
                "a container named {} exists but is not part of deployment {}: "
                "pick another name or remove it yourself".format(name, params["deployment"])
            )
        missing = missing_capabilities(info, params["capabilities"]) if params["state"] != "absent" else []
        if missing:
            self.warn(
                "node {} was created without the capabilities {}, which are only added at creation: "
                "remove it (state=absent) and create it again to have them".format(name, ", ".join(missing))
            )
        return [info]

    def ident(self, raw):
        return raw.get("Name", "").lstrip("/")

    def state(self, raw):
        return self.node(raw)["state"]

    def node(self, raw):
        return container_node(raw, self.params["api_port"])

    def plan(self):
        problems = check_inputs(self.params, self.podman)
        if problems:
            raise cloud.CloudError("; ".join(problems))
        return run_args(self.params)

    def preview(self, plan):
        return {"command": [self.podman.executable] + plan}

    def create(self, plan):
        name = self.params["name"]
        try:
            self.podman.run(*plan)
            self.podman.wait_for_systemd(name, self.params["boot_timeout"])
        except podman.PodmanError:
            # A container podman made but could not start (a port in use) is left "created", as is
            # one that never booted: this run's, since find() refused any other of that name.
            self.podman.run("rm", "-f", "-t", "0", name, check=False)
            raise
        return self.podman.inspect(name), {}

    def start(self, raw):
        name = self.ident(raw)
        self.podman.run("start", name)
        self.podman.wait_for_systemd(name, self.params["boot_timeout"])
        return raw

    def stop(self, raw):
        self.podman.run("stop", "-t", "30", self.ident(raw))
        return raw

    def delete(self, raw):
        self.podman.run("rm", "-f", "-t", "10", self.ident(raw))

    def refresh(self, raw):
        return self.podman.inspect(self.ident(raw))


def main():
    base = node_module.NodeModule(
        podman,
        {
            "image": {"type": "str", "default": "localhost/oce-node:bookworm"},
            "network": {"type": "str"},
            "extra_hosts": {"type": "dict", "default": {}},
            "api_port": {"type": "int", "default": 11434},
            "capabilities": {"type": "list", "elements": "str", "default": []},
            "boot_timeout": {"type": "int", "default": 120},
        },
        node=("name", "deployment", "state", "model", "environment"),
    )
    params = base.params

    def work():
        client = base.client(base.module)
        node = LocalNode(client, params, base.module.warn)
        result = cloud.converge(node, params["state"], base.check_mode, params["deployment"], params["name"])
        result["nodes"] = node_module.records(client, podman.find_nodes, podman.record, params["deployment"])
        return result

    base.run(work, retries=False)


if __name__ == "__main__":
    main()
