#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_node_monitoring
short_description: The CloudWatch log group, the alarms' SNS topic and the node alarms of one AWS deployment
version_added: 0.2.0
description:
  - Creates, corrects or deletes what a C(cloud=aws) deployment is watched with, in one module process
    with one boto3 session; the node role calls it before the network (the log group and the topic,
    O(nodes) empty) and again after the instance (its alarms).
  - "The log group O(log_group) (C(/oce/DEPLOYMENT)), tagged as ours, with a retention of
    O(retention_days). It exists before the node boots, so that the CloudWatch agent finds it and
    does not make an untagged one itself. A log group of that name without our tags is someone
    else's: the node's logs go there, but V(present) changes neither its retention nor its tags,
    V(absent) leaves it, and both say so (a warning, and RV(left_alone))."
  - "With O(topic_email) or O(topic_create): the SNS topic O(topic_name) (C(oce-DEPLOYMENT-alerts)),
    tagged as ours, with O(topic_email) subscribed (AWS mails a confirmation link first).
    Subscriptions added by hand stay. A topic of that name without our tags fails the run before
    anything is changed. O(topic_arn) names a topic of yours the alarms notify too; it is never
    created, changed or deleted."
  - "Per node of O(nodes), two alarms on its instance: C(NODE-status-check-failed) (an EC2 status
    check failed for 2 minutes; notifies when it fails and when it recovers) and C(NODE-gpu-idle)
    (the CloudWatch agent's C(nvidia_smi_utilization_gpu), namespace C(CWAgent), at or below
    O(gpu_idle_percent) for O(gpu_idle_hours)). A stopped node reports no data, which is not an
    alarm. Each alarm's description ends with the deployment's marker
    C([oce-deployment=DEPLOYMENT oce-managed-by=ollama_cloud.engine]), and the alarm carries our tags.
    An alarm whose settings, actions or tags drifted is corrected; an alarm of such a name that has
    neither the marker nor our tags is someone else's and fails the run before anything is changed.
    Alarms of the deployment's nodes not listed in O(nodes) are left as they are."
  - "V(absent): deletes every alarm of the region whose description ends with the deployment's marker
    (the mark every alarm this module or an earlier version of the node role made carries, tagged or
    not), the topic O(topic_name) with its subscriptions and the log group O(log_group) with its
    events, the last two only when they carry our tags."
options:
  deployment:
    description: >-
      Deployment label; marks the log group, the topic and the alarms as ours. Lowercase letters,
      digits, dashes.
    type: str
    required: true
  state:
    description: V(present) creates or corrects; V(absent) deletes what is ours.
    type: str
    choices: [present, absent]
    default: present
  environment:
    description: Environment label, the C(oce-environment) tag.
    type: str
  tags:
    description:
      - Extra tags for the log group, the topic and the alarms. They may not set C(oce-deployment) or C(oce-managed-by).
      - On an existing one, a tag missing or with another value is set; see O(purge_tags).
    type: dict
    default: {}
  purge_tags:
    description:
      - On an existing log group, topic or alarm of ours, also remove the tags that are neither ours nor
        in O(tags), and C(oce-environment) when O(environment) is not given. Our C(oce-deployment) and
        C(oce-managed-by) tags and C(aws:*) tags are never removed.
    type: bool
    default: false
  log_group:
    description: The CloudWatch Logs group of the deployment; C(/oce/DEPLOYMENT) when omitted.
    type: str
  retention_days:
    description: Days CloudWatch Logs keeps the events of O(log_group) (one of the values CloudWatch Logs accepts).
    type: int
    default: 30
    choices: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]
  topic_name:
    description: The deployment's SNS topic; C(oce-DEPLOYMENT-alerts) when omitted.
    type: str
  topic_create:
    description: Create O(topic_name) even without O(topic_email).
    type: bool
    default: false
  topic_email:
    description: An address to subscribe to O(topic_name), which is then created.
    type: str
  topic_arn:
    description: An SNS topic of yours that the alarms notify too. Never created, changed or deleted here.
    type: str
  nodes:
    description:
      - With V(present), the nodes whose two alarms to create or correct. Empty, none are touched.
      - With V(absent), leave it empty; every alarm of the deployment goes.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The node's name; its alarms are C(NAME-status-check-failed) and C(NAME-gpu-idle).
        type: str
        required: true
      instance_id:
        description: The node's EC2 instance (the alarms' C(InstanceId) dimension).
        type: str
        required: true
  gpu_idle_percent:
    description: The GPU counts as idle at or below this many percent (0 to 100).
    type: float
    default: 5
  gpu_idle_hours:
    description: Hours (1 to 24) the GPU must stay idle before C(NODE-gpu-idle) fires (every 5-minute maximum).
    type: int
    default: 2
extends_documentation_fragment:
  - ollama_cloud.engine.aws
attributes:
  check_mode:
    support: full
    description: Reads the caller, the log group, the topic and the alarms only; RV(actions) lists what would change.
  diff_mode:
    support: full
    description: Shows the log group (retention, tags), the topic (tags, addresses) and the alarms before and after.
notes:
  - The credentials need the C(Monitoring) statement of the collection's
    C(docs/permissions/aws-controller-policy.json) (CloudWatch Logs, SNS, CloudWatch alarms, and
    C(sts:GetCallerIdentity)).
  - The node's CloudWatch agent must publish C(nvidia_smi_utilization_gpu) aggregated by C(InstanceId)
    (the C(monitoring_agent) role's configuration does).
seealso:
  - module: ollama_cloud.engine.aws_node_identity
    description: The node's role, whose policy lets the agent write into O(log_group) only.
  - module: ollama_cloud.engine.aws_gpu_instance
  - name: Using Amazon CloudWatch alarms
    description: How an alarm evaluates its metric and notifies.
    link: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: The demo deployment's log group and topic, before its node boots
  ollama_cloud.engine.aws_node_monitoring:
    deployment: demo
    region: us-east-1
    retention_days: 30
    topic_email: ops@example.com

- name: The node's alarms, once its instance exists
  ollama_cloud.engine.aws_node_monitoring:
    deployment: demo
    region: us-east-1
    retention_days: 30
    topic_email: ops@example.com
    nodes:
      - name: oce-demo
        instance_id: "{{ node.node.id }}"

- name: Remove the alarms, the topic and the log group after the nodes are gone
  ollama_cloud.engine.aws_node_monitoring:
    deployment: demo
    region: us-east-1
    state: absent
"""

RETURN = r"""
monitoring:
  description: What the deployment is watched with (after V(absent), what was, or would be, deleted).
  returned: always
  type: dict
  contains:
    log_group:
      description: The log group's name.
      type: str
    log_group_ours:
      description: Whether the log group carries our tags (false also when it does not exist).
      type: bool
    topic_arn:
      description: The ARN of the deployment's topic (empty when not wanted and not found).
      type: str
    alarm_actions:
      description: The topics the alarms notify, O(topic_arn) first.
      type: list
      elements: str
    alarms:
      description: The names of the alarms made or corrected (V(present)) or deleted (V(absent)).
      type: list
      elements: str
  sample:
    log_group: /oce/demo
    log_group_ours: true
    topic_arn: arn:aws:sns:us-east-1:123456789012:oce-demo-alerts
    alarm_actions: [arn:aws:sns:us-east-1:123456789012:oce-demo-alerts]
    alarms: [oce-demo-status-check-failed, oce-demo-gpu-idle]
actions:
  description: What was (in check mode, would be) created, corrected or deleted, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create the log group /oce/demo with a retention of 30 days
    - create the SNS topic oce-demo-alerts for ops@example.com
    - create the alarm oce-demo-status-check-failed
left_alone:
  description: What was found under our names without our tags (someone else's) and not touched.
  returned: always
  type: list
  elements: str
  sample: [log group /oce/demo]
retries:
  description: API calls retried after throttling or a server error, as C([operation, code, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import re

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud, fleet, node_module

_LOG_GROUP_RE = re.compile(r"^[.\-_/#A-Za-z0-9]{1,512}$")
_TOPIC_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_TOPIC_ARN_RE = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")
TAGS_MAX = 50  # per log group, topic and alarm
# The retentions CloudWatch Logs accepts, in days.
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
ALARM_NAMES_MAX = 100  # DescribeAlarms and DeleteAlarms take at most this many names
ALARM_NAME_MAX = 255
# The two alarms of a node, by the suffix of their names.
STATUS_ALARM = "status-check-failed"
IDLE_ALARM = "gpu-idle"
# The alarm settings this module writes and compares (PutMetricAlarm's names).
ALARM_KEYS = (
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Statistic",
    "ComparisonOperator",
    "Threshold",
    "Period",
    "EvaluationPeriods",
    "TreatMissingData",
    "AlarmActions",
    "OKActions",
    "InsufficientDataActions",
)

HINTS = {
    "AccessDenied": (
        "the credentials need the Monitoring statement of the collection's docs/permissions/aws-controller-policy.json"
    ),
    "LimitExceededException": "the account's CloudWatch quota (log groups or alarms) is used up",
    "LimitExceeded": "the account's CloudWatch alarm quota is used up",
    "TopicLimitExceeded": "the account's SNS topic quota is used up",
    "SubscriptionLimitExceeded": "the topic's subscription quota is used up",
}


def defaults(params):
    """The log group and topic names of ``params``, defaults filled in."""
    names = fleet.deployment_names(params["deployment"])
    return params.get("log_group") or names["aws_log_group"], params.get("topic_name") or names["aws_alerts_topic"]


def alarm_names(node):
    return [f"{node}-{STATUS_ALARM}", f"{node}-{IDLE_ALARM}"]


def node_alarms(node, instance_id, marker, actions, idle_percent, idle_hours):
    """The two alarms of ``node`` as PutMetricAlarm's parameters (without name and tags), by name."""
    dimensions = [{"Name": "InstanceId", "Value": instance_id}]
    status, idle = alarm_names(node)
    common = {"Dimensions": dimensions, "Statistic": "Maximum", "TreatMissingData": "notBreaching"}
    return {
        status: dict(
            common,
            AlarmDescription=f"{node} ({instance_id}) failed an EC2 status check for 2 minutes. {marker}",
            Namespace="AWS/EC2",
            MetricName="StatusCheckFailed",
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Threshold=1.0,
            Period=60,
            EvaluationPeriods=2,
            AlarmActions=list(actions),
            OKActions=list(actions),
            InsufficientDataActions=[],
        ),
        # The agent's nvidia_gpu measurement utilization_gpu, published as nvidia_smi_utilization_gpu
        # in CWAgent; the agent's configuration aggregates it by InstanceId.
        idle: dict(
            common,
            AlarmDescription=(
                f"{node} ({instance_id}): GPU at or below {idle_percent:g} % for {idle_hours} h; "
                f"stop it (playbooks/stop.yml) if nobody needs it. {marker}"
            ),
            Namespace="CWAgent",
            MetricName="nvidia_smi_utilization_gpu",
            ComparisonOperator="LessThanOrEqualToThreshold",
            Threshold=float(idle_percent),
            Period=300,
            EvaluationPeriods=idle_hours * 12,
            AlarmActions=list(actions),
            OKActions=[],
            InsufficientDataActions=[],
        ),
    }


def alarm_settings(alarm):
    """The settings of a described alarm that this module writes, in the form it writes them."""
    found = {key: alarm.get(key) for key in ALARM_KEYS}
    for key in ("AlarmActions", "OKActions", "InsufficientDataActions", "Dimensions"):
        found[key] = found[key] or []
    found["AlarmDescription"] = found["AlarmDescription"] or ""
    if found["Threshold"] is not None:
        found["Threshold"] = float(found["Threshold"])
    return found


def same_settings(found, wanted):
    def canon(settings):
        settings = dict(settings)
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            settings[key] = sorted(settings[key])
        settings["Dimensions"] = sorted((d["Name"], d["Value"]) for d in settings["Dimensions"])
        return settings

    return canon(found) == canon(wanted)


def lacks_tags(kind, name, deployment):
    wanted = " and ".join(f"{k}={v}" for k, v in sorted(fleet.deployment_labels(deployment).items()))
    return f"The {kind} {name} exists without the tags of this deployment ({wanted})"


class Monitoring:
    """The deployment's log group, topic and alarms: read, check, act."""

    def __init__(self, apis, params, check_mode):
        self.logs, self.sns, self.cloudwatch, self.sts = (apis[k] for k in ("logs", "sns", "cloudwatch", "sts"))
        self.check = check_mode
        self.params = params
        self.deployment = params["deployment"]
        self.log_group, self.topic_name = defaults(params)
        self.marker = aws.alarm_marker(self.deployment)
        self.tags = cloud.our_tags(self.deployment, environment=params.get("environment"), extra=params["tags"])
        self.purge = params["purge_tags"]
        self.actions, self.done, self.left_alone, self.warnings = [], [], [], []
        self.topic_arn = ""

    # --------------------------------------------------------------- reads

    def ours(self, tags):
        return fleet.is_ours(tags, self.deployment)

    def read_log_group(self):
        """The log group of our name with its tags, or None."""
        groups = self.logs.paginate("describe_log_groups", "logGroups", logGroupNamePrefix=self.log_group)
        found = next((g for g in groups if g["logGroupName"] == self.log_group), None)
        if found is not None:
            found = dict(
                found, tags=self.logs.call("list_tags_log_group", logGroupName=self.log_group).get("tags") or {}
            )
        return found

    def read_topic(self):
        """The topic of our name with its tags, or None; sets ``topic_arn`` (its ARN, whether it exists or not)."""
        caller = self.sts.call("get_caller_identity")
        partition = caller["Arn"].split(":")[1]
        self.topic_arn = f"arn:{partition}:sns:{self.sns.region}:{caller['Account']}:{self.topic_name}"
        try:
            self.sns.call("get_topic_attributes", TopicArn=self.topic_arn)
        except cloud.CloudError as exc:
            if exc.details.get("code") == "NotFound":
                return None
            raise
        tags = aws.tag_dict(self.sns.call("list_tags_for_resource", ResourceArn=self.topic_arn).get("Tags"))
        return {"arn": self.topic_arn, "tags": tags}

    def emails(self):
        subs = self.sns.paginate("list_subscriptions_by_topic", "Subscriptions", TopicArn=self.topic_arn)
        return sorted(s["Endpoint"].lower() for s in subs if s.get("Protocol") == "email")

    def read_alarms(self, names):
        """The alarms of ``names`` that exist, with their tags, by name."""
        found = {}
        for start in range(0, len(names), ALARM_NAMES_MAX):
            chunk = names[start : start + ALARM_NAMES_MAX]
            for alarm in self.cloudwatch.paginate("describe_alarms", "MetricAlarms", AlarmNames=chunk):
                tags = self.cloudwatch.call("list_tags_for_resource", ResourceARN=alarm["AlarmArn"]).get("Tags")
                found[alarm["AlarmName"]] = dict(alarm, tags=aws.tag_dict(tags))
        return found

    def marked(self, alarm):
        return (alarm.get("AlarmDescription") or "").endswith(self.marker)

    # --------------------------------------------------------------- writes

    def act(self, action, *calls):
        """Record ``action``; unless in check mode, make its ``(api, operation, params)`` calls."""
        self.actions.append(action)
        if self.check:
            return
        for api, operation, params in calls:
            api.call(operation, **params)
        self.done.append(action)

    def retag(self, kind, name, current, api, tag, untag, tag_form, adopt=False, **key):
        """Bring the tags of an existing resource of ours to this run's; returns the tags it ends with.

        ``adopt``: it is ours by the marker, and our ownership tags are set too (an alarm of an
        earlier version, made untagged).
        """
        changes, removals = cloud.tag_drift(current, self.tags, self.purge, aws.RESERVED_TAG_PREFIXES)
        if adopt:
            owner = {k: v for k, v in self.tags.items() if k in cloud.OWNERSHIP_KEYS and current.get(k) != v}
            changes = dict(sorted(dict(changes, **owner).items()))
        calls = []
        if changes:
            calls.append((api, tag, dict(key, **{tag_form[0]: tag_form[1](changes)})))
        if removals:
            calls.append((api, untag, dict(key, **{tag_form[2]: removals})))
        if calls:
            self.act(f"correct the tags of the {kind} {name}", *calls)
        return cloud.with_drift(current, changes, removals)

    # --------------------------------------------------------------- present

    def present(self):
        params = self.params
        email = (params.get("topic_email") or "").lower()
        wanted_topic = bool(email) or params["topic_create"]
        group = self.read_log_group()
        topic = self.read_topic() if wanted_topic else None
        nodes = params["nodes"]
        alarms = self.read_alarms([n for node in nodes for n in alarm_names(node["name"])]) if nodes else {}

        # Someone else's topic or alarm of our names: refused before anything is changed.
        refused = []
        if topic is not None and not self.ours(topic["tags"]):
            refused.append(
                f"{lacks_tags('SNS topic', self.topic_name, self.deployment)}: give its ARN as topic_arn "
                "(the node role: node_aws_alarm_topic_arn) instead of topic_email or topic_create "
                "(node_aws_alarm_email, node_aws_alarm_topic_create), or choose another deployment name"
            )
        theirs = sorted(n for n, a in alarms.items() if not self.marked(a) and not self.ours(a["tags"]))
        if theirs:
            refused.append(
                f"the alarms {', '.join(theirs)} exist without the marker {self.marker} and without the tags "
                "of this deployment: rename the node, or delete those alarms if they are leftovers"
            )
        if refused:
            raise cloud.CloudError("; ".join(refused) + ". Nothing was created or changed")

        before = {"log_group": None, "topic": None, "alarms": {}}
        after = {"log_group": None, "topic": None, "alarms": {}}
        self.converge_log_group(group, before, after)
        if wanted_topic:
            self.converge_topic(topic, email, before, after)
        actions = list(dict.fromkeys(a for a in (params.get("topic_arn"), self.topic_arn if wanted_topic else "") if a))
        for node in nodes:
            wanted = node_alarms(
                node["name"],
                node["instance_id"],
                self.marker,
                actions,
                params["gpu_idle_percent"],
                params["gpu_idle_hours"],
            )
            for name, settings in wanted.items():
                self.converge_alarm(name, alarms.get(name), settings, before, after)
        record = self.record(group, actions, [n for node in nodes for n in alarm_names(node["name"])])
        record["topic_arn"] = self.topic_arn if wanted_topic else ""
        return before, after, record

    def converge_log_group(self, group, before, after):
        name, retention = self.log_group, self.params["retention_days"]
        if group is not None and not self.ours(group["tags"]):
            self.left_alone.append(f"log group {name}")
            self.warnings.append(
                f"{lacks_tags('log group', name, self.deployment)}: the node logs go there, but its retention "
                "and tags stay as they are and destroy leaves it"
            )
            return
        if group is None:
            self.act(
                f"create the log group {name} with a retention of {retention} days",
                (self.logs, "create_log_group", {"logGroupName": name, "tags": self.tags}),
                (self.logs, "put_retention_policy", {"logGroupName": name, "retentionInDays": retention}),
            )
            tags = self.tags
        else:
            before["log_group"] = self.group_state(group["tags"], group.get("retentionInDays"))
            if group.get("retentionInDays") != retention:
                self.act(
                    f"set the retention of the log group {name} to {retention} days",
                    (self.logs, "put_retention_policy", {"logGroupName": name, "retentionInDays": retention}),
                )
            tags = self.retag(
                "log group",
                name,
                group["tags"],
                self.logs,
                "tag_log_group",
                "untag_log_group",
                ("tags", dict, "tags"),
                logGroupName=name,
            )
        after["log_group"] = self.group_state(tags, retention)

    def group_state(self, tags, retention):
        return {"name": self.log_group, "retention_days": retention, "tags": dict(sorted(tags.items()))}

    def converge_topic(self, topic, email, before, after):
        name = self.topic_name
        emails = []
        if topic is None:
            self.act(
                f"create the SNS topic {name}" + (f" for {email}" if email else ""),
                (self.sns, "create_topic", {"Name": name, "Tags": aws.to_tag_list(self.tags)}),
                *(
                    [(self.sns, "subscribe", {"TopicArn": self.topic_arn, "Protocol": "email", "Endpoint": email})]
                    if email
                    else []
                ),
            )
            tags = self.tags
        else:
            emails = self.emails()
            before["topic"] = self.topic_state(topic["tags"], emails)
            tags = self.retag(
                "SNS topic",
                name,
                topic["tags"],
                self.sns,
                "tag_resource",
                "untag_resource",
                ("Tags", aws.to_tag_list, "TagKeys"),
                ResourceArn=self.topic_arn,
            )
            if email and email not in emails:
                self.act(
                    f"subscribe {email} to the SNS topic {name}",
                    (self.sns, "subscribe", {"TopicArn": self.topic_arn, "Protocol": "email", "Endpoint": email}),
                )
        after["topic"] = self.topic_state(tags, sorted(set(emails) | ({email} if email else set())))

    def topic_state(self, tags, emails):
        return {"name": self.topic_name, "arn": self.topic_arn, "tags": dict(sorted(tags.items())), "emails": emails}

    def converge_alarm(self, name, alarm, settings, before, after):
        put = (self.cloudwatch, "put_metric_alarm", dict(settings, AlarmName=name, Tags=aws.to_tag_list(self.tags)))
        if alarm is None:
            self.act(f"create the alarm {name}", put)
            tags = self.tags
        else:
            before["alarms"][name] = dict(alarm_settings(alarm), tags=dict(sorted(alarm["tags"].items())))
            if not same_settings(alarm_settings(alarm), settings):
                # PutMetricAlarm replaces the alarm's settings; it ignores Tags on an existing alarm.
                self.act(f"correct the alarm {name}", put)
            tags = self.retag(
                "alarm",
                name,
                alarm["tags"],
                self.cloudwatch,
                "tag_resource",
                "untag_resource",
                ("Tags", aws.to_tag_list, "TagKeys"),
                adopt=True,
                ResourceARN=alarm["AlarmArn"],
            )
        after["alarms"][name] = dict(settings, tags=dict(sorted(tags.items())))

    def record(self, group, actions, alarms):
        return {
            "log_group": self.log_group,
            "log_group_ours": group is not None and self.ours(group["tags"]),
            "topic_arn": self.topic_arn,
            "alarm_actions": actions,
            "alarms": alarms,
        }

    # --------------------------------------------------------------- absent

    def absent(self):
        group = self.read_log_group()
        topic = self.read_topic()
        marked = [a for a in self.cloudwatch.paginate("describe_alarms", "MetricAlarms") if self.marked(a)]
        names = sorted(a["AlarmName"] for a in marked)
        before = {
            "log_group": None,
            "topic": None,
            "alarms": {a["AlarmName"]: alarm_settings(a) for a in sorted(marked, key=lambda a: a["AlarmName"])},
        }
        for start in range(0, len(names), ALARM_NAMES_MAX):
            chunk = names[start : start + ALARM_NAMES_MAX]
            self.act(f"delete the alarms {', '.join(chunk)}", (self.cloudwatch, "delete_alarms", {"AlarmNames": chunk}))
        for kind, name, found in (("SNS topic", self.topic_name, topic), ("log group", self.log_group, group)):
            if found is not None and not self.ours(found["tags"]):
                self.left_alone.append(f"{kind} {name}")
                self.warnings.append(f"{lacks_tags(kind, name, self.deployment)}: left as it is")
        if topic is not None and self.ours(topic["tags"]):
            before["topic"] = self.topic_state(topic["tags"], self.emails())
            self.act(
                f"delete the SNS topic {self.topic_name} and its subscriptions",
                (self.sns, "delete_topic", {"TopicArn": self.topic_arn}),
            )
        if group is not None and self.ours(group["tags"]):
            before["log_group"] = self.group_state(group["tags"], group.get("retentionInDays"))
            self.act(
                f"delete the log group {self.log_group} and its events",
                (self.logs, "delete_log_group", {"logGroupName": self.log_group}),
            )
        record = self.record(group, [], names)
        record["topic_arn"] = self.topic_arn if topic is not None else ""
        return before, {"log_group": None, "topic": None, "alarms": {}}, record


def check_inputs(params):
    """Every problem with the inputs, as sentences, before any call."""
    bad = fleet.validate_deployment(params["deployment"])
    if bad:
        return [bad]
    problems = []
    log_group, topic_name = defaults(params)
    if not _LOG_GROUP_RE.match(log_group):
        problems.append(
            f"log_group {log_group!r} is not a CloudWatch Logs group name: use 1-512 letters, digits and ._-/#"
        )
    if not _TOPIC_NAME_RE.match(topic_name):
        problems.append(f"topic_name {topic_name!r} is not an SNS topic name: use 1-256 letters, digits, _ and -")
    if params.get("topic_arn") and not _TOPIC_ARN_RE.match(params["topic_arn"]):
        problems.append(f"topic_arn {params['topic_arn']!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    if params.get("topic_email") and not _EMAIL_RE.match(params["topic_email"]):
        problems.append(f"topic_email {params['topic_email']!r} is not an email address")
    if not 0 <= params["gpu_idle_percent"] <= 100:
        problems.append(f"gpu_idle_percent must be 0 to 100, not {params['gpu_idle_percent']:g}")
    if not 1 <= params["gpu_idle_hours"] <= 24:
        problems.append(
            "gpu_idle_hours must be 1 to 24 (a CloudWatch alarm looks back one day at most), "
            f"not {params['gpu_idle_hours']}"
        )
    nodes = params["nodes"]
    if params["state"] == "absent" and nodes:
        problems.append("nodes is for state=present: absent deletes every alarm of the deployment, so leave it empty")
    names = [n["name"] for n in nodes]
    for node in nodes:
        problems.append(cloud.node_name_problem(node["name"], params["deployment"]))
        if len(alarm_names(node["name"])[0]) > ALARM_NAME_MAX:
            problems.append(f"node name {node['name']!r} makes an alarm name longer than {ALARM_NAME_MAX} characters")
        if not _INSTANCE_ID_RE.match(node["instance_id"] or ""):
            problems.append(
                f"node {node['name']}: instance_id {node['instance_id']!r} is not an EC2 instance id (i-...)"
            )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"nodes names {', '.join(twice)} more than once: give each node once")
    try:
        tags = cloud.our_tags(params["deployment"], environment=params.get("environment"), extra=params["tags"])
    except cloud.CloudError as exc:
        problems.append(exc.msg)
    else:
        problems += aws.tag_problems(tags, TAGS_MAX, "CloudWatch and SNS")
    return [p for p in problems if p]


def main():
    base = node_module.NodeModule(
        aws,
        {
            "deployment": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "environment": {"type": "str"},
            "tags": {"type": "dict", "default": {}},
            "purge_tags": {"type": "bool", "default": False},
            "log_group": {"type": "str"},
            "retention_days": {
                "type": "int",
                "default": 30,
                "choices": list(RETENTION_DAYS),
            },
            "topic_name": {"type": "str"},
            "topic_create": {"type": "bool", "default": False},
            "topic_email": {"type": "str"},
            "topic_arn": {"type": "str"},
            "nodes": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "instance_id": {"type": "str", "required": True},
                },
            },
            "gpu_idle_percent": {"type": "float", "default": 5},
            "gpu_idle_hours": {"type": "int", "default": 2},
        },
    )
    base.check(check_inputs(base.params))

    base.apply_state(
        lambda: Monitoring(
            {service: base.client(service) for service in ("logs", "sns", "cloudwatch", "sts")},
            base.params,
            base.check_mode,
        ),
        lambda exc, mon: aws.failed_part_way(exc, mon.done if mon else [], HINTS),
        lambda mon, after, record: {"monitoring": record, "left_alone": mon.left_alone},
    )


if __name__ == "__main__":
    main()
