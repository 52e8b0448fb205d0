# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ollama role's probe: one run on the node reads what the role compares with what it would
write (tasks/probe.yml). Changes nothing; Python 3 standard library only.

The role sends this file on stdin to the node's python3, followed by a call of main() with the
settings as JSON. It prints one JSON object:

- paths: per path, type (absent, file, directory, link, other), mode, owner, group, target (links),
  sha1 (regular files) or, for the files in secret_sha1, only sha1_matches: the sha1 of a file
  that holds secrets never leaves the node;
- versions: the directories of versions_dir named like version_pattern;
- user (name, uid, group, groups, home, shell, comment; null when absent) and groups (gid or null);
- packages: whether dpkg has each installed (no apt cache refresh);
- units: LoadState, UnitFileState, ActiveState and NeedDaemonReload of each unit;
- verify: rc and stderr of systemd-analyze verify of verify_unit (null when it is absent);
- security: rc, stdout and stderr of systemd-analyze security of security_unit (null when not loaded);
- api_version / api_error: the answer of one GET <api_url>/api/version, without a proxy;
- pci_gpus: the NVIDIA display (0x0300) and 3D (0x0302) controllers on the PCI bus, when asked.
"""

from __future__ import annotations

import glob
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import urllib.request

DEFAULTS = {
    "paths": [],
    "secret_sha1": {},
    "versions_dir": None,
    "version_pattern": r"^[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?$",
    "user": None,
    "groups": [],
    "packages": [],
    "units": [],
    "verify_unit": None,
    "security_unit": None,
    "api_url": None,
    "api_timeout": 3,
    "pci_gpus": False,
}
# Where the commands are, whatever PATH the connection gives.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
)

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
    """Start every command at once, read them afterwards: the probe costs its slowest command."""

    def __init__(self):
        self.running = {}

    def start(self, key, argv):
        path = shutil.which(argv[0], path=SEARCH_PATH)
        if not path:
            return
        env = dict(os.environ, LC_ALL="C", SYSTEMD_PAGER="", SYSTEMD_COLORS="0")
        self.running[key] = subprocess.Popen(
            [path] + argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )

    def result(self, key):
        proc = self.running.pop(key, None)
        if proc is None:
            return None
        stdout, stderr = proc.communicate()
        return {"rc": proc.returncode, "stdout": stdout, "stderr": stderr}


def probe(settings):
    p = dict(DEFAULTS, **settings)
    commands = Commands()
    if p["packages"]:
        commands.start("dpkg", ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"] + p["packages"])
    if p["units"]:
        commands.start("units", ["systemctl", "show", "-p", ",".join(UNIT_PROPERTIES)] + p["units"])
    unit_file = p["verify_unit"] and os.path.exists(p["verify_unit"])
    if unit_file:
        commands.start("verify", ["systemd-analyze", "verify", p["verify_unit"]])
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
    verify = commands.result("verify")
    result["verify"] = {"rc": verify["rc"], "stderr": verify["stderr"]} if verify else None
    security = commands.result("security")
    loaded = (result["units"].get(p["security_unit"]) or {}).get("LoadState") == "loaded"
    result["security"] = security if security and loaded else None
    return result


def main(settings_json):
    """Print what probe() found for the settings (a JSON object, see DEFAULTS)."""
    print(json.dumps(probe(json.loads(settings_json)), sort_keys=True))
