#!/usr/bin/env python
"""The fleet inventory plugin over 1,000 of our instances in three regions, on a moto server.

Prints wall seconds for a cold run (cache miss: every region is read) and a cached run (cache
hit), and the number of AWS API calls each made, counted with a botocore event hook on every
client the plugin creates. 100 instances that are not ours sit beside them and must be left out.

    eval "$(rig/setup --env)"; python bench/inventory_fleet.py [--instances 1000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def seed(url, total, batch=100):
    """``total`` of our instances spread over REGIONS, plus 100 that are not ours."""
    import boto3

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    models = ["codellama:7b-code", "mistral:7b", "codellama:34b-code", "gemma3:270m"]
    types = ["g5.xlarge", "g6.xlarge", "g6e.xlarge", "g4dn.xlarge"]
    per_region = [total // len(REGIONS) + (1 if i < total % len(REGIONS) else 0) for i in range(len(REGIONS))]
    made = 0
    for region, count in zip(REGIONS, per_region):
        ec2 = session.client("ec2", region_name=region, endpoint_url=url)
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        for start in range(0, count, batch):
            n = min(batch, count - start)
            k = (made // batch) % len(models)
            tags = [
                {"Key": "oce-deployment", "Value": "bench%d" % (made // 250)},
                {"Key": "oce-managed-by", "Value": "ollama_cloud.engine"},
                {"Key": "oce-model", "Value": models[k]},
                {"Key": "oce-environment", "Value": ("dev", "staging", "prod")[k % 3]},
            ]
            ids = ec2.run_instances(
                ImageId=ami,
                MinCount=n,
                MaxCount=n,
                InstanceType=types[k],
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )["Instances"]
            for i, inst in enumerate(ids):
                ec2.create_tags(
                    Resources=[inst["InstanceId"]], Tags=[{"Key": "Name", "Value": "oce-%s-%04d" % (region, start + i)}]
                )
            made += n
        if region == REGIONS[0]:
            ec2.run_instances(ImageId=ami, MinCount=100, MaxCount=100, InstanceType="g5.xlarge")
    return per_region


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()

    # By path: importing through ansible_collections before init_plugin_loader() breaks the loader.
    sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "functional"))
    from moto_server import MotoServer

    try:
        moto = MotoServer()
    except (FileNotFoundError, RuntimeError) as e:
        sys.exit(str(e))
    url = moto.url
    work = tempfile.mkdtemp(prefix="oce-bench-fleet-")
    try:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            del os.environ[key]
        os.environ.update(FAKE_ENV, AWS_ENDPOINT_URL=url)
        t0 = time.monotonic()
        per_region = seed(url, args.instances)
        seeded = time.monotonic() - t0

        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.plugins.loader import init_plugin_loader

        init_plugin_loader([os.path.join(REPO_ROOT, "collections")])
        from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws

        calls = collections.Counter()
        connect = aws.connect

        def counting_connect(params, service, clock=None):
            api = connect(params, service, clock)
            api.client.meta.events.register(
                "before-call", lambda model, **_: calls.update([model.service_model.service_name + ":" + model.name])
            )
            return api

        aws.connect = counting_connect
        config = os.path.join(work, "bench.fleet.yml")
        with open(config, "w") as f:
            f.write(
                "plugin: ollama_cloud.engine.fleet\nregions: [%s]\npage_size: %d\n"
                "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n"
                % (", ".join(REGIONS), args.page_size, os.path.join(work, "cache"))
            )

        def run():
            calls.clear()
            start = time.monotonic()
            inventory = InventoryManager(loader=DataLoader(), sources=[config])
            seconds = time.monotonic() - start
            return seconds, inventory, sum(calls.values()), dict(calls)

        cold_s, cold_inv, cold_calls, cold_by_op = run()
        cached_s, cached_inv, cached_calls, _ = run()
        found = len(cold_inv.get_hosts(pattern="cloud_aws"))
        assert found == args.instances, "expected %d of our nodes, found %d" % (args.instances, found)
        assert len(cached_inv.get_hosts(pattern="cloud_aws")) == found
        print("fleet inventory over %d of our instances (+100 not ours) in %s" % (found, ", ".join(REGIONS)))
        print("  per region: %s; seeding moto took %.1f s" % (", ".join(map(str, per_region)), seeded))
        print("  cold   (cache miss): %6.2f s wall, %3d API calls %s" % (cold_s, cold_calls, cold_by_op))
        print("  cached (cache hit) : %6.2f s wall, %3d API calls" % (cached_s, cached_calls))
        print("  groups: %d, page size %d" % (len(cold_inv.groups), args.page_size))
    finally:
        moto.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
