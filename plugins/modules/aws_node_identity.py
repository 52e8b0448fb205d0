#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_node_identity
short_description: The IAM role and instance profile of one deployment's AWS nodes, with the least they need
version_added: 0.2.0
description:
  - Creates, corrects or deletes the IAM role C(NAME-node) that a C(cloud=aws) node runs as, its one
    inline policy C(oce-node), and the instance profile C(NAME-node) that hands the role to the
    instance; the AWS counterpart of M(ollama_cloud.engine.gcp_node_identity).
  - "V(present): the role, trusted by C(ec2.amazonaws.com) only, tagged with our deployment tags and
    O(tags); the inline policy C(oce-node), which allows the CloudWatch agent's metrics (actions that
    take no resource), writing log streams into exactly one log group (O(log_group)), and
    C(secretsmanager:GetSecretValue) on exactly one secret (O(secret_name)), from which the node reads
    its Tailscale auth key itself; the instance profile holding exactly that role, tagged alike. A
    trust policy, description, inline policy, profile role or tag that drifted is corrected."
  - The policy's ARNs are built from the account and partition of the credentials (STS
    C(GetCallerIdentity), read by the module) and O(region).
  - The module never creates, reads or changes the secret or the log group; the node role
    (C(aws/monitoring.yml)) creates the log group, the secret is yours.
  - IAM names are account-wide. A role or instance profile named C(NAME-node) without both of our
    tags (C(oce-deployment=DEPLOYMENT), C(oce-managed-by=ollama_cloud.engine)) is someone else's;
    V(present) fails before it changes anything, V(absent) leaves it as it is and says so in
    RV(left_alone).
  - "V(absent): removes every role from our instance profile and deletes it, then takes our role out
    of any other instance profile that still holds it, deletes its inline policies, detaches the
    managed policies attached to it (the policies themselves stay) and deletes it. Delete the
    deployment's instances first."
  - IAM is eventually consistent. A write that follows this run's own creation of the role is
    retried for up to a minute while IAM still answers C(NoSuchEntity). EC2 may refuse a brand-new
    instance profile for some seconds; the launch is the caller's to retry (the node role does).
options:
  deployment:
    description: Deployment label; marks the role and the profile as ours. Lowercase letters, digits, dashes.
    type: str
    required: true
  name:
    description:
      - Prefix of the role's and the profile's name, C(NAME-node); C(oce-DEPLOYMENT) when omitted.
      - An IAM role name holds at most 64 characters (letters, digits and C(+=,.@_-)).
    type: str
  state:
    description: V(present) creates or corrects the role, its policy and the profile; V(absent) deletes what is ours.
    type: str
    choices: [present, absent]
    default: present
  environment:
    description: Environment label, the C(oce-environment) tag of the role and the profile.
    type: str
  tags:
    description:
      - Extra tags for the role and the profile. They may not set C(oce-deployment) or C(oce-managed-by).
      - On an existing role or profile, a tag missing or with another value is set; see O(purge_tags).
    type: dict
    default: {}
  purge_tags:
    description:
      - On an existing role or profile, also remove the tags that are neither ours nor in O(tags), and
        C(oce-environment) when O(environment) is not given. Our C(oce-deployment) and C(oce-managed-by)
        tags and C(aws:*) tags are never removed.
    type: bool
    default: false
  permissions_boundary:
    description:
      - ARN of a managed policy set as the role's permissions boundary (on a new role, and on an
        existing one that has another or none). With a boundary, the controller's policy can require
        it (C(iam:PermissionsBoundary) on C(iam:CreateRole), C(iam:PutRolePolicy) and
        C(iam:PutRolePermissionsBoundary); see docs/permissions), so that no role it makes can hold
        more than the boundary allows, whatever its inline policy says.
      - Not set leaves a role's boundary as it is.
    type: str
  log_group:
    description: The CloudWatch Logs group the node's agent writes into (it must exist before the node boots).
    type: str
  secret_name:
    description:
      - The Secrets Manager secret the node may read (its Tailscale auth key), by name; the policy
        allows the name with the six random characters Secrets Manager appends in the ARN.
      - C(oce/DEPLOYMENT/tailscale) when omitted.
    type: str
extends_documentation_fragment:
  - ollama_cloud.engine.aws
attributes:
  check_mode:
    support: full
    description: Reads the caller, the role, its policy and the profile only; RV(actions) lists what would change.
  diff_mode:
    support: full
    description: Shows the role (trust policy, description, tags), the policy document and the profile before and after.
notes:
  - O(log_group) is C(/oce/DEPLOYMENT) when omitted.
  - The credentials need the C(NodeIdentity) statement of the collection's
    C(docs/permissions/aws-controller-policy.json) (the IAM actions on C(oce-*) roles and instance profiles).
  - No Session Manager permissions; nodes are reached over the tailnet only.
  - Inline policies other than C(oce-node) on our role are left as they are by V(present).
seealso:
  - module: ollama_cloud.engine.aws_gpu_instance
    description: >-
      Launches the node with the profile (its
      O(ollama_cloud.engine.aws_gpu_instance#module:instance_profile)).
  - module: ollama_cloud.engine.gcp_node_identity
  - name: IAM roles for Amazon EC2
    description: How an instance profile hands a role to an instance.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/iam-roles-for-amazon-ec2.html
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
# First, once: aws secretsmanager create-secret --name oce/demo/tailscale --secret-string file://key.txt
- name: The demo deployment's node identity
  ollama_cloud.engine.aws_node_identity:
    deployment: demo
    environment: prod
    region: us-east-1
    tags:
      team: ml
  register: identity

- name: A node that runs as it
  ollama_cloud.engine.aws_gpu_instance:
    name: oce-demo
    deployment: demo
    model: codellama:7b-code
    region: us-east-1
    subnet_ids: [subnet-0123456789abcdef0]
    instance_profile: "{{ identity.identity.profile_name }}"
  register: node
  # A new instance profile takes EC2 a few seconds to know.
  retries: 6
  delay: 10
  until: node is succeeded or 'iamInstanceProfile' not in (node.msg | default(''))

- name: Remove the identity after the nodes are gone
  ollama_cloud.engine.aws_node_identity:
    deployment: demo
    region: us-east-1
    state: absent
"""

RETURN = r"""
identity:
  description:
    - The role and the profile (after V(absent), those that were, or would be, deleted), and the
      account and partition of the credentials.
    - In check mode before they exist, the ARNs they will have.
  returned: always
  type: dict
  contains:
    role_name:
      description: The role's name, C(NAME-node).
      type: str
    role_arn:
      description: The role's ARN.
      type: str
    profile_name:
      description: The instance profile's name, C(NAME-node).
      type: str
    profile_arn:
      description: The instance profile's ARN.
      type: str
    policy_name:
      description: The name of the role's inline policy.
      type: str
    account:
      description: The AWS account id of the credentials.
      type: str
    partition:
      description: The AWS partition (V(aws), V(aws-cn), V(aws-us-gov)).
      type: str
  sample:
    role_name: oce-demo-node
    role_arn: arn:aws:iam::123456789012:role/oce-demo-node
    profile_name: oce-demo-node
    profile_arn: arn:aws:iam::123456789012:instance-profile/oce-demo-node
    policy_name: oce-node
    account: "123456789012"
    partition: aws
policy:
  description: The inline policy document the role has after V(present) (none after V(absent)).
  returned: always
  type: dict
actions:
  description: What was (in check mode, would be) created, corrected, removed or deleted, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create role oce-demo-node
    - put the inline policy oce-node on role oce-demo-node
    - create instance profile oce-demo-node
    - add role oce-demo-node to instance profile oce-demo-node
left_alone:
  description: What V(absent) found under our names without our tags (someone else's) and did not touch.
  returned: always
  type: list
  elements: str
  sample: [role oce-demo-node]
retries:
  description: >-
    API calls retried after throttling, a server error or IAM catching up, as
    C([operation, code, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import json
import re

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud, fleet, node_module

POLICY_NAME = "oce-node"
# The role of an EC2 instance: nothing but EC2 may assume it.
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
# How long a write may be refused with NoSuchEntity after this run created the role (IAM catching up).
PROPAGATION_TIMEOUT = 60.0
# IAM's own limits: role names, tags per resource.
ROLE_NAME_MAX = 64
TAGS_MAX = 50
_IAM_NAME_RE = re.compile(r"^[\w+=,.@-]+$")
_SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
_LOG_GROUP_RE = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
_POLICY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$")
# Sequences IAM may store either as one string or as a list of strings (actions, resources, a
# principal's services or accounts): compared as sorted lists.
_LIST_KEYS = frozenset({"Action", "NotAction", "Resource", "NotResource", "Service", "AWS", "Federated"})
MAX_ITEMS = 1000  # IAM's largest page; a role has far fewer policies and profiles

HINTS = {
    "AccessDenied": (
        "the credentials need the NodeIdentity statement of the collection's "
        "docs/permissions/aws-controller-policy.json (IAM on oce-* roles and instance profiles)"
    ),
    "EntityAlreadyExists": "someone created it between this run's read and its write: run again",
    "LimitExceeded": "the account's IAM quota (roles, instance profiles or policy size) is used up",
    "DeleteConflict": (
        "something still uses it (an instance, a policy or a profile): delete the deployment's nodes first"
    ),
    "MalformedPolicyDocument": "IAM refused the policy this module built: please report it",
}


def node_policy(partition, region, account, log_group, secret_name):
    """The node's inline policy: the CloudWatch agent (its own log group only) and one secret.

    The actions of CloudWatchAgentServerPolicy, least privilege: the log group exists before the
    node, with its retention, so the node may only write streams into it; it may create no group
    nor change a retention. Secrets Manager appends six random characters to the name in the ARN.
    """
    group = f"arn:{partition}:logs:{region}:{account}:log-group:{log_group}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                # These actions take no resource: the metrics go to the agent's namespace only.
                "Sid": "CloudWatchAgentMetrics",
                "Effect": "Allow",
                "Action": [
                    "cloudwatch:PutMetricData",
                    "ec2:DescribeTags",
                    "ec2:DescribeVolumes",
                    "logs:DescribeLogGroups",
                ],
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchAgentLogs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                "Resource": [group, f"{group}:*"],
            },
            {
                "Sid": "ReadTheNodeSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:{partition}:secretsmanager:{region}:{account}:secret:{secret_name}-??????",
            },
        ],
    }


def canonical(document):
    """A policy document in one form: strings where IAM accepts a string or a list become sorted lists."""
    if isinstance(document, dict):
        return {
            k: sorted([v] if isinstance(v, str) else v) if k in _LIST_KEYS else canonical(v)
            for k, v in document.items()
        }
    if isinstance(document, list):
        return [canonical(v) for v in document]
    return document


def same_policy(found, wanted):
    return found is not None and canonical(found) == canonical(wanted)


def defaults(params):
    """The name, log group and secret name of ``params``, defaults filled in."""
    names = fleet.deployment_names(params["deployment"])
    return (
        params.get("name") or names["base"],
        params.get("log_group") or names["aws_log_group"],
        params.get("secret_name") or names["aws_key_secret"],
    )


def boundary_of(role):
    """The ARN of a role's permissions boundary, or None."""
    return ((role or {}).get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")


def lacks_tags(kind, name, deployment):
    labels = fleet.deployment_labels(deployment)
    wanted = " and ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return f"{kind} {name} exists but is not deployment {deployment}'s (it lacks the tags {wanted})"


class Identity:
    """The deployment's node role, its inline policy and its instance profile: read, plan, apply."""

    def __init__(self, iam, sts, params, check_mode):
        self.iam, self.sts = iam, sts
        self.check = check_mode
        self.deployment = params["deployment"]
        prefix, self.log_group, self.secret_name = defaults(params)
        self.name = f"{prefix}-node"
        self.region = iam.region
        self.tags = cloud.our_tags(self.deployment, environment=params.get("environment"), extra=params["tags"])
        self.purge = params["purge_tags"]
        self.boundary = params.get("permissions_boundary") or None
        self.description = f"ollama_cloud.engine {self.deployment}: the GPU node's instance role"
        self.actions, self.done, self.left_alone, self.warnings = [], [], [], []
        self.account = self.partition = None
        self.created_role = False

    # --------------------------------------------------------------- reads

    def caller(self):
        found = self.sts.call("get_caller_identity")
        self.account, self.partition = found["Account"], found["Arn"].split(":")[1]

    def lookup(self, operation, key, **params):
        """``operation``'s ``key``, or None when IAM has no such entity."""
        try:
            return self.iam.call(operation, **params)[key]
        except cloud.CloudError as exc:
            if exc.details.get("code") == "NoSuchEntity":
                return None
            raise

    def read(self):
        self.caller()
        role = self.lookup("get_role", "Role", RoleName=self.name)
        profile = self.lookup("get_instance_profile", "InstanceProfile", InstanceProfileName=self.name)
        return role, profile

    def ours(self, found):
        return found is not None and fleet.is_ours(aws.tag_dict(found.get("Tags")), self.deployment)

    def wanted_policy(self):
        return node_policy(self.partition, self.region, self.account, self.log_group, self.secret_name)

    def arn(self, kind):
        return f"arn:{self.partition}:iam::{self.account}:{kind}/{self.name}"

    # --------------------------------------------------------------- writes

    def act(self, action, *calls):
        """Record ``action``; unless in check mode, make its ``(operation, params)`` calls.

        After this run created the role, IAM may not know it everywhere yet: a NoSuchEntity answer
        is asked again until PROPAGATION_TIMEOUT.
        """
        self.actions.append(action)
        if self.check:
            return
        for operation, params in calls:
            if self.created_role:
                cloud.retry_until(
                    lambda op=operation, p=params: self.iam.call(op, **p),
                    lambda exc: getattr(exc, "details", {}).get("code") == "NoSuchEntity",
                    self.iam.clock.now() + PROPAGATION_TIMEOUT,
                    clock=self.iam.clock,
                    on_retry=lambda exc, attempt, delay, op=operation: self.iam.retries.append(
                        (op, "NoSuchEntity", round(delay, 3))
                    ),
                )
            else:
                self.iam.call(operation, **params)
        self.done.append(action)

    def retag(self, kind, found, tag, untag, **key):
        """Bring the tags of an existing role or profile to this run's; returns the tags it ends with."""
        current = aws.tag_dict(found.get("Tags"))
        changes, removals = cloud.tag_drift(current, self.tags, self.purge, aws.RESERVED_TAG_PREFIXES)
        calls = []
        if changes:
            calls.append((tag, dict(key, Tags=aws.to_tag_list(changes))))
        if removals:
            calls.append((untag, dict(key, TagKeys=removals)))
        if calls:
            self.act(f"correct the tags of {kind} {self.name}", *calls)
        return cloud.with_drift(current, changes, removals)

    # --------------------------------------------------------------- state

    def state(self, role, policy, profile):
        """What the diff shows: the role, its policy document, the profile (None: absent)."""
        return {
            "role": role
            and {
                "name": role["RoleName"],
                "trust_policy": role.get("AssumeRolePolicyDocument"),
                "description": role.get("Description", ""),
                "permissions_boundary": boundary_of(role),
                "tags": dict(sorted(aws.tag_dict(role.get("Tags")).items())),
            },
            "policy": policy,
            "profile": profile
            and {
                "name": profile["InstanceProfileName"],
                "roles": [r["RoleName"] for r in profile.get("Roles") or []],
                "tags": dict(sorted(aws.tag_dict(profile.get("Tags")).items())),
            },
        }

    def record(self, role, profile):
        return {
            "role_name": self.name,
            "role_arn": (role or {}).get("Arn") or self.arn("role"),
            "profile_name": self.name,
            "profile_arn": (profile or {}).get("Arn") or self.arn("instance-profile"),
            "policy_name": POLICY_NAME,
            "account": self.account,
            "partition": self.partition,
        }

    # --------------------------------------------------------------- converge

    def present(self):
        role, profile = self.read()
        for kind, found in (("IAM role", role), ("instance profile", profile)):
            if found is not None and not self.ours(found):
                raise cloud.CloudError(
                    f"{lacks_tags(kind, self.name, self.deployment)}: IAM names are account-wide and this module "
                    "will not adopt, change or delete it. Choose another name (or deployment), or delete it if it "
                    "is a leftover. Nothing was changed"
                )
        found_policy = None
        if role is not None:
            found_policy = self.lookup("get_role_policy", "PolicyDocument", RoleName=self.name, PolicyName=POLICY_NAME)
        before = self.state(role, found_policy, profile)
        policy = self.wanted_policy()
        trust = json.dumps(TRUST_POLICY)

        if role is None:
            self.act(
                f"create role {self.name}",
                (
                    "create_role",
                    {
                        "RoleName": self.name,
                        "AssumeRolePolicyDocument": trust,
                        "Description": self.description,
                        "Tags": aws.to_tag_list(self.tags),
                        **({"PermissionsBoundary": self.boundary} if self.boundary else {}),
                    },
                ),
            )
            self.created_role = not self.check
            role_tags = self.tags
        else:
            if not same_policy(role.get("AssumeRolePolicyDocument"), TRUST_POLICY):
                self.act(
                    f"correct the trust policy of role {self.name} (EC2 only)",
                    ("update_assume_role_policy", {"RoleName": self.name, "PolicyDocument": trust}),
                )
            if role.get("Description", "") != self.description:
                self.act(
                    f"correct the description of role {self.name}",
                    ("update_role", {"RoleName": self.name, "Description": self.description}),
                )
            role_tags = self.retag("role", role, "tag_role", "untag_role", RoleName=self.name)
            if self.boundary and boundary_of(role) != self.boundary:
                self.act(
                    f"set the permissions boundary of role {self.name} to {self.boundary}",
                    (
                        "put_role_permissions_boundary",
                        {"RoleName": self.name, "PermissionsBoundary": self.boundary},
                    ),
                )

        if not same_policy(found_policy, policy):
            verb = "correct" if found_policy is not None else "put"
            self.act(
                f"{verb} the inline policy {POLICY_NAME} of role {self.name}",
                (
                    "put_role_policy",
                    {"RoleName": self.name, "PolicyName": POLICY_NAME, "PolicyDocument": json.dumps(policy)},
                ),
            )

        held = []
        if profile is None:
            self.act(
                f"create instance profile {self.name}",
                ("create_instance_profile", {"InstanceProfileName": self.name, "Tags": aws.to_tag_list(self.tags)}),
            )
            profile_tags = self.tags
        else:
            held = [r["RoleName"] for r in profile.get("Roles") or []]
            profile_tags = self.retag(
                "instance profile",
                profile,
                "tag_instance_profile",
                "untag_instance_profile",
                InstanceProfileName=self.name,
            )
        for other in held:
            if other != self.name:
                self.remove_from_profile(other, self.name)
        if self.name not in held:
            self.act(
                f"add role {self.name} to instance profile {self.name}",
                ("add_role_to_instance_profile", {"InstanceProfileName": self.name, "RoleName": self.name}),
            )

        after = {
            "role": {
                "name": self.name,
                "trust_policy": TRUST_POLICY,
                "description": self.description,
                "permissions_boundary": self.boundary or boundary_of(role),
                "tags": dict(sorted(role_tags.items())),
            },
            "policy": policy,
            "profile": {"name": self.name, "roles": [self.name], "tags": dict(sorted(profile_tags.items()))},
        }
        return before, after, self.record(role, profile), policy

    def remove_from_profile(self, role_name, profile_name):
        self.act(
            f"remove role {role_name} from instance profile {profile_name}",
            ("remove_role_from_instance_profile", {"InstanceProfileName": profile_name, "RoleName": role_name}),
        )

    def listed(self, operation, key, **params):
        return self.iam.call(operation, MaxItems=MAX_ITEMS, **params).get(key) or []

    def absent(self):
        role, profile = self.read()
        for kind, found in (("role", role), ("instance profile", profile)):
            if found is not None and not self.ours(found):
                self.left_alone.append(f"{kind} {self.name}")
                self.warnings.append(f"{lacks_tags(kind, self.name, self.deployment)}: left as it is")
        role = role if self.ours(role) else None
        profile = profile if self.ours(profile) else None
        policy = None
        if role is not None:
            policy = self.lookup("get_role_policy", "PolicyDocument", RoleName=self.name, PolicyName=POLICY_NAME)
        before = self.state(role, policy, profile)
        record = self.record(role, profile)

        if profile is not None:
            for held in profile.get("Roles") or []:
                self.remove_from_profile(held["RoleName"], self.name)
            self.act(
                f"delete instance profile {self.name}",
                ("delete_instance_profile", {"InstanceProfileName": self.name}),
            )
        if role is not None:
            holders = self.listed("list_instance_profiles_for_role", "InstanceProfiles", RoleName=self.name)
            for other in holders:
                if other["InstanceProfileName"] != self.name or profile is None:
                    self.remove_from_profile(self.name, other["InstanceProfileName"])
            for inline in sorted(self.listed("list_role_policies", "PolicyNames", RoleName=self.name)):
                self.act(
                    f"delete the inline policy {inline} of role {self.name}",
                    ("delete_role_policy", {"RoleName": self.name, "PolicyName": inline}),
                )
            for attached in self.listed("list_attached_role_policies", "AttachedPolicies", RoleName=self.name):
                self.act(
                    f"detach policy {attached['PolicyArn']} from role {self.name}",
                    ("detach_role_policy", {"RoleName": self.name, "PolicyArn": attached["PolicyArn"]}),
                )
            self.act(f"delete role {self.name}", ("delete_role", {"RoleName": self.name}))
        return before, self.state(None, None, None), record, None


def check_inputs(params):
    """Every problem with the inputs, as sentences, before any call."""
    problems = []
    bad = fleet.validate_deployment(params["deployment"])
    if bad:
        return [bad]
    prefix, log_group, secret_name = defaults(params)
    role = f"{prefix}-node"
    if not _IAM_NAME_RE.match(role):
        problems.append(f"name {prefix!r} is not valid in an IAM role name: use letters, digits and +=,.@_- only")
    elif len(role) > ROLE_NAME_MAX:
        problems.append(
            f"name {prefix!r} is too long: the IAM role name {role} must be at most {ROLE_NAME_MAX} characters, "
            f"so use a name of at most {ROLE_NAME_MAX - len('-node')}"
        )
    if not _SECRET_NAME_RE.match(secret_name):
        problems.append(
            f"secret_name {secret_name!r} is not a Secrets Manager secret name: use 1-512 letters, digits "
            "and /_+=.@- (the name, not the ARN)"
        )
    boundary = params.get("permissions_boundary")
    if boundary and not _POLICY_ARN_RE.match(boundary):
        problems.append(
            f"permissions_boundary {boundary!r} is not the ARN of a managed policy "
            "(arn:aws:iam::123456789012:policy/NAME)"
        )
    if not _LOG_GROUP_RE.match(log_group):
        problems.append(
            f"log_group {log_group!r} is not a CloudWatch Logs group name: use 1-512 letters, digits and ._-/#"
        )
    try:
        tags = cloud.our_tags(params["deployment"], environment=params.get("environment"), extra=params["tags"])
    except cloud.CloudError as exc:
        problems.append(exc.msg)
    else:
        reserved = sorted(k for k in tags if k.startswith(aws.RESERVED_TAG_PREFIXES))
        if reserved:
            problems.append(f"tags may not set {', '.join(reserved)}: the aws: prefix is AWS's own")
        if len(tags) > TAGS_MAX:
            problems.append(f"{len(tags)} tags with ours: IAM allows at most {TAGS_MAX} per role")
    return problems


def explain(exc):
    """The sentence of a failed call, with what to do for the IAM answers a person can act on."""
    hint = HINTS.get(exc.details.get("code") or "")
    return f"{exc.msg}; {hint}" if hint else exc.msg


def main():
    base = node_module.NodeModule(
        aws,
        {
            "deployment": {"type": "str", "required": True},
            "name": {"type": "str"},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "environment": {"type": "str"},
            "tags": {"type": "dict", "default": {}},
            "purge_tags": {"type": "bool", "default": False},
            "log_group": {"type": "str"},
            "secret_name": {"type": "str"},
            "permissions_boundary": {"type": "str"},
        },
    )
    base.check(check_inputs(base.params))

    base.apply_state(
        lambda: Identity(base.client("iam"), base.client("sts"), base.params, base.check_mode),
        lambda exc, ident: cloud.failed_part_way(exc, ident.done if ident else [], msg=explain(exc)),
        lambda ident, after, record, policy: {"identity": record, "policy": policy, "left_alone": ident.left_alone},
    )


if __name__ == "__main__":
    main()
