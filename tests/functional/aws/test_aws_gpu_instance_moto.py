"""aws_gpu_instance and aws_gpu_instance_info in-process against a moto server on loopback."""

from __future__ import annotations

import json

import boto3
import pytest

from ansible_collections.ollama_cloud.engine.plugins.modules import aws_gpu_instance, aws_gpu_instance_info
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module


def run(capsys, module=aws_gpu_instance, **args):
    """Run a module in-process; return its result dict (failed results included)."""
    return run_module(module, capsys, **args)


def node_args(moto, **extra):
    args = {
        "name": "oce-t1",
        "deployment": "t1",
        "environment": "dev",
        "model": "gemma3:270m",
        "image": moto.ami,
        "subnet_ids": moto.subnets,
        "wait_timeout": 30,
    }
    args.update(extra)
    return args


def test_lifecycle_create_stop_start_absent(moto, capsys):
    created = run(capsys, **node_args(moto))
    assert created["changed"] is True and not created.get("failed"), created
    node = created["node"]
    assert node["state"] == "running" and node["cloud"] == "aws" and node["id"].startswith("i-")
    assert node["model"] == "gemma3:270m" and node["deployment"] == "t1" and node["environment"] == "dev"
    assert node["instance_type"] == "g4dn.xlarge" and node["hourly_cost"] == 0.526
    assert node["private_ip"].startswith("10.42.1.") and node["public_ip"] is None
    assert created["placement"][-1]["result"] == "launched"
    assert created["cost"]["price_date"] == "2025" and created["cost"]["monthly"] > 0.526 * 730

    # What moto holds is private, IMDSv2-only, with an encrypted gp3 root sized from the catalog.
    (instance,) = moto.instances()
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert "PublicIpAddress" not in instance
    volume_id = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    volume = moto.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert (volume["VolumeType"], volume["Encrypted"], volume["Size"]) == ("gp3", True, 30)
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["oce-deployment"] == "t1" and tags["oce-model"] == "gemma3:270m" and tags["Name"] == "oce-t1"

    again = run(capsys, **node_args(moto))
    assert again["changed"] is False and again["node"]["id"] == node["id"]
    assert len(moto.instances()) == 1

    # Stopped as the module's example does it: name and deployment only (no model, no subnets,
    # which only a node to be created needs), and the node keeps its model tag.
    stopped = run(capsys, name="oce-t1", deployment="t1", state="stopped", wait_timeout=30)
    assert stopped["changed"] is True and stopped["node"]["state"] == "stopped", stopped
    assert stopped["diff"] == {"before": {"state": "running"}, "after": {"state": "stopped"}}
    assert stopped["node"]["model"] == "gemma3:270m"
    missing = run(capsys, name="oce-t9", deployment="t1", state="stopped")
    assert missing["failed"] is True and missing["msg"] == (
        "model is required to create a node; subnet_ids is required to create a node "
        "(private subnets, ideally in two zones)"
    )
    assert run(capsys, **node_args(moto, state="stopped"))["changed"] is False
    # present leaves a stopped node stopped.
    assert run(capsys, **node_args(moto, state="present"))["node"]["state"] == "stopped"

    started = run(capsys, **node_args(moto, state="running"))
    assert started["changed"] is True and started["node"]["state"] == "running"

    info = run(capsys, module=aws_gpu_instance_info, deployment="t1")
    assert [(n["name"], n["state"], n["hourly_cost"]) for n in info["nodes"]] == [("oce-t1", "running", 0.526)]
    assert run(capsys, module=aws_gpu_instance_info, deployment="other")["nodes"] == []

    gone = run(capsys, **node_args(moto, state="absent"))
    assert gone["changed"] is True and gone["node"] == {}
    assert moto.instances() == []
    assert run(capsys, **node_args(moto, state="absent"))["changed"] is False


def test_check_mode_creates_nothing_and_finds_golden_image(moto, capsys):
    # Our golden image, found by its tags.
    seed = moto.ec2.run_instances(ImageId=moto.ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    golden = moto.ec2.create_image(InstanceId=seed, Name="oce-node-1")["ImageId"]
    moto.ec2.create_tags(Resources=[golden], Tags=[{"Key": "oce-image", "Value": "ollama-node"}])
    moto.ec2.terminate_instances(InstanceIds=[seed])

    res = run(capsys, _ansible_check_mode=True, **node_args(moto, image="golden", model="codellama:34b-code"))
    assert res["changed"] is True and not res.get("failed"), res
    spec = res["launch_spec"]
    assert spec["ImageId"] == golden and spec["InstanceType"] == "g6e.xlarge"
    assert res["image"] == {"id": golden, "source": "golden"}
    assert spec["NetworkInterfaces"][0]["AssociatePublicIpAddress"] is False
    assert spec["MetadataOptions"]["HttpTokens"] == "required"
    assert spec["BlockDeviceMappings"][0]["Ebs"] == {
        "VolumeSize": 200,
        "VolumeType": "gp3",
        "Encrypted": True,
        "DeleteOnTermination": True,
    }
    assert res["cost"]["instance_hourly"] == 1.861
    assert res["cost"]["disk_gb"] == 200
    # A larger volume asked for is the one priced.
    res = run(
        capsys, _ansible_check_mode=True, **node_args(moto, image="golden", model="codellama:34b-code", volume_size=250)
    )
    assert res["launch_spec"]["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 250
    assert res["cost"]["disk_gb"] == 250, res["cost"]
    assert moto.instances() == []


def test_a_plan_before_the_network_exists_checks_zones_image_and_key(moto, capsys):
    """What the node role asks in validation (check mode, zones instead of subnets): nothing is created."""
    secrets = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto.url)
    secrets.create_secret(Name="oce/t1/tailscale", SecretString="tskey-auth-test")
    args = node_args(moto, subnet_ids=[], zones=["us-east-1a", "us-east-1f"], model="codellama:34b-code")
    args["key_secret"] = {"source": "aws_secretsmanager", "name": "oce/t1/tailscale"}
    res = run(capsys, _ansible_check_mode=True, **args)
    assert res["changed"] is True and not res.get("failed"), res
    # g6e is not offered in us-east-1f: the plan says so, from the zones alone.
    assert ("g6e.xlarge", "us-east-1f", "not offered in this zone") in [
        (p["instance_type"], p["availability_zone"], p["result"]) for p in res["placement"]
    ]
    assert res["launch_spec"]["NetworkInterfaces"][0]["SubnetId"] == "(new subnet in us-east-1a)"
    assert moto.instances() == []

    golden = dict(args)
    golden["image"] = "golden"
    res = run(capsys, _ansible_check_mode=True, **golden)
    assert res["failed"] is True and "no golden image" in res["msg"], res

    secrets.create_secret(Name="oce/t2/tailscale")  # a secret with no value yet
    res = run(
        capsys,
        _ansible_check_mode=True,
        **dict(args, key_secret={"source": "aws_secretsmanager", "name": "oce/t2/tailscale"}),
    )
    assert (
        res["failed"] is True
        and "the node's tailnet key oce/t2/tailscale has no value in Secrets Manager" in res["msg"]
    )


def test_unknown_type_zone_falls_back_to_next_type(moto, capsys):
    # g6e is not offered in us-east-1f (moto follows AWS here): the first type is skipped there.
    subnet_f = moto.ec2.create_subnet(VpcId=moto.vpc, CidrBlock="10.42.9.0/24", AvailabilityZone="us-east-1f")
    args = node_args(moto, model="codellama:34b-code", subnet_ids=[subnet_f["Subnet"]["SubnetId"]])
    args["instance_types"] = ["g6e.xlarge", "g5.12xlarge"]
    res = run(capsys, **args)
    assert res["node"]["instance_type"] == "g5.12xlarge", res
    assert [(p["instance_type"], p["result"]) for p in res["placement"]] == [
        ("g6e.xlarge", "not offered in this zone"),
        ("g5.12xlarge", "launched"),
    ]


BAD_INPUTS = {
    "unknown model": ({"model": "codellama:99b"}, "model 'codellama:99b' is not in the catalog"),
    "unknown region": ({"region": "us-nowhere-1"}, "region 'us-nowhere-1' is not an AWS region"),
    "type offered nowhere": (
        {
            "instance_types": ["g9.xlarge"],
            "catalog": {
                "instance_types": {"g9.xlarge": {"gpu": "X", "gpu_count": 1, "vram_gb": 96, "vcpu": 4, "ram_gb": 16}}
            },
        },
        "none of the instance types g9.xlarge is offered in the zones of subnet_ids",
    ),
    "model too large": (
        {"model": "llama3.3:70b", "instance_types": ["g5.xlarge"]},
        "model llama3.3:70b needs 64 GB of GPU memory but g5.xlarge has 24 GB (1 x A10G 24 GB)",
    ),
    "malformed override": (
        {"catalog": {"models": {"gemma3:270m": {"min_vram_gb": "lots"}}}},
        "catalog model 'gemma3:270m': min_vram_gb must be a number > 0, got 'lots'",
    ),
    "override with unknown section": ({"catalog": {"modles": {}}}, "unknown keys modles"),
    "secret in user data": (
        {"user_data": "#!/bin/sh\ntailscale up --auth-key=tskey-auth-abc123\n"},
        "user_data carries a Tailscale auth key",
    ),
    "no subnets": ({"subnet_ids": []}, "subnet_ids is required"),
    "zones without check mode": ({"subnet_ids": [], "zones": ["us-east-1a"]}, "subnet_ids is required"),
    "zone of another region": ({"zones": ["eu-west-1a"]}, "zones eu-west-1a are not in region us-east-1"),
    "volume of 0": ({"volume_size": 0}, "volume_size 0 GB is too small for gemma3:270m: it needs at least 21 GB"),
    "negative volume": ({"volume_size": -10}, "volume_size -10 GB is too small for gemma3:270m"),
    "volume smaller than the model": (
        {"model": "codellama:34b-code", "volume_size": 30},
        "volume_size 30 GB is too small for codellama:34b-code: it needs at least 39 GB",
    ),
    "override disk smaller than the model": (
        {"catalog": {"models": {"gemma3:270m": {"size_gb": 40}}}},
        "catalog model 'gemma3:270m': disk_gb 30 is smaller than the model needs: at least 60 GB",
    ),
    "override without GPU memory": (
        {"catalog": {"models": {"gemma3:270m": {"min_vram_gb": 0}}}},
        "min_vram_gb must be a number > 0, got 0",
    ),
    "bad node name": ({"name": "Oce_T1"}, "name 'Oce_T1' is not a valid node name"),
    "name too long for the tailnet": ({"name": "n" * 63}, "longer than 63 characters"),
    "missing key secret": (
        {"key_secret": {"source": "aws_secretsmanager", "name": "oce/t1/tailscale"}},
        "the node's tailnet key oce/t1/tailscale does not exist in Secrets Manager in us-east-1",
    ),
    "missing key parameter": (
        {"key_secret": {"source": "aws_ssm", "name": "/oce/t1/tailscale"}},
        "the node's tailnet key /oce/t1/tailscale does not exist in SSM Parameter Store",
    ),
    "key secret of another cloud": (
        {"key_secret": {"source": "gcp_secretmanager", "name": "x"}},
        "key_secret source must be aws_secretsmanager or aws_ssm",
    ),
    "missing image": ({"image": "ami-00000000"}, "describe images failed"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_fails_clearly_and_creates_nothing(moto, capsys, case):
    extra, message = BAD_INPUTS[case]
    res = run(capsys, **node_args(moto, **extra))
    assert res.get("failed") is True and message in res["msg"], res["msg"]
    assert res["changed"] is False
    assert moto.instances() == []


def test_a_key_parameter_that_exists_passes_the_check_without_being_read(moto, capsys):
    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=moto.url)
    ssm.put_parameter(Name="/oce/t1/tailscale", Type="SecureString", Value="tskey-auth-moto")
    res = run(
        capsys,
        _ansible_check_mode=True,
        **node_args(moto, key_secret={"source": "aws_ssm", "name": "/oce/t1/tailscale"}),
    )
    assert res["changed"] is True and not res.get("failed"), res
    assert moto.instances() == []


def test_missing_credentials_says_how_to_provide_them(moto, capsys, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    res = run(capsys, **node_args(moto))
    assert res["failed"] is True
    assert "no AWS credentials found" in res["msg"] and "AWS_ACCESS_KEY_ID" in res["msg"] and "profile" in res["msg"]
    assert moto.instances() == []


def test_secret_key_is_not_logged(moto, capsys):
    res = run(capsys, **node_args(moto, secret_key="s3cr3t-value-xyz", state="absent"))
    assert "s3cr3t-value-xyz" not in json.dumps(res)


# ---------------------------------------------------------------- tag drift


def instance_tags(moto):
    (instance,) = moto.instances()
    return {t["Key"]: t["Value"] for t in instance["Tags"]}


OWNERSHIP = {"oce-deployment": "t1", "oce-managed-by": "ollama_cloud.engine"}


def test_tag_drift_is_updated_and_check_mode_only_reports(moto, capsys):
    created = run(capsys, **node_args(moto, tags={"team": "ml"}))
    assert created["changed"] is True and "tags_changed" not in created, created
    instance_id = created["node"]["id"]
    moto.ec2.create_tags(Resources=[instance_id], Tags=[{"Key": "owner", "Value": "ops"}])
    drifted = node_args(moto, model="mistral:7b", environment="prod", tags={"team": "ml", "cost-center": "42"})
    wanted = {"cost-center": "42", "oce-environment": "prod", "oce-model": "mistral:7b"}

    preview = run(capsys, _ansible_check_mode=True, _ansible_diff=True, **drifted)
    assert preview["changed"] is True and not preview.get("failed"), preview
    assert preview["tags_changed"] == {"set": wanted, "removed": []}
    assert preview["diff"]["before"]["tags"]["oce-model"] == "gemma3:270m"
    assert preview["diff"]["after"]["tags"] == {**OWNERSHIP, **wanted, "Name": "oce-t1", "team": "ml", "owner": "ops"}
    assert instance_tags(moto)["oce-model"] == "gemma3:270m" and "cost-center" not in instance_tags(moto)

    res = run(capsys, **drifted)
    assert res["changed"] is True and res["tags_changed"] == {"set": wanted, "removed": []}, res
    assert instance_tags(moto) == {**OWNERSHIP, **wanted, "Name": "oce-t1", "team": "ml", "owner": "ops"}
    node = res["node"]
    assert (node["id"], node["model"], node["environment"]) == (instance_id, "mistral:7b", "prod")
    assert node["labels"] == instance_tags(moto) and len(moto.instances()) == 1

    again = run(capsys, **drifted)
    assert again["changed"] is False and "tags_changed" not in again, again


def test_purge_tags_removes_what_is_not_asked_for_but_never_ours(moto, capsys):
    created = run(capsys, **node_args(moto, tags={"team": "ml"}))
    moto.ec2.create_tags(Resources=[created["node"]["id"]], Tags=[{"Key": "owner", "Value": "ops"}])
    # Without purge_tags, what the node role's power task sends (no environment, no tags) changes nothing.
    assert run(capsys, **node_args(moto, environment=None, state="present"))["changed"] is False

    res = run(capsys, **node_args(moto, environment=None, purge_tags=True))
    assert res["changed"] is True, res
    assert res["tags_changed"] == {"set": {}, "removed": ["oce-environment", "owner", "team"]}
    assert instance_tags(moto) == {**OWNERSHIP, "oce-model": "gemma3:270m", "Name": "oce-t1"}
    assert run(capsys, **node_args(moto, environment=None, purge_tags=True))["changed"] is False
    # A run that names no model (a stop, a start) leaves the node its own.
    assert run(capsys, **node_args(moto, model=None, environment=None, purge_tags=True))["changed"] is False
    assert instance_tags(moto)["oce-model"] == "gemma3:270m"


def test_tag_drift_is_fixed_along_with_a_stop(moto, capsys):
    run(capsys, **node_args(moto))
    res = run(capsys, **node_args(moto, state="stopped", environment="staging"))
    assert res["changed"] is True and res["node"]["state"] == "stopped", res
    assert res["tags_changed"] == {"set": {"oce-environment": "staging"}, "removed": []}
    assert res["diff"]["after"] == {
        "state": "stopped",
        "tags": {**OWNERSHIP, "oce-model": "gemma3:270m", "oce-environment": "staging", "Name": "oce-t1"},
    }
    assert instance_tags(moto)["oce-environment"] == "staging"
