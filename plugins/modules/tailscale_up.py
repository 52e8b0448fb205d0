#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: tailscale_up
short_description: Join the node to a tailnet without its auth key touching a command line or a log
version_added: "0.2.0"
description:
  - Brings C(tailscaled) on the node up with the wanted settings, or down, or logs it out.
  - The auth key is read only when the node must log in. It comes from O(auth_key) (pass it from a
    vault) or, better, from the cloud's secret store, read on the node with the node's own identity
    (O(auth_key_secret)); it is written to a private temporary file for C(tailscale up
    --auth-key=file:...) and removed at once. It never appears in argv, the journal or the result.
  - Idempotent through C(tailscale status --json) and C(tailscale debug prefs); settings that do not
    need a new login (hostname, SSH, DNS) are changed with C(tailscale set). A node brought down
    (V(down)) comes up again with the login it kept, without reading the auth key.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
options:
  state:
    description:
      - V(up) logs in when needed and runs; V(down) stops using the tailnet but keeps the login;
        V(logout) removes the node's login (the node must be brought up with a key again).
    type: str
    choices: [up, down, logout]
    default: up
  auth_key:
    description: A Tailscale or Headscale auth key. Used only when the node must log in.
    type: str
  auth_key_secret:
    description:
      - Where the node reads its auth key itself, with its instance role (AWS) or service account
        (GCP). Preferred over O(auth_key) on the clouds.
    type: dict
    suboptions:
      source:
        description: The secret store.
        type: str
        required: true
        choices: [aws_ssm, aws_secretsmanager, gcp_secretmanager]
      name:
        description:
          - The parameter name (SSM), secret id (Secrets Manager) or
            C(projects/P/secrets/S[/versions/V]) (Secret Manager).
        type: str
        required: true
      region:
        description: AWS region; from the instance metadata when omitted.
        type: str
      endpoint:
        description: Endpoint URL of the secret store (a VPC endpoint, or a test double).
        type: str
      metadata_endpoint:
        description: Base URL of the instance metadata service (tests only).
        type: str
  login_server:
    description: The control server (a Headscale URL). Empty means Tailscale's own.
    type: str
    default: ""
  hostname:
    description: The node's name in the tailnet.
    type: str
    required: true
  advertise_tags:
    description: ACL tags such as C(tag:ollama); the key must be allowed to set them.
    type: list
    elements: str
    default: []
  ssh:
    description: Run Tailscale SSH on the node.
    type: bool
    default: false
  accept_dns:
    description: Use the tailnet's DNS settings on the node.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the node to be running in the tailnet.
    type: int
    default: 60
  tailscale_bin:
    description: The tailscale command.
    type: str
    default: tailscale
attributes:
  check_mode:
    support: full
    description: Reports what would change; reads no secret and runs no C(up), C(set), C(down) or C(logout).
  diff_mode:
    support: full
    description: Shows the node's tailnet settings and state before and after.
notes:
  - An ephemeral key makes a node that is deleted while it is stopped; use a reusable,
    non-ephemeral key for nodes that stop and start.
"""

EXAMPLES = r"""
- name: Join the tailnet, reading the key from SSM with the instance role
  ollama_cloud.engine.tailscale_up:
    hostname: "{{ inventory_hostname }}"
    advertise_tags: [tag:ollama]
    auth_key_secret:
      source: aws_ssm
      name: /oce/prod/tailscale

- name: Join a Headscale tailnet with a key from a vault
  ollama_cloud.engine.tailscale_up:
    hostname: node-1
    login_server: https://headscale.example.internal
    auth_key: "{{ vault_tailscale_auth_key }}"
  no_log: true
"""

RETURN = r"""
backend_state:
  description: C(BackendState) after the run.
  returned: always
  type: str
  sample: Running
tailscale_ips:
  description: The node's tailnet addresses.
  returned: always
  type: list
  elements: str
  sample: ["100.64.0.1", "fd7a:115c:a1e0::1"]
dns_name:
  description: The node's MagicDNS name, when the tailnet has one.
  returned: always
  type: str
  sample: node-1.tailnet.example.
logged_in:
  description: Whether this run logged the node in (and so read the auth key).
  returned: always
  type: bool
"""

import json
import os
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ollama_cloud.engine.plugins.module_utils.node_secrets import (
    SecretError,
    read_secret,
)

DEFAULT_CONTROL = "https://controlplane.tailscale.com"


class Tailscale:
    def __init__(self, module):
        self.module = module
        self.bin = module.get_bin_path(module.params["tailscale_bin"], required=True)

    def run(self, *args, check=True):
        rc, out, err = self.module.run_command([self.bin] + list(args))
        if check and rc != 0:
            self.module.fail_json(msg=f"tailscale {args[0]} failed (rc={rc}): {(err or out).strip()}")
        return rc, out, err

    def state(self):
        rc, out, err = self.run("status", "--json", check=False)
        if not out.strip().startswith("{"):
            self.module.fail_json(
                msg=f"tailscaled does not answer ({(err or out).strip()}): start it with "
                "`systemctl start tailscaled` (the tailscale role does) and run again"
            )
        _rc, prefs, _err = self.run("debug", "prefs")
        return json.loads(out), json.loads(prefs)


def wanted(params):
    return {
        # As current() reads it: a login server given with a trailing slash is the same server.
        "ControlURL": (params["login_server"] or DEFAULT_CONTROL).rstrip("/"),
        "Hostname": params["hostname"],
        "AdvertiseTags": sorted(params["advertise_tags"]),
        "RunSSH": params["ssh"],
        "CorpDNS": params["accept_dns"],
    }


def current(prefs):
    return {
        "ControlURL": (prefs.get("ControlURL") or DEFAULT_CONTROL).rstrip("/"),
        "Hostname": prefs.get("Hostname") or "",
        "AdvertiseTags": sorted(prefs.get("AdvertiseTags") or []),
        "RunSSH": bool(prefs.get("RunSSH")),
        "CorpDNS": bool(prefs.get("CorpDNS")),
    }


def setting_args(want):
    args = [
        "--hostname=" + want["Hostname"],
        "--ssh=" + str(want["RunSSH"]).lower(),
        "--accept-dns=" + str(want["CorpDNS"]).lower(),
    ]
    return args


def auth_key(module):
    params = module.params
    if params["auth_key_secret"]:
        secret = params["auth_key_secret"]
        try:
            return read_secret(
                secret["source"], secret["name"], secret["region"], secret["endpoint"], secret["metadata_endpoint"]
            )
        except SecretError as exc:
            module.fail_json(msg=f"{exc}; the node needs its auth key to join the tailnet")
    if params["auth_key"]:
        return params["auth_key"]
    module.fail_json(
        msg="the node is not logged in to the tailnet and has no auth key: set auth_key (from a vault) "
        "or auth_key_secret (read on the node from SSM, Secrets Manager or Secret Manager)"
    )


def up_args(module, want):
    """``tailscale up`` with every setting we manage (--reset: the rest back to its default)."""
    args = ["up", "--reset", "--timeout=%ds" % module.params["timeout"]] + setting_args(want)
    if want["ControlURL"] != DEFAULT_CONTROL:
        args.append("--login-server=" + want["ControlURL"])
    if want["AdvertiseTags"]:
        args.append("--advertise-tags=" + ",".join(want["AdvertiseTags"]))
    return args


def log_in(module, tailscale, want):
    key = auth_key(module)
    private_dir = tempfile.mkdtemp(prefix="tailscale-up-")  # 0700, owned by the module's user
    key_file = os.path.join(private_dir, "auth-key")
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        rc, out, err = tailscale.run(*up_args(module, want), "--auth-key=file:" + key_file, check=False)
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)
    if rc != 0:
        message = (err or out).strip().replace(key, "<auth key>")
        module.fail_json(
            msg=f"tailscale up failed (rc={rc}): {message}. Check that the key is valid, not expired and "
            f"allowed to set the tags, and that {want['ControlURL']} is reachable from the node"
        )


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "default": "up", "choices": ["up", "down", "logout"]},
            "auth_key": {"type": "str", "no_log": True},
            "auth_key_secret": {
                "type": "dict",
                "no_log": False,  # where the key is, not the key
                "options": {
                    "source": {
                        "type": "str",
                        "required": True,
                        "choices": ["aws_ssm", "aws_secretsmanager", "gcp_secretmanager"],
                    },
                    "name": {"type": "str", "required": True},
                    "region": {"type": "str"},
                    "endpoint": {"type": "str"},
                    "metadata_endpoint": {"type": "str"},
                },
            },
            "login_server": {"type": "str", "default": ""},
            "hostname": {"type": "str", "required": True},
            "advertise_tags": {"type": "list", "elements": "str", "default": []},
            "ssh": {"type": "bool", "default": False},
            "accept_dns": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 60},
            "tailscale_bin": {"type": "str", "default": "tailscale"},
        },
        mutually_exclusive=[["auth_key", "auth_key_secret"]],
        supports_check_mode=True,
    )
    params = module.params
    bad_tags = [t for t in params["advertise_tags"] if not t.startswith("tag:")]
    if bad_tags:
        module.fail_json(msg=f"advertise_tags must look like tag:name; not: {', '.join(bad_tags)}")
    tailscale = Tailscale(module)
    status, prefs = tailscale.state()
    backend = status.get("BackendState")
    # Logged in, with its node key: running, brought down (Stopped) or coming up (Starting).
    logged_in = backend in ("Running", "Stopped", "Starting") and not prefs.get("LoggedOut")
    want, have = wanted(params), current(prefs)
    result = {"changed": False, "logged_in": False}

    if params["state"] == "up":
        relogin = (
            not logged_in or have["ControlURL"] != want["ControlURL"] or have["AdvertiseTags"] != want["AdvertiseTags"]
        )
        # Down by hand: up again with the node key it has; no auth key read.
        start = not relogin and backend == "Stopped"
        reset = not relogin and not start and have != want
        result["changed"] = relogin or start or reset
        result["diff"] = {
            "before": dict(have, BackendState=backend),
            "after": dict(want, BackendState="Running"),
        }
        if not module.check_mode:
            if relogin:
                log_in(module, tailscale, want)
                result["logged_in"] = True
            elif start:
                tailscale.run(*up_args(module, want))
            elif reset:
                tailscale.run("set", *setting_args(want))
    elif params["state"] == "down" and prefs.get("WantRunning"):
        result["changed"] = True
        if not module.check_mode:
            tailscale.run("down")
    elif params["state"] == "logout" and not prefs.get("LoggedOut"):
        result["changed"] = True
        if not module.check_mode:
            tailscale.run("logout")

    status = tailscale.state()[0] if result["changed"] and not module.check_mode else status
    if params["state"] == "up" and not module.check_mode:
        deadline = time.monotonic() + params["timeout"]
        while status.get("BackendState") != "Running" and time.monotonic() < deadline:
            time.sleep(1)
            status = tailscale.state()[0]
        if status.get("BackendState") != "Running":
            module.fail_json(
                msg=f"the node is {status.get('BackendState')!r}, not Running, after {params['timeout']}s: "
                "see `journalctl -u tailscaled`",
                **result,
            )
    me = status.get("Self") or {}
    result.update(
        backend_state=status.get("BackendState", ""),
        tailscale_ips=me.get("TailscaleIPs") or [],
        dns_name=me.get("DNSName") or "",
    )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
