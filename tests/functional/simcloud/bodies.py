"""Bodies for the instances a cloud API reports: one systemd container per instance, kept in step.

``Bodies`` polls a cloud adapter (``AwsCloud`` on moto, ``GcpCloud`` on the GCE emulator) and
makes what it reports real: a running instance gets a container booted from its image with its
own user data as the cloud-init seed; a stopped one is stopped (its disk, the container, kept);
a terminated or deleted one is removed. Each (re)start sets the metadata DNAT in the body's
namespace before /sbin/init runs (podman init, then nsenter, then podman start), so even the
earliest boot stage finds the metadata server.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid

from . import netns, rig, seed

LABEL = "oce.simcloud"  # value: the session that made the body
INSTANCE_LABEL = "oce.simcloud.instance"  # value: the cloud's instance id


@dataclasses.dataclass(frozen=True)
class Instance:
    """What the reconciler needs of an instance: state is running, stopped or gone."""

    id: str
    name: str
    state: str
    image: str = ""  # AMI id (AWS) or image name (GCP)
    zone: str = ""


@dataclasses.dataclass
class Body:
    instance: Instance
    container: str
    state: str = "created"  # running, stopped, failed
    ip: str = ""
    pid: int = 0
    started: float = 0.0  # time.monotonic() of the last start
    boots: int = 0


def hostname_of(name):
    """A name podman accepts as a hostname (RFC 1123 label)."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
    return label or "instance"


class Bodies:
    def __init__(
        self,
        cloud,
        image_for=None,
        poll_interval=1.0,
        verify_every=5.0,
        tun=True,
        capabilities=("NET_ADMIN",),
        workdir=None,
    ):
        """``image_for``: a dict or callable from an instance's image (AMI id, GCP image name) to a
        local image; what it does not map boots the stock cloud image."""
        self.cloud = cloud
        self.image_for = image_for
        self.poll_interval = poll_interval
        self.verify_every = verify_every
        self.tun = tun
        self.capabilities = tuple(capabilities)
        self.session = uuid.uuid4().hex[:10]
        self.workdir = workdir or tempfile.mkdtemp(prefix="oce-simcloud-")
        self.bodies = {}  # instance id -> Body
        self.errors = []  # what went wrong in the background, raised by settle()
        self.events = []  # (time.monotonic(), instance id, action)
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = None
        self._last_verify = 0.0

    # ------------------------------------------------------------ lifecycle of the harness

    def start(self):
        self._thread = threading.Thread(target=self._loop, name="simcloud-bodies", daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.poll_interval):
            try:
                self.reconcile()
            except Exception as exc:  # the test sees it at its next settle() or at teardown
                self.errors.append(f"reconcile: {exc!r}")

    def settle(self, timeout=120):
        """Reconcile until nothing is left to do; raise what went wrong meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            acted = self.reconcile(verify=True)
            if self.errors:
                raise AssertionError("simulated cloud: " + "; ".join(self.errors))
            if not acted:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"simulated cloud: bodies still changing after {timeout}s")

    def close(self):
        """Stop polling and remove every body this harness made."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=60)
        with self.lock:
            for body in list(self.bodies.values()):
                self._remove(body)
            self.bodies.clear()
        # Anything of this session left behind (a body whose record was lost to an error).
        listed = rig.podman("ps", "-a", "--filter", f"label={LABEL}={self.session}", "--format", "{{.Names}}")
        for name in listed.stdout.split():
            rig.podman("rm", "-f", "-t", "0", name, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ------------------------------------------------------------ what tests ask

    def body(self, key):
        """The body of an instance, by instance id or name."""
        with self.lock:
            for body in self.bodies.values():
                if key in (body.instance.id, body.instance.name):
                    return body
        raise KeyError(f"no body for instance {key!r}")

    def exec(self, key, *command, timeout=60, check=True, input=None):
        body = self.body(key)
        stdin = ["-i"] if input is not None else []
        result = rig.podman("exec", *stdin, body.container, *command, timeout=timeout, check=False, input=input)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} in {body.container} failed (rc={result.returncode}): "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result

    def wait_cloud_init(self, key, timeout=300):
        """Wait for cloud-init in the body to finish; (status line, seconds since the body started)."""
        body = self.body(key)
        try:
            result = rig.podman("exec", body.container, "cloud-init", "status", "--wait", timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"cloud-init in {body.container} did not finish within {timeout}s") from None
        status = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip()
        return status, time.monotonic() - body.started

    # ------------------------------------------------------------ the reconciler

    def reconcile(self, verify=False):
        """One pass: make the bodies match the cloud. Returns True when it changed something."""
        with self.lock:
            instances = {i.id: i for i in self.cloud.instances()}
            verify = verify or time.monotonic() - self._last_verify >= self.verify_every
            acted = False
            # Removals first: a new instance may take a deleted one's name (and so its container's).
            for iid, body in list(self.bodies.items()):
                if iid not in instances or instances[iid].state == "gone":
                    self._act(body, self._remove, "remove")
                    del self.bodies[iid]
                    acted = True
            for iid, instance in instances.items():
                body = self.bodies.get(iid)
                if instance.state == "gone" or (body and body.state == "failed"):
                    continue
                if instance.state == "running":
                    if body is None:
                        body = self.bodies[iid] = Body(instance, self.cloud.container_name(instance))
                        acted |= self._act(body, self._create, "create")
                    elif body.state != "running":
                        acted |= self._act(body, self._boot, "start")
                    elif verify:
                        acted |= self._act(body, self._verify, "verify")
                elif instance.state == "stopped" and body is not None and body.state == "running":
                    acted |= self._act(body, self._stop_body, "stop")
            if verify:
                self._last_verify = time.monotonic()
            return acted

    def _act(self, body, action, name):
        try:
            done = action(body)
        except Exception as exc:
            body.state = "failed"
            self.errors.append(f"{name} {body.container} ({body.instance.id}): {exc}")
            return True
        if done is False:
            return False
        # An action may name what it did (verify: a guest shutdown, the DNAT set again).
        self.events.append((time.monotonic(), body.instance.id, done if isinstance(done, str) else name))
        return True

    def _image(self, instance):
        mapped = None
        if callable(self.image_for):
            mapped = self.image_for(instance.image)
        elif self.image_for:
            mapped = self.image_for.get(instance.image)
        return mapped or rig.CLOUD_IMAGE

    def _seed(self, body):
        directory = os.path.join(self.workdir, body.container, "seed")
        instance = body.instance
        return seed.write_seed(directory, instance.id, hostname_of(instance.name), self.cloud.user_data(instance))

    def _create(self, body):
        instance = body.instance
        existing = rig.podman(
            "container", "inspect", "--format", f'{{{{index .Config.Labels "{LABEL}"}}}}', body.container, check=False
        )
        if existing.returncode == 0:
            if not existing.stdout.strip():
                raise RuntimeError(f"a container {body.container} exists and is not a body: not touching it")
            rig.podman("rm", "-f", "-t", "0", body.container)  # a body of an earlier, interrupted run
        args = ["create", "--name", body.container, "--hostname", hostname_of(instance.name), "--systemd=always"]
        args += ["--network", rig.NETWORK, "--label", f"{LABEL}={self.session}"]
        args += ["--label", f"{INSTANCE_LABEL}={instance.id}"]
        args += ["-v", f"{self._seed(body)}:/var/lib/cloud/seed/nocloud:ro"]
        for host, ip in sorted(dict({rig.MODELS_HOST: rig.REGISTRY_IP}, **self.cloud.extra_hosts).items()):
            args += ["--add-host", f"{host}:{ip}"]
        for cap in self.capabilities:
            args += ["--cap-add", cap]
        if self.tun:
            args += ["--device", "/dev/net/tun"]
        rig.podman(*args, self._image(instance), "/sbin/init")
        return self._boot(body, seeded=True)

    def _inspect(self, container):
        info = json.loads(rig.podman("container", "inspect", container).stdout)[0]
        network = (info.get("NetworkSettings") or {}).get("Networks", {}).get(rig.NETWORK) or {}
        return info["State"], network.get("IPAddress") or ""

    def _boot(self, body, seeded=False):
        """Start the body with the metadata DNAT in place before its init runs."""
        if not seeded:
            self._seed(body)  # the user data as the cloud holds it now (GCE reads it at every boot)
        self._init_with_dnat(body)
        self.cloud.body_started(body.instance, body.ip)
        rig.podman("start", body.container)
        body.state, body.started, body.boots = "running", time.monotonic(), body.boots + 1

    def _init_with_dnat(self, body, attempts=3):
        """podman init, then the DNAT in the new namespace. A restart can race the cleanup that
        conmon runs after the earlier stop: it may tear down the freshly inited container, and its
        init process (and namespace) vanish under nsenter. Then init again; any other failure stands."""
        host, port = self.cloud.metadata
        for attempt in range(1, attempts + 1):
            rig.podman("init", body.container)
            state, body.ip = self._inspect(body.container)
            body.pid = state["Pid"]
            try:
                netns.set_metadata_dnat(body.pid, host, port)
                return
            except RuntimeError:
                if attempt == attempts or process_exists(body.pid):
                    raise
            time.sleep(1)

    def _verify(self, body):
        """A body shut down from inside stops its instance (as a guest shutdown does on EC2 and GCE);
        a guest that flushed our DNAT gets it again."""
        state, _ip = self._inspect(body.container)
        if state.get("Status") != "running":
            body.state = "stopped"
            self.cloud.body_stopped(body.instance, body.ip)
            self.cloud.guest_shutdown(body.instance)
            return "guest shutdown"
        host, port = self.cloud.metadata
        if netns.has_metadata_dnat(body.pid, host, port):
            return False
        try:
            netns.set_metadata_dnat(body.pid, host, port)
        except RuntimeError:
            # A guest powering off between the inspect and nsenter (CI, this stop): its init and
            # namespace are gone, and the next pass sees the container stopped.
            if process_exists(body.pid):
                raise
            return False
        return "metadata dnat set again"

    def _stop_body(self, body):
        rig.podman("stop", "-t", "30", body.container, timeout=90)
        self.cloud.body_stopped(body.instance, body.ip)
        body.state = "stopped"

    def _remove(self, body):
        rig.podman("rm", "-f", "-t", "0", body.container, check=False, timeout=90)
        self.cloud.body_stopped(body.instance, body.ip)
        shutil.rmtree(os.path.join(self.workdir, body.container), ignore_errors=True)
        body.state = "removed"


def process_exists(pid):
    return bool(pid) and os.path.exists(f"/proc/{pid}")


def _host_port(url):
    parts = urllib.parse.urlsplit(url)
    return parts.hostname, parts.port or 80


class AwsCloud:
    """moto through boto3: instances of every state, user data from DescribeInstanceAttribute."""

    STATES = {
        "pending": "running",
        "running": "running",
        "stopping": "stopped",
        "stopped": "stopped",
        "shutting-down": "gone",
        "terminated": "gone",
    }
    extra_hosts = {}

    def __init__(self, ec2, metadata_url):
        self.ec2 = ec2
        self.metadata = _host_port(metadata_url)  # moto serves IMDS under /latest/ on its own port

    def instances(self):
        found = []
        for page in self.ec2.get_paginator("describe_instances").paginate():
            for reservation in page["Reservations"]:
                for i in reservation["Instances"]:
                    tags = {t["Key"]: t["Value"] for t in i.get("Tags") or []}
                    found.append(
                        Instance(
                            id=i["InstanceId"],
                            name=tags.get("Name") or i["InstanceId"],
                            state=self.STATES.get(i["State"]["Name"], "gone"),
                            image=i.get("ImageId", ""),
                            zone=(i.get("Placement") or {}).get("AvailabilityZone", ""),
                        )
                    )
        return found

    def user_data(self, instance):
        # boto3 base64-encodes UserData on RunInstances; the attribute gives it back encoded.
        attr = self.ec2.describe_instance_attribute(InstanceId=instance.id, Attribute="userData")
        value = (attr.get("UserData") or {}).get("Value")
        return base64.b64decode(value) if value else b""

    @staticmethod
    def container_name(instance):
        return f"oce-body-{instance.id}"

    def body_started(self, instance, ip):
        pass  # moto's IMDS answers every caller alike

    def body_stopped(self, instance, ip):
        pass

    def guest_shutdown(self, instance):
        # InstanceInitiatedShutdownBehavior: stop (the default for EBS-backed instances) or terminate.
        attr = self.ec2.describe_instance_attribute(
            InstanceId=instance.id, Attribute="instanceInitiatedShutdownBehavior"
        )
        if (attr.get("InstanceInitiatedShutdownBehavior") or {}).get("Value") == "terminate":
            self.ec2.terminate_instances(InstanceIds=[instance.id])
        else:
            self.ec2.stop_instances(InstanceIds=[instance.id])


class GcpCloud:
    """The in-process GCE emulator: its instances, boot disks and metadata; binds bodies to instances."""

    RUNNING = ("PROVISIONING", "STAGING", "RUNNING")
    extra_hosts = {"metadata.google.internal": netns.METADATA_IP}

    def __init__(self, emu):
        self.emu = emu
        self.metadata = _host_port(emu.url)  # the metadata server shares the emulator's port

    def instances(self):
        with self.emu.lock:
            found = []
            for (zone, name), i in self.emu.instances.items():
                disk = self.emu.disks.get((f"zones/{zone}", name)) or {}
                state = "running" if i["status"] in self.RUNNING else "stopped"
                image = (disk.get("sourceImage") or "").rsplit("/", 1)[-1]
                found.append(Instance(id=i["id"], name=name, state=state, image=image, zone=zone))
            return found

    def user_data(self, instance):
        with self.emu.lock:
            found = self.emu.instances.get((instance.zone, instance.name)) or {}
            items = (found.get("metadata") or {}).get("items") or []
            return next((i.get("value", "") for i in items if i.get("key") == "user-data"), "").encode()

    @staticmethod
    def container_name(instance):
        return f"oce-body-{hostname_of(instance.name)}"

    def body_started(self, instance, ip):
        self.emu.bind_body(ip, instance.zone, instance.name)

    def body_stopped(self, instance, ip):
        if ip:
            self.emu.unbind_body(ip)

    def guest_shutdown(self, instance):
        with self.emu.lock:  # GCE: a guest OS shutdown leaves the instance TERMINATED
            found = self.emu.instances.get((instance.zone, instance.name))
            if found is not None and found["status"] in self.RUNNING:
                found["status"] = "TERMINATED"
