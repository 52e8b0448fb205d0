"""A running AWS node ships its units' journal through files that exist, and applied the agent's
configuration exactly once; an AWS image holds the configuration but applied and forwarded
nothing; a GCP node has an Ops Agent configuration that keeps only the node's units."""

import json
import time
import uuid

import pytest
import yaml

CTL = "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl"
CONFIG = "/etc/oce/cloudwatch-agent.json"
APPLIED = "/var/lib/oce/cloudwatch-agent-config.applied"
FIRST_BOOT = "oce-cloudwatch-agent-config.service"
FORWARDERS = ["oce-journal-forward@ollama.service", "oce-journal-forward@tailscaled.service"]
CALLS = "/var/lib/oce-test/ctl-calls"


def role_of(host):
    return host.backend.get_hostname().removeprefix("oce-molecule-mon-")


def only(host, *roles):
    """Skip unless on one of these nodes."""
    if role_of(host) not in roles:
        pytest.skip("not on this node")
    return host


def show(host, unit, prop):
    return host.check_output("systemctl show --property=%s --value %s", prop, unit)


def cloudwatch_config(host):
    return json.loads(host.file(CONFIG).content_string)


def test_cloudwatch_config_in_place(host):
    host = only(host, "aws", "image")
    config = host.file(CONFIG)
    assert config.user == "root" and config.mode == 0o644
    data = cloudwatch_config(host)
    assert data["metrics"]["namespace"] == "CWAgent"
    assert data["metrics"]["aggregation_dimensions"] == [["InstanceId"]]
    collect = data["logs"]["logs_collected"]["files"]["collect_list"]
    assert [c["log_group_name"] for c in collect] == ["/oce/molecule"] * 2
    assert [c["file_path"] for c in collect] == ["/var/log/oce/ollama.log", "/var/log/oce/tailscaled.log"]


def test_gpu_measurement_follows_the_host(host):
    host = only(host, "aws", "image")
    collected = cloudwatch_config(host)["metrics"]["metrics_collected"]
    # The container has no NVIDIA GPU (auto finds none); the image was told it is for GPU nodes.
    assert ("nvidia_gpu" in collected) == (role_of(host) == "image")


def test_first_boot_unit_installed_and_enabled(host):
    host = only(host, "aws", "image")
    assert host.service(FIRST_BOOT).is_enabled
    exec_start = show(host, FIRST_BOOT, "ExecStart")
    assert "path=%s ; argv[]=%s -a fetch-config -m ec2 -c file:%s -s ;" % (CTL, CTL, CONFIG) in exec_start
    assert host.run("systemd-analyze verify %s", "/etc/systemd/system/" + FIRST_BOOT).rc == 0


def test_running_node_applied_the_configuration_once(host):
    host = only(host, "aws")
    assert host.file(APPLIED).exists
    assert show(host, FIRST_BOOT, "Result") == "success"
    # converge applied it; idempotence and check must not have applied it again.
    calls = host.file(CALLS).content_string.splitlines()
    assert calls == ["-a fetch-config -m ec2 -c file:%s -s" % CONFIG]


def test_forwarders_run_and_write_the_files_the_agent_reads(host):
    host = only(host, "aws")
    for unit in FORWARDERS:
        assert host.service(unit).is_enabled and host.service(unit).is_running
    for entry in cloudwatch_config(host)["logs"]["logs_collected"]["files"]["collect_list"]:
        assert host.file(entry["file_path"]).is_file, entry["file_path"]
    # tailscaled is not installed here: its file exists, empty, rather than being missing.
    assert host.file("/var/log/oce/tailscaled.log").size == 0
    # The line ollama.service wrote before the role ran (the forwarder starts at the boot's start).
    assert "ollama probe prepare" in host.file("/var/log/oce/ollama.log").content_string


def test_new_journal_lines_reach_the_file(host):
    host = only(host, "aws")
    token = uuid.uuid4().hex
    host.run_expect([0], "echo OCE_PROBE=%s > /run/oce-probe.env && systemctl start ollama.service", token)
    for _ in range(50):
        if token in host.file("/var/log/oce/ollama.log").content_string:
            break
        time.sleep(0.2)
    else:
        pytest.fail("ollama.service's line %s did not reach /var/log/oce/ollama.log" % token)
    # As journalctl --output=short-iso writes it: an ISO time, then the identifier.
    line = [x for x in host.file("/var/log/oce/ollama.log").content_string.splitlines() if token in x][-1]
    assert line[:4].isdigit() and line[10] == "T", line


def test_image_applied_and_forwarded_nothing(host):
    host = only(host, "image")
    assert not host.file(APPLIED).exists
    assert not host.file(CALLS).exists
    for unit in FORWARDERS:
        assert host.service(unit).is_enabled and not host.service(unit).is_running
    assert not host.file("/var/log/oce").exists
    # Created again at boot, before the forwarders start.
    assert host.file("/etc/tmpfiles.d/oce-journal-forward.conf").contains("^d /var/log/oce 0750 root root -$")
    assert not host.service(FIRST_BOOT).is_running


def test_ops_agent_config_keeps_the_node_units(host):
    host = only(host, "gcp")
    text = host.file("/etc/google-cloud-ops-agent/config.yaml").content_string
    config = yaml.safe_load(text)
    logging = config["logging"]
    assert logging["receivers"] == {"oce_journald": {"type": "systemd_journald"}}
    pipeline = logging["service"]["pipelines"]["oce_units"]
    assert pipeline == {"receivers": ["oce_journald"], "processors": ["oce_units_only"]}
    assert logging["processors"]["oce_units_only"]["match_any"] == [
        'NOT (jsonPayload._SYSTEMD_UNIT = "ollama.service" OR jsonPayload._SYSTEMD_UNIT = "tailscaled.service")'
    ]
    # Nothing of the CloudWatch side on a GCP node.
    assert not host.file(CONFIG).exists
    assert not host.file("/etc/systemd/system/oce-journal-forward@.service").exists
