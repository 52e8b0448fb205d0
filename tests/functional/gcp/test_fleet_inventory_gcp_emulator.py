"""The fleet inventory plugin's GCP side through ansible-inventory, against the GCE emulator.

VMs in two regions, one stopped, one that is not ours: groups, hostvars (the same as AWS), the
tailnet address from this controller's tailscale status, Constructable groups and the deployment filter.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server
from ansible_collections.ollama_cloud.engine.tests.functional.fleet_helpers import (
    ansible_inventory,
    hosts,
    tailnet_status_command,
)

OURS = {"oce-managed-by": "ollama_cloud-engine"}


def vm(emu, zone, name, machine, labels, model=None, status="RUNNING", accelerator=None):
    metadata = {"oce-model": model}
    emu.add_instance(zone, name, machine, labels, metadata, status=status, accelerator=accelerator)


@pytest.fixture(scope="module")
def fleet(gce_cli, tmp_path_factory):
    emu = gce_cli
    emu.reset()
    emu.add_subnetwork("us-central1", "us-central1-private", network="oce-net", cidr="10.30.0.0/24")
    emu.add_subnetwork("europe-west4", "europe-west4-private", network="oce-net", cidr="10.40.0.0/24")
    alpha = dict(OURS, **{"oce-deployment": "alpha", "oce-environment": "dev"})
    vm(emu, "us-central1-a", "oce-a1", "n1-standard-4", dict(alpha, **{"oce-model": "mistral-7b", "team": "ml"}),
       "mistral:7b", accelerator="nvidia-tesla-t4")  # fmt: skip
    vm(emu, "us-central1-b", "oce-a2", "g2-standard-4", dict(alpha, **{"oce-model": "gemma3-270m"}), "gemma3:270m",
       status="TERMINATED")  # fmt: skip
    beta = dict(OURS, **{"oce-deployment": "beta", "oce-environment": "prod", "oce-model": "codellama-34b-code"})
    vm(emu, "europe-west4-a", "oce-b1", "g2-standard-24", beta, "codellama:34b-code")
    # Someone else's VM with a look-alike deployment label but not our managed-by label.
    vm(emu, "us-central1-a", "other", "n1-standard-4", {"oce-deployment": "alpha"})
    work = tmp_path_factory.mktemp("fleet-gcp")

    def inventory(config, ok=True, env=None):
        path = work / "test.fleet.yml"
        path.write_text("plugin: ollama_cloud.engine.fleet\nclouds: [gcp]\n" + config)
        return ansible_inventory(path, env or emu.cli_env, ok=ok)

    inventory.emu = emu
    return inventory


def test_groups_and_hostvars_across_two_regions(fleet, tmp_path):
    inv = fleet(
        f"projects: [{server.PROJECT}]\n"
        + "tailnet_cli: {}\n".format(json.dumps(tailnet_status_command(tmp_path, {"oce-alpha-oce-a1": "100.64.0.21"})))
        + "keyed_groups:\n  - {key: oce_node.gpu, prefix: gpu}\n"
        + "compose:\n  ollama_models_list: '[oce_node.model]'\n"
        + "groups:\n  costly: oce_node.hourly_cost > 1.5\n"
    )
    assert hosts(inv, "cloud_gcp") == ["oce-a1", "oce-a2", "oce-b1"]  # not "other"
    assert hosts(inv, "region_us_central1") == ["oce-a1", "oce-a2"] and hosts(inv, "region_europe_west4") == ["oce-b1"]
    assert hosts(inv, "model_codellama_34b_code") == ["oce-b1"] and hosts(inv, "model_mistral_7b") == ["oce-a1"]
    assert hosts(inv, "state_running") == ["oce-a1", "oce-b1"] and hosts(inv, "state_stopped") == ["oce-a2"]
    assert hosts(inv, "dev") == ["oce-a1", "oce-a2"] and hosts(inv, "prod") == ["oce-b1"]
    assert hosts(inv, "deployment_alpha") == ["oce-a1", "oce-a2"]
    assert hosts(inv, "gpu_L4") == ["oce-a2", "oce-b1"] and hosts(inv, "gpu_T4") == ["oce-a1"]
    assert hosts(inv, "costly") == ["oce-b1"]

    a1, a2, b1 = (inv["_meta"]["hostvars"][h] for h in ("oce-a1", "oce-a2", "oce-b1"))
    # Over the tailnet only: its address where this controller sees the node; a stopped one's name
    # may be another machine's, so it gets a host no resolver answers.
    assert a1["ansible_host"] == "100.64.0.21" and a1["ollama_url"] == "http://100.64.0.21:11434"
    assert a2["ansible_host"] == "oce-alpha-oce-a2.stopped.invalid"
    assert a2["oce_node"]["private_ip"].startswith("10.30.0.")
    node = a1["oce_node"]
    assert node["project"] == server.PROJECT  # several projects in one inventory can be told apart
    assert (node["cloud"], node["model"], node["instance_type"], node["gpu"], node["hourly_cost"]) == (
        "gcp",
        "mistral:7b",
        "n1-standard-4",
        "T4",
        0.54,
    )
    assert a1["oce_node"]["availability_zone"] == "us-central1-a" and a1["oce_node"]["gpu_memory_gb"] == 16
    assert b1["oce_node"]["gpu_memory_gb"] == 48 and b1["oce_node"]["hourly_cost"] == pytest.approx(0.88 + 2 * 0.56)
    assert a1["ollama_models_list"] == ["mistral:7b"] and "ansible_connection" not in a1
    # Labels: the user's own; ours are the record's deployment, model and environment.
    assert a1["oce_node"]["labels"] == {"team": "ml"} and b1["oce_node"]["labels"] == {}
    assert (b1["oce_node"]["deployment"], b1["oce_node"]["environment"]) == ("beta", "prod")


def test_filtered_by_deployment_and_project_from_the_environment(fleet):
    inv = fleet("deployment: beta\n")  # the project comes from GCP_PROJECT
    assert hosts(inv, "cloud_gcp") == ["oce-b1"] and "cloud_aws" not in inv


def test_the_gcp_modules_environment_variables_in_their_order(fleet):
    # The project from gcloud's variable; the endpoint from OCE_GCE_ENDPOINT, which wins over gcloud's (elsewhere).
    env = {k: v for k, v in fleet.emu.cli_env.items() if k != "GCP_PROJECT"}
    env.update(
        CLOUDSDK_CORE_PROJECT=server.PROJECT,
        CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE=fleet.emu.url + "/elsewhere/compute/v1/",
    )
    inv = fleet("deployment: beta\n", env=env)
    assert hosts(inv, "cloud_gcp") == ["oce-b1"]


def test_a_project_we_may_not_read_fails_with_a_sentence_that_names_it(fleet):
    res = fleet(f"projects: [{server.PROJECT}, someone-else]\n", ok=False)
    said = " ".join(res.stderr.split())
    assert res.returncode != 0 and "gcp someone-else: " in said and "the credentials are not allowed to do this" in said
