"""aws_node_monitoring in-process against a moto server on loopback: log group, topic and alarms."""

from __future__ import annotations

import types

import boto3
import pytest
from ansible.module_utils.common import warnings as ansible_warnings

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_node_monitoring
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module

OURS = {"oce-deployment": "demo", "oce-managed-by": "ollama_cloud.engine"}
MARKER = "[oce-deployment=demo oce-managed-by=ollama_cloud.engine]"
TOPIC = "arn:aws:sns:us-east-1:123456789012:oce-demo-alerts"
NODE = {"name": "oce-demo", "instance_id": "i-0123456789abcdef0"}
ALARMS = ["oce-demo-status-check-failed", "oce-demo-gpu-idle"]


@pytest.fixture
def cw(moto, monkeypatch):
    """The logs, SNS and CloudWatch clients on moto (AnsibleModule.warn is process-wide: this test's own)."""
    monkeypatch.setattr(ansible_warnings, "_global_warnings", {})
    clients = {
        s: boto3.client(s, region_name="us-east-1", endpoint_url=moto.url) for s in ("logs", "sns", "cloudwatch")
    }
    return types.SimpleNamespace(**clients)


def run(capsys, **args):
    return run_module(aws_node_monitoring, capsys, **dict({"deployment": "demo", "region": "us-east-1"}, **args))


def everything(cw):
    """The log groups, topics (tags, emails) and alarms (with tags) in moto."""
    groups = {
        g["logGroupName"]: {
            "retention": g.get("retentionInDays"),
            "tags": cw.logs.list_tags_log_group(logGroupName=g["logGroupName"])["tags"],
        }
        for g in cw.logs.describe_log_groups()["logGroups"]
    }
    topics = {
        t["TopicArn"]: {
            "tags": aws.tag_dict(cw.sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"]),
            "emails": [
                s["Endpoint"] for s in cw.sns.list_subscriptions_by_topic(TopicArn=t["TopicArn"])["Subscriptions"]
            ],
        }
        for t in cw.sns.list_topics()["Topics"]
    }
    alarms = {
        a["AlarmName"]: dict(
            a, tags=aws.tag_dict(cw.cloudwatch.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"])
        )
        for a in cw.cloudwatch.describe_alarms()["MetricAlarms"]
    }
    return types.SimpleNamespace(groups=groups, topics=topics, alarms=alarms)


def nothing(cw):
    found = everything(cw)
    return not (found.groups or found.topics or found.alarms)


def old_alarm(cw, name, description, instance_id="i-0123456789abcdef0"):
    """An alarm as the node role made it before this module: marker in the description, no tags."""
    cw.cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=description,
        Namespace="AWS/EC2",
        MetricName="StatusCheckFailed",
        Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
        Statistic="Maximum",
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Threshold=1,
        Period=60,
        EvaluationPeriods=2,
        TreatMissingData="notBreaching",
    )


def test_present_makes_the_log_group_and_the_topic_then_the_alarms_then_changes_nothing(cw, capsys):
    first = run(capsys, environment="prod", tags={"team": "ml"}, topic_email="ops@example.com", diff=True)
    assert first["changed"] is True and "failed" not in first, first
    assert first["actions"] == [
        "create the log group /oce/demo with a retention of 30 days",
        "create the SNS topic oce-demo-alerts for ops@example.com",
    ]
    assert first["monitoring"] == {
        "log_group": "/oce/demo",
        "log_group_ours": False,  # it did not exist when read
        "topic_arn": TOPIC,
        "alarm_actions": [TOPIC],
        "alarms": [],
    }
    wanted_tags = dict(OURS, **{"oce-environment": "prod", "team": "ml"})
    assert first["diff"]["before"] == {"log_group": None, "topic": None, "alarms": {}}
    assert first["diff"]["after"]["topic"] == {
        "name": "oce-demo-alerts",
        "arn": TOPIC,
        "tags": wanted_tags,
        "emails": ["ops@example.com"],
    }
    found = everything(cw)
    assert found.groups == {"/oce/demo": {"retention": 30, "tags": wanted_tags}}
    assert found.topics == {TOPIC: {"tags": wanted_tags, "emails": ["ops@example.com"]}}
    assert found.alarms == {}

    args = {"environment": "prod", "tags": {"team": "ml"}, "topic_email": "ops@example.com", "nodes": [NODE]}
    second = run(capsys, **args)
    assert second["changed"] is True and second["actions"] == [f"create the alarm {n}" for n in ALARMS], second
    assert second["monitoring"]["alarms"] == ALARMS and second["monitoring"]["log_group_ours"] is True
    alarms = everything(cw).alarms
    assert sorted(alarms) == sorted(ALARMS)
    status, idle = alarms["oce-demo-status-check-failed"], alarms["oce-demo-gpu-idle"]
    for alarm in status, idle:
        assert alarm["AlarmDescription"].endswith(" " + MARKER) and alarm["tags"] == wanted_tags
        assert alarm["Dimensions"] == [{"Name": "InstanceId", "Value": NODE["instance_id"]}]
        assert alarm["AlarmActions"] == [TOPIC] and alarm["TreatMissingData"] == "notBreaching"
    assert status["OKActions"] == [TOPIC] and idle["OKActions"] == []
    assert (status["Namespace"], status["MetricName"], status["Threshold"], status["Period"]) == (
        "AWS/EC2",
        "StatusCheckFailed",
        1,
        60,
    )
    assert (idle["Namespace"], idle["MetricName"], idle["ComparisonOperator"]) == (
        "CWAgent",
        "nvidia_smi_utilization_gpu",
        "LessThanOrEqualToThreshold",
    )
    assert idle["Threshold"] == 5 and idle["Period"] * idle["EvaluationPeriods"] == 2 * 3600
    assert idle["AlarmDescription"].startswith("oce-demo (i-0123456789abcdef0): GPU at or below 5 % for 2 h;")

    again = run(capsys, **args)
    assert again["changed"] is False and again["actions"] == [], again
    assert again["monitoring"]["alarm_actions"] == [TOPIC] and again["left_alone"] == []


def test_check_mode_on_nothing_creates_nothing_and_says_what_it_would(cw, capsys):
    res = run(capsys, check_mode=True, topic_email="ops@example.com", nodes=[NODE])
    assert res["changed"] is True and "failed" not in res, res
    assert res["actions"] == [
        "create the log group /oce/demo with a retention of 30 days",
        "create the SNS topic oce-demo-alerts for ops@example.com",
        *(f"create the alarm {n}" for n in ALARMS),
    ]
    assert res["monitoring"]["alarm_actions"] == [TOPIC]
    assert nothing(cw)


def test_check_mode_on_what_exists_changes_nothing(cw, capsys):
    run(capsys, topic_create=True, nodes=[NODE])
    cw.logs.put_retention_policy(logGroupName="/oce/demo", retentionInDays=7)
    before = everything(cw)
    same = run(capsys, check_mode=True, topic_create=True, nodes=[NODE])
    assert same["actions"] == ["set the retention of the log group /oce/demo to 30 days"], same
    moved = run(capsys, check_mode=True, topic_create=True, nodes=[dict(NODE, instance_id="i-0fedcba9876543210")])
    assert moved["actions"] == ["set the retention of the log group /oce/demo to 30 days"] + [
        f"correct the alarm {n}" for n in ALARMS
    ]
    gone = run(capsys, check_mode=True, state="absent")
    assert gone["changed"] is True and len(gone["actions"]) == 3, gone
    assert everything(cw) == before


def test_drift_of_retention_settings_and_tags_is_corrected(cw, capsys):
    run(capsys, tags={"team": "ml"}, topic_create=True, nodes=[NODE])
    cw.logs.put_retention_policy(logGroupName="/oce/demo", retentionInDays=7)
    cw.logs.tag_log_group(logGroupName="/oce/demo", tags={"team": "other", "extra": "x"})
    cw.sns.untag_resource(ResourceArn=TOPIC, TagKeys=["team"])
    alarm = everything(cw).alarms["oce-demo-gpu-idle"]
    cw.cloudwatch.put_metric_alarm(
        **{k: alarm[k] for k in aws_node_monitoring.ALARM_KEYS if k in alarm}, AlarmName="oce-demo-gpu-idle"
    )
    cw.cloudwatch.put_metric_alarm(
        **dict({k: alarm[k] for k in aws_node_monitoring.ALARM_KEYS if k in alarm}, Threshold=50.0),
        AlarmName="oce-demo-gpu-idle",
    )
    res = run(capsys, tags={"team": "ml"}, purge_tags=True, topic_create=True, nodes=[NODE], diff=True)
    assert res["actions"] == [
        "set the retention of the log group /oce/demo to 30 days",
        "correct the tags of the log group /oce/demo",
        "correct the tags of the SNS topic oce-demo-alerts",
        "correct the alarm oce-demo-gpu-idle",
    ], res
    assert res["diff"]["before"]["alarms"]["oce-demo-gpu-idle"]["Threshold"] == 50.0
    assert res["diff"]["after"]["alarms"]["oce-demo-gpu-idle"]["Threshold"] == 5.0
    found = everything(cw)
    wanted = dict(OURS, team="ml")
    assert found.groups["/oce/demo"] == {"retention": 30, "tags": wanted}
    assert found.topics[TOPIC]["tags"] == wanted
    assert found.alarms["oce-demo-gpu-idle"]["Threshold"] == 5
    assert run(capsys, tags={"team": "ml"}, purge_tags=True, topic_create=True, nodes=[NODE])["changed"] is False


def test_someone_elses_log_group_is_used_untouched_and_left_by_absent(cw, capsys, module_warnings):
    cw.logs.create_log_group(logGroupName="/oce/demo", tags={"owner": "them"})
    res = run(capsys, nodes=[NODE])
    assert res["changed"] is True and res["left_alone"] == ["log group /oce/demo"], res
    assert res["monitoring"]["log_group_ours"] is False
    assert not any("log group" in a for a in res["actions"])
    assert any("The log group /oce/demo exists without the tags of this deployment" in w for w in module_warnings)
    assert everything(cw).groups == {"/oce/demo": {"retention": None, "tags": {"owner": "them"}}}
    gone = run(capsys, state="absent")
    assert gone["left_alone"] == ["log group /oce/demo"] and gone["actions"] == [
        f"delete the alarms {', '.join(sorted(ALARMS))}"
    ]
    assert everything(cw).groups == {"/oce/demo": {"retention": None, "tags": {"owner": "them"}}}


def test_someone_elses_topic_of_our_name_is_refused_before_anything_is_made(cw, capsys):
    theirs = cw.sns.create_topic(Name="oce-demo-alerts", Tags=[{"Key": "oce-deployment", "Value": "demo"}])["TopicArn"]
    res = run(capsys, topic_email="ops@example.com", nodes=[NODE])
    assert res["failed"] is True and res["changed"] is False, res
    assert res["msg"].startswith("The SNS topic oce-demo-alerts exists without the tags of this deployment")
    assert "give its ARN as topic_arn" in res["msg"] and res["msg"].endswith("Nothing was created or changed")
    found = everything(cw)
    assert found.groups == {} and found.alarms == {}
    assert found.topics == {theirs: {"tags": {"oce-deployment": "demo"}, "emails": []}}
    # Not wanted, it is not looked at; absent leaves it.
    assert run(capsys)["changed"] is True
    gone = run(capsys, state="absent")
    assert gone["left_alone"] == ["SNS topic oce-demo-alerts"] and list(everything(cw).topics) == [theirs]


def test_someone_elses_alarm_of_a_node_alarm_name_is_refused(cw, capsys):
    old_alarm(cw, "oce-demo-gpu-idle", "someone else's")
    res = run(capsys, nodes=[NODE])
    assert res["failed"] is True and "the alarms oce-demo-gpu-idle exist without the marker" in res["msg"], res
    found = everything(cw)
    assert found.groups == {} and list(found.alarms) == ["oce-demo-gpu-idle"]
    assert found.alarms["oce-demo-gpu-idle"]["AlarmDescription"] == "someone else's"


def test_an_earlier_versions_alarm_is_tagged_by_present_and_removed_by_absent(cw, capsys):
    description = f"oce-demo (i-0123456789abcdef0) failed an EC2 status check for 2 minutes. {MARKER}"
    old_alarm(cw, "oce-demo-status-check-failed", description)
    old_alarm(cw, "oce-demo-2-status-check-failed", f"made by an earlier version {MARKER}")
    res = run(capsys, nodes=[NODE])
    # Its settings are those this module writes (the description too): only the tags are added.
    assert "correct the tags of the alarm oce-demo-status-check-failed" in res["actions"], res
    assert "correct the alarm oce-demo-status-check-failed" not in res["actions"]
    alarms = everything(cw).alarms
    assert alarms["oce-demo-status-check-failed"]["tags"] == OURS
    # The alarms of a node not listed are left as they are by present.
    assert alarms["oce-demo-2-status-check-failed"]["tags"] == {}
    gone = run(capsys, state="absent")
    assert gone["monitoring"]["alarms"] == ["oce-demo-2-status-check-failed", *sorted(ALARMS)]
    assert everything(cw).alarms == {}


def test_absent_removes_only_ours_then_changes_nothing(cw, capsys):
    run(capsys, topic_email="ops@example.com", nodes=[NODE])
    # Not ours: an alarm without the marker, a log group of a longer name, a topic of another name.
    old_alarm(cw, "oce-demo-cpu", "someone else's")
    cw.logs.create_log_group(logGroupName="/oce/demo-old", tags=OURS)
    other = cw.sns.create_topic(Name="someone-elses-alerts")["TopicArn"]
    res = run(capsys, state="absent", diff=True)
    assert res["changed"] is True and res["left_alone"] == [], res
    assert res["actions"] == [
        f"delete the alarms {', '.join(sorted(ALARMS))}",
        "delete the SNS topic oce-demo-alerts and its subscriptions",
        "delete the log group /oce/demo and its events",
    ]
    assert res["diff"]["before"]["topic"]["emails"] == ["ops@example.com"]
    assert res["diff"]["after"] == {"log_group": None, "topic": None, "alarms": {}}
    found = everything(cw)
    assert list(found.alarms) == ["oce-demo-cpu"] and list(found.groups) == ["/oce/demo-old"]
    assert list(found.topics) == [other]
    again = run(capsys, state="absent")
    assert again["changed"] is False and again["actions"] == [], again


def test_a_given_topic_is_notified_and_never_touched(cw, capsys):
    theirs = cw.sns.create_topic(Name="their-alerts")["TopicArn"]
    res = run(capsys, topic_arn=theirs, topic_email="ops@example.com", nodes=[NODE])
    assert res["monitoring"]["alarm_actions"] == [theirs, TOPIC], res
    assert everything(cw).alarms["oce-demo-gpu-idle"]["AlarmActions"] == [theirs, TOPIC]
    only = run(capsys, topic_arn=theirs, nodes=[NODE])
    # Without the email, our topic is no longer notified (it stays until absent).
    assert only["actions"] == [f"correct the alarm {n}" for n in ALARMS] and only["monitoring"]["topic_arn"] == ""
    run(capsys, state="absent")
    assert list(everything(cw).topics) == [theirs]


BAD = {
    "email": ({"topic_email": "ops"}, "topic_email 'ops' is not an email address"),
    "topic arn": ({"topic_arn": "arn:aws:sqs:us-east-1:123456789012:q"}, "is not an SNS topic ARN"),
    "idle hours": ({"gpu_idle_hours": 25}, "gpu_idle_hours must be 1 to 24"),
    "idle percent": ({"gpu_idle_percent": 101}, "gpu_idle_percent must be 0 to 100"),
    "instance id": ({"nodes": [dict(NODE, instance_id="vm-1")]}, "instance_id 'vm-1' is not an EC2 instance id"),
    "node name": ({"nodes": [dict(NODE, name="Oce_Node")]}, "name 'Oce_Node' is not a valid node name"),
    "node twice": ({"nodes": [NODE, NODE]}, "nodes names oce-demo more than once"),
    "our tag": ({"tags": {"oce-deployment": "x"}}, "tags may not set oce-deployment"),
    "aws tag": ({"tags": {"aws:x": "y"}}, "tags may not set aws:x"),
    "log group": ({"log_group": "/oce/a b"}, "is not a CloudWatch Logs group name"),
    "topic name": ({"topic_name": "a.b"}, "is not an SNS topic name"),
    "nodes with absent": ({"state": "absent", "nodes": [NODE]}, "nodes is for state=present"),
    "retention": ({"retention_days": 42}, "retention_days must be one of"),
    "deployment": ({"deployment": "Demo"}, "deployment 'Demo' is not valid"),
}


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_input_fails_before_anything_is_made(cw, capsys, case):
    args, message = BAD[case]
    res = run(capsys, topic_create=True, **args)
    # (An option outside its choices fails in AnsibleModule itself, without "changed".)
    assert res["failed"] is True and message in res["msg"] and not res.get("changed"), res
    assert nothing(cw)
