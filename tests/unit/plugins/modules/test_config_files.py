"""config_files against real files in a temporary directory (the hardening scenario runs it on a node)."""

from __future__ import annotations

import grp
import os
import pathlib
import pwd
import stat

import pytest

from ansible_collections.ollama_cloud.engine.plugins.modules import config_files as mod
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module

OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name


def run(capsys, check_mode=False, diff=False, **args):
    return run_module(mod, capsys, check_mode=check_mode, diff=diff, **args)


def spec(dest, content, **extra):
    return dict({"dest": str(dest), "content": content, "owner": OWNER, "group": GROUP}, **extra)


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def listing(directory):
    return sorted(p.name for p in directory.rglob("*"))


def test_writes_files_and_directories_once(tmp_path, capsys):
    new_dir = tmp_path / "conf.d" / "sub"
    files = [spec(new_dir / "a.conf", "a=1\n"), spec(tmp_path / "b.rules", "-w /etc/x\n", mode="0640")]
    result = run(capsys, directories=[str(new_dir)], files=files)
    assert result["changed"] is True
    assert result["changed_files"] == [str(new_dir / "a.conf"), str(tmp_path / "b.rules")]
    assert result["created_directories"] == [str(new_dir)]
    assert (new_dir / "a.conf").read_text() == "a=1\n"
    assert mode_of(new_dir / "a.conf") == 0o644
    assert mode_of(tmp_path / "b.rules") == 0o640
    assert mode_of(new_dir) == 0o755
    # No temporary file is left beside the files.
    assert listing(tmp_path) == ["a.conf", "b.rules", "conf.d", "sub"]

    again = run(capsys, directories=[str(new_dir)], files=files)
    assert again["changed"] is False
    assert again["changed_files"] == [] and again["created_directories"] == []
    assert again["files"][str(tmp_path / "b.rules")] == {"content": False, "attributes": False}


def test_check_mode_reports_and_changes_nothing(tmp_path, capsys):
    old = tmp_path / "journald.conf"
    old.write_text("SystemMaxUse=8M\n")
    old.chmod(0o600)
    files = [spec(old, "SystemMaxUse=64M\n"), spec(tmp_path / "new.d" / "x.conf", "x\n")]
    result = run(capsys, check_mode=True, diff=True, directories=[str(tmp_path / "new.d")], files=files)
    assert result["changed"] is True
    assert result["changed_files"] == [str(old), str(tmp_path / "new.d" / "x.conf")]
    assert result["files"][str(old)] == {"content": True, "attributes": True}
    assert old.read_text() == "SystemMaxUse=8M\n" and mode_of(old) == 0o600
    assert not (tmp_path / "new.d").exists()
    diffs = {(d["before_header"], str(d["before"]), str(d["after"])) for d in result["diff"]}
    assert (str(old), "SystemMaxUse=8M\n", "SystemMaxUse=64M\n") in diffs
    assert any(d["before"] == {"mode": "0600", "owner": OWNER, "group": GROUP} for d in result["diff"])
    assert any(d["after"] == {"path": str(tmp_path / "new.d"), "state": "directory"} for d in result["diff"])


def test_mode_drift_is_fixed_without_rewriting(tmp_path, capsys):
    path = tmp_path / "limits.conf"
    path.write_text("* hard core 0\n")
    path.chmod(0o600)
    inode = os.stat(path).st_ino
    result = run(capsys, diff=True, files=[spec(path, "* hard core 0\n")])
    assert result["changed_files"] == [str(path)]
    assert result["files"][str(path)] == {"content": False, "attributes": True}
    assert mode_of(path) == 0o644 and os.stat(path).st_ino == inode
    assert [d["after"] for d in result["diff"]] == [{"mode": "0644", "owner": OWNER, "group": GROUP}]


def test_validate_checks_the_new_content_beside_the_file(tmp_path, capsys):
    path = tmp_path / "sshd.conf"
    path.write_text("old\n")
    seen = tmp_path / "seen"
    # The check sees the new content, in a hidden temporary file of the destination's directory
    # whose name ends as the destination's (systemd-analyze verify takes only unit names).
    check = f'sh -c \'grep -qx PermitRootLogin.no "$1" && echo "$1" > {seen}\' check %s'
    result = run(capsys, files=[spec(path, "PermitRootLogin no\n", validate=check)])
    assert result["changed_files"] == [str(path)]
    assert path.read_text() == "PermitRootLogin no\n"
    checked = pathlib.Path(seen.read_text().strip())
    assert checked.parent == tmp_path
    assert checked.name.startswith(".sshd.conf.oce-tmp-") and checked.suffix == ".conf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seen", "sshd.conf"]


def test_refused_content_is_not_written_and_stops_the_run(tmp_path, capsys):
    first, bad, after = tmp_path / "1.conf", tmp_path / "2.nft", tmp_path / "3.conf"
    bad.write_text("table ok\n")
    files = [
        spec(first, "one\n"),
        spec(bad, "table bad\n", validate="sh -c 'grep -q ok \"$1\" || { echo syntax error >&2; exit 1; }' check %s"),
        spec(after, "three\n"),
    ]
    result = run(capsys, files=files)
    assert result["failed"] is True
    assert result["msg"].startswith(f"{bad} was not written:") and "syntax error" in result["msg"]
    assert result["changed_files"] == [str(first)]
    assert bad.read_text() == "table ok\n"
    assert not after.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.conf", "2.nft"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ([{"dest": "/x/a", "content": "", "mode": "rw-"}], "/x/a: mode must be octal digits such as '0644'"),
        ([{"dest": "/x/a", "content": "", "owner": "no-such-user-oce"}], "/x/a: there is no user 'no-such-user-oce'"),
        (
            [{"dest": "/x/a", "content": "", "group": "no-such-group-oce"}],
            "/x/a: there is no group 'no-such-group-oce'",
        ),
        ([{"dest": "/x/a", "content": "", "validate": "nft -c -f"}], "/x/a: validate must contain %s"),
        ([{"dest": "relative/a", "content": ""}], "dest must be an absolute path (got 'relative/a')"),
        ([{"dest": "/x/a", "content": "1"}, {"dest": "/x/a", "content": "2"}], "/x/a is given more than once"),
    ],
)
def test_bad_input_changes_nothing(tmp_path, capsys, files, message):
    first = spec(tmp_path / "first.conf", "first\n")
    result = run(capsys, directories=[str(tmp_path / "d")], files=[first] + files)
    assert result["failed"] is True
    assert message in result["msg"] and result["msg"].endswith("Nothing was changed.")
    assert list(tmp_path.iterdir()) == []


def test_a_directory_in_the_way_is_refused(tmp_path, capsys):
    (tmp_path / "issue").mkdir()
    result = run(capsys, files=[spec(tmp_path / "issue", "banner\n")])
    assert result["failed"] is True
    assert "is not a regular file" in result["msg"]
    assert (tmp_path / "issue").is_dir()
