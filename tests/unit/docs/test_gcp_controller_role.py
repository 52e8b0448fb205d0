"""docs/permissions/gcp-controller-role.yaml: exactly the permissions of the methods the collection calls.

The functional tests check that every method the playbooks call on the emulator is in
tests/functional/gcp/permissions.py and its permissions in the role; here, that the role holds
nothing else.
"""

from __future__ import annotations

from ansible_collections.ollama_cloud.engine.tests.functional.gcp import permissions


def test_the_role_is_the_permissions_of_the_methods_called():
    needed = {p for perms in permissions.PERMISSIONS.values() for p in perms}
    assert permissions.role_permissions() == needed
    with open(permissions.ROLE, encoding="utf-8") as f:
        listed = [line[4:].strip() for line in f if line.startswith("  - ")]
    assert listed == sorted(set(listed)), "keep includedPermissions sorted, each once"
