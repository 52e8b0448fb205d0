"""A body's cloud-init NoCloud seed, made from the instance's own user data.

Mounted read-only at /var/lib/cloud/seed/nocloud/, where cloud-init's NoCloud datasource (and
ds-identify, which decides at boot whether cloud-init runs at all) looks for it. The instance id
in meta-data is the cloud's: cloud-init runs its per-instance modules once per id, so a stopped
and started body keeps its first boot's work, as a VM does.
"""

from __future__ import annotations

import json
import os


def meta_data(instance_id, hostname):
    # JSON is YAML: no quoting surprises with ids or names.
    return json.dumps({"instance-id": instance_id, "local-hostname": hostname}, indent=1) + "\n"


def write_seed(directory, instance_id, hostname, user_data):
    """Write user-data (bytes as the cloud holds them: text or gzip) and meta-data; return the directory."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "user-data"), "wb") as f:
        f.write(user_data or b"")
    with open(os.path.join(directory, "meta-data"), "w") as f:
        f.write(meta_data(instance_id, hostname))
    return directory
