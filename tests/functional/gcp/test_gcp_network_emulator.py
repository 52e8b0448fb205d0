"""gcp_network in-process against the GCE emulator: create, rerun, drift, egress/IAP switches, absent.

The emulator checks every request and response against the compute.v1 discovery document.
"""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.module_utils import gcp
from ansible_collections.ollama_cloud.engine.plugins.modules import gcp_gpu_instance, gcp_network
from ansible_collections.ollama_cloud.engine.tests.emulators.gce import server

UBUNTU = "projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"
MARK = "oce-deployment=n1 oce-managed-by=ollama_cloud.engine"


def run(capsys, module=gcp_network, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def net_args(**extra):
    args = {"deployment": "n1", "region": "us-central1", "auth_kind": "anonymous", "wait_timeout": 30}
    args.update(extra)
    return args


def test_present_rerun_switches_and_absent(gce, capsys):
    created = run(capsys, **net_args())
    assert created["changed"] is True and not created.get("failed"), created
    assert created["actions"] == [
        "create network oce-n1",
        "create subnetwork oce-n1-private (10.64.0.0/20)",
        "create router oce-n1-router with Cloud NAT oce-n1-nat",
        "create firewall rule oce-n1-deny-ingress",
    ]
    assert created["network"]["subnetwork"] == "projects/oce-test/regions/us-central1/subnetworks/oce-n1-private"
    assert created["network"]["node_tag"] == "oce-n1-node" and created["network"]["nat"] == "oce-n1-nat"

    net = gce.networks["oce-n1"]
    assert net["autoCreateSubnetworks"] is False and MARK in net["description"]
    sub = gce.subnetworks[("us-central1", "oce-n1-private")]
    assert sub["privateIpGoogleAccess"] is True and sub["ipCidrRange"] == "10.64.0.0/20" and MARK in sub["description"]
    (nat,) = gce.routers[("us-central1", "oce-n1-router")]["nats"]
    assert nat["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetworks"][0]["name"] == sub["selfLink"]
    # No ingress at all: one deny-all rule, nothing allowed.
    assert sorted(gce.firewalls) == ["oce-n1-deny-ingress"]
    deny = gce.firewalls["oce-n1-deny-ingress"]
    assert deny["denied"] == [{"IPProtocol": "all"}] and deny["sourceRanges"] == ["0.0.0.0/0"]
    assert deny["direction"] == "INGRESS" and deny["priority"] == 65534

    again = run(capsys, **net_args())
    assert again["changed"] is False and again["actions"] == []

    # Drift we own is corrected; IAP SSH is added on request and only for the node tag.
    gce.subnetworks[("us-central1", "oce-n1-private")]["privateIpGoogleAccess"] = False
    gce.routers[("us-central1", "oce-n1-router")]["nats"][0]["natIpAllocateOption"] = "MANUAL_ONLY"
    fixed = run(capsys, **net_args(iap_ssh=True))
    assert fixed["actions"] == [
        "turn on Private Google Access of oce-n1-private",
        "correct Cloud NAT oce-n1-nat of router oce-n1-router",
        "create firewall rule oce-n1-iap-ssh",
    ]
    iap = gce.firewalls["oce-n1-iap-ssh"]
    assert iap["sourceRanges"] == ["35.235.240.0/20"] and iap["targetTags"] == ["oce-n1-node"]
    assert iap["allowed"] == [{"IPProtocol": "tcp", "ports": ["22"]}]

    # egress=none and no IAP: the router and the IAP rule go, the rest stays.
    closed = run(capsys, **net_args(egress="none"))
    assert closed["actions"] == ["delete router oce-n1-router (egress=none)", "delete firewall rule oce-n1-iap-ssh"]
    assert gce.routers == {} and sorted(gce.firewalls) == ["oce-n1-deny-ingress"]

    # A node in the subnetwork blocks absent with a sentence; after the node, absent removes all of ours.
    node = run(
        capsys,
        module=gcp_gpu_instance,
        name="oce-n1",
        deployment="n1",
        model="gemma3:270m",
        auth_kind="anonymous",
        zones=["us-central1-a"],
        subnetwork="oce-n1-private",
        image=UBUNTU,
        network_tags=["oce-n1-node"],
        wait_timeout=30,
    )
    assert node["node"]["private_ip"].startswith("10.64.0."), node
    blocked = run(capsys, **net_args(state="absent"))
    assert blocked["failed"] is True and "delete the deployment's nodes first" in blocked["msg"], blocked
    assert "instances/oce-n1" in blocked["msg"] and blocked["changed"] is True
    assert blocked["actions"] == ["delete firewall rule oce-n1-deny-ingress", "delete subnetwork oce-n1-private"]
    run(capsys, module=gcp_gpu_instance, name="oce-n1", deployment="n1", auth_kind="anonymous", state="absent")
    gone = run(capsys, **net_args(state="absent"))
    assert gone["changed"] is True and gone["network"] == {}
    assert gone["actions"] == ["delete subnetwork oce-n1-private", "delete network oce-n1"]
    assert "oce-n1" not in gce.networks and gce.firewalls == {}
    assert run(capsys, **net_args(state="absent"))["changed"] is False
    # Someone else's network and subnetworks are untouched.
    assert "oce-net" in gce.networks and ("us-central1", "oce-private") in gce.subnetworks


def test_check_mode_lists_actions_and_creates_nothing(gce, capsys):
    res = run(capsys, _ansible_check_mode=True, **net_args(iap_ssh=True, egress="none"))
    assert res["changed"] is True and len(res["actions"]) == 4, res
    assert res["actions"][-1] == "create firewall rule oce-n1-iap-ssh"
    assert gce.changing_calls() == [] and "oce-n1" not in gce.networks


def test_names_taken_by_others_are_left_alone(gce, capsys):
    # A network named like ours but without our marker: present fails, absent leaves it.
    gce.add_network("oce-n1")
    res = run(capsys, **net_args())
    assert (
        res["failed"] is True and "network oce-n1 exists in project oce-test but is not deployment n1's" in res["msg"]
    )
    assert run(capsys, **net_args(state="absent"))["changed"] is False
    assert "oce-n1" in gce.networks and gce.changing_calls() == []


BAD_INPUTS = {
    "unknown region": ({"region": "us-nowhere1"}, "region 'us-nowhere1' does not exist in Compute Engine"),
    "bad cidr": ({"subnet_cidr": "10.64.0.0/33"}, "subnet_cidr '10.64.0.0/33' is not an IPv4 range"),
    "public cidr": ({"subnet_cidr": "8.8.8.0/24"}, "must be a private IPv4 range"),
    "bad deployment": ({"deployment": "Demo"}, "deployment 'Demo' is not valid"),
    "other project": ({"project": "someone-else"}, "the credentials are not allowed to do this"),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=str)
def test_bad_input_fails_clearly_and_creates_nothing(gce, capsys, case):
    extra, message = BAD_INPUTS[case]
    res = run(capsys, **net_args(**extra))
    assert res.get("failed") is True and message in res["msg"], res["msg"]
    assert res["changed"] is False and gce.changing_calls() == []


# ---------------------------------------------------------------- faults on the network calls

NETWORK_INSERTS = ("compute.networks.insert", "compute.subnetworks.insert", "compute.routers.insert")


def test_throttling_and_server_errors_on_the_inserts_are_retried(gce, capsys):
    gce.fail("compute.networks.insert", 429, "rateLimitExceeded", times=2)
    gce.fail("compute.subnetworks.insert", 503, "backendError")
    gce.fail("compute.routers.insert", 429, "rateLimitExceeded")
    gce.fail("compute.routers.insert", 503, "backendError")
    res = run(capsys, **net_args())
    assert res["changed"] is True and not res.get("failed"), res
    assert len(res["actions"]) == 4 and res["network"]["nat"] == "oce-n1-nat"
    assert [(r[0], r[1]) for r in res["retries"]] == [
        ("POST projects/oce-test/global/networks", "rateLimitExceeded"),
        ("POST projects/oce-test/global/networks", "rateLimitExceeded"),
        ("POST projects/oce-test/regions/us-central1/subnetworks", "backendError"),
        ("POST projects/oce-test/regions/us-central1/routers", "rateLimitExceeded"),
        ("POST projects/oce-test/regions/us-central1/routers", "backendError"),
    ]
    assert [len(gce.calls(m)) for m in NETWORK_INSERTS] == [3, 2, 3]
    # One of each, as if no fault had happened; the rerun finds nothing to do.
    assert "oce-n1" in gce.networks and ("us-central1", "oce-n1-private") in gce.subnetworks
    assert list(gce.routers) == [("us-central1", "oce-n1-router")]
    assert run(capsys, **net_args())["actions"] == []


def test_an_insert_that_stays_unavailable_fails_with_a_sentence_and_names_what_was_made(gce, capsys):
    gce.fail("compute.routers.insert", 503, "backendError", times=gcp.RETRY_ATTEMPTS)
    res = run(capsys, **net_args())
    assert res["failed"] is True and res["changed"] is True, res
    assert res["msg"].startswith(
        "create router oce-n1-router with Cloud NAT oce-n1-nat failed: Compute Engine had an internal error"
    )
    assert (
        "(done before the failure: create network oce-n1; create subnetwork oce-n1-private (10.64.0.0/20); "
        "run again to finish the network, or state=absent (playbooks/destroy.yml) to remove what was made)"
        in (res["msg"])
    )
    assert len(res["retries"]) == gcp.RETRY_ATTEMPTS - 1
    assert len(gce.calls("compute.routers.insert")) == gcp.RETRY_ATTEMPTS
    _left_is_what_the_message_names(gce, capsys, res, {"network", "subnetwork"})


def test_a_network_insert_whose_answer_was_lost_is_not_repeated(gce, capsys):
    # The API made the network but the answer was a 503: the retry must get the first operation
    # back (same requestId), not a 409 for a network that is in fact ours.
    real = gce.do_networks_insert

    def lose_first_answer(**kwargs):
        op = real(**kwargs)
        if len(gce.calls("compute.networks.insert")) == 1:
            gce.operations[op["name"]][2]()  # the API goes on and finishes it
            raise server.GceError(503, "backendError", "emulated lost answer")
        return op

    gce.do_networks_insert = lose_first_answer
    try:
        res = run(capsys, **net_args())
    finally:
        del gce.do_networks_insert
    assert res["changed"] is True and not res.get("failed"), res["msg"]
    assert [r[1] for r in res["retries"]] == ["backendError"] and len(res["actions"]) == 4


@pytest.mark.parametrize(
    "method, error, failed_action, done_before",
    [
        (
            "compute.networks.insert",
            (403, "QUOTA_EXCEEDED", "Quota 'NETWORKS' exceeded. Limit: 15.0 globally."),
            "create network oce-n1 failed: the project's quota is used up",
            [],
        ),
        (
            "compute.subnetworks.insert",
            (400, "IP_SPACE_EXHAUSTED", "The subnetwork range overlaps a peered network."),
            "create subnetwork oce-n1-private (10.64.0.0/20) failed",
            ["create network oce-n1"],
        ),
        (
            "compute.routers.insert",
            (403, "QUOTA_EXCEEDED", "Quota 'ROUTERS' exceeded. Limit: 10.0 in region us-central1."),
            "create router oce-n1-router with Cloud NAT oce-n1-nat failed: the project's quota is used up",
            ["create network oce-n1", "create subnetwork oce-n1-private (10.64.0.0/20)"],
        ),
    ],
    ids=["network", "subnetwork", "router"],
)
def test_an_operation_that_ends_in_error_surfaces_its_message(gce, capsys, method, error, failed_action, done_before):
    gce.op_errors[method] = error
    res = run(capsys, **net_args())
    status, code, message = error
    assert res["failed"] is True and res["msg"].startswith(failed_action), res
    assert f"(GCP said {code}: {message})" in res["msg"]
    # An error in an operation is the API's final answer: not retried, and nothing after it is tried.
    assert res["retries"] == [] and len(gce.calls(method)) == 1
    assert res["actions"] == [*done_before, failed_action.split(" failed")[0]]
    if done_before:
        assert (
            res["changed"] is True
            and (
                f"(done before the failure: {'; '.join(done_before)}; run again to finish the network, "
                "or state=absent (playbooks/destroy.yml) to remove what was made)"
            )
            in res["msg"]
        )
    else:
        assert res["changed"] is False and "done before" not in res["msg"]
    _left_is_what_the_message_names(gce, capsys, res, {a.split()[1] for a in done_before})


def _left_is_what_the_message_names(gce, capsys, res, kinds):
    """What the failed run left is exactly what its message says was done, all of it ours; a rerun
    finishes the network from there and absent removes every piece (someone else's stays)."""
    left = {
        "network": gce.networks.get("oce-n1"),
        "subnetwork": gce.subnetworks.get(("us-central1", "oce-n1-private")),
        "router": gce.routers.get(("us-central1", "oce-n1-router")),
    }
    assert {kind for kind, found in left.items() if found} == kinds and gce.firewalls == {}, (left, res["msg"])
    assert all(MARK in left[kind]["description"] for kind in kinds)
    again = run(capsys, **net_args())
    assert again["changed"] is True and not again.get("failed"), again
    assert (
        len(again["actions"]) == 4 - len(kinds) and again["actions"][-1] == "create firewall rule oce-n1-deny-ingress"
    )
    gone = run(capsys, **net_args(state="absent"))
    assert not gone.get("failed") and "oce-n1" not in gce.networks and gce.routers == {} and gce.firewalls == {}
    assert ("us-central1", "oce-n1-private") not in gce.subnetworks
    assert ("us-central1", "oce-private") in gce.subnetworks and "oce-net" in gce.networks
