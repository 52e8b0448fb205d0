"""The lifecycle playbooks with cloud=aws, as a user runs them, against a moto server on loopback.

create (network, identity, node, CloudWatch log group, alarms, SNS topic) for egress=nat and
egress=none side by side -> create again (0 changed) -> stop -> start -> status -> destroy both;
--check creates nothing; bad input fails with its sentence before anything exists; destroy leaves
what is not ours alone (a VPC, a role, log groups, an alarm and a topic of someone else's).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import yaml

from ansible_collections.ollama_cloud.engine.tests.functional.aws import permissions
from ansible_collections.ollama_cloud.engine.tests.functional.aws.fault_proxy import FaultProxy
from ansible_collections.ollama_cloud.engine.tests.functional.moto_server import stock_image
from ansible_collections.ollama_cloud.engine.tests.functional.tailnet_stand_in import online_peer_cli

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
# As the moto fixture sets them (conftest.py): fake keys (the playbooks' own id), no metadata service,
# no config files.
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": permissions.PLAYBOOK_KEY,
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
DEPLOYMENTS = ["t-nat", "t-air", "t-check", "t-bad", "t-half", "t-late", "t-topic"]
OURS = [
    {"Name": "tag:oce-deployment", "Values": DEPLOYMENTS},
    {"Name": "tag:oce-managed-by", "Values": ["ollama_cloud.engine"]},
]


def is_ours(tags):
    return tags.get("oce-deployment") in DEPLOYMENTS and tags.get("oce-managed-by") == "ollama_cloud.engine"


def recap(out):
    """(changed, failed) summed over the PLAY RECAP lines."""
    changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", out))
    failed = sum(int(n) for n in re.findall(r"\bfailed=(\d+)", out))
    return changed, failed


class Aws:
    """boto3 clients on moto and a runner for the playbooks (several at once, for speed)."""

    def __init__(self, url):
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(FAKE_ENV, AWS_ENDPOINT_URL=url, ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="false")
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        self.ec2 = session.client("ec2", endpoint_url=url)
        self.iam = session.client("iam", endpoint_url=url)
        self.logs = session.client("logs", endpoint_url=url)
        self.cloudwatch = session.client("cloudwatch", endpoint_url=url)
        self.sns = session.client("sns", endpoint_url=url)
        self.secrets = session.client("secretsmanager", endpoint_url=url)
        self.ami = stock_image(self.ec2)

    def start(self, playbook, deployment, *extra, env=None):
        cmd = ["ansible-playbook", "-i", "inventories/aws", "playbooks/%s.yml" % playbook]
        cmd += ["-e", "deployment=" + deployment, "-e", "model=gemma3:270m", "-e", "node_aws_image=" + self.ami]
        cmd += ["-e", "node_ssh_key_file=" + self.ssh_key]
        return subprocess.Popen(
            cmd + list(extra),
            cwd=REPO_ROOT,
            env=dict(self.env, **(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, *runs, ok=True):
        """Run (playbook, deployment, *extra) tuples in parallel; return their outputs in order."""
        procs = [self.start(*r) for r in runs]
        outs = []
        for proc in procs:
            # A safety net, not a bound: at a load of 30 on two cores a destroy outlasted 300 s.
            out = proc.communicate(timeout=900)[0]
            if ok:
                assert proc.returncode == 0, out[-5000:]
            outs.append(out)
        return outs if len(outs) > 1 else outs[0]

    def run_all(self, runs, at_once=6, timeout=900):
        """Run {name: (playbook, deployment, extra, env)} a few at a time: {name: (returncode, output)}.

        For runs that must create nothing: they share no state, so they overlap instead of queueing
        (each ansible-playbook is mostly its start-up and one process at a time).
        """

        def one(run):
            playbook, deployment, extra, env = run
            proc = self.start(playbook, deployment, *extra, env=env)
            try:
                out = proc.communicate(timeout=timeout)[0]  # a hang fails the fixture, never a case
            finally:
                proc.kill()
            return proc.returncode, out

        with ThreadPoolExecutor(at_once) as pool:
            return dict(zip(runs, pool.map(one, runs.values())))

    def ours(self):
        """Everything in moto that carries our tags, by kind (empty lists when nothing)."""
        live = {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}
        found = {
            "vpcs": [v["VpcId"] for v in self.ec2.describe_vpcs(Filters=OURS)["Vpcs"]],
            "subnets": [s["SubnetId"] for s in self.ec2.describe_subnets(Filters=OURS)["Subnets"]],
            "security_groups": [
                g["GroupId"] for g in self.ec2.describe_security_groups(Filters=OURS)["SecurityGroups"]
            ],
            "route_tables": [r["RouteTableId"] for r in self.ec2.describe_route_tables(Filters=OURS)["RouteTables"]],
            "igws": [
                g["InternetGatewayId"] for g in self.ec2.describe_internet_gateways(Filters=OURS)["InternetGateways"]
            ],
            "nat_gateways": [
                n["NatGatewayId"]
                for n in self.ec2.describe_nat_gateways(Filters=OURS)["NatGateways"]
                if n["State"] in ("pending", "available")
            ],
            "endpoints": [
                e["VpcEndpointId"]
                for e in self.ec2.describe_vpc_endpoints(Filters=OURS)["VpcEndpoints"]
                if e["State"].lower() not in ("deleted", "deleting")
            ],
            "addresses": [a["AllocationId"] for a in self.ec2.describe_addresses(Filters=OURS)["Addresses"]],
            "instances": [
                i["InstanceId"]
                for r in self.ec2.describe_instances(Filters=OURS + [live])["Reservations"]
                for i in r["Instances"]
            ],
            "roles": [r["RoleName"] for r in self.iam.list_roles()["Roles"] if r["RoleName"].startswith("oce-t-")],
            "profiles": [
                p["InstanceProfileName"]
                for p in self.iam.list_instance_profiles()["InstanceProfiles"]
                if p["InstanceProfileName"].startswith("oce-t-")
            ],
            "log_groups": [
                g["logGroupName"]
                for g in self.logs.describe_log_groups()["logGroups"]
                if is_ours(self.logs.list_tags_log_group(logGroupName=g["logGroupName"])["tags"])
            ],
            "alarms": [
                a["AlarmName"]
                for a in self.cloudwatch.describe_alarms()["MetricAlarms"]
                if a.get("AlarmDescription", "").endswith(" oce-managed-by=ollama_cloud.engine]")
            ],
            "topics": [
                t["TopicArn"]
                for t in self.sns.list_topics()["Topics"]
                if is_ours(
                    {x["Key"]: x["Value"] for x in self.sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"]}
                )
            ],
        }
        return {kind: ids for kind, ids in found.items() if ids}


@pytest.fixture(scope="module")
def aws(moto_server, moto_url, tmp_path_factory):
    moto_server.reset()
    found = Aws(moto_url)
    found.recording = moto_server.recording
    # The controller's key for the nodes' user (node_ssh_key_file), made once, outside ~/.ssh.
    found.ssh_key = str(tmp_path_factory.mktemp("ssh") / "oce_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", found.ssh_key], check=True)
    # What a user stores once per deployment: the tailnet key its nodes read (t-bad has none).
    for deployment in ("t-check", "t-nat", "t-air", "t-topic"):
        found.secrets.create_secret(Name=f"oce/{deployment}/tailscale", SecretString="tskey-auth-moto")
    return found


def flat(out):
    """The output with YAML's line folding undone (messages wrap at spaces)."""
    return " ".join(out.split())


def table_row(out, node):
    return next((line for line in out.splitlines() if re.match(r"^[\s'-]*%s\s+aws\s" % node, line)), "")


@pytest.fixture(scope="module")
def refused(aws):
    """The runs that must create nothing (check mode, every bad input, start and configure without a
    node), run side by side once: {name: (returncode, output)}. Each test asserts on its own run;
    moto holds nothing of ours once they have all ended."""
    runs = {case: ("create", "t-bad", extra, env) for case, (extra, env, _message) in BAD_INPUTS.items()}
    runs["check mode"] = ("create", "t-check", ["--check", "-e", "node_aws_alarm_email=ops@example.com"], None)
    runs["start without a node"] = ("start", "t-bad", [], None)
    runs["configure without a node"] = ("configure", "t-bad", [], None)
    return aws.run_all(runs)


def test_check_mode_creates_nothing(aws, refused):
    returncode, out = refused["check mode"]
    assert returncode == 0, out[-5000:]
    assert "Check mode: would create the VPC oce-t-check" in out
    assert "its alarms oce-t-check-status-check-failed and oce-t-check-gpu-idle" in flat(out)
    assert "would create the SNS topic oce-t-check-alerts for ops@example.com" in flat(out)
    assert re.search(r"g4dn\.xlarge 0\.526 USD/h \+ 30 GB gp3 .* = 0\.574 USD/h, about 419 USD/month", flat(out)), out
    assert aws.ours() == {}


def test_lifecycle_nat_and_no_egress_then_destroy_leaves_only_others(aws):
    # Not ours: a VPC of someone else's and a role of the same shape without our tags.
    other_vpc = aws.ec2.create_vpc(CidrBlock="10.64.0.0/16")["Vpc"]["VpcId"]
    aws.ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.64.1.0/24")
    aws.iam.create_role(RoleName="someone-else", AssumeRolePolicyDocument="{}")
    # ... and CloudWatch of someone else's: a log group of t-air's name (used, never tagged nor
    # deleted), one of a longer name, an alarm of a similar name, a topic t-air's alarms notify.
    aws.logs.create_log_group(logGroupName="/oce/t-air")
    aws.logs.create_log_group(logGroupName="/oce/t-nat-old", tags={"oce-managed-by": "ollama_cloud.engine"})
    aws.cloudwatch.put_metric_alarm(
        AlarmName="oce-t-nat-cpu",
        AlarmDescription="someone else's",
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=90,
        ComparisonOperator="GreaterThanThreshold",
    )
    their_topic = aws.sns.create_topic(Name="someone-elses-alerts")["TopicArn"]
    email = ("-e", "node_aws_alarm_email=ops@example.com")

    nat, air = aws.run(
        ("create", "t-nat", "-e", "oce_environment=staging", *email),
        ("create", "t-air", "-e", "node_aws_egress=none", "-e", "node_aws_alarm_topic_arn=" + their_topic, *AIRGAP),
    )
    # One changed task per module call that made something: the network, the identity, the log group
    # and topic, the node, its alarms.
    assert recap(nat)[0] >= 5 and "0.574 USD/h" in flat(nat)
    assert "running" in table_row(nat, "oce-t-nat") and "0.526" in table_row(nat, "oce-t-nat")
    assert "(no NAT: egress=none) = 0.529 USD/h" in flat(air)

    found = aws.ours()
    assert len(found["vpcs"]) == 2 and len(found["instances"]) == 2
    assert len(found["subnets"]) == 5  # two private each, one public for the NAT
    assert len(found["nat_gateways"]) == 1 and len(found["igws"]) == 1 and len(found["addresses"]) == 1
    assert len(found["endpoints"]) == 4  # egress=none: S3 gateway + logs, monitoring, secretsmanager
    assert sorted(found["roles"]) == sorted(found["profiles"]) == ["oce-t-air-node", "oce-t-nat-node"]

    # The node: private, in a private subnet, behind a group with no ingress rule, with its profile.
    (inst,) = [
        i
        for r in aws.ec2.describe_instances(Filters=[{"Name": "tag:oce-deployment", "Values": ["t-nat"]}])[
            "Reservations"
        ]
        for i in r["Instances"]
    ]
    assert "PublicIpAddress" not in inst and inst["IamInstanceProfile"]["Arn"].endswith("/oce-t-nat-node")
    (group_id,) = [g["GroupId"] for g in inst["NetworkInterfaces"][0]["Groups"]]
    (group,) = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["GroupName"] == "oce-t-nat-node" and group["IpPermissions"] == []
    subnet = aws.ec2.describe_subnets(SubnetIds=[inst["SubnetId"]])["Subnets"][0]
    assert {"Key": "oce-tier", "Value": "private"} in subnet["Tags"] and not subnet["MapPublicIpOnLaunch"]
    policy = aws.iam.get_role_policy(RoleName="oce-t-nat-node", PolicyName="oce-node")["PolicyDocument"]
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    # Every statement's resource: one secret, one log group; only resource-less actions on "*".
    assert resources == {
        "CloudWatchAgentMetrics": "*",
        "CloudWatchAgentLogs": [
            "arn:aws:logs:us-east-1:123456789012:log-group:/oce/t-nat",
            "arn:aws:logs:us-east-1:123456789012:log-group:/oce/t-nat:*",
        ],
        "ReadTheNodeSecret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:oce/t-nat/tailscale-??????",
    }
    star = [s for s in policy["Statement"] if s["Resource"] == "*"][0]["Action"]
    assert sorted(star) == [
        "cloudwatch:PutMetricData",
        "ec2:DescribeTags",
        "ec2:DescribeVolumes",
        "logs:DescribeLogGroups",
    ]
    # The node boots with user data that names its secret and carries no key.
    user_data = aws.ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
    text = base64.b64decode(user_data["UserData"]["Value"]).decode()
    assert text.startswith("#cloud-config\n") and "oce/t-nat/tailscale" in text and "tskey" not in text
    assert len(text.encode()) < 16 * 1024  # AWS's limit, before base64
    # Tailscale's unit and settings as the tailscale role renders them: configuring the node keeps them.
    (node_json,) = [f["content"] for f in yaml.safe_load(text)["write_files"] if f["path"] == "/etc/oce/node.json"]
    tailscale = json.loads(node_json)["tailscale"]
    role_templates = os.path.join(REPO_ROOT, "roles", "tailscale", "templates")
    assert tailscale["unit"].startswith("#\n# Ansible managed\n#\n")
    with open(os.path.join(role_templates, "tailscaled.service.j2"), encoding="utf-8") as f:
        assert tailscale["unit"].endswith(f.read().split("\n", 1)[1])
    assert tailscale["defaults"].endswith('\nPORT="41641"\nFLAGS=""\n')  # the role's defaults
    # A golden image's CloudWatch agent logs to the log group below, as the monitoring_agent role names its files.
    assert json.loads(node_json)["logs"] == {
        "group": "/oce/t-nat",
        "agent_config": "/etc/oce/cloudwatch-agent.json",
        "applied": "/var/lib/oce/cloudwatch-agent-config.applied",
        "unit": "oce-cloudwatch-agent-config.service",
    }

    # CloudWatch: t-nat's log group with its retention, its topic with the email, two alarms per node.
    assert found["log_groups"] == ["/oce/t-nat"]
    (log_group,) = [g for g in aws.logs.describe_log_groups()["logGroups"] if g["logGroupName"] == "/oce/t-nat"]
    assert log_group["retentionInDays"] == 30
    (theirs,) = [g for g in aws.logs.describe_log_groups()["logGroups"] if g["logGroupName"] == "/oce/t-air"]
    assert "retentionInDays" not in theirs and aws.logs.list_tags_log_group(logGroupName="/oce/t-air")["tags"] == {}
    assert "/oce/t-air exists without the tags of this deployment" in flat(air)
    (topic,) = found["topics"]
    assert topic.endswith(":oce-t-nat-alerts")
    subs = aws.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(x["Protocol"], x["Endpoint"]) for x in subs] == [("email", "ops@example.com")]
    assert sorted(found["alarms"]) == [
        "oce-t-air-gpu-idle",
        "oce-t-air-status-check-failed",
        "oce-t-nat-gpu-idle",
        "oce-t-nat-status-check-failed",
    ]
    alarms = {a["AlarmName"]: a for a in aws.cloudwatch.describe_alarms(AlarmNamePrefix="oce-t-")["MetricAlarms"]}
    status, idle = alarms["oce-t-nat-status-check-failed"], alarms["oce-t-nat-gpu-idle"]
    for alarm in status, idle:
        assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": inst["InstanceId"]}]
        assert alarm["AlarmActions"] == [topic] and alarm["TreatMissingData"] == "notBreaching"
    assert (status["Namespace"], status["MetricName"], status["ComparisonOperator"]) == (
        "AWS/EC2",
        "StatusCheckFailed",
        "GreaterThanOrEqualToThreshold",
    )
    assert (status["Threshold"], status["Period"], status["EvaluationPeriods"]) == (1, 60, 2)
    assert (idle["Namespace"], idle["MetricName"], idle["ComparisonOperator"]) == (
        "CWAgent",
        "nvidia_smi_utilization_gpu",
        "LessThanOrEqualToThreshold",
    )
    assert idle["Threshold"] == 5 and idle["Period"] * idle["EvaluationPeriods"] == 2 * 3600
    assert alarms["oce-t-air-gpu-idle"]["AlarmActions"] == [their_topic]

    # A second create changes nothing, also when it names no model or environment (as the
    # inventory names none): the node keeps its own instead of being relabelled.
    again = aws.run(("create", "t-nat", "-e", "model=", *email))
    assert recap(again) == (0, 0), again[-3000:]
    tags = {
        t["Key"]: t["Value"]
        for t in aws.ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"][0]["Tags"]
    }
    assert (tags["oce-model"], tags["oce-environment"]) == ("gemma3:270m", "staging")
    # Moved to prod, the node is in prod's group for the rest of the run, no longer in staging's
    # (the fleet inventory put it there when the run began), so prod's group_vars alone apply.
    moved = aws.run(
        ("../tests/functional/aws/playbooks/create_then_groups", "t-nat", "-e", "oce_environment=prod", *email,
         "-e", json.dumps(online_peer_cli("oce-t-nat"))),
    )  # fmt: skip
    groups = re.search(r"groups of oce-t-nat: ([^'\"]*)", flat(moved))
    assert groups and "prod" in groups.group(1).split() and "staging" not in groups.group(1).split(), moved[-3000:]

    stopped = aws.run(("stop", "t-nat"))
    assert recap(stopped) == (1, 0) and "stopped" in table_row(stopped, "oce-t-nat")
    started = aws.run(("start", "t-nat"))
    assert recap(started) == (1, 0) and "running" in table_row(started, "oce-t-nat")
    status = aws.run(("status", "t-nat"))
    assert "0.526" in table_row(status, "oce-t-nat") and "1 running node(s): 0.526 USD/h" in flat(status)
    # ask.yml alone finds the node; from a controller without the tailscale CLI (an execution
    # environment without it) it stops at once, not after the join timeout's retries, and says why.
    began = time.monotonic()
    asked = aws.run(("ask", "t-nat", "-e", '{"node_tailnet_cli": ["/nonexistent/tailscale"]}'), ok=False)
    assert "`/nonexistent/tailscale status` failed" in flat(asked), asked[-3000:]
    assert "this controller must be on the tailnet" in flat(asked) and time.monotonic() - began < 120

    gone = aws.run(("destroy", "t-nat"), ("destroy", "t-air", "-e", "node_aws_egress=none"))
    assert all(recap(out)[1] == 0 for out in gone)
    assert aws.ours() == {}
    assert aws.ec2.describe_vpcs(VpcIds=[other_vpc])["Vpcs"]
    assert len(aws.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [other_vpc]}])["Subnets"]) == 1
    assert aws.iam.get_role(RoleName="someone-else")["Role"]
    left = sorted(g["logGroupName"] for g in aws.logs.describe_log_groups(logGroupNamePrefix="/oce/")["logGroups"])
    assert left == ["/oce/t-air", "/oce/t-nat-old"]
    assert [a["AlarmName"] for a in aws.cloudwatch.describe_alarms(AlarmNamePrefix="oce-t-")["MetricAlarms"]] == [
        "oce-t-nat-cpu"
    ]
    assert [t["TopicArn"] for t in aws.sns.list_topics()["Topics"]] == [their_topic]
    # The policy docs/permissions gives users allows every call these runs (and the module's others) made.
    permissions.assert_allowed(aws.recording)


# egress=none: every source the node downloads from inside the VPC (a mirror, Headscale, S3).
AIRGAP = (
    "-e",
    "ollama_models_registry_mirror=10.64.3.10:5000",
    "-e",
    "node_tailnet_login_server=https://headscale.corp.internal",
    "-e",
    "node_tailscale_download_url=https://oce-mirror.s3.us-east-1.amazonaws.com/tailscale_1.96.5_amd64.tgz",
)

BAD_INPUTS = {
    "zones outside the region": (
        ["-e", '{"node_aws_zones": ["eu-west-1a", "eu-west-1b"]}'],
        {},
        "node_aws_zones eu-west-1a, eu-west-1b are not in node_aws_region us-east-1",
    ),
    "subnet outside the VPC": (
        ["-e", '{"node_aws_private_subnet_cidrs": ["10.99.1.0/24", "10.64.2.0/24"]}'],
        {},
        "node_aws_private_subnet_cidrs 10.99.1.0/24 is not inside node_aws_vpc_cidr 10.64.0.0/16",
    ),
    "overlapping subnets": (
        ["-e", '{"node_aws_private_subnet_cidrs": ["10.64.0.0/23", "10.64.2.0/24"]}'],
        {},
        "node_aws_private_subnet_cidrs 10.64.0.0/23 overlaps node_aws_public_subnet_cidr 10.64.0.0/24",
    ),
    "bad node name": (["-e", "node_name=Oce_Node"], {}, "name 'Oce_Node' is not a valid node name"),
    # First boot would install it, and fail there, after create: no sha256 to check the archive with.
    "a Tailscale version of unknown sha256": (
        ["-e", "tailscale_version=1.0.0"],
        {},
        "no sha256 is known for Tailscale 1.0.0: set tailscale_checksum",
    ),
    "no egress with the public registry": (
        ["-e", "node_aws_egress=none"],
        {},
        "node_aws_egress=none leaves the node no internet, but ollama_models_registry_mirror is empty",
    ),
    "no egress with a public download": (
        ["-e", "node_aws_egress=none", *AIRGAP, "-e", "node_tailscale_download_url=https://pkgs.tailscale.com/x.tgz"],
        {},
        "node_tailscale_download_url https://pkgs.tailscale.com/x.tgz is on the internet",
    ),
    "disk override smaller than the model": (
        ["-e", '{"node_aws_catalog": {"models": {"gemma3:270m": {"disk_gb": 12}}}}'],
        {},
        "disk_gb 12 is smaller than the model needs: at least 21 GB",
    ),
    "override without GPU memory": (
        ["-e", '{"node_aws_catalog": {"models": {"gemma3:270m": {"min_vram_gb": 0}}}}'],
        {},
        "min_vram_gb must be a number > 0, got 0",
    ),
    "no key secret": ([], {}, "the node's tailnet key oce/t-bad/tailscale does not exist in Secrets Manager"),
    "tailnet name taken": (
        ["-e", json.dumps(online_peer_cli("oce-t-bad"))],
        {},
        "oce-t-bad is online on the tailnet already (100.64.0.9), and deployment t-bad has no node of that name",
    ),
    "unknown model": (["-e", "model=codellama:99b"], {}, "model 'codellama:99b' is not in the catalog"),
    "model too large": (
        ["-e", "model=llama3.3:70b", "-e", '{"node_aws_instance_types": ["g5.xlarge"]}'],
        {},
        "model llama3.3:70b needs 64 GB of GPU memory but g5.xlarge has 24 GB",
    ),
    "unknown region": (["-e", "node_aws_region=us-nowhere-1"], {}, "region 'us-nowhere-1' is not an AWS region"),
    "missing credentials": ([], {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, "no AWS credentials found"),
    "one subnet": (
        ["-e", '{"node_aws_private_subnet_cidrs": ["10.64.1.0/24"]}'],
        {},
        "at least two node_aws_private_subnet_cidrs",
    ),
    "bad egress": (["-e", "node_aws_egress=maybe"], {}, "node_aws_egress"),
    "bad retention": (["-e", "node_aws_log_retention_days=42"], {}, "node_aws_log_retention_days must be one of"),
    "idle too long": (["-e", "node_aws_gpu_idle_hours=25"], {}, "node_aws_gpu_idle_hours must be 1 to 24"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_fails_clearly_and_creates_nothing(aws, refused, case):
    message = BAD_INPUTS[case][2]
    returncode, out = refused[case]
    assert returncode != 0 and message in flat(out), out[-3000:]
    assert aws.ours() == {}


# A fault after the network and IAM role exist: when the node is launched (every zone out of
# capacity), or after it runs (its alarms refused).
FAILING_CREATES = {
    "no capacity": (
        "RunInstances",
        (500, "InsufficientInstanceCapacity", "We currently do not have sufficient capacity."),
        "no capacity for gemma3:270m in any subnet",
    ),
    "alarms refused after the node runs": (
        "PutMetricAlarm",
        (400, "AccessDenied", "not authorized to perform: cloudwatch:PutMetricAlarm"),
        "cloudwatch:PutMetricAlarm",
    ),
}


@pytest.mark.parametrize("case", FAILING_CREATES, ids=str)
def test_a_first_create_that_fails_part_way_removes_what_it_made(aws, case):
    """The run removes what it made again, the node too when it was running, and says so."""
    action, fault, message = FAILING_CREATES[case]
    deployment = "t-half" if action == "RunInstances" else "t-late"
    aws.secrets.create_secret(Name=f"oce/{deployment}/tailscale", SecretString="tskey-auth-moto")
    proxy = FaultProxy(aws.url, {action: fault})
    try:
        proc = aws.start("create", deployment, env={"AWS_ENDPOINT_URL": proxy.url})
        out = proc.communicate(timeout=900)[0]
    finally:
        proxy.close()
    text = flat(out)
    assert proc.returncode != 0 and f"Creating deployment {deployment} failed at" in text, out[-3000:]
    assert message in text and action in proxy.hits
    assert "did not exist before this run, so everything this run created was removed again" in text
    assert (
        "TASK [ollama_cloud.engine.node : Delete the network (VPC endpoints, NAT gateways and their addresses," in out
    )
    assert aws.ours() == {}


def test_start_of_a_missing_node_says_what_to_do(refused):
    _returncode, out = refused["start without a node"]
    assert "There is no AWS node oce-t-bad" in flat(out) and "run playbooks/create.yml first" in flat(out)


def test_configure_without_a_running_node_says_what_to_do(aws, refused):
    _returncode, out = refused["configure without a node"]
    assert "Deployment t-bad has no running node on cloud=aws: create one" in flat(out), out[-3000:]
    assert aws.ours() == {}


def test_a_topic_of_our_name_that_is_not_ours_is_refused(aws):
    theirs = aws.sns.create_topic(Name="oce-t-topic-alerts")["TopicArn"]
    try:
        out = aws.run(("create", "t-topic", "-e", "node_aws_alarm_topic_create=true"), ok=False)
        assert "The SNS topic oce-t-topic-alerts exists without the tags of this deployment" in flat(out), out[-3000:]
        assert aws.ours() == {} and aws.sns.list_tags_for_resource(ResourceArn=theirs)["Tags"] == []
    finally:
        aws.sns.delete_topic(TopicArn=theirs)
