"""The harness's own logic without podman: seeds, DNAT rules, image keys, adapters, the reconciler."""

from __future__ import annotations

import base64
import builtins
import dataclasses
import io
import json
import os
import types

import pytest

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server as gce_server
from ansible_collections.ollama_cloud.engine.tests.functional.simcloud import bodies as bodies_mod
from ansible_collections.ollama_cloud.engine.tests.functional.simcloud import golden, netns, rig, seed
from ansible_collections.ollama_cloud.engine.tests.functional.simcloud.bodies import (
    AwsCloud,
    Bodies,
    GcpCloud,
    Instance,
    hostname_of,
)


def test_seed_holds_the_user_data_as_given_and_the_clouds_id(tmp_path):
    seed.write_seed(str(tmp_path), "i-0abc", "oce-n1", b"\x1f\x8bgzip")
    assert (tmp_path / "user-data").read_bytes() == b"\x1f\x8bgzip"
    assert json.loads((tmp_path / "meta-data").read_text()) == {"instance-id": "i-0abc", "local-hostname": "oce-n1"}


def test_dnat_ruleset_replaces_our_table_in_one_transaction():
    rules = netns.dnat_ruleset("10.89.42.1", 41234)
    assert rules.splitlines()[:2] == ["table ip oce_sim", "delete table ip oce_sim"]
    assert "type nat hook output priority -100" in rules
    assert "ip daddr 169.254.169.254 tcp dport 80 dnat to 10.89.42.1:41234" in rules


@pytest.mark.parametrize(
    ("name", "hostname"),
    [("oce-n1", "oce-n1"), ("My Node_1", "my-node-1"), ("-" * 3, "instance"), ("a" * 70, "a" * 63)],
)
def test_hostnames_are_what_podman_accepts(name, hostname):
    assert hostname_of(name) == hostname


def test_mirror_urls_are_the_ones_rig_setup_serves():
    """The bodies download what rig/setup put on the blob server (rig/lib.sh exports its URLs)."""
    served = (os.environ.get("OCE_TAILSCALE_URL"), os.environ.get("OCE_OLLAMA_URL"))
    if not all(served):
        pytest.skip('needs the rig\'s environment: eval "$(rig/setup --env)"')
    assert served == (rig.TAILSCALE_URL, rig.OLLAMA_URL)


def test_golden_key_follows_variables(monkeypatch):
    monkeypatch.setattr(rig, "podman", lambda *a, **k: types.SimpleNamespace(stdout="sha256:cloudimage"))
    one = golden.golden_key({"cloud": "aws"})
    assert one == golden.golden_key({"cloud": "aws"}) and len(one) == 12
    assert one != golden.golden_key({"cloud": "gcp"})
    assert golden.golden_tag(one) == f"localhost/oce-golden:{one}"


def test_golden_key_follows_the_plugins_an_image_build_runs(monkeypatch):
    """A change to a module the roles run on the builder (node_probe) makes a new image; one to a
    cloud API's module, which never runs there, does not."""
    monkeypatch.setattr(rig, "podman", lambda *a, **k: types.SimpleNamespace(stdout="sha256:cloudimage"))
    real_open, changed = open, {}

    def reading(path, *args, **kwargs):
        f = real_open(path, *args, **kwargs)
        if path in changed:
            data = f.read() + changed[path]
            f.close()
            return io.BytesIO(data)
        return f

    monkeypatch.setattr(builtins, "open", reading)
    before = golden.golden_key({"cloud": "aws"})
    plugins = os.path.join(rig.REPO_ROOT, "plugins")
    changed[os.path.join(plugins, "modules", "aws_network.py")] = b"# a cloud API's module"
    assert golden.golden_key({"cloud": "aws"}) == before
    changed[os.path.join(plugins, "modules", "node_probe.py")] = b"# what the roles run"
    assert golden.golden_key({"cloud": "aws"}) != before


class FakeEc2:
    def __init__(self, instances, user_data):
        self.pages, self.user_data = [{"Reservations": [{"Instances": instances}]}], user_data

    def get_paginator(self, name):
        assert name == "describe_instances"
        return types.SimpleNamespace(paginate=lambda: iter(self.pages))

    def describe_instance_attribute(self, InstanceId, Attribute):
        assert Attribute == "userData"
        return {"UserData": {"Value": base64.b64encode(self.user_data).decode()}}


def test_aws_adapter_maps_states_names_and_user_data():
    def ec2_instance(iid, state, name=None):
        tags = [{"Key": "Name", "Value": name}] if name else []
        return {"InstanceId": iid, "State": {"Name": state}, "ImageId": "ami-1", "Tags": tags}

    ec2 = FakeEc2(
        [ec2_instance("i-1", "pending", "oce-a"), ec2_instance("i-2", "stopping"), ec2_instance("i-3", "terminated")],
        b"#cloud-config\n",
    )
    cloud = AwsCloud(ec2, "http://10.89.42.1:5123")
    found = cloud.instances()
    assert [(i.id, i.name, i.state, i.image) for i in found] == [
        ("i-1", "oce-a", "running", "ami-1"),
        ("i-2", "i-2", "stopped", "ami-1"),
        ("i-3", "i-3", "gone", "ami-1"),
    ]
    assert cloud.user_data(found[0]) == b"#cloud-config\n"
    assert cloud.metadata == ("10.89.42.1", 5123) and cloud.container_name(found[0]) == "oce-body-i-1"


def test_gcp_adapter_reads_the_emulators_instances_and_binds_bodies():
    emu = gce_server.Emulator()
    try:
        emu.add_subnetwork("us-central1", "us-central1-private")
        emu.add_instance("us-central1-a", "oce-g1", "n1-standard-4", {}, {"user-data": "#cloud-config\n"})
        emu.add_disk("us-central1-a", "oce-g1", "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts")
        emu.add_instance("us-central1-b", "oce-g2", "n1-standard-4", {}, status="TERMINATED")
        cloud = GcpCloud(emu)
        found = sorted(cloud.instances(), key=lambda i: i.name)
        assert [(i.name, i.state, i.image, i.zone) for i in found] == [
            ("oce-g1", "running", "ubuntu-2204-jammy-v20251001", "us-central1-a"),
            ("oce-g2", "stopped", "", "us-central1-b"),
        ]
        assert cloud.user_data(found[0]) == b"#cloud-config\n"
        assert cloud.extra_hosts == {"metadata.google.internal": "169.254.169.254"}
        cloud.body_started(found[0], "10.89.42.77")
        assert emu.bodies == {"10.89.42.77": ("us-central1-a", "oce-g1")}
        cloud.body_stopped(found[0], "10.89.42.77")
        assert emu.bodies == {}
    finally:
        emu.stop()


class FakeCloud:
    metadata = ("10.89.42.1", 8000)
    extra_hosts = {}

    def __init__(self):
        self.listed, self.started = [], []

    def instances(self):
        return list(self.listed)

    def user_data(self, instance):
        return b"#cloud-config\n"

    container_name = staticmethod(AwsCloud.container_name)

    def body_started(self, instance, ip):
        self.started.append((instance.id, ip))

    def body_stopped(self, instance, ip):
        pass

    def guest_shutdown(self, instance):
        self.listed = [dataclasses.replace(i, state="stopped") if i.id == instance.id else i for i in self.listed]


@pytest.fixture
def fake_podman(monkeypatch):
    """Record podman calls; containers 'run' after start; DNAT calls recorded too."""
    calls, states = [], {}

    def podman(*args, check=True, timeout=120, input=None):
        calls.append(args)
        out = ""
        if args[:2] == ("container", "inspect") and "--format" in args:
            return types.SimpleNamespace(returncode=1, stdout="", stderr="no such container")
        if args[0] == "create":
            states[args[2]] = "created"
        elif args[0] == "start":
            states[args[1]] = "running"
        elif args[0] == "stop":
            states[args[-1]] = "exited"
        elif args[:2] == ("container", "inspect"):
            info = {"State": {"Pid": 4242, "Status": states.get(args[2], "created")}}
            info["NetworkSettings"] = {"Networks": {rig.NETWORK: {"IPAddress": "10.89.42.50"}}}
            out = json.dumps([info])
        return types.SimpleNamespace(returncode=0, stdout=out, stderr="")

    dnat = []
    monkeypatch.setattr(rig, "podman", podman)

    def set_dnat(pid, host, port):
        dnat.append((pid, host, port))
        calls.append(("nft",))

    monkeypatch.setattr(netns, "set_metadata_dnat", set_dnat)
    monkeypatch.setattr(netns, "has_metadata_dnat", lambda pid, host, port: True)
    return types.SimpleNamespace(calls=calls, dnat=dnat, states=states)


def verbs(calls):
    return [c[0] if c[0] != "container" else "inspect" for c in calls]


def test_reconciler_follows_the_cloud_through_a_lifecycle(fake_podman, tmp_path):
    cloud = FakeCloud()
    harness = Bodies(cloud, image_for={"ami-gold": "localhost/oce-golden:k"}, workdir=str(tmp_path))
    cloud.listed = [Instance("i-1", "oce-a", "running", "ami-gold")]
    harness.settle()
    create = next(c for c in fake_podman.calls if c[0] == "create")
    assert create[-2:] == ("localhost/oce-golden:k", "/sbin/init")
    assert "--device" in create and "/dev/net/tun" in create and "--systemd=always" in create
    assert f"{rig.MODELS_HOST}:{rig.REGISTRY_IP}" in create
    # The DNAT goes in between podman init and podman start: before the guest's init runs.
    order = verbs(fake_podman.calls)
    assert order.index("init") < order.index("nft") < order.index("start")
    assert fake_podman.dnat == [(4242, "10.89.42.1", 8000)]
    assert cloud.started == [("i-1", "10.89.42.50")]
    assert (tmp_path / "oce-body-i-1" / "seed" / "user-data").read_bytes() == b"#cloud-config\n"

    fake_podman.calls.clear()
    cloud.listed = [Instance("i-1", "oce-a", "stopped", "ami-gold")]
    harness.settle()
    assert [c[0] for c in fake_podman.calls if c[0] not in ("container", "nft")] == ["stop"]

    fake_podman.calls.clear()
    cloud.listed = [Instance("i-1", "oce-a", "running", "ami-gold")]
    harness.settle()
    assert [c[0] for c in fake_podman.calls if c[0] in ("init", "start", "create")] == ["init", "start"]
    assert len(fake_podman.dnat) == 2 and harness.body("oce-a").boots == 2

    fake_podman.calls.clear()
    cloud.listed = [Instance("i-1", "oce-a", "gone", "ami-gold")]
    harness.settle()
    assert [c[:2] for c in fake_podman.calls if c[0] == "rm"] == [("rm", "-f")]
    assert not (tmp_path / "oce-body-i-1").exists() and harness.bodies == {}
    assert [e[2] for e in harness.events] == ["create", "stop", "start", "remove"]


def test_a_failed_body_is_reported_once_and_not_retried(fake_podman, tmp_path, monkeypatch):
    cloud = FakeCloud()
    harness = Bodies(cloud, workdir=str(tmp_path))
    cloud.listed = [Instance("i-9", "oce-z", "running", "ami-x")]

    def broken(*args, **kwargs):
        raise RuntimeError("podman create failed: no space")

    monkeypatch.setattr(bodies_mod.rig, "podman", broken)
    with pytest.raises(AssertionError, match="create oce-body-i-9 .*no space"):
        harness.settle()
    assert harness.reconcile() is False  # not retried in a loop


def test_a_start_whose_init_vanishes_under_nsenter_inits_again(fake_podman, tmp_path, monkeypatch):
    # conmon's cleanup of the earlier stop can tear the freshly inited container down (CI, stop 10).
    cloud = FakeCloud()
    harness = Bodies(cloud, workdir=str(tmp_path))
    cloud.listed = [Instance("i-7", "oce-r", "running", "ami-x")]
    failures = ["nsenter: cannot open /proc/4242/ns/net: No such file or directory"]

    def set_dnat(pid, host, port):
        fake_podman.calls.append(("nft",))
        if failures:
            raise RuntimeError(failures.pop())
        fake_podman.dnat.append((pid, host, port))

    monkeypatch.setattr(netns, "set_metadata_dnat", set_dnat)
    monkeypatch.setattr(bodies_mod, "process_exists", lambda pid: False)
    harness.settle()
    assert [v for v in verbs(fake_podman.calls) if v in ("init", "nft", "start")] == ["init", "nft"] * 2 + ["start"]
    assert fake_podman.dnat == [(4242, "10.89.42.1", 8000)] and harness.body("i-7").state == "running"


def test_a_dnat_failure_in_a_living_namespace_is_not_retried(fake_podman, tmp_path, monkeypatch):
    cloud = FakeCloud()
    harness = Bodies(cloud, workdir=str(tmp_path))
    cloud.listed = [Instance("i-8", "oce-q", "running", "ami-x")]

    def set_dnat(pid, host, port):
        raise RuntimeError("nft: syntax error")

    monkeypatch.setattr(netns, "set_metadata_dnat", set_dnat)
    monkeypatch.setattr(bodies_mod, "process_exists", lambda pid: True)
    with pytest.raises(AssertionError, match="create oce-body-i-8 .*syntax error"):
        harness.settle()
    assert [c[0] for c in fake_podman.calls].count("init") == 1


def test_a_guest_powering_off_during_a_verify_is_not_an_error(fake_podman, tmp_path, monkeypatch):
    cloud = FakeCloud()
    harness = Bodies(cloud, workdir=str(tmp_path))
    cloud.listed = [Instance("i-6", "oce-p", "running", "ami-x")]
    harness.settle()

    # The verify's inspect still saw it running; by nsenter, its init was gone.
    def gone(pid, host, port):
        raise RuntimeError(f"nsenter: cannot open /proc/{pid}/ns/net: No such file or directory")

    monkeypatch.setattr(netns, "has_metadata_dnat", lambda pid, host, port: False)
    monkeypatch.setattr(netns, "set_metadata_dnat", gone)
    monkeypatch.setattr(bodies_mod, "process_exists", lambda pid: False)
    assert harness.reconcile(verify=True) is False and not harness.errors
    fake_podman.states["oce-body-i-6"] = "exited"  # the next pass sees the guest stopped
    harness.settle()
    assert [i.state for i in cloud.listed] == ["stopped"]
    assert [e[2] for e in harness.events] == ["create", "guest shutdown"]


def test_a_verify_that_cannot_set_the_dnat_in_a_living_namespace_fails(fake_podman, tmp_path, monkeypatch):
    cloud = FakeCloud()
    harness = Bodies(cloud, workdir=str(tmp_path))
    cloud.listed = [Instance("i-4", "oce-l", "running", "ami-x")]
    harness.settle()

    def refused(pid, host, port):
        raise RuntimeError("nft: Operation not permitted")

    monkeypatch.setattr(netns, "has_metadata_dnat", lambda pid, host, port: False)
    monkeypatch.setattr(netns, "set_metadata_dnat", refused)
    monkeypatch.setattr(bodies_mod, "process_exists", lambda pid: True)
    with pytest.raises(AssertionError, match="verify oce-body-i-4 .*Operation not permitted"):
        harness.settle()


def test_a_body_shut_down_from_inside_stops_its_instance(fake_podman, tmp_path):
    cloud = FakeCloud()
    harness = Bodies(cloud, workdir=str(tmp_path))
    cloud.listed = [Instance("i-5", "oce-s", "running", "ami-x")]
    harness.settle()
    fake_podman.states["oce-body-i-5"] = "exited"  # poweroff inside the guest
    harness.settle()
    assert [i.state for i in cloud.listed] == ["stopped"] and harness.body("i-5").state == "stopped"
    assert [e[2] for e in harness.events] == ["create", "guest shutdown"]


def test_prune_keeps_the_newest_golden_images_of_a_cloud(monkeypatch):
    removed = []

    def podman(*args, check=True, timeout=120, input=None):
        if args[0] == "images":
            assert "label=oce.golden.cloud=aws" in args
            out = "a 2026-12-01 10:00:00 +0000 UTC\nc 2026-12-01 12:00:00 +0000 UTC\nb 2026-12-01 11:00:00 +0000 UTC\n"
            return types.SimpleNamespace(returncode=0, stdout=out, stderr="")
        removed.append(args)
        return types.SimpleNamespace(returncode=0, stdout="", stderr="")

    monkeypatch.setattr(rig, "podman", podman)
    golden.prune("aws", keep=2)
    assert removed == [("rmi", "a")]
