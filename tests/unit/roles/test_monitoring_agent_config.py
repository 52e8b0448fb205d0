"""The monitoring_agent role's templates, rendered by Ansible itself, for both clouds.

The CloudWatch agent configuration is checked against the agent's own JSON schema
(translator/config/schema.json of the Go module github.com/aws/amazon-cloudwatch-agent, at the
version the role installs), cached outside the repository; the Ops Agent configuration against
its documented shape. Both are checked against what the node role expects: the log group it
creates and the metric its gpu-idle alarm reads.
"""

from __future__ import annotations

import configparser
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.ollama_cloud.engine.plugins.module_utils import first_boot, fleet
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_node_monitoring
from ansible_collections.ollama_cloud.engine.tests.unit.roles.playbook_runner import run_playbook

ROOT = pathlib.Path(__file__).parents[3]
ROLE = ROOT / "roles" / "monitoring_agent"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SCHEMA_MODULE = "github.com/aws/amazon-cloudwatch-agent"
DEPLOYMENT = "unit-test"

# name -> extra variables of one rendering
VARIANTS = {
    "aws-gpu": {"monitoring_agent_cloud": "aws", "__monitoring_agent_gpu": True},
    "aws-cpu": {"monitoring_agent_cloud": "aws", "__monitoring_agent_gpu": False},
    "aws-units": {
        "monitoring_agent_cloud": "aws",
        "__monitoring_agent_gpu": False,
        "monitoring_agent_journal_units": ["ollama.service", "tailscaled", "oce-extra"],
    },
    # As packer/image.yml bakes it: no deployment given, the role's default.
    "aws-image": {
        "monitoring_agent_cloud": "aws",
        "__monitoring_agent_gpu": False,
        "monitoring_agent_deployment": "demo",
    },
    "gcp": {"monitoring_agent_cloud": "gcp", "__monitoring_agent_gpu": False},
    "gcp-units": {
        "monitoring_agent_cloud": "gcp",
        "__monitoring_agent_gpu": False,
        "monitoring_agent_journal_units": ["ollama", "tailscaled.service", "oce-extra"],
    },
}
TEMPLATES = {
    "aws": [
        "cloudwatch-agent.json.j2",
        "oce-cloudwatch-agent-config.service.j2",
        "oce-journal-forward@.service.j2",
        "logrotate.j2",
        "tmpfiles.conf.j2",
    ],
    "gcp": ["ops-agent-config.yaml.j2"],
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Render every template of every variant with ansible-playbook and the role's own vars.

    Ansible's template lookup renders them in the controller (the engine and the template vars of
    the template action, ansible_managed included), one play per variant; one copy writes them all
    out: one module run, not a stat and a copy per template (21 templates, ~25 s of CPU).
    """
    out = tmp_path_factory.mktemp("monitoring_agent")
    plays = []
    for name, extra in VARIANTS.items():
        cloud = extra["monitoring_agent_cloud"]
        texts = ", ".join(
            "%r: lookup('ansible.builtin.template', %r)"
            % (template.removesuffix(".j2"), str(ROLE / "templates" / template))
            for template in TEMPLATES[cloud]
        )
        plays.append(
            {
                "name": "Render " + name,
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars_files": [str(ROLE / "vars" / "main.yml")],
                "vars": {
                    **DEFAULTS,
                    "ansible_python_interpreter": sys.executable,
                    "monitoring_agent_deployment": DEPLOYMENT,
                    **extra,
                },
                "tasks": [
                    {
                        "name": "Render the templates of " + name,
                        "ansible.builtin.set_fact": {
                            "oce_rendered": "{{ oce_rendered | default({}) | combine({%r: {%s}}) }}" % (name, texts)
                        },
                    }
                ],
            }
        )
    plays.append(
        {
            "name": "Write what was rendered",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [
                {
                    "name": "Write the rendered templates",
                    "ansible.builtin.copy": {
                        "content": "{{ oce_rendered | to_json }}",
                        "dest": str(out / "rendered.json"),
                        "mode": "0644",
                    },
                }
            ],
        }
    )
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    result = run_playbook(playbook)
    assert result.returncode == 0, result.stdout + result.stderr
    for name, files in json.loads((out / "rendered.json").read_text()).items():
        (out / name).mkdir()
        for file, text in files.items():
            (out / name / file).write_text(text)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(VARIANTS)
    return out


def cloudwatch(rendered, variant):
    return json.loads((rendered / variant / "cloudwatch-agent.json").read_text())


def unit_file(rendered, variant, name):
    parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
    parser.optionxform = str
    # systemd allows repeated keys; configparser keeps the last one, enough for what is read here.
    parser.read_string((rendered / variant / name).read_text())
    return parser


def go_module_version(agent_version):
    """The agent's download version (1.300072.0b1766) as its Go module's tag (v1.300072.0)."""
    return "v" + re.sub(r"b\d+$", "", agent_version)


def load_schema(agent_version):
    """The agent's schema.json for this version: from the cache, else from the Go module proxy."""
    version = go_module_version(agent_version)
    cache = pathlib.Path(os.environ.get("OCE_CACHE", pathlib.Path.home() / ".cache" / "ollama-cloud-engine")) / (
        "cloudwatch-agent-schema/" + version
    )
    schema_file = cache / "schema.json"
    if not schema_file.exists():
        problem = None
        if shutil.which("go") is None:
            problem = "no go command to fetch it"
        else:
            proc = subprocess.run(
                ["go", "mod", "download", "-json", "%s@%s" % (SCHEMA_MODULE, version)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            try:
                info = json.loads(proc.stdout)
            except ValueError:
                info = {"Error": proc.stderr.strip() or "go mod download printed nothing"}
            if info.get("Error") or not info.get("Dir"):
                problem = info.get("Error", "no module directory")
            else:
                cache.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pathlib.Path(info["Dir"]) / "translator" / "config" / "schema.json", schema_file)
        if problem:
            message = "the CloudWatch agent schema %s@%s is not available: %s" % (SCHEMA_MODULE, version, problem)
            if os.environ.get("OCE_REQUIRE_CWAGENT_SCHEMA"):
                pytest.fail(message)
            pytest.skip(message + " (set OCE_REQUIRE_CWAGENT_SCHEMA=1 to fail instead)")
    return json.loads(schema_file.read_text())


# --- CloudWatch agent -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["aws-gpu", "aws-cpu", "aws-units"])
def test_cloudwatch_config_valid_against_official_schema(rendered, variant):
    import jsonschema

    schema = load_schema(DEFAULTS["monitoring_agent_aws_version"])
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(cloudwatch(rendered, variant)), key=lambda e: list(e.path))
    assert not errors, "\n".join("%s: %s" % (list(e.path), e.message) for e in errors)


def test_first_boot_points_an_image_s_logs_at_the_node_s_deployment_as_the_role_would(rendered, tmp_path, monkeypatch):
    """A golden image's configuration names /oce/demo; first boot rewrites it byte for byte as the
    role renders it for the node's deployment, so configuring the node later changes nothing."""
    config = tmp_path / "cloudwatch-agent.json"
    config.write_text((rendered / "aws-image" / "cloudwatch-agent.json").read_text())
    assert cloudwatch(rendered, "aws-image")["logs"] != cloudwatch(rendered, "aws-cpu")["logs"]
    monkeypatch.setattr(first_boot, "run", lambda argv, what, **kw: "")
    logs = {
        "group": "/oce/" + DEPLOYMENT,
        "agent_config": str(config),
        "applied": str(tmp_path / "applied"),
        "unit": "u",
    }
    assert first_boot.point_logs(logs) is True
    assert config.read_text() == (rendered / "aws-cpu" / "cloudwatch-agent.json").read_text()


def test_gpu_measurement_only_on_gpu_hosts(rendered):
    gpu = cloudwatch(rendered, "aws-gpu")["metrics"]["metrics_collected"]
    cpu = cloudwatch(rendered, "aws-cpu")["metrics"]["metrics_collected"]
    assert gpu["nvidia_gpu"]["measurement"] == [
        "utilization_gpu",
        "memory_used",
        "memory_total",
        "temperature_gpu",
        "power_draw",
    ]
    assert "nvidia_gpu" not in cpu and "nvidia_smi" not in cpu
    for collected in (gpu, cpu):
        assert collected["mem"]["measurement"] == ["mem_used_percent"]
        assert collected["disk"]["measurement"] == ["used_percent"]
        assert collected["disk"]["resources"] == ["/"]


def gpu_idle_alarm():
    """The node role's gpu-idle alarm, as ollama_cloud.engine.aws_node_monitoring writes it."""
    alarms = aws_node_monitoring.node_alarms("oce-demo", "i-0123456789abcdef0", "", [], 5.0, 2)
    (alarm,) = [a for name, a in alarms.items() if name.endswith("-gpu-idle")]
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    return {"namespace": alarm["Namespace"], "metric_name": alarm["MetricName"], "dimensions": dimensions}


def test_agent_publishes_the_metric_of_the_gpu_idle_alarm(rendered):
    alarm = gpu_idle_alarm()
    metrics = cloudwatch(rendered, "aws-gpu")["metrics"]
    # The agent names nvidia_gpu measurements nvidia_smi_<measurement> in its namespace.
    assert metrics.get("namespace", "CWAgent") == alarm["namespace"]
    assert alarm["metric_name"].startswith("nvidia_smi_")
    assert alarm["metric_name"].removeprefix("nvidia_smi_") in metrics["metrics_collected"]["nvidia_gpu"]["measurement"]
    # Published with exactly the alarm's dimensions: a rollup over them, their values appended.
    wanted = sorted(alarm["dimensions"])
    assert wanted in [sorted(d) for d in metrics["aggregation_dimensions"]]
    assert metrics["append_dimensions"] == {"InstanceId": "${aws:InstanceId}"}
    assert set(wanted) <= set(metrics["append_dimensions"])


def test_logs_go_to_the_group_the_node_role_creates(rendered):
    # Both roles name the group by the deployment_names filter (the node role through __node_names).
    tasks = yaml.safe_load((ROOT / "roles/node/tasks/providers/aws.yml").read_text())
    group = [t["vars"]["__node_aws_log_group"] for t in tasks if "__node_aws_log_group" in t.get("vars", {})][0]
    names = yaml.safe_load((ROOT / "roles/node/vars/main.yml").read_text())["__node_names"]
    assert (group, names) == (
        "{{ __node_names.aws_log_group }}",
        "{{ node_deployment | ollama_cloud.engine.deployment_names }}",
    )
    default = DEFAULTS["monitoring_agent_aws_log_group"]
    assert default == "{{ (monitoring_agent_deployment | ollama_cloud.engine.deployment_names).aws_log_group }}"
    expected = fleet.deployment_names(DEPLOYMENT)["aws_log_group"]
    collect = cloudwatch(rendered, "aws-cpu")["logs"]["logs_collected"]["files"]["collect_list"]
    assert [c["log_group_name"] for c in collect] == [expected, expected]
    assert [c["log_stream_name"] for c in collect] == ["{instance_id}/ollama", "{instance_id}/tailscaled"]
    # The node role owns the group's retention and tags; the agent would override the retention.
    assert all("retention_in_days" not in c for c in collect)


@pytest.mark.parametrize("variant", ["aws-cpu", "aws-units"])
def test_agent_reads_only_files_the_forwarders_write(rendered, variant):
    units = [u.removesuffix(".service") for u in {**DEFAULTS, **VARIANTS[variant]}["monitoring_agent_journal_units"]]
    forwarder = unit_file(rendered, variant, "oce-journal-forward@.service")
    output = forwarder["Service"]["StandardOutput"]
    assert output.startswith("append:") and "%i" in output
    written = [output.removeprefix("append:").replace("%i", u) for u in units]
    collect = cloudwatch(rendered, variant)["logs"]["logs_collected"]["files"]["collect_list"]
    assert [c["file_path"] for c in collect] == written
    assert "--unit=%i.service" in forwarder["Service"]["ExecStart"]
    # systemd opens the output before it would create a LogsDirectory=: tmpfiles.d creates it at boot.
    directory = str(pathlib.PurePath(written[0]).parent)
    assert "d %s 0750 root root -" % directory in (rendered / variant / "tmpfiles.conf").read_text().splitlines()
    # The first-boot unit starts the forwarders first, so the files exist before the agent reads them.
    first_boot = unit_file(rendered, variant, "oce-cloudwatch-agent-config.service")
    instances = ["oce-journal-forward@%s.service" % u for u in units]
    assert first_boot["Unit"]["Wants"].split()[1:] == instances
    assert first_boot["Unit"]["After"].split()[1:] == instances
    rotated = (rendered / variant / "logrotate").read_text()
    assert all(path in rotated for path in written) and "copytruncate" in rotated


def test_first_boot_unit_applies_the_configuration_once(rendered):
    text = (rendered / "aws-cpu" / "oce-cloudwatch-agent-config.service").read_text()
    assert text.startswith("#")  # ansible_managed
    conditions = re.findall(r"^ConditionPathExists=(.*)$", text, re.M)
    assert conditions == [
        "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl",
        "!/var/lib/oce/cloudwatch-agent-config.applied",
    ]
    service = unit_file(rendered, "aws-cpu", "oce-cloudwatch-agent-config.service")["Service"]
    assert service["Type"] == "oneshot"
    assert service["ExecStart"] == (
        "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
        " -a fetch-config -m ec2 -c file:/etc/oce/cloudwatch-agent.json -s"
    )
    assert service["ExecStartPost"] == "/usr/bin/touch /var/lib/oce/cloudwatch-agent-config.applied"


# --- Ops Agent ----------------------------------------------------------------------------------

# Receiver and processor types of the Ops Agent's logging section (its documentation).
OPS_LOGGING_RECEIVERS = {"files", "syslog", "tcp", "fluent_forward", "systemd_journald", "windows_event_log"}
OPS_LOGGING_PROCESSORS = {"parse_json", "parse_regex", "parse_multiline", "exclude_logs", "modify_fields"}
OPS_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


def check_ops_section(section, receiver_types, processor_types):
    receivers = section.get("receivers", {})
    processors = section.get("processors", {})
    for ident, receiver in receivers.items():
        assert OPS_ID.match(ident) and not ident.startswith("lib:"), ident
        assert receiver["type"] in receiver_types, receiver
    for ident, processor in processors.items():
        assert OPS_ID.match(ident), ident
        assert processor["type"] in processor_types, processor
    pipelines = section["service"]["pipelines"]
    for name, pipeline in pipelines.items():
        assert set(pipeline) <= {"receivers", "processors"}, (name, pipeline)
        # Built-in receivers (syslog, hostmetrics) may be named; ours must exist.
        for ref in pipeline.get("receivers", []):
            assert ref in receivers, "pipeline %s names an undefined receiver %s" % (name, ref)
        for ref in pipeline.get("processors", []):
            assert ref in processors, "pipeline %s names an undefined processor %s" % (name, ref)
    return pipelines


@pytest.mark.parametrize("variant", ["gcp", "gcp-units"])
def test_ops_agent_config_shape(rendered, variant):
    text = (rendered / variant / "ops-agent-config.yaml").read_text()
    assert text.startswith("#")  # ansible_managed
    config = yaml.safe_load(text)
    assert set(config) == {"logging"}, "host metrics stay the agent's built-in default"
    pipelines = check_ops_section(config["logging"], OPS_LOGGING_RECEIVERS, OPS_LOGGING_PROCESSORS)
    assert pipelines["default_pipeline"] == {"receivers": []}
    journal = [
        p
        for p in pipelines.values()
        if any(config["logging"]["receivers"][r]["type"] == "systemd_journald" for r in p.get("receivers", []))
    ]
    assert len(journal) == 1 and journal[0]["processors"]


@pytest.mark.parametrize("variant", ["gcp", "gcp-units"])
def test_ops_agent_keeps_only_the_node_units(rendered, variant):
    units = [u.removesuffix(".service") for u in {**DEFAULTS, **VARIANTS[variant]}["monitoring_agent_journal_units"]]
    config = yaml.safe_load((rendered / variant / "ops-agent-config.yaml").read_text())
    (processor,) = config["logging"]["processors"].values()
    assert processor["type"] == "exclude_logs"
    (expression,) = processor["match_any"]
    # Exclude everything that is NOT one of the units: NOT (u1 OR u2 ...), the filter grammar's own.
    match = re.fullmatch(r"NOT \((.*)\)", expression)
    assert match, expression
    terms = match.group(1).split(" OR ")
    assert terms == ['jsonPayload._SYSTEMD_UNIT = "%s.service"' % u for u in units]


# --- Bad inputs ---------------------------------------------------------------------------------

BAD_INPUTS = {
    "cloud-local": ({"monitoring_agent_cloud": "local"}, "a local node has no cloud monitoring agent"),
    "state": ({"monitoring_agent_cloud": "aws", "monitoring_agent_state": "running"}, "got 'running'"),
    "unit-name": (
        {"monitoring_agent_cloud": "aws", "monitoring_agent_journal_units": ["ollama; rm -rf /"]},
        "monitoring_agent_journal_units must name one or more distinct systemd units",
    ),
    "gpu": ({"monitoring_agent_cloud": "gcp", "monitoring_agent_gpu": "yes"}, "monitoring_agent_gpu must be"),
    "aws-version": (
        {"monitoring_agent_cloud": "aws", "monitoring_agent_aws_version": "latest"},
        "monitoring_agent_aws_version must look like",
    ),
    "aws-checksum": (
        {"monitoring_agent_cloud": "aws", "monitoring_agent_checksum": "md5:0123"},
        "monitoring_agent_checksum",
    ),
    "aws-log-group": (
        {"monitoring_agent_cloud": "aws", "monitoring_agent_aws_log_group": "/oce/a b"},
        "monitoring_agent_aws_log_group a CloudWatch Logs group name",
    ),
    "aws-unknown-version": (
        {"monitoring_agent_cloud": "aws", "monitoring_agent_aws_version": "1.300099.0b1"},
        "There is no known sha256 of the CloudWatch agent 1.300099.0b1",
    ),
    "gcp-version": (
        {"monitoring_agent_cloud": "gcp", "monitoring_agent_gcp_version": "2"},
        "monitoring_agent_gcp_version must be a release",
    ),
    "gcp-mirror": (
        {"monitoring_agent_cloud": "gcp", "monitoring_agent_gcp_apt_url": "ftp://mirror"},
        "monitoring_agent_gcp_apt_url and monitoring_agent_gcp_apt_key_url http(s) URLs",
    ),
}


@pytest.fixture(scope="module")
def validation_messages(tmp_path_factory):
    """Run only the role's validate.yml (it changes nothing) once per bad input; collect the messages."""
    out = tmp_path_factory.mktemp("monitoring_agent_validate")
    tasks = []
    for name, (extra, _message) in BAD_INPUTS.items():
        tasks.append(
            {
                "name": "Case " + name,
                "block": [
                    {
                        "name": "Validate " + name,
                        "ansible.builtin.include_role": {
                            "name": "ollama_cloud.engine.monitoring_agent",
                            "tasks_from": "validate.yml",
                        },
                        "vars": extra,
                    },
                    {"name": "Passed " + name, "ansible.builtin.set_fact": {"found": {name: "PASSED"}}},
                ],
                "rescue": [
                    {
                        "name": "Keep the message of " + name,
                        "ansible.builtin.set_fact": {"found": {name: "{{ ansible_failed_result.msg }}"}},
                    }
                ],
                "always": [
                    {
                        "name": "Collect " + name,
                        "ansible.builtin.set_fact": {"messages": "{{ messages | default({}) | combine(found) }}"},
                    }
                ],
            }
        )
    tasks.append(
        {
            "name": "Write the messages",
            "ansible.builtin.copy": {
                "content": "{{ messages | to_json }}",
                "dest": str(out / "messages.json"),
                "mode": "0644",
            },
        }
    )
    play = {
        "name": "Validate bad inputs",
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": True,
        "vars_files": [str(ROLE / "vars" / "checksums.yml")],
        "vars": {**DEFAULTS, "ansible_python_interpreter": sys.executable},
        "tasks": tasks,
    }
    playbook = out / "validate.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    result = run_playbook(playbook)
    assert result.returncode == 0, result.stdout + result.stderr
    # Nothing but the collected messages was written.
    assert sorted(p.name for p in out.iterdir()) == ["messages.json", "validate.yml"]
    return json.loads((out / "messages.json").read_text())


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_with_a_message(validation_messages, case):
    message = validation_messages[case]
    assert message != "PASSED", "%s was accepted" % case
    assert BAD_INPUTS[case][1] in " ".join(message.split()), message
