# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every provider (local, aws, gcp) shares: our deployment labels and the node record.

Each provider maps its own resource onto ``node_record`` so playbooks, the status table and
the inventory see one shape whatever the cloud.
"""

from __future__ import annotations

import os
import re
import time

# Label keys valid on podman, AWS tags and GCP labels alike (lowercase, digits, dashes).
LABEL_DEPLOYMENT = "oce-deployment"
LABEL_MODEL = "oce-model"
LABEL_ENVIRONMENT = "oce-environment"
LABEL_MANAGED_BY = "oce-managed-by"
MANAGED_BY = "ollama_cloud.engine"

# The nodes' login user (first_boot.SSH_USER, which runs on the node without this file; a unit
# test keeps the two equal). Here so that the inventory need not import first_boot's dependencies.
SSH_USER = "oce"

# The environment variables GCP's connection options fall back to, the first one set winning:
# the GCP modules' (gcp.GCP_ARGS) and the fleet inventory's. Here so that the inventory need not
# import google-auth (gcp.py) to read them on a cache hit.
GCP_ENV = {
    "project": ["GCP_PROJECT", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"],
    "auth_kind": ["GCP_AUTH_KIND"],
    "service_account_file": ["GCP_SERVICE_ACCOUNT_FILE"],
    "impersonate_service_account": ["CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT"],
    "endpoint": ["OCE_GCE_ENDPOINT", "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE"],
}

# The AWS key options and the environment variables they fall back to (aws.AWS_ARGS), which a
# profile replaces (aws_profile_first). Here for the same reason.
AWS_KEY_ENV = {
    "access_key": "AWS_ACCESS_KEY_ID",
    "secret_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}


def aws_profile_first(params):
    """(``params`` without the keys only the environment gives when a profile is asked for, an error
    sentence or None), for the AWS modules and the fleet inventory alike.

    boto3 prefers keys to a profile: a shell's or a CI job's keys would silently win over the
    profile named. A key given as an option (not the environment's value) beside a profile is an error.
    """
    if not params.get("profile"):
        return params, None
    given = [k for k, env in AWS_KEY_ENV.items() if params.get(k) and params[k] != os.environ.get(env)]
    if given:
        return params, (
            f"both a profile ({params['profile']}) and {', '.join(given)} are given: set one or the other "
            "(AWS_PROFILE sets the profile too)"
        )
    return dict(params, **dict.fromkeys(AWS_KEY_ENV)), None


# Labels the node record says as its own fields (Name is AWS's tag of the instance's name).
_RECORDED_LABELS = frozenset(("Name", LABEL_DEPLOYMENT, LABEL_MODEL, LABEL_ENVIRONMENT, LABEL_MANAGED_BY))

NODE_STATES = ("pending", "running", "stopping", "stopped", "absent", "unknown")

_DEPLOYMENT_RE = re.compile(r"^[a-z][a-z0-9-]{0,39}$")


def validate_deployment(name):
    """Return an error sentence for a bad deployment name, or None."""
    if not _DEPLOYMENT_RE.match(name or ""):
        return (
            f"deployment {name!r} is not valid: use 1-40 lowercase letters, digits or dashes, "
            "starting with a letter (it becomes a label on every cloud)"
        )
    return None


def deployment_labels(deployment, model=None, environment=None):
    """The labels that mark a resource as ours; values are kept verbatim."""
    labels = {LABEL_DEPLOYMENT: deployment, LABEL_MANAGED_BY: MANAGED_BY}
    if model:
        labels[LABEL_MODEL] = model
    if environment:
        labels[LABEL_ENVIRONMENT] = environment
    return labels


def own_labels(labels):
    """The labels (AWS: tags) a user added to a node, without ours and AWS's Name.

    The node record's name, deployment, model and environment say those already; the fleet
    inventory keeps only these in its records' ``labels``.
    """
    return {k: v for k, v in (labels or {}).items() if k not in _RECORDED_LABELS}


def is_ours(labels, deployment):
    labels = labels or {}
    return labels.get(LABEL_DEPLOYMENT) == deployment and labels.get(LABEL_MANAGED_BY) == MANAGED_BY


def deployment_names(deployment):
    """The names a deployment's resources take when the user names none, on every cloud: the
    modules' defaults and the roles' (through the deployment_names filter), written here once."""
    base = f"oce-{deployment}"
    return {
        # The node, its network, its AWS role and instance profile, its tailnet name's prefix.
        "base": base,
        "aws_key_secret": f"oce/{deployment}/tailscale",
        "aws_log_group": f"/oce/{deployment}",
        "aws_alerts_topic": f"{base}-alerts",
        "gcp_service_account": f"{base}-node",
        "gcp_key_secret": f"{base}-tailscale",
    }


def tailnet_hostname(deployment, name):
    """A node's name on the tailnet: its own name, with the deployment's prefix unless it has it."""
    prefix = deployment_names(deployment)["base"]
    return name if name == prefix or name.startswith(prefix + "-") else f"{prefix}-{name}"


def node_record(
    cloud,
    name,
    state,
    labels=None,
    instance_type=None,
    private_ip=None,
    region=None,
    api_url=None,
    started_at=None,
    node_id=None,
    extra=None,
):
    """One node, the same keys on every provider. ``started_at`` is epoch seconds."""
    labels = labels or {}
    uptime = int(time.time() - started_at) if state == "running" and started_at else 0
    record = {
        "cloud": cloud,
        "name": name,
        "id": node_id or name,
        "state": state if state in NODE_STATES else "unknown",
        "deployment": labels.get(LABEL_DEPLOYMENT),
        "model": labels.get(LABEL_MODEL),
        "environment": labels.get(LABEL_ENVIRONMENT),
        "instance_type": instance_type,
        "region": region,
        "private_ip": private_ip,
        "api_url": api_url,
        "uptime_seconds": max(uptime, 0),
        # Providers with a price table fill this in; the local target costs nothing.
        "hourly_cost": None,
        "labels": labels,
        "tailnet_hostname": tailnet_hostname(labels.get(LABEL_DEPLOYMENT) or "", name),
    }
    record.update(extra or {})
    return record
