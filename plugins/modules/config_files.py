#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: config_files
short_description: Write several configuration files in one module run, each checked before it is moved into place
version_added: 0.2.0
description:
  - Makes each file of O(files) hold the content given, with the mode, owner and group given, in
    one module run on the node instead of one M(ansible.builtin.template) run (five or six commands)
    per file. The module renders nothing; give it content rendered on the controller, for example
    with C(lookup('ansible.builtin.template', ...)).
  - A file whose content differs is written to a hidden temporary file in its own directory whose
    name ends as the file's does (C(systemd-analyze verify) checks only names of units), given its
    mode, owner and group, checked with its O(files[].validate) command (as
    M(ansible.builtin.template)'s C(validate), C(%s) is the temporary file) and only then moved over
    the old one in one C(rename). A file whose check fails is not written, the files after it are not
    touched, and the module fails naming the file and the command's output.
  - A file whose content is right but whose mode, owner or group is not gets only those fixed.
  - Creates the directories of O(directories) (and those missing above them) first, with mode
    C(0755), owned by root, so that a file in a new directory can be written and checked in the same run.
  - Returns which files changed (RV(changed_files)), so that a play can notify a handler per file.
options:
  files:
    description: The files, written in this order.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: What the file must hold, exactly (no newline is added).
        type: str
        required: true
      mode:
        description: Octal mode, such as C('0644') (a string, so that YAML keeps it octal).
        type: str
        default: '0644'
      owner:
        description: Owner of the file.
        type: str
        default: root
      group:
        description: Group of the file.
        type: str
        default: root
      validate:
        description:
          - Command that checks the new content before it replaces the file, with C(%s) where the
            path of the temporary file goes. Run without a shell; it fails the module on a non-zero exit.
        type: str
  directories:
    description: Directories created (mode C(0755), owned by root) before any file is written, when missing.
    type: list
    elements: path
    default: []
attributes:
  check_mode:
    support: full
    description: Reports the files and directories that would change; runs no O(files[].validate) command.
  diff_mode:
    support: full
    description: One diff per changed file (content, or mode and ownership), and one per created directory.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Write the role's files that differ
  ollama_cloud.engine.config_files:
    directories: [/etc/systemd/journald.conf.d]
    files:
      - dest: /etc/systemd/journald.conf.d/50-hardening.conf
        content: "{{ lookup('ansible.builtin.template', 'journald.conf.j2') }}"
      - dest: /etc/ssh/sshd_config.d/50-hardening.conf
        content: "{{ lookup('ansible.builtin.template', 'sshd.conf.j2') }}"
        validate: /usr/sbin/sshd -t -f %s
      - dest: /etc/audit/rules.d/50-hardening.rules
        content: "{{ lookup('ansible.builtin.template', 'audit.rules.j2') }}"
        mode: '0640'
  register: written

- name: Restart journald if its drop-in changed
  ansible.builtin.systemd_service:
    name: systemd-journald.service
    state: restarted
  when: "'/etc/systemd/journald.conf.d/50-hardening.conf' in written.changed_files"
"""

RETURN = r"""
changed_files:
  description:
    - The paths of O(files) that were written or had their mode or ownership fixed.
    - In check mode, those that would be.
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/journald.conf.d/50-hardening.conf]
created_directories:
  description: The directories of O(directories) that were created (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [/etc/systemd/journald.conf.d]
files:
  description: For each path of O(files), what was different.
  returned: always
  type: dict
  sample:
    /etc/systemd/journald.conf.d/50-hardening.conf: {content: true, attributes: false}
"""

import grp
import os
import pwd
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

from ansible_collections.ollama_cloud.engine.plugins.module_utils.node_files import FILE_DEFAULTS

# A file larger than this is compared but not shown in a diff.
DIFF_MAX_BYTES = 256 * 1024


def parse_mode(module, value, dest):
    try:
        mode = int(str(value), 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg=f"{dest}: mode must be octal digits such as '0644' (got {value!r}). Nothing was changed.")
    return mode


def ids(module, owner, group, dest):
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        module.fail_json(msg=f"{dest}: there is no user {owner!r} on this node. Nothing was changed.")
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        module.fail_json(msg=f"{dest}: there is no group {group!r} on this node. Nothing was changed.")
    return uid, gid


def read_current(dest):
    """(content bytes or None, stat or None) of an existing regular file."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode):
        return None, st
    with open(dest, "rb") as handle:
        return handle.read(), st


def text_for_diff(data):
    if data is None:
        return ""
    if len(data) > DIFF_MAX_BYTES or b"\0" in data:
        return f"({len(data)} bytes, not shown)\n"
    return data.decode("utf-8", errors="replace")


def attrs(mode, uid, gid):
    return {
        "mode": f"{mode:04o}",
        "owner": pwd.getpwuid(uid).pw_name if uid is not None else None,
        "group": grp.getgrgid(gid).gr_name if gid is not None else None,
    }


def write_one(module, spec, want, mode, uid, gid, changed):
    """Write want to a temporary file beside dest, check it, rename it over dest."""
    dest = spec["dest"]
    directory = os.path.dirname(dest) or "/"
    # Hidden (the .d directories' readers skip it), and ending as dest does: a check that goes by
    # the name's suffix (systemd-analyze verify takes only unit names) sees what dest will be.
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(dest)}.oce-tmp-", suffix=os.path.splitext(dest)[1]
    )
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(want)
            handle.flush()
            os.fchown(handle.fileno(), uid, gid)
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        if spec["validate"]:
            argv = [tmp if word == "%s" else word.replace("%s", tmp) for word in shlex.split(spec["validate"])]
            rc, out, err = module.run_command(argv)
            if rc != 0:
                module.fail_json(
                    msg=f"{dest} was not written: `{spec['validate']}` refused the new content "
                    f"(exit {rc}): {(err or out).strip()}",
                    rc=rc,
                    stdout=out,
                    stderr=err,
                    changed_files=changed,
                )
        os.rename(tmp, dest)
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def apply_one(module, spec, mode, uid, gid, changed, diffs, report):
    """Compare one file with what it must be, and write or fix it (not in check mode)."""
    dest = spec["dest"]
    want = to_bytes(spec["content"], errors="surrogate_or_strict")
    have, st = read_current(dest)
    if st is not None and not stat.S_ISREG(st.st_mode):
        module.fail_json(
            msg=f"{dest} is not a regular file (a link or a directory?): the module replaces "
            "only files. Nothing was changed there.",
            changed_files=changed,
        )
    content_differs = have != want
    attributes_differ = st is not None and (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) != (mode, uid, gid)
    report[dest] = {"content": content_differs, "attributes": attributes_differ}
    if not content_differs and not attributes_differ:
        return
    if module._diff:
        if content_differs:
            diffs.append(
                {
                    "before_header": dest,
                    "after_header": dest,
                    "before": text_for_diff(have),
                    "after": text_for_diff(want),
                }
            )
        if attributes_differ:
            diffs.append(
                {
                    "before_header": f"{dest} (mode, owner, group)",
                    "after_header": f"{dest} (mode, owner, group)",
                    "before": attrs(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                    "after": attrs(mode, uid, gid),
                }
            )
    if not module.check_mode:
        if content_differs:
            write_one(module, spec, want, mode, uid, gid, changed)
        else:
            os.chown(dest, uid, gid)
            os.chmod(dest, mode)
    changed.append(dest)


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "dest": {"type": "path", "required": True},
                    "content": {"type": "str", "required": True},
                    "mode": {"type": "str", "default": FILE_DEFAULTS["mode"]},
                    "owner": {"type": "str", "default": FILE_DEFAULTS["owner"]},
                    "group": {"type": "str", "default": FILE_DEFAULTS["group"]},
                    "validate": {"type": "str"},
                },
            },
            "directories": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    files = module.params["files"]
    dests = [spec["dest"] for spec in files]
    for spec in files:
        if not os.path.isabs(spec["dest"]):
            module.fail_json(msg=f"dest must be an absolute path (got {spec['dest']!r}). Nothing was changed.")
    duplicates = sorted({d for d in dests if dests.count(d) > 1})
    if duplicates:
        module.fail_json(
            msg=f"Each file can be given once: {', '.join(duplicates)} is given more than once. Nothing was changed."
        )
    # Every input is checked before anything is changed.
    plans = []
    for spec in files:
        mode = parse_mode(module, spec["mode"], spec["dest"])
        uid, gid = ids(module, spec["owner"], spec["group"], spec["dest"])
        if spec["validate"] is not None and "%s" not in spec["validate"]:
            module.fail_json(
                msg=f"{spec['dest']}: validate must contain %s, where the file to check goes "
                f"(got {spec['validate']!r}). Nothing was changed."
            )
        plans.append((spec, mode, uid, gid))

    changed = []
    created, diffs, report = [], [], {}
    for directory in module.params["directories"]:
        if os.path.isdir(directory):
            continue
        created.append(directory)
        diffs.append(
            {
                "before_header": directory,
                "after_header": directory,
                "before": {"path": directory, "state": "absent"},
                "after": {"path": directory, "state": "directory"},
            }
        )
        if not module.check_mode:
            try:
                os.makedirs(directory, mode=0o755, exist_ok=True)
                os.chown(directory, 0, 0)
                os.chmod(directory, 0o755)
            except OSError as err:
                module.fail_json(msg=f"{directory}: {to_native(err)}", created_directories=created[:-1])

    for spec, mode, uid, gid in plans:
        try:
            apply_one(module, spec, mode, uid, gid, changed, diffs, report)
        except OSError as err:
            module.fail_json(msg=f"{spec['dest']}: {to_native(err)}", changed_files=changed)

    result = {
        "changed": bool(created or changed),
        "changed_files": changed,
        "created_directories": created,
        "files": report,
    }
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
