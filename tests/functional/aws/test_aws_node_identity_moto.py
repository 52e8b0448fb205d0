"""aws_node_identity in-process against a moto server on loopback: the node's role, policy and profile."""

from __future__ import annotations

import json

import boto3
import pytest
from ansible.module_utils.common import warnings as ansible_warnings
from botocore.exceptions import ClientError

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_node_identity
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module

OURS = {"oce-deployment": "demo", "oce-managed-by": "ollama_cloud.engine"}
ARN = "arn:aws:iam::123456789012"


@pytest.fixture
def iam(moto):
    return boto3.client("iam", region_name="us-east-1", endpoint_url=moto.url)


def run(capsys, **args):
    return run_module(aws_node_identity, capsys, **dict({"deployment": "demo"}, **args))


def allow(action, principal=None):
    """A one-statement policy document (a trust policy with ``principal``), as IAM takes it."""
    statement = {"Effect": "Allow", "Action": action}
    statement.update({"Principal": principal} if principal else {"Resource": "*"})
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def tags(found):
    return aws.tag_dict(found.get("Tags"))


def everything(iam):
    """The roles and profiles in moto, with what a test looks at."""
    roles = {}
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        roles[name] = {
            "tags": tags(iam.get_role(RoleName=name)["Role"]),
            "trust": iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"],
            "policies": {
                p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
                for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
            },
        }
    profiles = {
        p["InstanceProfileName"]: {"roles": [r["RoleName"] for r in p["Roles"]], "tags": tags(p)}
        for p in iam.list_instance_profiles()["InstanceProfiles"]
    }
    return {"roles": roles, "profiles": profiles}


def test_present_creates_the_role_its_policy_and_the_profile_then_changes_nothing(iam, capsys):
    res = run(capsys, environment="prod", tags={"team": "ml"}, diff=True)
    assert res["changed"] is True and "failed" not in res, res
    assert res["actions"] == [
        "create role oce-demo-node",
        "put the inline policy oce-node of role oce-demo-node",
        "create instance profile oce-demo-node",
        "add role oce-demo-node to instance profile oce-demo-node",
    ]
    assert res["identity"] == {
        "role_name": "oce-demo-node",
        "role_arn": f"{ARN}:role/oce-demo-node",
        "profile_name": "oce-demo-node",
        "profile_arn": f"{ARN}:instance-profile/oce-demo-node",
        "policy_name": "oce-node",
        "account": "123456789012",
        "partition": "aws",
    }
    found = everything(iam)
    wanted_tags = dict(OURS, **{"oce-environment": "prod", "team": "ml"})
    role = found["roles"]["oce-demo-node"]
    assert role["tags"] == wanted_tags
    assert role["trust"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert found["profiles"] == {"oce-demo-node": {"roles": ["oce-demo-node"], "tags": wanted_tags}}
    # The policy: resource-less agent actions on "*", one log group, one secret.
    policy = role["policies"]["oce-node"]
    assert policy == res["policy"]
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    assert resources == {
        "CloudWatchAgentMetrics": "*",
        "CloudWatchAgentLogs": [
            "arn:aws:logs:us-east-1:123456789012:log-group:/oce/demo",
            "arn:aws:logs:us-east-1:123456789012:log-group:/oce/demo:*",
        ],
        "ReadTheNodeSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:oce/demo/tailscale-??????",
    }
    assert res["diff"]["before"] == {"role": None, "policy": None, "profile": None}
    assert res["diff"]["after"]["profile"] == {"name": "oce-demo-node", "roles": ["oce-demo-node"], "tags": wanted_tags}

    again = run(capsys, environment="prod", tags={"team": "ml"})
    assert again["changed"] is False and again["actions"] == [], again
    assert again["identity"] == res["identity"] and again["policy"] == policy
    assert everything(iam) == found


def test_a_permissions_boundary_is_set_on_the_new_role_and_corrected_on_an_existing_one(iam, capsys):
    arns = [
        iam.create_policy(PolicyName=name, PolicyDocument=allow("logs:*"))["Policy"]["Arn"]
        for name in ("oce-node-boundary", "oce-node-boundary-2")
    ]
    res = run(capsys, permissions_boundary=arns[0])
    assert res["changed"] is True and not res.get("failed"), res
    assert iam.get_role(RoleName="oce-demo-node")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arns[0]
    assert run(capsys, permissions_boundary=arns[0])["changed"] is False
    assert run(capsys)["changed"] is False  # none given: the role keeps its own

    res = run(capsys, permissions_boundary=arns[1], _ansible_diff=True)
    assert res["changed"] is True and any("permissions boundary" in a for a in res["actions"]), res
    assert res["diff"]["after"]["role"]["permissions_boundary"] == arns[1]
    assert res["diff"]["before"]["role"]["permissions_boundary"] == arns[0]
    assert iam.get_role(RoleName="oce-demo-node")["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == arns[1]


def test_the_log_group_secret_and_name_are_inputs(iam, capsys):
    res = run(capsys, name="team-a", log_group="/ml/logs", secret_name="ml/key", region="eu-west-1")
    assert res["changed"] is True, res
    role = everything(iam)["roles"]["team-a-node"]
    resources = {s["Sid"]: s["Resource"] for s in role["policies"]["oce-node"]["Statement"]}
    assert resources["CloudWatchAgentLogs"][0] == "arn:aws:logs:eu-west-1:123456789012:log-group:/ml/logs"
    assert resources["ReadTheNodeSecret"] == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ml/key-??????"
    assert res["identity"]["profile_name"] == "team-a-node"


def test_check_mode_on_nothing_creates_nothing_and_says_what_it_would(iam, capsys):
    res = run(capsys, check_mode=True, diff=True)
    assert res["changed"] is True and len(res["actions"]) == 4, res
    assert res["identity"]["role_arn"] == f"{ARN}:role/oce-demo-node"
    assert res["diff"]["after"]["role"]["tags"] == OURS
    assert everything(iam) == {"roles": {}, "profiles": {}}


def test_check_mode_on_existing_drift_reports_and_changes_nothing(iam, capsys):
    run(capsys)
    iam.put_role_policy(RoleName="oce-demo-node", PolicyName="oce-node", PolicyDocument=allow("s3:*"))
    drifted = everything(iam)
    res = run(capsys, check_mode=True, diff=True, tags={"team": "ml"})
    assert res["changed"] is True, res
    assert res["actions"] == [
        "correct the tags of role oce-demo-node",
        "correct the inline policy oce-node of role oce-demo-node",
        "correct the tags of instance profile oce-demo-node",
    ]
    assert res["diff"]["before"]["policy"]["Statement"][0]["Action"] == "s3:*"
    assert res["diff"]["after"]["role"]["tags"] == dict(OURS, team="ml")
    assert everything(iam) == drifted
    # Once corrected, check mode has nothing to do.
    assert run(capsys, tags={"team": "ml"})["changed"] is True
    assert run(capsys, check_mode=True, tags={"team": "ml"})["actions"] == []


def test_drift_is_corrected(iam, capsys):
    run(capsys, tags={"team": "ml", "old": "1"})
    # Someone widened the policy and the trust, changed a tag, and put another role in the profile.
    iam.put_role_policy(
        RoleName="oce-demo-node", PolicyName="oce-node", PolicyDocument=allow("secretsmanager:GetSecretValue")
    )
    iam.update_assume_role_policy(RoleName="oce-demo-node", PolicyDocument=allow("sts:AssumeRole", {"AWS": "*"}))
    iam.tag_role(RoleName="oce-demo-node", Tags=[{"Key": "team", "Value": "other"}])
    iam.create_role(RoleName="stray", AssumeRolePolicyDocument="{}")
    iam.remove_role_from_instance_profile(InstanceProfileName="oce-demo-node", RoleName="oce-demo-node")
    iam.add_role_to_instance_profile(InstanceProfileName="oce-demo-node", RoleName="stray")

    res = run(capsys, tags={"team": "ml"}, purge_tags=True)
    assert res["changed"] is True, res
    assert res["actions"] == [
        "correct the trust policy of role oce-demo-node (EC2 only)",
        "correct the tags of role oce-demo-node",
        "correct the inline policy oce-node of role oce-demo-node",
        "correct the tags of instance profile oce-demo-node",
        "remove role stray from instance profile oce-demo-node",
        "add role oce-demo-node to instance profile oce-demo-node",
    ]
    found = everything(iam)
    role = found["roles"]["oce-demo-node"]
    assert role["tags"] == dict(OURS, team="ml")
    assert role["trust"]["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    assert role["policies"]["oce-node"] == res["policy"]
    assert found["profiles"]["oce-demo-node"] == {"roles": ["oce-demo-node"], "tags": dict(OURS, team="ml")}
    # The stray role itself is not ours: only taken out of our profile.
    assert found["roles"]["stray"]["tags"] == {}
    assert run(capsys, tags={"team": "ml"}, purge_tags=True)["changed"] is False


def test_someone_elses_role_or_profile_of_the_name_is_refused_untouched(iam, capsys):
    iam.create_role(RoleName="oce-demo-node", AssumeRolePolicyDocument="{}", Tags=[{"Key": "owner", "Value": "x"}])
    before = everything(iam)
    res = run(capsys)
    assert res["failed"] is True and res["changed"] is False, res
    assert res["msg"].startswith("IAM role oce-demo-node exists but is not deployment demo's"), res
    assert "IAM names are account-wide" in res["msg"] and "Nothing was changed" in res["msg"]
    assert everything(iam) == before

    # Our role but a profile of the same name that is not ours (tagged by another deployment).
    iam.delete_role(RoleName="oce-demo-node")
    iam.create_instance_profile(
        InstanceProfileName="oce-other-node", Tags=[{"Key": "oce-deployment", "Value": "other"}]
    )  # not in the way
    iam.create_instance_profile(
        InstanceProfileName="oce-demo-node",
        Tags=aws.to_tag_list({"oce-deployment": "demo2", "oce-managed-by": "ollama_cloud.engine"}),
    )
    before = everything(iam)
    res = run(capsys)
    assert res["failed"] is True and res["msg"].startswith("instance profile oce-demo-node exists but"), res
    assert everything(iam) == before


def test_absent_removes_ours_and_leaves_others_alone(iam, capsys):
    run(capsys)
    # More on our role: another inline policy, a managed policy, and another profile holding it.
    iam.put_role_policy(RoleName="oce-demo-node", PolicyName="extra", PolicyDocument=allow("s3:GetObject"))
    managed = iam.create_policy(PolicyName="shared", PolicyDocument=allow("s3:ListBucket"))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="oce-demo-node", PolicyArn=managed)
    iam.create_instance_profile(InstanceProfileName="oce-demo-extra")
    iam.add_role_to_instance_profile(InstanceProfileName="oce-demo-extra", RoleName="oce-demo-node")
    # Not ours: a role and a profile of other names, and another deployment's.
    iam.create_role(RoleName="someone-else", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="someone-else")
    run(capsys, deployment="other")
    others = {k: {n: v for n, v in found.items() if n != "oce-demo-node"} for k, found in everything(iam).items()}

    checked = run(capsys, state="absent", check_mode=True)
    assert checked["changed"] is True and everything(iam)["roles"]["oce-demo-node"], checked

    res = run(capsys, state="absent", diff=True)
    assert res["changed"] is True and res["left_alone"] == [], res
    assert (
        res["actions"]
        == checked["actions"]
        == [
            "remove role oce-demo-node from instance profile oce-demo-node",
            "delete instance profile oce-demo-node",
            "remove role oce-demo-node from instance profile oce-demo-extra",
            "delete the inline policy extra of role oce-demo-node",
            "delete the inline policy oce-node of role oce-demo-node",
            f"detach policy {managed} from role oce-demo-node",
            "delete role oce-demo-node",
        ]
    )
    assert res["diff"]["after"] == {"role": None, "policy": None, "profile": None}
    assert res["diff"]["before"]["profile"]["roles"] == ["oce-demo-node"]
    assert res["identity"]["role_arn"] == f"{ARN}:role/oce-demo-node"
    # The other profile stays, without our role.
    others["profiles"]["oce-demo-extra"]["roles"] = []
    assert everything(iam) == others
    assert iam.get_policy(PolicyArn=managed)["Policy"]  # detached, not deleted

    again = run(capsys, state="absent")
    assert again["changed"] is False and again["actions"] == [], again


def test_absent_leaves_someone_elses_role_and_profile_of_the_name(iam, capsys, monkeypatch, module_warnings):
    # Warnings are the process's (AnsibleModule.warn): this test's stay in this test.
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    iam.create_role(RoleName="oce-demo-node", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="oce-demo-node")
    iam.add_role_to_instance_profile(InstanceProfileName="oce-demo-node", RoleName="oce-demo-node")
    before = everything(iam)
    res = run(capsys, state="absent")
    assert res["changed"] is False and res["actions"] == [], res
    assert res["left_alone"] == ["role oce-demo-node", "instance profile oce-demo-node"]
    assert any("role oce-demo-node exists but is not deployment demo's" in w for w in module_warnings), res
    assert everything(iam) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"deployment": "Demo_1"}, "deployment 'Demo_1' is not valid"),
        ({"name": "x" * 60}, "the IAM role name " + "x" * 60 + "-node must be at most 64 characters"),
        ({"name": "my role"}, "name 'my role' is not valid in an IAM role name"),
        ({"secret_name": "arn:aws:secretsmanager:x"}, "secret_name 'arn:aws:secretsmanager:x' is not a Secrets"),
        ({"log_group": "logs with spaces"}, "log_group 'logs with spaces' is not a CloudWatch Logs group name"),
        ({"tags": {"oce-deployment": "x"}}, "tags may not set oce-deployment"),
        ({"tags": {"aws:owner": "x"}}, "tags may not set aws:owner"),
        ({"tags": {f"k{n}": "v" for n in range(49)}}, "51 tags with ours: IAM allows at most 50"),
        ({"permissions_boundary": "oce-boundary"}, "permissions_boundary 'oce-boundary' is not the ARN of a managed"),
    ],
)
def test_bad_input_fails_before_anything_is_created(iam, capsys, args, message):
    res = run(capsys, **args)
    assert res["failed"] is True and res["changed"] is False, res
    assert message in res["msg"], res
    assert everything(iam) == {"roles": {}, "profiles": {}}


def test_no_region_fails_before_anything_is_created(iam, capsys, monkeypatch):
    # The policy's ARNs name the region: none given is a sentence, not a guess.
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    res = run(capsys)
    assert res["failed"] is True and res["msg"] == "no AWS region given: set region (or AWS_REGION)", res
    assert everything(iam) == {"roles": {}, "profiles": {}}


class FakeIam:
    """An IAM client whose first call to each operation in ``refuse`` answers ``code``."""

    def __init__(self, real, refuse, code):
        self.real, self.refuse, self.code = real, set(refuse), code

    def __getattr__(self, operation):
        def call(**params):
            if operation in self.refuse:
                self.refuse.discard(operation)
                error = {"Error": {"Code": self.code, "Message": f"{self.code} for the test"}}
                raise ClientError(error, operation)
            return getattr(self.real, operation)(**params)

        return call


def identity(iam, refuse, code):
    clock = cloud.Clock(sleep=lambda s: None)
    fake = aws.Api(FakeIam(iam, refuse, code), "us-east-1", clock)
    sts = aws.Api(boto3.client("sts", region_name="us-east-1", endpoint_url=iam.meta.endpoint_url), "us-east-1")
    params = {"deployment": "demo", "tags": {}, "purge_tags": False}
    return aws_node_identity.Identity(fake, sts, params, check_mode=False)


def test_a_write_iam_does_not_know_the_new_role_for_yet_is_asked_again(iam):
    ident = identity(iam, ["put_role_policy", "add_role_to_instance_profile"], "NoSuchEntity")
    ident.present()
    assert ident.iam.retries and {r[0] for r in ident.iam.retries} == {
        "put_role_policy",
        "add_role_to_instance_profile",
    }
    assert everything(iam)["profiles"]["oce-demo-node"]["roles"] == ["oce-demo-node"]


def refusing(monkeypatch, operation, code):
    """aws.connect, whose IAM client answers ``code`` to the first call of ``operation``."""
    real = aws.connect

    def connect(params, service, clock=None):
        api = real(params, service, clock)
        if service == "iam":
            api.client = FakeIam(api.client, [operation], code)
        return api

    monkeypatch.setattr(aws, "connect", connect)
    return real


def test_credentials_without_the_permission_are_told_what_they_need(iam, monkeypatch, capsys):
    refusing(monkeypatch, "get_role", "AccessDenied")
    res = run(capsys)
    assert res["failed"] is True and res["changed"] is False and res["code"] == "AccessDenied", res
    assert res["msg"].startswith("get role failed: the credentials are not allowed to do this"), res
    assert "the credentials need the NodeIdentity statement of the collection's docs/permissions/" in res["msg"], res
    assert everything(iam) == {"roles": {}, "profiles": {}}


def test_a_failure_part_way_says_what_was_done(iam, monkeypatch, capsys):
    real = refusing(monkeypatch, "create_instance_profile", "LimitExceeded")
    res = run(capsys)
    assert res["failed"] is True and res["changed"] is True, res
    assert "create instance profile failed" in res["msg"] and "IAM quota" in res["msg"], res
    assert "done before the failure: create role oce-demo-node; put the inline policy oce-node" in res["msg"]
    assert res["actions"] == ["create role oce-demo-node", "put the inline policy oce-node of role oce-demo-node"]
    # Running again finishes it.
    monkeypatch.setattr(aws, "connect", real)
    assert run(capsys)["actions"] == [
        "create instance profile oce-demo-node",
        "add role oce-demo-node to instance profile oce-demo-node",
    ]


def test_a_policy_in_another_of_iams_forms_is_the_same_policy():
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": ["sts:AssumeRole"]}
        ],
    }
    assert aws_node_identity.same_policy(trust, aws_node_identity.TRUST_POLICY)
    policy = aws_node_identity.node_policy("aws", "us-east-1", "1", "/oce/demo", "oce/demo/tailscale")
    reordered = json.loads(json.dumps(policy))
    reordered["Statement"][0]["Action"].reverse()
    assert aws_node_identity.same_policy(reordered, policy)
    reordered["Statement"][2]["Resource"] = "*"
    assert not aws_node_identity.same_policy(reordered, policy)
    assert not aws_node_identity.same_policy(None, policy)
