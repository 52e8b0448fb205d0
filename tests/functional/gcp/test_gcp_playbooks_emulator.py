"""The lifecycle playbooks with cloud=gcp, as a user runs them, against the GCE emulator on loopback.

create (service account + network + node, booting with first-boot user data that names the secret
its service account may read) for egress=nat and for egress=none side by side -> create again
(0 changed) -> stop -> start -> status -> destroy both; --check creates nothing; bad input (a
missing Tailscale secret too) fails with its sentence before anything exists; destroy leaves what
is not ours alone, in the network and in the IAM policies. The emulator holds every request and
response to the compute.v1, iam.v1, cloudresourcemanager.v1 and secretmanager.v1 discovery
documents.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess

import pytest
import yaml

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server
from ansible_collections.ollama_cloud.engine.tests.functional.gcp import permissions
from ansible_collections.ollama_cloud.engine.tests.functional.tailnet_stand_in import online_peer_cli

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
UBUNTU = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"
MARK = re.compile(r"oce-deployment=t-[a-z]+ oce-managed-by=ollama_cloud\.engine")


def recap(out):
    """(changed, failed) summed over the PLAY RECAP lines."""
    changed = sum(int(n) for n in re.findall(r"\bchanged=(\d+)", out))
    failed = sum(int(n) for n in re.findall(r"\bfailed=(\d+)", out))
    return changed, failed


def flat(out):
    return " ".join(out.split())


def table_row(out, node):
    return next((line for line in out.splitlines() if re.match(r"^[\s'-]*%s\s+gcp\s" % node, line)), "")


def start(emu, playbook, deployment, *extra, env=None):
    cmd = ["ansible-playbook", "-i", "inventories/gcp", "playbooks/%s.yml" % playbook]
    cmd += ["-e", "deployment=" + deployment, "-e", "model=gemma3:270m", "-e", "node_gcp_image=" + UBUNTU]
    cmd += ["-e", "node_ssh_key_file=" + emu.ssh_key]
    return subprocess.Popen(
        cmd + list(extra),
        cwd=REPO_ROOT,
        env=dict(emu.cli_env, **(env or {})),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run(emu, *runs, ok=True):
    """Run (playbook, deployment, *extra) tuples in parallel; return their outputs in order."""
    procs = [start(emu, *r) for r in runs]
    outs = []
    for proc in procs:
        out = proc.communicate(timeout=300)[0]
        if ok:
            assert proc.returncode == 0, out[-5000:]
        outs.append(out)
    return outs if len(outs) > 1 else outs[0]


def ours(emu):
    """Everything in the emulator that carries a test deployment's marker or labels, by kind."""
    with emu.lock:
        found = {
            "networks": [n for n, v in emu.networks.items() if MARK.search(v.get("description", ""))],
            "subnetworks": [n for (_r, n), v in emu.subnetworks.items() if MARK.search(v.get("description", ""))],
            "routers": [n for (_r, n), v in emu.routers.items() if MARK.search(v.get("description", ""))],
            "firewalls": [n for n, v in emu.firewalls.items() if MARK.search(v.get("description", ""))],
            "service_accounts": [
                a["email"].split("@")[0] for a in emu.service_accounts.values() if MARK.search(a.get("description", ""))
            ],
            "grants": sorted(
                f"{b['role']} {m.removeprefix('serviceAccount:').split('@')[0]}"
                for policy in [emu.project_policy, *emu.secret_policies.values()]
                for b in policy.get("bindings") or []
                for m in b["members"]
                if re.search(r"oce-t-[a-z]+-node@", m)
            ),
            "instances": [
                n
                for (_z, n), v in emu.instances.items()
                if v["labels"].get("oce-managed-by") == "ollama_cloud-engine"
                and v["labels"].get("oce-deployment", "").startswith("t-")
            ],
        }
    return {kind: sorted(names) for kind, names in found.items() if names}


@pytest.fixture(scope="module")
def emu(gce_cli):
    gce_cli.reset()
    # The users' Tailscale secrets (gcloud secrets create oce-<deployment>-tailscale); t-bad has none.
    for deployment in ("t-check", "t-nat", "t-air"):
        gce_cli.add_secret(f"oce-{deployment}-tailscale", members=["user:ops@example.com"])
    yield gce_cli
    # The role docs/permissions gives users allows every call these playbooks made.
    permissions.assert_allowed(gce_cli.served)


def test_check_mode_creates_nothing(emu):
    emu.log.clear()
    out = run(emu, ("create", "t-check", "--check"))
    assert "Check mode: would create the network oce-t-check in us-central1 (nat egress)" in flat(out), out[-3000:]
    assert "create router oce-t-check-router with Cloud NAT oce-t-check-nat" in flat(out)
    # The cost preview comes first, from the dated table, and says it is an estimate.
    preview = flat(out).index(
        "oce-t-check (gemma3:270m) on GCP, estimated: n1-standard-4 + 1 x nvidia-tesla-t4 0.54 USD/h"
    )
    assert preview < flat(out).index("TASK [ollama_cloud.engine.node : Find the deployment's instances")
    assert "This is an estimate from on-demand us-central1 prices of 2025 in the collection's price table" in flat(out)
    email = f"oce-t-check-node@{server.SA_DOMAIN}"
    assert f"Check mode: would create service account {email}; grant roles/logging.logWriter" in flat(out)
    assert ours(emu) == {} and emu.changing_calls() == []


def test_lifecycle_nat_and_no_egress_then_destroy_leaves_only_others(emu):
    # Not ours: a rule in someone else's network, and a VM with our deployment label but not our managed-by.
    emu.firewalls["allow-office"] = {
        "kind": "compute#firewall",
        "id": "1",
        "name": "allow-office",
        "network": emu.networks["oce-net"]["selfLink"],
        "direction": "INGRESS",
        "priority": 1000,
        "allowed": [{"IPProtocol": "tcp", "ports": ["443"]}],
        "sourceRanges": ["192.0.2.0/24"],
        "selfLink": emu.link(f"projects/{server.PROJECT}/global/firewalls/allow-office"),
    }
    body = {
        "name": "lookalike",
        "machineType": "zones/us-central1-c/machineTypes/n1-standard-4",
        "labels": {"oce-deployment": "t-nat"},
        "networkInterfaces": [{"subnetwork": "regions/us-central1/subnetworks/oce-private"}],
    }
    emu.do_instances_insert(project=server.PROJECT, zone="us-central1-c", query={}, body=body)

    nat, air = run(
        emu,
        ("create", "t-nat", "-e", "oce_environment=staging"),
        (
            "create",
            "t-air",
            "-e",
            "node_gcp_egress=none",
            "-e",
            "node_gcp_subnet_cidr=10.65.0.0/20",
            # egress=none: every source the node downloads from inside the network or Google's.
            "-e",
            "ollama_models_registry_mirror=10.65.0.10:5000",
            "-e",
            "node_tailnet_login_server=https://headscale.corp.internal",
            "-e",
            "node_tailscale_download_url=https://storage.googleapis.com/oce-mirror/tailscale_1.96.5_amd64.tgz",
        ),
    )
    assert recap(nat) == (3, 0) and "running" in table_row(nat, "oce-t-nat") and "0.540" in table_row(nat, "oce-t-nat")
    assert "+ Cloud NAT 0.0014 USD/h = 0.545 USD/h, about 398 USD/month" in flat(nat)
    assert "(no NAT: egress=none) = 0.544 USD/h" in flat(air)
    grants = [
        f"{role} oce-t-{d}-node"
        for d in ("air", "nat")
        for role in ("roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/secretmanager.secretAccessor")
    ]
    assert ours(emu) == {
        "service_accounts": ["oce-t-air-node", "oce-t-nat-node"],
        "grants": sorted(grants),
        "networks": ["oce-t-air", "oce-t-nat"],
        "subnetworks": ["oce-t-air-private", "oce-t-nat-private"],
        "routers": ["oce-t-nat-router"],
        "firewalls": ["oce-t-air-deny-ingress", "oce-t-nat-deny-ingress"],
        "instances": ["oce-t-air", "oce-t-nat"],
    }
    # The nodes: private, in their subnetworks, with nothing admitted from anywhere.
    vm = emu.instances[("us-central1-a", "oce-t-air")]
    assert "accessConfigs" not in vm["networkInterfaces"][0] and vm["tags"]["items"] == ["oce-t-air-node"]
    assert vm["networkInterfaces"][0]["subnetwork"].endswith("/subnetworks/oce-t-air-private")
    # It boots with user data that names the secret its service account may read, and holds no key.
    user_data = {i["key"]: i["value"] for i in vm["metadata"]["items"]}["user-data"]
    assert user_data.startswith("#cloud-config\n") and "tskey" not in user_data
    assert f"projects/{server.PROJECT}/secrets/oce-t-air-tailscale" in user_data
    # The Ops Agent's configuration names no deployment: first boot leaves it alone.
    (node_json,) = [f["content"] for f in yaml.safe_load(user_data)["write_files"] if f["path"] == "/etc/oce/node.json"]
    assert json.loads(node_json)["logs"] is None
    # It runs as its own service account, which may read only its own secret.
    assert vm["serviceAccounts"] == [
        {"email": f"oce-t-air-node@{server.SA_DOMAIN}", "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
    ]
    secret = emu.secret_policies[f"projects/{server.PROJECT}/secrets/oce-t-air-tailscale"]
    assert emu.members(secret, "roles/secretmanager.secretAccessor") == [
        f"serviceAccount:oce-t-air-node@{server.SA_DOMAIN}",
        "user:ops@example.com",
    ]
    assert "user:ops@example.com" in emu.members(
        emu.secret_policies[f"projects/{server.PROJECT}/secrets/oce-t-nat-tailscale"],
        "roles/secretmanager.secretAccessor",
    )

    # Also when the run names no model or environment (the inventory names none): the node keeps its own.
    again = run(emu, ("create", "t-nat", "-e", "model="))
    assert recap(again) == (0, 0), again[-3000:]
    (vm,) = [
        v for v in emu.instances.values() if v["labels"].get("oce-deployment") == "t-nat" and v["name"] != "lookalike"
    ]
    assert (vm["labels"]["oce-model"], vm["labels"]["oce-environment"]) == ("gemma3-270m", "staging")

    stopped = run(emu, ("stop", "t-nat"))
    assert recap(stopped) == (1, 0) and "stopped" in table_row(stopped, "oce-t-nat")
    started = run(emu, ("start", "t-nat"))
    assert recap(started) == (1, 0) and "running" in table_row(started, "oce-t-nat")
    status = run(emu, ("status", "t-nat"))
    assert recap(status) == (0, 0) and "1 running node(s): 0.540 USD/h" in flat(status)

    policy_before = copy.deepcopy(emu.project_policy)
    gone = run(emu, ("destroy", "t-nat"), ("destroy", "t-air", "-e", "node_gcp_egress=none"))
    assert all(recap(out) == (3, 0) for out in gone), gone[0][-3000:]
    assert ours(emu) == {}
    # Everyone else's bindings and the users' secrets (and others' access to them) stay.
    others = [b for b in policy_before["bindings"] if not any("oce-t-" in m for m in b["members"])]
    assert all(b in emu.project_policy["bindings"] for b in others)
    assert f"serviceAccount:other-app@{server.SA_DOMAIN}" in emu.members(emu.project_policy, "roles/logging.logWriter")
    for d in ("t-nat", "t-air"):
        policy = emu.secret_policies[f"projects/{server.PROJECT}/secrets/oce-{d}-tailscale"]
        assert emu.members(policy, "roles/secretmanager.secretAccessor") == ["user:ops@example.com"]
    assert "allow-office" in emu.firewalls and ("us-central1-c", "lookalike") in emu.instances
    assert "oce-net" in emu.networks and ("us-central1", "oce-private") in emu.subnetworks
    again = run(emu, ("destroy", "t-nat"))
    assert recap(again) == (0, 0)


BAD_INPUTS = {
    "unknown model": (["-e", "model=codellama:99b"], {}, "model 'codellama:99b' is not in the catalog"),
    "unknown zone": (
        ["-e", '{"node_gcp_zones": ["us-central1-z"]}'],
        {},
        "zone 'us-central1-z' does not exist in Compute Engine",
    ),
    "zones outside the region": (
        ["-e", '{"node_gcp_zones": ["europe-west4-a"]}'],
        {},
        "node_gcp_zones europe-west4-a are not in node_gcp_region us-central1",
    ),
    "machine type not an option": (
        ["-e", '{"node_gcp_machine_types": ["n1-standard-96"]}'],
        {},
        "machine type n1-standard-96 is not a gcp option",
    ),
    "model too large": (
        [
            "-e",
            "model=llama3.3:70b",
            "-e",
            '{"node_gcp_catalog": {"models": {"llama3.3:70b": {"gcp": '
            '[{"machine_type": "n1-standard-8", "accelerator": "nvidia-tesla-t4"}]}}}}',
        ],
        {},
        "model llama3.3:70b needs 64 GB of GPU memory but n1-standard-8 has 16 GB (1 x nvidia-tesla-t4 16 GB)",
    ),
    "no golden image of the name": (
        ["-e", "node_gcp_image=golden", "-e", "node_image_name=ollama-node-ubuntu2204"],
        {},
        "no golden image in family ollama-node-ubuntu2204 of project oce-test: build one (packer/)",
    ),
    "missing credentials": ([], {"GCP_AUTH_KIND": "application"}, "no Application Default Credentials found"),
    "tailnet name taken": (
        ["-e", json.dumps(online_peer_cli("oce-t-bad"))],
        {},
        "oce-t-bad is online on the tailnet already (100.64.0.9), and deployment t-bad has no node of that name",
    ),
    "bad egress": (["-e", "node_gcp_egress=maybe"], {}, "node_gcp_egress"),
    "own key secret with the managed identity": (
        ["-e", "node_gcp_key_secret=team-tailscale-key"],
        {},
        "node_gcp_key_secret team-tailscale-key names a secret that the service account this collection manages "
        "for the node may not read: it may read oce-t-bad-tailscale only",
    ),
    "no Tailscale secret": (
        [],
        {},
        "secret oce-t-bad-tailscale does not exist in project oce-test: the node reads its Tailscale auth key from "
        "it. Create it with a reusable auth key first: `gcloud secrets create oce-t-bad-tailscale --project oce-test "
        "--data-file=-`",
    ),
}


def test_bad_input_fails_clearly_and_creates_nothing(emu):
    emu.log.clear()
    procs = {case: start(emu, "create", "t-bad", *extra, env=env) for case, (extra, env, _m) in BAD_INPUTS.items()}
    for case, proc in procs.items():
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode != 0 and BAD_INPUTS[case][2] in flat(out), (case, out[-3000:])
    assert ours(emu) == {} and emu.changing_calls() == []


def test_a_first_create_that_fails_part_way_removes_what_it_made(emu):
    """The network and the service account exist when the insert fails: the run removes them again."""
    emu.add_secret("oce-t-half-tailscale", members=["user:ops@example.com"])
    emu.no_quota.update({"nvidia-tesla-t4", "nvidia-l4"})  # every option of gemma3:270m
    try:
        out = run(emu, ("create", "t-half"), ok=False)
    finally:
        emu.no_quota.clear()  # the emulator serves this file's later tests too
    text = flat(out)
    assert "Creating deployment t-half failed at Create or reuse the node:" in text, out[-3000:]
    assert "Quota 'NVIDIA_T4_GPUS' exceeded" in text
    assert "did not exist before this run, so everything this run created was removed again" in text
    assert "TASK [ollama_cloud.engine.node : Delete the firewall rules, router, subnetwork and network]" in out
    assert not any("t-half" in str(v) for v in ours(emu).values()), ours(emu)


def test_start_of_a_missing_node_says_what_to_do(emu):
    out = run(emu, ("start", "t-bad"), ok=False)
    assert "There is no GCP node oce-t-bad in deployment t-bad" in flat(
        out
    ) and "run playbooks/create.yml first" in flat(out)


def test_own_service_account_skips_ours_and_gets_the_cloud_platform_scope(emu):
    own = f"oce-node@{server.SA_DOMAIN}"  # made elsewhere; t-own has no Tailscale secret of ours
    # Without naming the secret that account may read, nothing is created.
    refused = run(emu, ("create", "t-own", "-e", "node_gcp_service_account_email=" + own), ok=False)
    assert "with your own service account, name it in node_gcp_key_secret" in flat(refused)
    assert ours(emu) == {}
    secret = f"projects/{server.PROJECT}/secrets/team-tailscale"
    named = ("create", "t-own", "-e", "node_gcp_service_account_email=" + own, "-e", "node_gcp_key_secret=" + secret)
    # A secret named but not stored yet: nothing is created either.
    emu.log.clear()
    missing = run(emu, named, ok=False)
    assert f"the node's tailnet key {secret} has no enabled version" in flat(missing), missing[-3000:]
    assert ours(emu) == {} and emu.changing_calls() == []
    emu.add_secret("team-tailscale")
    emu.add_secret_version("team-tailscale", "tskey-auth-team")
    out = run(emu, named)
    assert recap(out) == (2, 0), out[-3000:]
    vm = emu.instances[("us-central1-a", "oce-t-own")]
    assert vm["serviceAccounts"] == [{"email": own, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}]
    assert secret in {i["key"]: i["value"] for i in vm["metadata"]["items"]}["user-data"]
    assert "service_accounts" not in ours(emu) and "grants" not in ours(emu)
    gone = run(emu, ("destroy", "t-own", "-e", "node_gcp_manage_identity=false"))
    assert recap(gone) == (2, 0) and ours(emu) == {} and own in emu.service_accounts
