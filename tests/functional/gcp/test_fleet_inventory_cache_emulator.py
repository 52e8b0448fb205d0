"""The fleet inventory's cache covers GCP as it covers AWS: written on a miss only, a hit calls nobody.

ansible-inventory runs as a user runs it, against the GCE emulator (which counts every request it
gets) and, for the mixed fleet, a moto server behind a proxy that counts for it. A cached run
must make no request to either and print the very same inventory (hosts, groups, hostvars) as
the cold run; --flush-cache reads the clouds again.
"""

from __future__ import annotations

import os

import boto3
import pytest

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server
from ansible_collections.ollama_cloud.engine.tests.functional.aws import conftest as aws_conftest
from ansible_collections.ollama_cloud.engine.tests.functional.fleet_helpers import (
    CountingProxy,
    ansible_inventory,
    hosts,
)

# The AWS tests' moto server, started only for the mixed fleet.
moto_server = aws_conftest.moto_server
moto_url = aws_conftest.moto_url

AWS_SECRET = "testing-secret-value-for-the-cache"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
GCP_OURS = {"oce-managed-by": "ollama_cloud-engine", "oce-deployment": "mixed", "oce-environment": "dev"}


def gcp_fleet(emu):
    emu.reset()
    emu.add_subnetwork("us-central1", "us-central1-private", network="oce-net", cidr="10.30.0.0/24")
    emu.add_instance("us-central1-a", "oce-g1", "n1-standard-4", dict(GCP_OURS, **{"oce-model": "mistral-7b"}),
                     {"oce-model": "mistral:7b"},
                     accelerator="nvidia-tesla-t4")  # fmt: skip
    emu.add_instance("us-central1-b", "oce-g2", "g2-standard-4", dict(GCP_OURS, **{"oce-model": "gemma3-270m"}),
                     {"oce-model": "gemma3:270m"}, status="TERMINATED")  # fmt: skip


def aws_fleet(url):
    """Two nodes of ours on moto (seeded directly, not through the counting proxy); the ec2 client."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    ec2 = session.client("ec2", region_name="us-east-1", endpoint_url=url)
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ids = {}
    for name, itype, model in (("oce-e1", "g5.xlarge", "mistral:7b"), ("oce-e2", "g4dn.xlarge", "gemma3:270m")):
        tags = {"Name": name, "oce-deployment": "mixed", "oce-managed-by": "ollama_cloud.engine"}
        tags.update({"oce-environment": "dev", "oce-model": model})
        run = ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            InstanceType=itype,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
        )
        ids[name] = run["Instances"][0]["InstanceId"]
    return ec2, ids


@pytest.fixture(params=["gcp", "aws+gcp"])
def fleet(request, gce_cli, tmp_path):
    """A fleet on the clouds of the parameter; the environment, counters and a way to change the clouds."""
    clouds = request.param.split("+")
    emu = gce_cli
    gcp_fleet(emu)
    env = {k: v for k, v in emu.cli_env.items() if not k.startswith("AWS_")}
    aws = proxy = None
    if "aws" in clouds:
        request.getfixturevalue("moto_server").reset()
        url = request.getfixturevalue("moto_url")
        aws = aws_fleet(url)
        proxy = CountingProxy(url)
        request.addfinalizer(proxy.stop)
        env.update(AWS_ENV, AWS_ENDPOINT_URL=proxy.url)
    cache_dir = tmp_path / "cache"
    path = tmp_path / "cached.fleet.yml"
    path.write_text(
        "plugin: ollama_cloud.engine.fleet\n"
        f"clouds: [{', '.join(clouds)}]\n"
        "regions: [us-east-1]\n"
        f"projects: [{server.PROJECT}]\n"
        "keyed_groups:\n  - {key: oce_node.gpu, prefix: gpu}\n"
        "compose:\n  ollama_models_list: '[oce_node.model]'\n"
        "groups:\n  stopped_dev: oce_node.state == 'stopped' and oce_node.environment == 'dev'\n"
        "cache: true\n"
        "cache_plugin: ansible.builtin.jsonfile\n"
        f"cache_connection: {cache_dir}\n"
        "cache_timeout: 3600\n"
    )

    class Fleet:
        def inventory(self, *args):
            return ansible_inventory(path, env, *args)

        def calls(self):
            """Requests so far: to the GCE emulator, and to moto (None for a GCP-only fleet)."""
            return emu.requests, proxy.requests if proxy else None

        def search_also(self, line):
            """Change what the inventory file searches."""
            path.write_text(path.read_text() + line + "\n")

        def cache_files(self):
            return sorted(cache_dir.iterdir()) if cache_dir.exists() else []

        def change_the_clouds(self):
            """Take one node per cloud out of the fleet (no longer ours): only a real read can see it."""
            vm = emu.instances[("us-central1-b", "oce-g2")]
            vm["labels"]["oce-managed-by"] = "someone-else"
            vm["labelFingerprint"] = server.fingerprint(vm["labels"])
            if aws:
                ec2, ids = aws
                ec2.create_tags(Resources=[ids["oce-e2"]], Tags=[{"Key": "oce-managed-by", "Value": "someone-else"}])

    fl = Fleet()
    fl.clouds = clouds
    return fl


def test_a_cached_run_calls_no_cloud_and_gives_the_same_inventory(fleet):
    expected = ["oce-g1", "oce-g2"] + (["oce-e1", "oce-e2"] if "aws" in fleet.clouds else [])
    assert fleet.cache_files() == []

    # Cold: the clouds are read and the cache is written.
    gce_before, aws_before = fleet.calls()
    cold = fleet.inventory()
    gce_cold, aws_cold = fleet.calls()
    assert gce_cold > gce_before, "the cold run did not read GCP"
    if "aws" in fleet.clouds:
        assert aws_cold > aws_before, "the cold run did not read AWS"
    assert sorted(cold["_meta"]["hostvars"]) == sorted(expected)
    assert hosts(cold, "cloud_gcp") == ["oce-g1", "oce-g2"] and hosts(cold, "stopped_dev") == ["oce-g2"]
    assert "oce-g1" in hosts(cold, "gpu_T4") and cold["_meta"]["hostvars"]["oce-g1"]["oce_node"]["hourly_cost"] == 0.54
    if "aws" in fleet.clouds:
        assert hosts(cold, "cloud_aws") == ["oce-e1", "oce-e2"] and hosts(cold, "gpu_A10G") == ["oce-e1"]
    (cache_file,) = fleet.cache_files()
    written = cache_file.read_bytes(), cache_file.stat().st_mtime_ns
    # Node records only: no credential of either cloud.
    assert AWS_SECRET.encode() not in written[0] and b"ya29." not in written[0]
    assert b"oce-g1" in written[0] and b"tailnet_hostname" in written[0]

    # The clouds change; a cached run neither sees it nor calls anyone, nor rewrites the cache.
    fleet.change_the_clouds()
    cached = fleet.inventory()
    assert fleet.calls() == (gce_cold, aws_cold), "a cached run called a cloud"
    assert cached == cold  # hosts, groups, hostvars, all of it
    assert fleet.cache_files() == [cache_file]
    assert (cache_file.read_bytes(), cache_file.stat().st_mtime_ns) == written

    # --flush-cache reads the clouds again and writes what it found.
    flushed = fleet.inventory("--flush-cache")
    gce_flushed, aws_flushed = fleet.calls()
    assert gce_flushed > gce_cold
    if "aws" in fleet.clouds:
        assert aws_flushed > aws_cold
        assert hosts(flushed, "cloud_aws") == ["oce-e1"]
    assert hosts(flushed, "cloud_gcp") == ["oce-g1"] and "stopped_dev" not in flushed
    assert cache_file.read_bytes() != written[0]

    # And the next run is a hit again, on the new content.
    again = fleet.inventory()
    assert fleet.calls() == (gce_flushed, aws_flushed) and again == flushed

    # A file that searches something else is a miss, not a hit on nodes found with other settings.
    fleet.search_also("deployment: nobody")
    other = fleet.inventory()
    assert fleet.calls()[0] > gce_flushed and hosts(other, "cloud_gcp") == [] and hosts(other, "cloud_aws") == []
    assert len(fleet.cache_files()) == 2
