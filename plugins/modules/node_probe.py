#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_probe
short_description: Read in one module run what the roles compare on a node, changing nothing
version_added: 0.3.0
description:
  - Reads, in one run on the node, what a role compares with what it would write, so that a role
    runs only the steps whose result differs and skips a phase whole on a converged node, instead
    of one M(ansible.builtin.stat), M(ansible.builtin.command) or M(ansible.builtin.systemd_service)
    run per file and unit.
  - Changes nothing, in check mode or not. The commands it runs (C(dpkg-query), C(systemctl show),
    C(systemd-analyze)) are started together and read afterwards, so the run costs its slowest
    command. Packages are read from dpkg's database, never from a refreshed apt cache.
options:
  paths:
    description: Paths described without following a final symlink (see RV(paths)).
    type: list
    elements: path
    default: []
  secret_sha1:
    description:
      - Paths of files that hold secrets, each with the sha1 its content must have. Only whether
        it matches is returned (C(sha1_matches) in RV(paths)); the sha1 of such a file never leaves the node.
    type: dict
    default: {}
  versions_dir:
    description: A directory whose subdirectories named like O(version_pattern) are listed (RV(versions)).
    type: path
  version_pattern:
    description: Regular expression the names of the versions' directories match.
    type: str
    default: '^[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?$'
  user:
    description: A user described in RV(user).
    type: str
  groups:
    description: Groups whose gid is returned in RV(groups).
    type: list
    elements: str
    default: []
  packages:
    description: Packages whose dpkg status is read (RV(packages)).
    type: list
    elements: str
    default: []
  units:
    description: systemd units whose state is read with C(systemctl show) (RV(units)).
    type: list
    elements: str
    default: []
  verify_unit:
    description: The path of a unit file checked with C(systemd-analyze verify) when it exists (RV(verify)).
    type: path
  verify_units:
    description:
      - Installed units (names, such as the instances of a template unit) checked together with
        C(systemd-analyze verify --recursive-errors=no) (RV(verify_units)).
    type: list
    elements: str
    default: []
  security_unit:
    description:
      - A unit whose C(systemd-analyze security) is returned in RV(security). Read only when the file
        O(verify_unit) exists and O(units) lists this unit, loaded (the unit the role just wrote);
        RV(security) is null otherwise.
    type: str
  api_url:
    description: Base URL of an Ollama API asked once for C(/api/version), without a proxy (RV(api_version)).
    type: str
  api_timeout:
    description: Seconds to wait for that answer.
    type: int
    default: 3
  pci_gpus:
    description: Whether to list the NVIDIA display and 3D controllers on the PCI bus (RV(pci_gpus)).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads the same in check mode; it never changes anything.
  diff_mode:
    support: none
    description: It changes nothing, so there is nothing to show.
notes:
  - Python's standard library only, on the node.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Read the node once
  ollama_cloud.engine.node_probe:
    paths: [/etc/systemd/system/ollama.service, /usr/local/bin/ollama]
    packages: [zstd]
    units: [ollama.service]
    verify_unit: /etc/systemd/system/ollama.service
    api_url: http://127.0.0.1:11434
  register: probe

- name: Install zstd only where dpkg does not have it
  ansible.builtin.apt:
    name: zstd
  when: not probe.packages.zstd
"""

RETURN = r"""
paths:
  description:
    - Per path of O(paths) and O(secret_sha1), C(type) (V(absent), V(file), V(directory), V(link),
      V(other)), C(mode) (such as V(0644); null for links), C(owner), C(group), C(target) (links),
      C(sha1) (regular files) or, for the files of O(secret_sha1), only C(sha1_matches).
  returned: always
  type: dict
  sample: {/usr/local/bin/ollama: {type: link, target: /opt/ollama/0.24.0/bin/ollama, mode: null, owner: root,
           group: root, sha1: null, sha1_matches: null}}
versions:
  description: The directories of O(versions_dir) named like O(version_pattern), sorted.
  returned: always
  type: list
  elements: str
  sample: [0.23.1, 0.24.0]
user:
  description: O(user)'s name, uid, group, groups, home, shell and comment; null when there is no such user.
  returned: always
  type: dict
groups:
  description: Per group of O(groups), its gid, or null when there is no such group.
  returned: always
  type: dict
  sample: {video: 44, render: null}
packages:
  description: Per package of O(packages), whether dpkg has it installed.
  returned: always
  type: dict
  sample: {zstd: true}
units:
  description: Per unit of O(units), its C(LoadState), C(UnitFileState), C(ActiveState) and C(NeedDaemonReload).
  returned: always
  type: dict
  sample: {ollama.service: {LoadState: loaded, UnitFileState: enabled, ActiveState: active, NeedDaemonReload: "no"}}
verify:
  description: C(rc) and C(stderr) of C(systemd-analyze verify) of O(verify_unit); null when it does not exist.
  returned: always
  type: dict
verify_units:
  description: C(rc) and C(stderr) of C(systemd-analyze verify) of O(verify_units); null when none is given.
  returned: always
  type: dict
security:
  description: C(rc), C(stdout) and C(stderr) of C(systemd-analyze security) of O(security_unit); null when not loaded.
  returned: always
  type: dict
api_version:
  description: The version the API at O(api_url) answered; null when it did not.
  returned: always
  type: str
api_error:
  description: Why the API at O(api_url) did not answer; null when it did.
  returned: always
  type: str
pci_gpus:
  description: The PCI addresses of the NVIDIA display (0x0300) and 3D (0x0302) controllers, when O(pci_gpus).
  returned: always
  type: list
  elements: str
  sample: ["0000:00:1e.0"]
"""

import concurrent.futures
import glob
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import urllib.request

from ansible.module_utils.basic import AnsibleModule

# Where the commands are, whatever PATH the connection gives.
SEARCH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
# Output to parse: the C locale, no pager, no colours.
COMMAND_ENV = {"LC_ALL": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}

# Ollama's releases (and its release candidates): the default of version_pattern.
VERSION_PATTERN = r"^[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?$"
UNIT_PROPERTIES = ("Id", "LoadState", "UnitFileState", "ActiveState", "NeedDaemonReload")


def _name(lookup, ident):
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def sha1_file(path):
    digest = hashlib.sha1()  # nosec: compared with Ansible's own checksums (sha1), not a signature
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_path(path, secret_sha1=None):
    """What is at path, without following a final symlink."""
    info = dict.fromkeys(("type", "mode", "owner", "group", "target", "sha1", "sha1_matches"))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        info["type"] = "absent"
        return info
    info.update(
        owner=_name(pwd.getpwuid, st.st_uid),
        group=_name(grp.getgrgid, st.st_gid),
        mode="%04o" % stat.S_IMODE(st.st_mode),
    )
    if stat.S_ISLNK(st.st_mode):
        info.update(type="link", target=os.readlink(path), mode=None)
    elif stat.S_ISDIR(st.st_mode):
        info["type"] = "directory"
    elif stat.S_ISREG(st.st_mode):
        info["type"] = "file"
        digest = sha1_file(path)
        if secret_sha1 is None:
            info["sha1"] = digest
        else:
            info["sha1_matches"] = digest == secret_sha1
    else:
        info["type"] = "other"
    return info


def versions_in(directory, pattern):
    if not directory or not os.path.isdir(directory):
        return []
    regex = re.compile(pattern)
    return sorted(
        name
        for name in os.listdir(directory)
        if regex.search(name)
        and os.path.isdir(os.path.join(directory, name))
        and not os.path.islink(os.path.join(directory, name))
    )


def describe_user(name):
    if not name:
        return None
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    return {
        "name": pw.pw_name,
        "uid": pw.pw_uid,
        "group": _name(grp.getgrgid, pw.pw_gid),
        "groups": sorted(g.gr_name for g in grp.getgrall() if pw.pw_name in g.gr_mem),
        "home": pw.pw_dir,
        "shell": pw.pw_shell,
        "comment": pw.pw_gecos,
    }


def describe_groups(names):
    out = {}
    for name in names:
        try:
            out[name] = grp.getgrnam(name).gr_gid
        except KeyError:
            out[name] = None
    return out


def nvidia_gpus(root="/sys/bus/pci/devices"):
    """NVIDIA (vendor 0x10de) display (0x0300) and 3D (0x0302) controllers."""
    found = []
    for dev in sorted(glob.glob(os.path.join(root, "*"))):
        try:
            with open(os.path.join(dev, "vendor")) as f:
                vendor = f.read().strip()
            with open(os.path.join(dev, "class")) as f:
                klass = f.read().strip()
        except OSError:
            continue
        if vendor == "0x10de" and klass.startswith(("0x0300", "0x0302")):
            found.append(os.path.basename(dev))
    return found


def parse_dpkg(stdout, names):
    """`dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\n'`: installed when the status is ii."""
    installed = dict.fromkeys(names, False)
    for line in stdout.splitlines():
        package, _sep, status = line.partition("\t")
        package = package.split(":", 1)[0]  # zstd:amd64
        if package in installed and status.startswith("ii"):
            installed[package] = True
    return installed


def parse_units(stdout, names):
    """`systemctl show -p ...` prints one block per unit, in the order asked, separated by a blank line."""
    units = {name: dict.fromkeys(UNIT_PROPERTIES[1:]) for name in names}
    for block in stdout.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if props.get("Id") in units:
            units[props["Id"]].update({k: v for k, v in props.items() if k != "Id"})
    return units


def api_version(url, timeout):
    """(version, error) of one GET <url>/api/version, without any proxy: the role asks its own node."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + "/api/version", timeout=timeout) as resp:  # nosec: the node's own API
            return json.loads(resp.read().decode("utf-8")).get("version"), None
    except (OSError, ValueError) as e:
        return None, str(e)


class Commands:
    """Start every command at once (a thread each, through ``module.run_command``), read them
    afterwards: the probe costs its slowest command."""

    def __init__(self, module):
        self.module = module
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4)
        self.running = {}

    def start(self, key, argv):
        path = self.module.get_bin_path(argv[0], opt_dirs=SEARCH_DIRS)
        if not path:
            return
        self.running[key] = self.pool.submit(
            self.module.run_command, [path] + argv[1:], environ_update=COMMAND_ENV, encoding="utf-8"
        )

    def result(self, key):
        future = self.running.pop(key, None)
        if future is None:
            return None
        rc, stdout, stderr = future.result()
        return {"rc": rc, "stdout": stdout, "stderr": stderr}


def probe(module, p):
    """What is on the node, for the module's parameters ``p`` (see RETURN)."""
    commands = Commands(module)
    if p["packages"]:
        commands.start("dpkg", ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"] + p["packages"])
    if p["units"]:
        commands.start("units", ["systemctl", "show", "-p", ",".join(UNIT_PROPERTIES)] + p["units"])
    unit_file = p["verify_unit"] and os.path.exists(p["verify_unit"])
    if unit_file:
        commands.start("verify", ["systemd-analyze", "verify", p["verify_unit"]])
    if p["verify_units"]:
        commands.start("verify_units", ["systemd-analyze", "verify", "--recursive-errors=no"] + p["verify_units"])
    if p["security_unit"] and unit_file:
        commands.start("security", ["systemd-analyze", "security", "--no-pager", p["security_unit"]])

    secrets = p["secret_sha1"]
    result = {
        "paths": {path: describe_path(path, secrets.get(path)) for path in p["paths"] + sorted(secrets)},
        "versions": versions_in(p["versions_dir"], p["version_pattern"]),
        "user": describe_user(p["user"]),
        "groups": describe_groups(p["groups"]),
        "pci_gpus": nvidia_gpus() if p["pci_gpus"] else [],
        "api_version": None,
        "api_error": None,
    }
    if p["api_url"]:
        result["api_version"], result["api_error"] = api_version(p["api_url"], p["api_timeout"])

    dpkg = commands.result("dpkg")
    result["packages"] = parse_dpkg(dpkg["stdout"] if dpkg else "", p["packages"])
    units = commands.result("units")
    result["units"] = parse_units(units["stdout"] if units else "", p["units"])
    for key in ("verify", "verify_units"):
        verify = commands.result(key)
        result[key] = {"rc": verify["rc"], "stderr": verify["stderr"]} if verify else None
    security = commands.result("security")
    loaded = (result["units"].get(p["security_unit"]) or {}).get("LoadState") == "loaded"
    result["security"] = security if security and loaded else None
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            # Only compared on the node; never in the result, nor logged with the task's arguments.
            "secret_sha1": {"type": "dict", "default": {}, "no_log": True},
            "versions_dir": {"type": "path"},
            "version_pattern": {"type": "str", "default": VERSION_PATTERN},
            "user": {"type": "str"},
            "groups": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "verify_unit": {"type": "path"},
            "verify_units": {"type": "list", "elements": "str", "default": []},
            "security_unit": {"type": "str"},
            "api_url": {"type": "str"},
            "api_timeout": {"type": "int", "default": 3},
            "pci_gpus": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        found = probe(module, module.params)
    except (OSError, re.error) as err:
        module.fail_json(msg="Reading the node failed: %s. Nothing was changed." % err)
    module.exit_json(changed=False, **found)


if __name__ == "__main__":
    main()
