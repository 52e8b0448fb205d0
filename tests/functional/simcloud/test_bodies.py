"""The simulated cloud proves itself: instances made through the cloud APIs get bodies that boot
with cloud-init, read their identity at the real metadata address, follow stop/start/terminate,
and join the tailnet with a real TUN device so that the controller reaches them over SSH.

Needs the rig (rig/setup, including the cloudimage step) and root; skips with the reason otherwise.
Every wait is bounded; the fixtures remove every body and tailnet node they made.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import boto3
import pytest
import yaml

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server as gce_server
from ansible_collections.ollama_cloud.engine.tests.functional.simcloud import rig, tailnet

ZIPPED = "written by cloud-init from gz+b64\n"


def cloud_config(config):
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)


def common_config(pubkey, script):
    """users, write_files (plain and gz+b64), bootcmd (every boot) and runcmd (once per instance)."""
    return {
        "users": [
            "default",
            {"name": "oce", "shell": "/bin/bash", "sudo": "ALL=(ALL) NOPASSWD:ALL", "ssh_authorized_keys": [pubkey]},
        ],
        "bootcmd": ["echo boot >> /var/lib/oce-boots"],
        "write_files": [
            {"path": "/etc/oce/plain.txt", "content": "written by cloud-init\n"},
            {
                "path": "/etc/oce/zipped.txt",
                "encoding": "gz+b64",
                "content": base64.b64encode(gzip.compress(ZIPPED.encode())).decode(),
            },
            {"path": "/usr/local/bin/oce-first-boot", "permissions": "0755", "content": script},
        ],
        "runcmd": ["echo run >> /var/lib/oce-runs", "/usr/local/bin/oce-first-boot"],
    }


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory):
    path = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return str(path), (path.parent / "id_ed25519.pub").read_text().strip()


def check_first_boot(bodies, key, hostname, record_property):
    status, seconds = bodies.wait_cloud_init(key, timeout=300)
    record_property("cloud_init_seconds", round(seconds, 1))
    print(f"\n[simcloud] {hostname}: body start to cloud-init done in {seconds:.1f}s")
    assert status == "status: done", status
    enabled = bodies.exec(
        key, "systemctl", "is-enabled", "cloud-init-local", "cloud-init", "cloud-config", "cloud-final"
    )
    assert enabled.stdout.split() == ["enabled"] * 4
    assert bodies.exec(key, "hostname").stdout.strip() == hostname
    assert bodies.exec(key, "cat", "/etc/oce/plain.txt").stdout == "written by cloud-init\n"
    assert bodies.exec(key, "cat", "/etc/oce/zipped.txt").stdout == ZIPPED
    assert bodies.exec(key, "id", "-un", "oce").stdout.strip() == "oce"
    # sshd runs with host keys cloud-init made at this first boot (the image has none).
    assert bodies.exec(key, "systemctl", "is-active", "ssh").stdout.strip() == "active"
    assert bodies.exec(key, "sh", "-c", "ls /etc/ssh/ssh_host_*_key | wc -l").stdout.strip() != "0"


def check_second_boot(bodies, key):
    status, _seconds = bodies.wait_cloud_init(key, timeout=180)
    assert status == "status: done", status
    # bootcmd ran at both boots; runcmd (per instance) only at the first: same instance-id.
    assert bodies.exec(key, "cat", "/var/lib/oce-boots").stdout.split() == ["boot", "boot"]
    assert bodies.exec(key, "cat", "/var/lib/oce-runs").stdout.split() == ["run"]


def container_state(name):
    result = rig.podman("container", "inspect", "--format", "{{.State.Status}}", name, check=False)
    return result.stdout.strip() if result.returncode == 0 else "absent"


# ---------------------------------------------------------------- AWS on moto

AWS_SCRIPT = """#!/bin/sh
# IMDSv2 at the real address, then the role's credentials sign a Secrets Manager call (SigV4).
set -eu
imds=http://169.254.169.254
token=$(curl -fsS -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' $imds/latest/api/token)
role=$(curl -fsS -H "X-aws-ec2-metadata-token: $token" $imds/latest/meta-data/iam/security-credentials/)
curl -fsS -H "X-aws-ec2-metadata-token: $token" $imds/latest/meta-data/iam/security-credentials/$role \\
  >/run/oce-creds.json
field() { python3 -c "import json,sys; print(json.load(open('/run/oce-creds.json'))['$1'])"; }
curl -fsS --aws-sigv4 aws:amz:us-east-1:secretsmanager --user "$(field AccessKeyId):$(field SecretAccessKey)" \\
  -H "x-amz-security-token: $(field Token)" -H 'Content-Type: application/x-amz-json-1.1' \\
  -H 'X-Amz-Target: secretsmanager.GetSecretValue' -d '{"SecretId": "@SECRET@"}' @ENDPOINT@/ >/run/oce-secret.json
"""


def test_aws_instance_gets_a_body_that_follows_its_lifecycle(simcloud_aws, ssh_key, record_property):
    cloud = simcloud_aws
    secrets = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=cloud.url)
    secrets.create_secret(Name="oce-t/tailscale", SecretString="tskey-auth-sim")
    script = AWS_SCRIPT.replace("@SECRET@", "oce-t/tailscale").replace("@ENDPOINT@", cloud.url)
    user_data = cloud_config(common_config(ssh_key[1], script))
    reservation = cloud.ec2.run_instances(
        ImageId=cloud.ami,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        SubnetId=cloud.subnet,
        UserData=user_data,
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "oce-t-aws1"}]}],
    )
    iid = reservation["Instances"][0]["InstanceId"]
    cloud.bodies.settle()
    body = cloud.bodies.body(iid)
    assert body.container == f"oce-body-{iid}" and container_state(body.container) == "running"

    check_first_boot(cloud.bodies, iid, "oce-t-aws1", record_property)
    # moto's IMDS through the DNAT: token by PUT with Host 169.254.169.254, role credentials, secret.
    creds = json.loads(cloud.bodies.exec(iid, "cat", "/run/oce-creds.json").stdout)
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(creds)
    secret = json.loads(cloud.bodies.exec(iid, "cat", "/run/oce-secret.json").stdout)
    assert secret["SecretString"] == "tskey-auth-sim"

    cloud.ec2.stop_instances(InstanceIds=[iid])
    cloud.bodies.settle()
    assert container_state(body.container) == "exited"

    cloud.ec2.start_instances(InstanceIds=[iid])
    cloud.bodies.settle()
    assert container_state(body.container) == "running" and body.boots == 2
    check_second_boot(cloud.bodies, iid)
    # The DNAT came back with the new namespace.
    token = cloud.bodies.exec(
        iid, "curl", "-fsS", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
        "http://169.254.169.254/latest/api/token",
    )  # fmt: skip
    assert token.stdout.strip()

    # A shutdown inside the guest stops the instance (InstanceInitiatedShutdownBehavior=stop).
    cloud.bodies.exec(iid, "systemctl", "poweroff", check=False)
    rig.wait_for(lambda: container_state(body.container) == "exited", 60, "the body to power off")
    cloud.bodies.settle()
    state = cloud.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state in ("stopping", "stopped") and body.state == "stopped"

    cloud.ec2.terminate_instances(InstanceIds=[iid])
    cloud.bodies.settle()
    assert container_state(body.container) == "absent"
    with pytest.raises(KeyError):
        cloud.bodies.body(iid)


# ---------------------------------------------------------------- GCP on the emulator

GCP_SCRIPT = """#!/bin/sh
# The metadata server at its real name; the account's token reads (or is refused) the secret.
set -eu
md=http://metadata.google.internal/computeMetadata/v1
curl -sS -o /dev/null -w '%{http_code}' $md/instance/name >/run/oce-md-without-header
curl -fsS -H 'Metadata-Flavor: Google' $md/instance/service-accounts/default/email >/run/oce-md-email
token=$(curl -fsS -H 'Metadata-Flavor: Google' $md/instance/service-accounts/default/token |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sS -o /run/oce-secret.json -w '%{http_code}' -H "Authorization: Bearer $token" \\
  @SECRETMANAGER@/v1/projects/@PROJECT@/secrets/oce-t-tailscale/versions/latest:access >/run/oce-secret.code
"""
NODE_SA = f"oce-node@{gce_server.SA_DOMAIN}"
OTHER_SA = f"other-app@{gce_server.SA_DOMAIN}"
ZONE = "us-central1-a"


def gce_call(emu, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        emu.endpoint + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())


def gce_wait(emu, op):
    for _poll in range(20):
        op = gce_call(emu, "GET", f"projects/{gce_server.PROJECT}/zones/{ZONE}/operations/{op['name']}")
        if op["status"] == "DONE":
            assert "error" not in op, op
            return op
    raise AssertionError(f"operation {op['name']} did not finish")


def insert_instance(emu, name, account, user_data):
    body = {
        "name": name,
        "machineType": f"zones/{ZONE}/machineTypes/n1-standard-4",
        "disks": [
            {
                "boot": True,
                "autoDelete": True,
                "initializeParams": {"sourceImage": "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"},
            }
        ],
        "networkInterfaces": [{"subnetwork": "regions/us-central1/subnetworks/oce-private"}],
        "metadata": {"items": [{"key": "user-data", "value": user_data}]},
        "serviceAccounts": [{"email": account, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}],
    }
    gce_wait(emu, gce_call(emu, "POST", f"projects/{gce_server.PROJECT}/zones/{ZONE}/instances", body))


def instance_status(emu, name):
    return gce_call(emu, "GET", f"projects/{gce_server.PROJECT}/zones/{ZONE}/instances/{name}")["status"]


def test_gcp_instances_get_bodies_with_their_own_identity(simcloud_gcp, ssh_key, record_property):
    emu, bodies = simcloud_gcp.emu, simcloud_gcp.bodies
    emu.add_secret("oce-t-tailscale", members=[f"serviceAccount:{NODE_SA}"])
    emu.add_secret_version("oce-t-tailscale", "tskey-auth-gcp")
    script = GCP_SCRIPT.replace("@SECRETMANAGER@", emu.url + "/secretmanager").replace("@PROJECT@", gce_server.PROJECT)
    user_data = cloud_config(common_config(ssh_key[1], script))
    insert_instance(emu, "oce-t-gcp1", NODE_SA, user_data)
    insert_instance(emu, "oce-t-gcp2", OTHER_SA, user_data)
    bodies.settle()

    check_first_boot(bodies, "oce-t-gcp1", "oce-t-gcp1", record_property)
    assert bodies.wait_cloud_init("oce-t-gcp2")[0] == "status: done"
    for name, account in (("oce-t-gcp1", NODE_SA), ("oce-t-gcp2", OTHER_SA)):
        assert bodies.exec(name, "cat", "/run/oce-md-without-header").stdout == "403"
        assert bodies.exec(name, "cat", "/run/oce-md-email").stdout == account
    # Allowed for the account the secret's policy names, refused (google.rpc form) for another.
    assert bodies.exec("oce-t-gcp1", "cat", "/run/oce-secret.code").stdout == "200"
    answer = json.loads(bodies.exec("oce-t-gcp1", "cat", "/run/oce-secret.json").stdout)
    assert base64.b64decode(answer["payload"]["data"]) == b"tskey-auth-gcp"
    assert bodies.exec("oce-t-gcp2", "cat", "/run/oce-secret.code").stdout == "403"
    refused = json.loads(bodies.exec("oce-t-gcp2", "cat", "/run/oce-secret.json").stdout)
    assert refused["error"]["status"] == "PERMISSION_DENIED"

    # Stop (the body stops with it), start (a new address, bound again), delete (the body goes).
    path = f"projects/{gce_server.PROJECT}/zones/{ZONE}/instances/oce-t-gcp1"
    gce_wait(emu, gce_call(emu, "POST", path + "/stop"))
    bodies.settle()
    body = bodies.body("oce-t-gcp1")
    assert container_state(body.container) == "exited"
    assert body.ip not in emu.bodies
    for _poll in range(5):
        if instance_status(emu, "oce-t-gcp1") == "TERMINATED":
            break
    gce_wait(emu, gce_call(emu, "POST", path + "/start"))
    bodies.settle()
    assert container_state(body.container) == "running" and emu.bodies[body.ip] == (ZONE, "oce-t-gcp1")
    check_second_boot(bodies, "oce-t-gcp1")
    name = bodies.exec(
        "oce-t-gcp1", "curl", "-fsS", "-H", "Metadata-Flavor: Google",
        "http://metadata.google.internal/computeMetadata/v1/instance/name",
    )  # fmt: skip
    assert name.stdout == "oce-t-gcp1"

    for instance in ("oce-t-gcp1", "oce-t-gcp2"):
        gce_wait(emu, gce_call(emu, "DELETE", f"projects/{gce_server.PROJECT}/zones/{ZONE}/instances/{instance}"))
    bodies.settle()
    assert container_state(body.container) == "absent" and emu.bodies == {}


# ---------------------------------------------------------------- the tailnet

TAILNET_SCRIPT = """#!/bin/sh
# Tailscale from the artifact mirror over HTTP (sha256 checked), its systemd unit, then up with a
# tagged key over a real TUN device. The key comes in a file the test writes (not user data). No
# --advertise-tags: Headscale 0.29.3 refuses it on any pre-auth key registration; the key's tags
# are the node's (test_headscale_takes_tags_from_the_key_not_from_advertise_tags).
set -eu
cd /tmp
curl -fsS -o tailscale.tgz @URL@
echo '@SHA256@  tailscale.tgz' | sha256sum -c -
tar -xzf tailscale.tgz
install -m 0755 tailscale_*/tailscaled /usr/sbin/tailscaled
install -m 0755 tailscale_*/tailscale /usr/bin/tailscale
install -m 0644 tailscale_*/systemd/tailscaled.service /etc/systemd/system/tailscaled.service
printf 'PORT="41641"\\nFLAGS="--no-logs-no-support"\\n' >/etc/default/tailscaled
systemctl daemon-reload
systemctl enable --now tailscaled
for _ in $(seq 1 50); do [ -S /run/tailscale/tailscaled.sock ] && break; sleep 0.2; done
for _ in $(seq 1 100); do [ -s /run/oce-tailscale-key ] && break; sleep 0.2; done
tailscale up --login-server=@LOGIN@ --auth-key=file:/run/oce-tailscale-key --hostname=@NAME@ --timeout=60s
"""


def ssh(controller, key, ip, *command):
    return subprocess.run(
        [
            "ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=20",
            "-o", f"ProxyCommand={controller.proxy_command}", f"oce@{ip}", *command,
        ],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_body_joins_the_tailnet_with_tun_and_the_controller_sshes_to_it(
    simcloud_aws, headscale, controller_tailnet, ssh_key
):
    cloud, name = simcloud_aws, f"oce-t-tun-{int(time.time()) % 100000}"
    headscale.delete_nodes(prefix="oce-t-tun-")  # nodes of earlier, interrupted runs
    script = (
        TAILNET_SCRIPT.replace("@URL@", rig.TAILSCALE_URL)
        .replace("@SHA256@", rig.checksum(f"tailscale/tailscale_{rig.TAILSCALE_VERSION}_amd64.tgz").split(":")[1])
        .replace("@LOGIN@", rig.HEADSCALE_URL)
        .replace("@NAME@", name)
    )
    reservation = cloud.ec2.run_instances(
        ImageId=cloud.ami,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        SubnetId=cloud.subnet,
        UserData=cloud_config(common_config(ssh_key[1], script)),
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}],
    )
    iid = reservation["Instances"][0]["InstanceId"]
    try:
        cloud.bodies.settle()
        key = headscale.preauth_key(tags=["tag:ollama"])
        cloud.bodies.exec(iid, "sh", "-c", "umask 077 && cat >/run/oce-tailscale-key.tmp && mv "
                          "/run/oce-tailscale-key.tmp /run/oce-tailscale-key", input=key)  # fmt: skip
        status, _seconds = cloud.bodies.wait_cloud_init(iid, timeout=300)
        log = cloud.bodies.exec(iid, "tail", "-n", "30", "/var/log/cloud-init-output.log", check=False).stdout
        assert status == "status: done", log

        # A real tailscale0 in the body's own namespace (TUN), nothing on this machine.
        assert "tailscale0" in cloud.bodies.exec(iid, "ip", "-o", "link", "show", "tailscale0").stdout
        host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
        assert "tailscale0" not in host_links
        node_ip = cloud.bodies.exec(iid, "tailscale", "ip", "-4").stdout.strip()
        found = headscale.nodes_named(name)
        assert len(found) == 1 and found[0]["tags"] == ["tag:ollama"], found

        assert controller_tailnet.ping(node_ip), controller_tailnet.log_tail()
        result = ssh(controller_tailnet, ssh_key[0], node_ip, "hostname")
        assert result.returncode == 0 and result.stdout.strip() == name, result.stderr
    finally:
        cloud.ec2.terminate_instances(InstanceIds=[iid])
        cloud.bodies.settle()
        headscale.delete_nodes(names=[name])


def test_the_mirror_serves_the_tailscale_tarball_over_http(simcloud_rig):
    try:
        with urllib.request.urlopen(rig.TAILSCALE_URL, timeout=10) as r:
            head = r.read(2)
    except urllib.error.URLError as e:
        pytest.fail(f"{rig.TAILSCALE_URL} does not answer ({e}): run rig/setup registry")
    assert head == b"\x1f\x8b"  # gzip


def test_headscale_takes_tags_from_the_key_not_from_advertise_tags(headscale):
    """Headscale 0.29.3 (hscontrol/state/state.go): a registration with a pre-auth key and
    --advertise-tags is refused whatever the policy ("PreAuthKey nodes get their tags from the key
    itself"); the same tagged key without the flag gives a tagged node. Pins what node code may do."""
    name = f"oce-t-tags-{os.getpid()}"
    probe = tailnet.ControllerTailscale(hostname=name)
    key = headscale.preauth_key(tags=["tag:ollama"])
    try:
        with pytest.raises(RuntimeError, match=r"requested tags \[tag:ollama\] are invalid or not permitted"):
            probe.start(key, extra_up_args=["--advertise-tags=tag:ollama"], timeout=30)
        probe.cli("up", "--reset", f"--login-server={rig.HEADSCALE_URL}", f"--auth-key={key}", f"--hostname={name}")
        found = headscale.nodes_named(name)
        assert [(n["user"]["name"], n["tags"]) for n in found] == [("tagged-devices", ["tag:ollama"])]
    finally:
        probe.stop()


def test_a_golden_image_boots_as_a_body_with_a_new_identity(simcloud_aws, golden_image, record_property):
    """An instance of the golden AMI boots the image packer/image.yml made: cloud-init runs again,
    the node gets its own machine id and host keys, Ollama and the host firewall start, tailscaled
    runs logged out; the metadata DNAT still works behind the node's firewall."""
    cloud = simcloud_aws
    ami = cloud.ec2.register_image(Name="oce-golden-test", RootDeviceName="/dev/sda1")["ImageId"]
    cloud.bodies.image_for = {ami: golden_image}
    reservation = cloud.ec2.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=cloud.subnet,
        UserData=cloud_config({"runcmd": ["echo run >> /var/lib/oce-runs"]}),
    )  # fmt: skip
    iid = reservation["Instances"][0]["InstanceId"]
    cloud.bodies.settle()
    status, seconds = cloud.bodies.wait_cloud_init(iid, timeout=300)
    record_property("golden_cloud_init_seconds", round(seconds, 1))
    print(f"\n[simcloud] golden body: start to cloud-init done in {seconds:.1f}s")
    assert status == "status: done", status
    assert rig.podman("container", "inspect", "--format", "{{.ImageName}}", f"oce-body-{iid}").stdout.strip() == (
        golden_image
    )
    machine_id = cloud.bodies.exec(iid, "cat", "/etc/machine-id").stdout.strip()
    assert len(machine_id) == 32
    assert cloud.bodies.exec(iid, "sh", "-c", "ls /etc/ssh/ssh_host_*_key | wc -l").stdout.strip() != "0"
    for unit in ("ollama", "tailscaled", "oce-firewall"):
        assert cloud.bodies.exec(iid, "systemctl", "is-active", unit, check=False).stdout.strip() == "active", unit
    state = json.loads(cloud.bodies.exec(iid, "tailscale", "status", "--json", check=False).stdout)
    assert state["BackendState"] in ("NeedsLogin", "Stopped"), state["BackendState"]
    token = cloud.bodies.exec(
        iid, "curl", "-fsS", "-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60",
        "http://169.254.169.254/latest/api/token",
    )  # fmt: skip
    assert token.stdout.strip()
