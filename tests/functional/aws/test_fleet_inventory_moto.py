"""The fleet inventory plugin through ansible-inventory, against a moto server on loopback.

Nodes in two regions, one that is not ours and one terminated: groups, hostvars, the SSM
option, Constructable groups and vars, the deployment filter, and the cache (a hit makes no call).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from ansible_collections.ollama_cloud.engine.tests.functional.fleet_helpers import (
    CountingProxy,
    plain,
    tailnet_status_command,
)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-value",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# A user's tag that reads as a template: the inventory must keep it inert.
TEMPLATE_TAG = "{{ lookup('pipe', 'echo run') }}"


def tags(**kv):
    return [{"Key": k.replace("_", "-"), "Value": v} for k, v in kv.items()]


def ours(name, deployment, environment, model, **extra):
    return tags(
        Name=name,
        oce_deployment=deployment,
        oce_managed_by="ollama_cloud.engine",
        oce_environment=environment,
        oce_model=model,
        **extra,
    )


@pytest.fixture(scope="module")
def fleet(moto_server, moto_url, tmp_path_factory):
    moto_server.reset()
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = {r: session.client("ec2", region_name=r, endpoint_url=moto_url) for r in ("us-east-1", "eu-west-1")}
    ami = {r: c.describe_images(Owners=["amazon"])["Images"][0]["ImageId"] for r, c in ec2.items()}

    def launch(region, itype, tag_list):
        spec = [{"ResourceType": "instance", "Tags": tag_list}]
        run = ec2[region].run_instances(
            ImageId=ami[region], MinCount=1, MaxCount=1, InstanceType=itype, TagSpecifications=spec
        )
        return run["Instances"][0]["InstanceId"]

    ids = {
        "a1": launch(
            "us-east-1",
            "g5.xlarge",
            ours("oce-a1", "alpha", "dev", "mistral:7b", team="ml", note=TEMPLATE_TAG),
        ),
        "a2": launch("us-east-1", "g4dn.xlarge", ours("oce-a2", "alpha", "dev", "gemma3:270m")),
        "b1": launch("eu-west-1", "g6e.xlarge", ours("oce-b1", "beta", "prod", "codellama:34b-code")),
        "gone": launch("eu-west-1", "g5.xlarge", ours("oce-gone", "beta", "prod", "mistral:7b")),
        # Someone else's instance with a look-alike deployment tag but not our managed-by tag.
        "other": launch("us-east-1", "g5.xlarge", tags(Name="other", oce_deployment="alpha")),
    }
    ec2["us-east-1"].stop_instances(InstanceIds=[ids["a2"]])
    ec2["eu-west-1"].terminate_instances(InstanceIds=[ids["gone"]])
    work = tmp_path_factory.mktemp("fleet")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_ENV, AWS_ENDPOINT_URL=moto_url, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")

    def inventory(config, *args, ok=True, name="test.fleet.yml", raw=False, more_env=None):
        path = work / name
        path.write_text(config)
        res = subprocess.run(
            ["ansible-inventory", "-i", str(path), "--list", *args],
            cwd=REPO_ROOT,
            env=dict(env, **(more_env or {})),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if not ok:
            return res
        assert res.returncode == 0, res.stderr[-3000:]
        return json.loads(res.stdout) if raw else plain(json.loads(res.stdout))

    return type("Fleet", (), {"ec2": ec2, "ids": ids, "env": env, "work": work, "inventory": staticmethod(inventory)})


def hosts(inv, group):
    return sorted(inv.get(group, {}).get("hosts", []))


BASE = "plugin: ollama_cloud.engine.fleet\nregions: [us-east-1, eu-west-1]\n"


def test_groups_and_hostvars_across_two_regions(fleet, tmp_path):
    inv = fleet.inventory(
        BASE
        + "tailnet_cli: {}\n".format(json.dumps(tailnet_status_command(tmp_path, {"oce-alpha-oce-a1": "100.64.0.11"})))
        + "keyed_groups:\n  - {key: oce_node.gpu, prefix: gpu}\n"
        + "compose:\n  ollama_models_list: '[oce_node.model]'\n"
        + "groups:\n  costly: oce_node.hourly_cost > 1.5\n"
    )
    assert hosts(inv, "cloud_aws") == ["oce-a1", "oce-a2", "oce-b1"]  # not "other", not "oce-gone"
    assert hosts(inv, "region_us_east_1") == ["oce-a1", "oce-a2"] and hosts(inv, "region_eu_west_1") == ["oce-b1"]
    assert hosts(inv, "model_codellama_34b_code") == ["oce-b1"] and hosts(inv, "model_mistral_7b") == ["oce-a1"]
    assert hosts(inv, "state_running") == ["oce-a1", "oce-b1"] and hosts(inv, "state_stopped") == ["oce-a2"]
    assert hosts(inv, "dev") == ["oce-a1", "oce-a2"] and hosts(inv, "prod") == ["oce-b1"]
    assert hosts(inv, "deployment_alpha") == ["oce-a1", "oce-a2"]
    assert hosts(inv, "gpu_L40S") == ["oce-b1"] and hosts(inv, "costly") == ["oce-b1"]

    a1, a2 = inv["_meta"]["hostvars"]["oce-a1"], inv["_meta"]["hostvars"]["oce-a2"]
    # Over the tailnet only: its address where this controller sees the node; a stopped one's name
    # may be another machine's, so it gets a host no resolver answers.
    assert a1["ansible_host"] == "100.64.0.11" and a1["ollama_url"] == "http://100.64.0.11:11434"
    assert a2["oce_tailnet_hostname"] == "oce-alpha-oce-a2" and a2["ollama_url"] == ""
    assert a2["ansible_host"] == "oce-alpha-oce-a2.stopped.invalid"
    assert (a1["ansible_user"], a1["ansible_become"], a1["oce_tailnet_online"]) == ("oce", True, True)
    node = a1["oce_node"]
    assert (node["model"], node["instance_type"], node["gpu"], node["hourly_cost"]) == (
        "mistral:7b",
        "g5.xlarge",
        "A10G",
        1.006,
    )
    assert a1["oce_node"]["id"] == fleet.ids["a1"] and a1["oce_node"]["gpu_memory_gb"] == 24
    # Each value once: the record's fields are not host variables of their own as well.
    assert sorted(k for k in a1 if k.startswith("oce_")) == ["oce_node", "oce_tailnet_hostname", "oce_tailnet_online"]
    assert a1["ollama_models_list"] == ["mistral:7b"]
    # The plugin reads DescribeInstances' answer itself: what it read is what boto3 parses.
    ((described,),) = [
        r["Instances"] for r in fleet.ec2["us-east-1"].describe_instances(InstanceIds=[fleet.ids["a1"]])["Reservations"]
    ]
    node = a1["oce_node"]
    assert (node["private_ip"], node["public_ip"], node["subnet_id"], node["image_id"]) == (
        described["PrivateIpAddress"],
        described["PublicIpAddress"],
        described["SubnetId"],
        described["ImageId"],
    )
    assert (node["availability_zone"], node["state"]) == (described["Placement"]["AvailabilityZone"], "running")
    # Labels: the user's own tags; Name and ours are the record's name, deployment, model and environment.
    assert node["labels"] == {"team": "ml", "note": TEMPLATE_TAG} and a2["oce_node"]["labels"] == {}
    assert (node["name"], node["deployment"], node["model"], node["environment"]) == (
        "oce-a1",
        "alpha",
        "mistral:7b",
        "dev",
    )


def test_a_tag_that_reads_as_a_template_stays_inert_and_plain_values_print_plainly(fleet):
    inv = fleet.inventory(BASE + "deployment: alpha\n", raw=True)
    node = inv["_meta"]["hostvars"]["oce-a1"]["oce_node"]
    # Untrusted, so printed as unsafe; what no template can be made of is printed plainly.
    assert node["labels"] == {"team": "ml", "note": {"__ansible_unsafe": TEMPLATE_TAG}}
    assert (node["cloud"], node["model"], node["name"]) == ("aws", "mistral:7b", "oce-a1")
    # A play that uses it gets the text, not what the template would run.
    path = fleet.work / "inert.fleet.yml"
    path.write_text(BASE + "deployment: alpha\n")
    res = subprocess.run(
        ["ansible", "oce-a1", "-i", str(path), "-m", "ansible.builtin.debug", "-a", "msg={{ oce_node.labels.note }}"],
        cwd=REPO_ROOT,
        env=dict(fleet.env, ANSIBLE_CALLBACK_RESULT_FORMAT="json"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads(res.stdout.split("=>", 1)[1])["msg"] == TEMPLATE_TAG


def test_the_plugins_variables_win_over_group_vars_and_lose_to_host_vars(fleet):
    # As documented: every variable of the plugin is a host variable, as amazon.aws.aws_ec2's.
    # group_vars still add what the plugin does not set; host_vars/<node>.yml override it.
    here = fleet.work / "precedence"
    (here / "group_vars").mkdir(parents=True)
    (here / "host_vars").mkdir()
    (here / "group_vars" / "all.yml").write_text("ansible_user: ubuntu\nsite_contact: ops@example.com\n")
    (here / "group_vars" / "dev.yml").write_text("ansible_become: false\n")
    (here / "host_vars" / "oce-a2.yml").write_text("ansible_user: admin\n")
    inv = fleet.inventory(BASE + "deployment: alpha\n", name="precedence/test.fleet.yml")
    a1, a2 = inv["_meta"]["hostvars"]["oce-a1"], inv["_meta"]["hostvars"]["oce-a2"]
    assert (a1["ansible_user"], a1["ansible_become"], a1["site_contact"]) == ("oce", True, "ops@example.com")
    assert (a2["ansible_user"], a2["ansible_become"]) == ("admin", True)


def test_filtered_by_deployment_and_by_state(fleet):
    inv = fleet.inventory(BASE + "deployment: beta\n")
    assert hosts(inv, "cloud_aws") == ["oce-b1"]
    b1 = inv["_meta"]["hostvars"]["oce-b1"]
    # Not on this controller's tailnet (no tailscale here): its tailnet name, never its VPC address.
    assert "ansible_connection" not in b1 and b1["ansible_host"] == "oce-beta-oce-b1"
    # Alpha's running node only: its stopped oce-a2 is left out.
    inv = fleet.inventory(BASE + "deployment: alpha\nstates: [running]\n")
    assert hosts(inv, "cloud_aws") == ["oce-a1"] and hosts(inv, "state_running") == ["oce-a1"]


def test_cache_is_written_on_a_miss_and_a_hit_makes_no_call(fleet):
    cache_dir = fleet.work / "cache"
    config = BASE + f"cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: {cache_dir}\n"
    first = fleet.inventory(config, name="cached.fleet.yml")
    assert hosts(first, "cloud_aws") == ["oce-a1", "oce-a2", "oce-b1"]
    (cache_file,) = list(cache_dir.iterdir())
    assert "testing-secret-value" not in cache_file.read_text()

    fleet.ec2["us-east-1"].create_tags(Resources=[fleet.ids["a2"]], Tags=tags(oce_managed_by="someone-else"))
    try:
        hit = fleet.inventory(config, name="cached.fleet.yml")
        assert hosts(hit, "cloud_aws") == ["oce-a1", "oce-a2", "oce-b1"]  # from the cache
        # states filters the same cache: the stopped oce-a2 that only the cache still holds as ours.
        stopped = fleet.inventory(config + "states: [stopped]\n", name="cached.fleet.yml")
        assert hosts(stopped, "cloud_aws") == ["oce-a2"]
        flushed = fleet.inventory(config, "--flush-cache", name="cached.fleet.yml")
        assert hosts(flushed, "cloud_aws") == ["oce-a1", "oce-b1"]
        assert hosts(fleet.inventory(config, name="cached.fleet.yml"), "cloud_aws") == ["oce-a1", "oce-b1"]
    finally:
        fleet.ec2["us-east-1"].create_tags(Resources=[fleet.ids["a2"]], Tags=tags(oce_managed_by="ollama_cloud.engine"))


def filters_of(params):
    """EC2 query parameters' Filter.N.Name / Filter.N.Value.M as {name: sorted values}."""
    names = {k.split(".")[1]: v for k, v in params.items() if k.startswith("Filter.") and k.endswith(".Name")}
    return {
        name: sorted(v for k, v in params.items() if k.startswith(f"Filter.{n}.Value.")) for n, name in names.items()
    }


def test_a_miss_makes_the_calls_of_the_raw_floor_one_per_region(fleet, moto_url):
    # What any EC2 inventory must do and no more (bench/inventory_fleet.py's floor): one
    # DescribeInstances per region, pages of 1000, our tag and the live states as server-side filters.
    proxy = CountingProxy(moto_url)
    try:
        inv = fleet.inventory(BASE + f"endpoint_url: {proxy.url}\n", name="counted.fleet.yml")
    finally:
        proxy.stop()
    assert hosts(inv, "cloud_aws") == ["oce-a1", "oce-a2", "oce-b1"]
    assert sorted(call[0] for call in proxy.calls) == ["eu-west-1", "us-east-1"]  # the region each was signed for
    for params in [call[1] for call in proxy.calls]:
        assert (params["Action"], params["MaxResults"], params.get("NextToken")) == ("DescribeInstances", "1000", None)
        assert filters_of(params) == {
            "tag:oce-managed-by": ["ollama_cloud.engine"],
            "instance-state-name": ["pending", "running", "stopped", "stopping"],
        }


def test_a_profile_is_used_though_the_environment_has_keys(fleet, tmp_path):
    # The environment has keys (FAKE_ENV), as a shell or a CI job may: the profile asked for wins.
    used = tmp_path / "profile-used"
    helper = tmp_path / "credentials.py"
    helper.write_text(
        "import json, pathlib\n"
        f"pathlib.Path({str(used)!r}).touch()\n"
        'print(json.dumps({"Version": 1, "AccessKeyId": "AKIAPROFILE", "SecretAccessKey": "from-the-profile"}))\n'
    )
    config = tmp_path / "aws-config"
    config.write_text(f"[profile fleet-test]\ncredential_process = {sys.executable} {helper}\n")
    inv = fleet.inventory(BASE + "profile: fleet-test\n", more_env={"AWS_CONFIG_FILE": str(config)})
    assert hosts(inv, "cloud_aws") == ["oce-a1", "oce-a2", "oce-b1"] and used.exists()


@pytest.mark.parametrize(
    "config, message",
    [
        ("regions: [us-nowhere-1]\n", "aws us-nowhere-1: region 'us-nowhere-1' is not an AWS region"),
        ("regions: [us-east-1]\npage_size: 2\n", "page_size must be between 5 and 1000"),
        # Templates that render empty are no region: AWS_REGION would name it, but it is not set here.
        ("regions: [\"{{ '' }}\", '']\n", "the fleet inventory has no region: set regions in the inventory file"),
        (
            "regions: [us-east-1]\nprofile: ml\naccess_key: AKIAFILE\nsecret_key: x\n",
            "the fleet inventory file: both a profile (ml) and access_key, secret_key are given: set one or the other",
        ),
    ],
    ids=["unknown region", "bad page size", "regions that render empty", "a profile and keys"],
)
def test_bad_config_fails_with_a_sentence(fleet, config, message):
    res = fleet.inventory("plugin: ollama_cloud.engine.fleet\n" + config, ok=False)
    assert res.returncode != 0 and message in " ".join(res.stderr.split()), res.stderr[-3000:]
