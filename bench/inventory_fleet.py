#!/usr/bin/env python
"""The fleet inventory against amazon.aws.aws_ec2 and the raw API, as whole processes, on a moto server.

For each fleet size N (our instances spread over three regions, tagged as the node role tags them,
plus 100 that are not ours), it times with wall clocks, median of --runs:

  start      ``ansible-inventory --version``: Python and Ansible starting, the floor of any inventory
  api        a fresh Python process making the three regions' paginated DescribeInstances calls in
             parallel with boto3 (our tag filter): the floor of any EC2 inventory
  fleet      ``ansible-inventory -i bench.fleet.yml --list`` (cache miss; the controller's tailnet
             sees every node, through a stand-in ``tailscale status --json``)
  cached     the same, on a cache hit (no API call)
  aws_ec2    ``ansible-inventory -i bench.aws_ec2.yml --list`` with the same filters, keyed groups
             and host names
  base       with --baseline DIR: the fleet plugin of that checkout (an older commit), miss and hit

and prints fleet - api (the plugin's own cost) and fleet / aws_ec2, in wall seconds and in CPU
seconds of the process (the steadier figure on a busy machine; the floor's CPU leaves out
moto's, which every column waits for alike). Before the timed runs, api and
fleet run once more through a proxy that records every request: the ``calls`` table says how many
each made and whether the fleet's were the floor's, request for request (region, action,
filters, page size). moto runs as bench/moto_tag_index.py: stock moto (--stock-moto) reads an
instance's tags by scanning every tag of the region, so a page costs time in the square of the
fleet. ``--profile N`` prints where one fleet run at N spends its time (cProfile of
the whole process, cumulative).

    eval "$(rig/setup --env)"; python bench/inventory_fleet.py [--sizes 100,1000] [--large] [--runs 3]
        [--baseline DIR] [--profile N] [--stock-moto]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
LIVE_STATES = ["pending", "running", "stopping", "stopped"]
MODELS = ["codellama:7b-code", "mistral:7b", "codellama:34b-code", "gemma3:270m"]
TYPES = ["g5.xlarge", "g6.xlarge", "g6e.xlarge", "g4dn.xlarge"]
PER_DEPLOYMENT = 250
# moto_server with each resource's tags read by its id: the same answers, in time linear in the fleet.
MOTO_TAG_INDEX = os.path.join(REPO_ROOT, "bench", "moto_tag_index.py")

# By path: importing through ansible_collections before Ansible's loader is set up breaks the loader.
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "functional"))
sys.path.insert(0, os.path.join(REPO_ROOT, "plugins", "module_utils"))
import fleet as fleet_labels  # noqa: E402  (plain constants; no Ansible import)
from fleet_helpers import CountingProxy, tailnet_status_command  # noqa: E402
from moto_server import FAKE_ENV, MotoServer  # noqa: E402

# The raw floor: what any EC2 inventory must at least do, in a process of its own.
RAW_API = """
import concurrent.futures, sys
import boto3, botocore.config
regions, endpoint, key, value = sys.argv[1].split(","), sys.argv[2], sys.argv[3], sys.argv[4]
session = boto3.session.Session()
# moto may take minutes for a page among 10,000 instances on a busy machine: no timeout, no retry.
config = botocore.config.Config(read_timeout=1800, retries={"total_max_attempts": 1})
clients = [session.client("ec2", region_name=r, endpoint_url=endpoint, config=config) for r in regions]
filters = [{"Name": "tag:" + key, "Values": [value]},
           {"Name": "instance-state-name", "Values": %r}]
def read(client):
    pages = client.get_paginator("describe_instances").paginate(Filters=filters, PaginationConfig={"PageSize": 1000})
    return sum(len(r["Instances"]) for page in pages for r in page["Reservations"])
with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
    print(sum(pool.map(read, clients)))
""" % (LIVE_STATES,)

AWS_EC2 = """plugin: amazon.aws.aws_ec2
regions: [{regions}]
endpoint_url: {url}
filters:
  tag:{managed_by}: {managed_by_value}
  instance-state-name: [{states}]
hostnames: [tag:Name, instance-id]
keyed_groups:
  - {{key: placement.region, prefix: region}}
  - {{key: "tags['{model}'] | default('unknown')", prefix: model}}
  - {{key: state.name, prefix: state}}
  - {{key: "tags['{deployment}'] | default('unknown')", prefix: deployment}}
  - {{key: "tags['{environment}']", separator: ""}}
groups:
  cloud_aws: true
compose:
  ansible_host: private_ip_address
"""


def node_name(region, deployment, i):
    return "oce-%s-%s-%05d" % (deployment, region.replace("-", ""), i)


def seed(url, total, batch=500):
    """``total`` of our instances spread over REGIONS, plus 100 that are not ours; their names."""
    import boto3
    import botocore.config

    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
    # moto launches a batch slowly once it holds thousands (minutes on a busy machine); a launch
    # retried after a timeout would launch the batch twice.
    config = botocore.config.Config(read_timeout=1800, retries={"total_max_attempts": 1})
    per_region = [total // len(REGIONS) + (1 if i < total % len(REGIONS) else 0) for i in range(len(REGIONS))]

    def region_seed(region, count, offset):
        ec2 = session.client("ec2", region_name=region, endpoint_url=url, config=config)
        ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        names = []
        for start in range(0, count, batch):
            n = min(batch, count - start)
            k = ((offset + start) // batch) % len(MODELS)
            deployment = "bench%d" % ((offset + start) // PER_DEPLOYMENT)
            labels = fleet_labels.deployment_labels(deployment, MODELS[k], ("dev", "staging", "prod")[k % 3])
            tags = [{"Key": key, "Value": value} for key, value in labels.items()]
            made = ec2.run_instances(
                ImageId=ami,
                MinCount=n,
                MaxCount=n,
                InstanceType=TYPES[k],
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )["Instances"]
            for i, inst in enumerate(made):
                name = node_name(region, deployment, start + i)
                ec2.create_tags(Resources=[inst["InstanceId"]], Tags=[{"Key": "Name", "Value": name}])
                names.append(fleet_labels.tailnet_hostname(deployment, name))
        if region == REGIONS[0]:
            ec2.run_instances(ImageId=ami, MinCount=100, MaxCount=100, InstanceType="g5.xlarge")
        return names

    offsets = [sum(per_region[:i]) for i in range(len(REGIONS))]
    with concurrent.futures.ThreadPoolExecutor(len(REGIONS)) as pool:
        return [n for names in pool.map(region_seed, REGIONS, per_region, offsets) for n in names]


def timed(argv, env, check=None):
    """Wall and CPU seconds (user + system, its children's included) of one process; ``check(stdout)`` on its output.

    The CPU time does not count waiting (for moto, for a core of a busy machine): on a loaded
    machine it is the steadier figure of what the process itself costs.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    res = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(argv), res.stderr[-3000:]))
    if check:
        check(res.stdout)
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def hosts_in(expected, group):
    def check(stdout):
        found = len(json.loads(stdout).get(group, {}).get("hosts", []))
        if found != expected:
            sys.exit("expected %d hosts in %s, found %d" % (expected, group, found))

    return check


def write_configs(work, url, n, names):
    """bench.fleet.yml (our plugin, cached, the controller's tailnet seeing every node) and bench.aws_ec2.yml."""
    peers = {name: "100.64.%d.%d" % (i // 250, i % 250 + 1) for i, name in enumerate(names)}
    fleet_yml = os.path.join(work, "bench.fleet.yml")
    with open(fleet_yml, "w") as f:
        f.write(
            "plugin: ollama_cloud.engine.fleet\nregions: [%s]\ntailnet_cli: %s\n"
            "cache: true\ncache_plugin: ansible.builtin.jsonfile\ncache_connection: %s\n"
            % (", ".join(REGIONS), json.dumps(tailnet_status_command(work, peers)), os.path.join(work, "cache-%d" % n))
        )
    ec2_yml = os.path.join(work, "bench.aws_ec2.yml")
    with open(ec2_yml, "w") as f:
        f.write(
            AWS_EC2.format(
                regions=", ".join(REGIONS),
                url=url,
                managed_by=fleet_labels.LABEL_MANAGED_BY,
                managed_by_value=fleet_labels.MANAGED_BY,
                states=", ".join(LIVE_STATES),
                model=fleet_labels.LABEL_MODEL,
                deployment=fleet_labels.LABEL_DEPLOYMENT,
                environment=fleet_labels.LABEL_ENVIRONMENT,
            )
        )
    return fleet_yml, ec2_yml


def measure(moto, n, runs, work, env, base_env=None, profile=False):
    moto.reset()
    t0 = time.perf_counter()
    names = seed(moto.url, n)
    seeded = time.perf_counter() - t0
    fleet_yml, ec2_yml = write_configs(work, moto.url, n, names)
    inventory = _which("ansible-inventory")
    fleet_list = [inventory, "-i", fleet_yml, "--list"]

    if profile:
        # The regions are read in threads, which cProfile does not follow: their time shows as
        # the wait in _fetch. The rest (records, host variables, groups, cache, output) is all here.
        out = os.path.join(work, "fleet.prof")
        timed([sys.executable, "-m", "cProfile", "-o", out, *fleet_list, "--flush-cache"], env)
        import pstats

        pstats.Stats(out).sort_stats("cumulative").print_stats(45)
        return None

    def raw(url):
        return [
            sys.executable,
            "-c",
            RAW_API,
            ",".join(REGIONS),
            url,
            fleet_labels.LABEL_MANAGED_BY,
            fleet_labels.MANAGED_BY,
        ]

    def raw_check(stdout):
        if int(stdout) != n:
            sys.exit("the raw calls found %s instances, not %d" % (stdout.strip(), n))

    calls, output = {}, {}

    def fleet_check(stdout):
        hosts_in(n, "cloud_aws")(stdout)
        output.update(output_shape(stdout))

    for name, argv, check in (
        ("api", raw, raw_check),
        ("fleet", lambda url: fleet_list + ["--flush-cache"], fleet_check),
    ):
        proxy = CountingProxy(moto.url, timeout=1800)  # as patient as the raw calls
        try:
            timed(argv(proxy.url), dict(env, AWS_ENDPOINT_URL=proxy.url), check)
        finally:
            proxy.stop()
        calls[name] = sorted(request_shape(region, params) for region, params in proxy.calls)

    columns = [("start", [inventory, "--version"], env, None), ("api", raw(moto.url), env, raw_check)]
    if base_env:
        columns += [
            ("base", fleet_list + ["--flush-cache"], base_env, hosts_in(n, "cloud_aws")),
            ("base_cached", fleet_list, base_env, None),
        ]
    columns += [
        ("fleet", fleet_list + ["--flush-cache"], env, hosts_in(n, "cloud_aws")),
        ("cached", fleet_list, env, hosts_in(n, "cloud_aws")),
        ("aws_ec2", [inventory, "-i", ec2_yml, "--list"], env, hosts_in(n, "cloud_aws")),
    ]
    samples = {name: [] for name, _, _, _ in columns}
    for i in range(runs):
        # Interleaved, so that a busy moment of the machine falls on every column alike.
        for name, argv, column_env, check in columns:
            samples[name].append(timed(argv, column_env, check if i == 0 else None))
    row = {key: statistics.median(wall for wall, _ in values) for key, values in samples.items()}
    row["cpu"] = {key: statistics.median(cpu for _, cpu in values) for key, values in samples.items()}
    row.update(n=n, seeded=seeded, calls=calls, output=output)
    return row


def output_shape(stdout):
    """What the fleet's ``--list`` prints: its size, and per host its values and the strings among them."""
    hostvars = json.loads(stdout)["_meta"]["hostvars"]
    counts = [leaves(v) for v in hostvars.values()]
    return {
        "bytes": len(stdout.encode()),
        "values": statistics.mean(c[0] for c in counts) if counts else 0,
        "strings": statistics.mean(c[1] for c in counts) if counts else 0,
    }


def leaves(value):
    """(values, strings) under ``value``; a string marked unsafe ({"__ansible_unsafe": s}) is one string."""
    if isinstance(value, dict) and set(value) != {"__ansible_unsafe"}:
        found = [leaves(v) for v in value.values()]
        return sum(f[0] for f in found), sum(f[1] for f in found)
    if isinstance(value, list):
        found = [leaves(v) for v in value]
        return sum(f[0] for f in found), sum(f[1] for f in found)
    return 1, int(isinstance(value, (str, dict)))


def request_shape(region, params):
    """What a request asks, without what differs between runs (the page token's value)."""
    return (region, tuple(sorted((k, v if k != "NextToken" else "...") for k, v in params.items())))


def _which(name):
    import shutil

    return shutil.which(name, path=os.path.dirname(sys.executable)) or shutil.which(name)


def baseline_env(env, checkout, work):
    """``env`` with the collection taken from another checkout (an older commit, for before/after)."""
    root = os.path.join(work, "baseline", "ansible_collections", "ollama_cloud")
    os.makedirs(root)
    os.symlink(os.path.abspath(checkout), os.path.join(root, "engine"))
    return dict(env, ANSIBLE_COLLECTIONS_PATH=os.path.join(work, "baseline"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="fleet sizes, comma separated (default 100,1000)")
    parser.add_argument(
        "--large",
        action="store_true",
        help="add 10000 (seeding moto takes minutes)",
    )
    parser.add_argument(
        "--stock-moto",
        action="store_true",
        help="run moto_server as installed, not bench/moto_tag_index.py (its tag lookup scans every tag: at "
        "10,000 a page takes longer than botocore's 60 s read timeout, which both plugins keep)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is printed")
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        help="also time the fleet plugin of this checkout (git worktree add DIR <commit>): base, base_cached",
    )
    parser.add_argument("--profile", type=int, metavar="N", help="instead, profile one fleet run (cache miss) at N")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([10000] if args.large else [])
    if args.profile:
        sizes = [args.profile]

    try:
        moto = MotoServer(command=None if args.stock_moto else [sys.executable, MOTO_TAG_INDEX])
    except (FileNotFoundError, RuntimeError) as e:
        sys.exit(str(e))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_ENV, AWS_ENDPOINT_URL=moto.url, ANSIBLE_INVENTORY_UNPARSED_FAILED="true")
    del env["AWS_REGION"]  # the regions are the inventory files'
    rows = []
    with tempfile.TemporaryDirectory(prefix="oce-bench-fleet-") as work:
        base_env = baseline_env(env, args.baseline, work) if args.baseline else None
        try:
            for n in sizes:
                try:
                    row = measure(moto, n, args.runs, work, env, base_env, profile=bool(args.profile))
                except SystemExit as failed:  # a larger fleet failing keeps the smaller ones' figures
                    print("N=%d not measured: %s" % (n, str(failed.code)[-600:]), file=sys.stderr)
                    break
                if row:
                    rows.append(row)
                    print("N=%d measured (seeding moto took %.0f s)" % (n, row["seeded"]), file=sys.stderr)
        finally:
            moto.stop()
    if rows:
        report(rows, args.runs)


def report_calls(rows):
    print("requests of one cache miss (region, action, filters, page size, page token or not), as the proxy saw them")
    print("%7s %7s %7s  %s" % ("N", "api", "fleet", "fleet's requests"))
    for r in rows:
        api, fleet = r["calls"]["api"], r["calls"]["fleet"]
        actions = sorted({dict(p)["Action"] for _, p in fleet})
        same = "the floor's, request for request" if fleet == api else "NOT the floor's"
        print("%7d %7d %7d  %s (%s)" % (r["n"], len(api), len(fleet), same, ", ".join(actions)))


def report(rows, runs):
    report_calls(rows)
    print("the fleet's output (--list): bytes, and per host its values (leaves of hostvars) and strings among them")
    print("%7s %10s %7s %7s" % ("N", "bytes", "values", "strings"))
    for r in rows:
        print("%7d %10d %7.1f %7.1f" % (r["n"], r["output"]["bytes"], r["output"]["values"], r["output"]["strings"]))
    for what in ("wall", "cpu"):
        print(
            "ansible-inventory --list over N of our instances in %s (+100 not ours) on moto; "
            "%s seconds, median of %d" % (", ".join(REGIONS), what, runs)
        )
        report_table([r if what == "wall" else dict(r, **r["cpu"]) for r in rows])
    print("load average (1, 5, 15 min) at the end: %.1f %.1f %.1f" % os.getloadavg())


def report_table(rows):
    names = [k for k in ("start", "api", "base", "base_cached", "fleet", "cached", "aws_ec2") if k in rows[0]]
    derived = ["fleet-api", "ec2-api", "fleet/ec2"] + (["fleet/base"] if "base" in rows[0] else [])
    print(" ".join("%7s" % h for h in ["N"] + names) + " " + " ".join("%10s" % h for h in derived))
    for r in rows:
        values = {
            "fleet-api": r["fleet"] - r["api"],
            "ec2-api": r["aws_ec2"] - r["api"],
            "fleet/ec2": r["fleet"] / r["aws_ec2"],
            "fleet/base": r["fleet"] / r["base"] if "base" in r else None,
        }
        print(
            "%7d " % r["n"]
            + " ".join("%7.2f" % r[k] for k in names)
            + " "
            + " ".join("%10.2f" % values[k] for k in derived)
        )


if __name__ == "__main__":
    main()
