"""The IAM actions the controller's calls need, read from moto's recording of the requests it answered,
against the policy the docs give users (docs/permissions/aws-controller-policy.json).

A request names its action in one of three ways, by the service's protocol: the X-Amz-Target header
(JSON: CloudWatch Logs, Secrets Manager, Pricing), the path's last segment after /operation/
(Smithy RPC v2: CloudWatch), or the Action form field (query: EC2, IAM, SNS, STS, SSM). Its service
is the signing name in the Authorization header's credential scope, which also names the access key:
the calls of one key only (the playbooks' own, not the tests' checks).
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse

# The access key id of the playbooks the tests run (moto takes any): their calls, not the tests' own.
PLAYBOOK_KEY = "AKIAOCEPLAYBOOKS0000"
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
POLICY = os.path.join(REPO_ROOT, "docs", "permissions", "aws-controller-policy.json")
# A signing name that is not the IAM prefix of its actions.
IAM_PREFIX = {"monitoring": "cloudwatch"}
_SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/[^/]+/([^/]+)/aws4_request")


def _action(entry):
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    if "x-amz-target" in headers:
        return headers["x-amz-target"].rsplit(".", 1)[-1]
    path = urllib.parse.urlsplit(entry["url"]).path
    if "/operation/" in path:
        return path.rsplit("/", 1)[-1]
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode(errors="replace")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry["url"]).query)
    found = urllib.parse.parse_qs(body).get("Action") or query.get("Action")
    return found[0] if found else None


def actions_made(recording, access_key):
    """{service:Action} of every request signed with ``access_key`` in moto's recording."""
    made = set()
    with open(recording, encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            scope = _SCOPE.search(headers.get("authorization", ""))
            if not scope or scope.group(1) != access_key:
                continue
            action = _action(entry)
            assert action, f"no action found in the recorded request {entry['method']} {entry['url']}"
            made.add(f"{IAM_PREFIX.get(scope.group(2), scope.group(2))}:{action}")
    return made


def policy_actions(path=POLICY):
    with open(path, encoding="utf-8") as f:
        policy = json.load(f)
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def not_allowed(recording, access_key):
    """The actions the calls of ``access_key`` made that the documented policy does not allow."""
    return sorted(actions_made(recording, access_key) - policy_actions())


def assert_allowed(recording, access_key=PLAYBOOK_KEY):
    """Fail with what to add when the playbooks made a call the documented policy does not allow."""
    missing = not_allowed(recording, access_key)
    assert not missing, "add to docs/permissions/aws-controller-policy.json: " + " ".join(missing)
