"""docs/permissions/aws-controller-policy.json: what the controller's AWS calls need, no more.

Checked here against the code: each action the policy allows is an operation the collection calls
(its botocore name is in plugins/) or one AWS checks besides the call (IMPLICIT), and each operation
the collection names is allowed. The functional tests check the other way round on moto: every call
the playbooks made is allowed (tests/functional/aws/permissions.py).
"""

from __future__ import annotations

import json
import pathlib
import re

import botocore
import botocore.session

ROOT = pathlib.Path(__file__).parents[3]
POLICY = json.loads((ROOT / "docs" / "permissions" / "aws-controller-policy.json").read_text())
# The services the collection calls, by the prefix of their IAM actions.
SERVICES = ("ec2", "iam", "logs", "cloudwatch", "sns", "sts", "secretsmanager", "ssm", "pricing")
# Actions AWS checks besides the operation's own: no call of ours names them.
IMPLICIT = {
    "iam:PassRole": "RunInstances and StartInstances with the node's instance profile",
    "logs:TagResource": "CreateLogGroup with tags",
    "ec2:DescribeAvailabilityZones": "amazon.aws.aws_az_info in the node role's validate.yml",
}


def operations():
    """{snake_name: {service:Action}} of every operation of SERVICES."""
    session = botocore.session.get_session()
    found = {}
    for service in SERVICES:
        for name in session.get_service_model(service).operation_names:
            found.setdefault(botocore.xform_name(name), set()).add(f"{service}:{name}")
    return found


def named_in_plugins(ops):
    """The snake names of operations that appear as string literals in plugins/."""
    names = set()
    for path in (ROOT / "plugins").rglob("*.py"):
        names.update(n for n in re.findall(r'"([a-z][a-z0-9_]+)"', path.read_text()) if n in ops)
    return names


def allowed():
    return [action for statement in POLICY["Statement"] for action in statement["Action"]]


def test_the_policy_is_well_formed_and_each_action_listed_once():
    assert POLICY["Version"] == "2012-10-17"
    for statement in POLICY["Statement"]:
        assert statement["Effect"] == "Allow" and statement["Sid"] and statement["Resource"]
        assert statement["Action"] == sorted(statement["Action"]), statement["Sid"]
    per_statement = [(s["Sid"], a) for s in POLICY["Statement"] for a in s["Action"]]
    assert len(set(per_statement)) == len(per_statement)


def test_each_allowed_action_is_one_the_collection_needs():
    ops = operations()
    called = {action for name in named_in_plugins(ops) for action in ops[name]}
    unneeded = sorted(set(allowed()) - called - set(IMPLICIT))
    assert unneeded == [], "allowed but never called: " + " ".join(unneeded)


def test_each_operation_the_collection_names_is_allowed():
    ops = operations()
    policy = set(allowed())
    missing = sorted(name for name in named_in_plugins(ops) if not ops[name] & policy)
    assert missing == [], "called but not allowed: " + " ".join(missing)
    # The IAM role the controller makes and passes is the one the policy scopes: oce-<deployment>-node.
    (passed,) = [s for s in POLICY["Statement"] if "iam:PassRole" in s["Action"]]
    assert passed["Resource"] == "arn:aws:iam::*:role/oce-*"
    assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
