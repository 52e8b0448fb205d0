"""The ollama role's probe (ollama_cloud.engine.node_probe) and the comparison the role makes
with it (tasks/probe.yml): a file the role wrote is found unchanged, a drifted one (content, mode,
a secret environment value) is found to differ, so configure.yml writes it again and notifies."""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pathlib
import pwd
import sys

import yaml

from ansible_collections.ollama_cloud.engine.plugins.modules import node_probe as probe
from ansible_collections.ollama_cloud.engine.tests.unit.roles.playbook_runner import run_playbook

ROOT = pathlib.Path(__file__).parents[3]
ROLE = ROOT / "roles" / "ollama"
SECRET = " s3cr\"et' $HOME ${X} `id` back\\slash #no-comment %n 100% "
CHECKSUM = "sha256:" + "ab" * 32


# -- the module's parts


def test_describe_path_reports_each_kind(tmp_path):
    (tmp_path / "f").write_bytes(b"hello\n")
    (tmp_path / "f").chmod(0o640)
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to(tmp_path / "d")
    me, mine = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name

    f = probe.describe_path(str(tmp_path / "f"))
    assert f == {
        "type": "file",
        "mode": "0640",
        "owner": me,
        "group": mine,
        "target": None,
        "sha1": hashlib.sha1(b"hello\n").hexdigest(),
        "sha1_matches": None,
    }
    assert probe.describe_path(str(tmp_path / "d"))["type"] == "directory"
    link = probe.describe_path(str(tmp_path / "l"))
    assert (link["type"], link["target"], link["mode"]) == ("link", str(tmp_path / "d"), None)
    assert probe.describe_path(str(tmp_path / "none"))["type"] == "absent"


def test_a_secret_file_is_only_compared(tmp_path):
    (tmp_path / "env").write_bytes(b"KEY=hunter2\n")
    right = hashlib.sha1(b"KEY=hunter2\n").hexdigest()
    same = probe.describe_path(str(tmp_path / "env"), right)
    assert same["sha1_matches"] is True and same["sha1"] is None
    assert probe.describe_path(str(tmp_path / "env"), "0" * 40)["sha1_matches"] is False


def test_versions_are_the_directories_named_like_a_release(tmp_path):
    for name in ("0.24.0", "0.13.5", "0.30.0-rc2", ".download", "current-ish"):
        (tmp_path / name).mkdir()
    (tmp_path / "9.9.9").write_text("a file, not a version")
    (tmp_path / "current").symlink_to(tmp_path / "0.24.0")
    assert probe.versions_in(str(tmp_path), probe.VERSION_PATTERN) == [
        "0.13.5",
        "0.24.0",
        "0.30.0-rc2",
    ]
    assert probe.versions_in(str(tmp_path / "missing"), ".*") == []


def test_dpkg_status_counts_installed_packages_only():
    out = "ca-certificates\tii \nzstd:amd64\tii \ntar\trc \n"
    assert probe.parse_dpkg(out, ["ca-certificates", "tar", "zstd", "curl"]) == {
        "ca-certificates": True,
        "tar": False,
        "zstd": True,
        "curl": False,
    }


def test_systemctl_show_blocks_are_read_per_unit():
    out = (
        "Id=ollama.service\nLoadState=loaded\nUnitFileState=enabled\nActiveState=active\nNeedDaemonReload=no\n\n"
        "Id=oce-nvidia-uvm.service\nLoadState=not-found\nUnitFileState=\nActiveState=inactive\n"
    )
    units = probe.parse_units(out, ["ollama.service", "oce-nvidia-uvm.service", "other.service"])
    assert units["ollama.service"] == {
        "LoadState": "loaded",
        "UnitFileState": "enabled",
        "ActiveState": "active",
        "NeedDaemonReload": "no",
    }
    assert units["oce-nvidia-uvm.service"]["LoadState"] == "not-found"
    assert units["other.service"]["LoadState"] is None


def test_nvidia_display_and_3d_controllers_only(tmp_path):
    devices = {
        "0000:00:1e.0": ("0x10de", "0x030200"),  # 3D controller (a T4)
        "0000:00:1f.0": ("0x10de", "0x030000"),  # VGA controller
        "0000:00:02.0": ("0x10de", "0x040300"),  # NVIDIA audio
        "0000:00:03.0": ("0x1d0f", "0x030000"),  # another vendor's display
    }
    for address, (vendor, klass) in devices.items():
        (tmp_path / address).mkdir()
        (tmp_path / address / "vendor").write_text(vendor + "\n")
        (tmp_path / address / "class").write_text(klass + "\n")
    assert probe.nvidia_gpus(str(tmp_path)) == ["0000:00:1e.0", "0000:00:1f.0"]


def test_api_version_is_one_request(fake_ollama, closed_port_url):
    fake_ollama.routes[("GET", "/api/version")] = {"version": "0.24.0"}
    assert probe.api_version(fake_ollama.url, 3) == ("0.24.0", None)
    assert len(fake_ollama.calls("GET", "/api/version")) == 1
    version, error = probe.api_version(closed_port_url, 3)
    assert version is None and error


# -- the role: what it writes, the probe finds unchanged; what drifted, it finds


def role_play(tmp_path, fake, gpu, extra_env, steps, out):
    """The role's probe.yml (and configure.yml's writes when asked) on localhost, with every path
    the role touches moved under tmp_path and the owners set to the user running the test."""
    me, mine = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    settings = {
        "ollama_install_dir": str(tmp_path / "opt" / "ollama"),
        "ollama_models_dir": str(tmp_path / "models"),
        "ollama_version": "0.24.0",
        "ollama_checksum": CHECKSUM,
        "ollama_gpu": gpu,
        "ollama_extra_env": extra_env,
        "ollama_port": int(fake.url.rsplit(":", 1)[1]),
        "__ollama_unit_path": str(tmp_path / "ollama.service"),
        "__ollama_uvm_unit_path": str(tmp_path / "oce-nvidia-uvm.service"),
        "__ollama_dropin_dir": str(tmp_path / "ollama.service.d"),
        "__ollama_cli_link": str(tmp_path / "bin" / "ollama"),
        "__ollama_packages": ["tar"],
        "__ollama_modprobe": "/sbin/modprobe",
        "__ollama_nvidia_modprobe": "/usr/bin/nvidia-modprobe",
        "__ollama_user": me,
        "__ollama_group": mine,
        "__ollama_root_file": {"type": "file", "mode": "0644", "owner": me, "group": mine},
        "__ollama_root_dir": {"type": "directory", "mode": "0755", "owner": me, "group": mine},
    }
    extra_vars = tmp_path / "settings.json"
    extra_vars.write_text(json.dumps(settings))

    def role_tasks(name):
        return {"ansible.builtin.include_role": {"name": "ollama_cloud.engine.ollama", "tasks_from": name}}

    tasks = [role_tasks(step) for step in steps]
    tasks.append(
        {
            "name": "Save what the role found",
            "ansible.builtin.copy": {
                "content": "{{ {'todo': __ollama_todo, 'probe': __ollama_probe} | to_json }}",
                "dest": str(out),
                "mode": "0600",
            },
        }
    )
    # The handlers (daemon-reload, restart) are for a real node: end before they would run.
    tasks.append({"ansible.builtin.meta": "end_play"})
    playbook = tmp_path / "probe.yml"
    header = {"hosts": "localhost", "connection": "local", "gather_facts": False}
    header["vars"] = {"ansible_python_interpreter": sys.executable}
    playbook.write_text(yaml.safe_dump([dict(header, tasks=tasks)], sort_keys=False))
    result = run_playbook(playbook, "-e", "@%s" % extra_vars)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text()), result.stdout


CONFIGURE = {"models_dir", "uvm_unit", "unit", "dropin_dir", "dropin", "extra_env"}


def test_written_files_are_found_unchanged_and_drift_is_found(tmp_path, fake_ollama):
    gpu = True  # every file the role writes, the nvidia_uvm unit too
    fake_ollama.routes[("GET", "/api/version")] = {"version": "0.24.0"}
    env = {"OCE_TEST_SECRET": SECRET}
    bare, dummy = role_play(tmp_path, fake_ollama, gpu, env, ["probe.yml"], tmp_path / "bare.json")
    assert CONFIGURE - {"uvm_unit"} <= set(bare["todo"])
    assert "uvm_unit" in bare["todo"]
    assert {"marker", "current_link", "cli_link", "install_dir"} <= set(bare["todo"])
    assert bare["probe"]["api_version"] == "0.24.0"

    # configure.yml writes everything that differed; the probe then finds all of it as written.
    written, log = role_play(
        tmp_path, fake_ollama, gpu, env, ["probe.yml", "configure.yml", "probe.yml"], tmp_path / "written.json"
    )
    assert not CONFIGURE & set(written["todo"]), written["todo"]
    assert SECRET not in log and "s3cr" not in json.dumps(written)
    env_file = written["probe"]["paths"][str(tmp_path / "ollama.service.d" / "extra.env")]
    assert env_file["sha1_matches"] is True and env_file["sha1"] is None

    # Drift: another unit, a loosened drop-in mode, a changed secret value.
    unit = tmp_path / "ollama.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=false"))
    (tmp_path / "ollama.service.d" / "10-settings.conf").chmod(0o666)
    env = {"OCE_TEST_SECRET": "another value"}
    drifted, log = role_play(tmp_path, fake_ollama, gpu, env, ["probe.yml"], tmp_path / "drifted.json")
    assert CONFIGURE & set(drifted["todo"]) == {"unit", "dropin", "extra_env"}
    assert "another value" not in log

    # ...which configure.yml writes again, notifying the restart.
    fixed, log = role_play(
        tmp_path, fake_ollama, gpu, env, ["probe.yml", "configure.yml", "probe.yml"], tmp_path / "fixed.json"
    )
    assert not CONFIGURE & set(fixed["todo"])
    assert "ProtectSystem=strict" in unit.read_text()
    assert "RUNNING HANDLER" not in log  # ended before them: the notification itself is below
    notified = [t for t in yaml.safe_load((ROLE / "tasks" / "configure.yml").read_text()) if "notify" in t]
    assert "Write the units and the settings drop-in that differ" in {t["name"] for t in notified}
    for task in notified:
        assert "Restart ollama" in task["notify"], task["name"]

    # ollama_extra_env emptied: the file is to be removed.
    emptied, dummy = role_play(tmp_path, fake_ollama, gpu, {}, ["probe.yml"], tmp_path / "emptied.json")
    assert "extra_env" in emptied["todo"]


def test_installed_version_marker_and_other_versions(tmp_path, fake_ollama):
    fake_ollama.routes[("GET", "/api/version")] = {"version": "0.13.5"}
    install = tmp_path / "opt" / "ollama"
    for version in ("0.13.5", "0.24.0"):
        (install / version / "bin").mkdir(parents=True)
    (install / "0.24.0" / ".archive-checksum").write_text(CHECKSUM + "\n")
    (install / "current").symlink_to(install / "0.13.5")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ollama").symlink_to(install / "current" / "bin" / "ollama")
    found, dummy = role_play(tmp_path, fake_ollama, False, {}, ["probe.yml"], tmp_path / "v.json")
    assert "marker" not in found["todo"]  # unpacked and marked with this checksum: no download
    assert "current_link" in found["todo"] and "cli_link" not in found["todo"]
    assert "prune" in found["todo"] and found["probe"]["versions"] == ["0.13.5", "0.24.0"]

    (install / "0.24.0" / ".archive-checksum").write_text("sha256:" + "cd" * 32 + "\n")
    found, dummy = role_play(tmp_path, fake_ollama, False, {}, ["probe.yml"], tmp_path / "w.json")
    assert "marker" in found["todo"]  # another archive: unpacked again
