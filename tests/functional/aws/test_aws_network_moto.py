"""aws_network in-process against a moto server on loopback: the deployment's private VPC.

Create with egress=nat and egress=none, a second run changes nothing, check mode acts on nothing,
the diff, drift corrected, a resource of our name that is not ours refused untouched, egress
switched both ways, absent leaving other deployments' and untagged resources alone, a failure
part-way told with what was done, and bad input failing before any call.
"""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_network
from ansible_collections.ollama_cloud.engine.tests.functional.aws.fault_proxy import FaultProxy
from ansible_collections.ollama_cloud.engine.tests.module_runner import run_module

ZONES = ["us-east-1a", "us-east-1b"]


def run(capsys, **args):
    return run_module(aws_network, capsys, **args)


def net_args(**extra):
    args = {"deployment": "t1", "environment": "dev", "zones": ZONES, "tags": {"team": "ml"}, "wait_timeout": 30}
    args.update(extra)
    return args


def ours(ec2, deployment="t1"):
    """What moto holds with deployment's tags, by kind (live ones only)."""
    filters = [
        {"Name": "tag:oce-deployment", "Values": [deployment]},
        {"Name": "tag:oce-managed-by", "Values": ["ollama_cloud.engine"]},
    ]

    def mine(items):
        return [
            i for i in items if {"Key": "oce-deployment", "Value": deployment} in i.get("Tags", [])
        ]  # moto ignores tag filters of some kinds

    found = {
        "vpcs": ec2.describe_vpcs(Filters=filters)["Vpcs"],
        "subnets": ec2.describe_subnets(Filters=filters)["Subnets"],
        "route_tables": ec2.describe_route_tables(Filters=filters)["RouteTables"],
        "igws": ec2.describe_internet_gateways(Filters=filters)["InternetGateways"],
        "nats": [n for n in mine(ec2.describe_nat_gateways()["NatGateways"]) if n["State"] == "available"],
        "groups": ec2.describe_security_groups(Filters=filters)["SecurityGroups"],
        "endpoints": [
            e for e in mine(ec2.describe_vpc_endpoints()["VpcEndpoints"]) if e["State"].lower() == "available"
        ],
        "addresses": ec2.describe_addresses(Filters=filters)["Addresses"],
    }
    return {kind: items for kind, items in found.items() if items}


def tags(resource):
    return aws.tag_dict(resource.get("Tags"))


def test_nat_network_created_complete_then_unchanged(moto, capsys):
    made = run(capsys, **net_args())
    assert made["changed"] is True and not made.get("failed"), made
    net = made["network"]
    found = ours(moto.ec2)
    assert sorted(found) == ["addresses", "groups", "igws", "nats", "route_tables", "subnets", "vpcs"]
    (vpc,) = found["vpcs"]
    assert net["vpc_id"] == vpc["VpcId"] and vpc["CidrBlock"] == "10.64.0.0/16"
    assert tags(vpc) == {
        "Name": "oce-t1",
        "oce-deployment": "t1",
        "oce-managed-by": "ollama_cloud.engine",
        "oce-environment": "dev",
        "team": "ml",
    }
    for attribute in ("enableDnsSupport", "enableDnsHostnames"):
        answer = moto.ec2.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attribute)
        assert answer[attribute[0].upper() + attribute[1:]]["Value"] is True

    # Private subnets in zone order, public one in the first zone; no public IPs on launch.
    subnets = {s["SubnetId"]: s for s in found["subnets"]}
    assert len(subnets) == 3 and len(net["private_subnet_ids"]) == 2
    private = [subnets[i] for i in net["private_subnet_ids"]]
    assert [(s["CidrBlock"], s["AvailabilityZone"]) for s in private] == list(
        zip(["10.64.1.0/24", "10.64.2.0/24"], ZONES)
    )
    assert [tags(s)["Name"] for s in private] == ["oce-t1-private-us-east-1a", "oce-t1-private-us-east-1b"]
    assert all(tags(s)["oce-tier"] == "private" and not s["MapPublicIpOnLaunch"] for s in private)
    public = subnets[net["public_subnet_id"]]
    assert (public["CidrBlock"], public["AvailabilityZone"], tags(public)["oce-tier"]) == (
        "10.64.0.0/24",
        "us-east-1a",
        "public",
    )

    # Internet gateway attached; public table 0/0 -> igw; NAT in the public subnet; private 0/0 -> NAT.
    (igw,) = found["igws"]
    assert igw["InternetGatewayId"] == net["internet_gateway_id"]
    assert igw["Attachments"][0]["VpcId"] == vpc["VpcId"]
    (nat,) = found["nats"]
    assert nat["NatGatewayId"] == net["nat_gateway_id"] and nat["SubnetId"] == public["SubnetId"]
    (address,) = found["addresses"]
    assert address["AllocationId"] == net["nat_allocation_id"] and tags(address)["Name"] == "oce-t1-nat"
    tables = {tags(t)["Name"]: t for t in found["route_tables"]}
    assert sorted(tables) == ["oce-t1-private", "oce-t1-public"]
    assert tables["oce-t1-public"]["RouteTableId"] == net["public_route_table_id"]
    assert tables["oce-t1-private"]["RouteTableId"] == net["private_route_table_id"]

    def default_route(table):
        return [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]

    assert default_route(tables["oce-t1-public"])[0]["GatewayId"] == igw["InternetGatewayId"]
    assert default_route(tables["oce-t1-private"])[0]["NatGatewayId"] == nat["NatGatewayId"]
    associated = {a["SubnetId"] for a in tables["oce-t1-private"]["Associations"] if a.get("SubnetId")}
    assert associated == set(net["private_subnet_ids"])
    assert [a["SubnetId"] for a in tables["oce-t1-public"]["Associations"]] == [public["SubnetId"]]

    # The node's group: no ingress at all, the default egress.
    (group,) = found["groups"]
    assert group["GroupId"] == net["security_group_id"] and group["GroupName"] == "oce-t1-node"
    assert group["IpPermissions"] == [] and group["IpPermissionsEgress"]
    assert net["endpoints"] == {} and net["endpoint_security_group_id"] == ""

    again = run(capsys, **net_args())
    assert again["changed"] is False and again["actions"] == [], again["actions"]
    assert again["network"] == net


def test_no_egress_network_has_endpoints_and_no_path_out(moto, capsys):
    made = run(capsys, **net_args(egress="none"))
    assert made["changed"] is True and not made.get("failed"), made
    net = made["network"]
    found = ours(moto.ec2)
    assert "igws" not in found and "nats" not in found and "addresses" not in found
    assert len(found["subnets"]) == 2 and net["public_subnet_id"] == "" and net["nat_gateway_id"] == ""
    endpoints = {e["ServiceName"].rsplit(".", 1)[-1]: e for e in found["endpoints"]}
    assert sorted(endpoints) == ["logs", "monitoring", "s3", "secretsmanager"]
    assert net["endpoints"] == {k: e["VpcEndpointId"] for k, e in endpoints.items()}
    assert endpoints["s3"]["VpcEndpointType"] == "Gateway"
    assert endpoints["s3"]["RouteTableIds"] == [net["private_route_table_id"]]
    for service in ("logs", "monitoring", "secretsmanager"):
        endpoint = endpoints[service]
        assert endpoint["VpcEndpointType"] == "Interface" and tags(endpoint)["Name"] == f"oce-t1-{service}"
        assert sorted(endpoint["SubnetIds"]) == sorted(net["private_subnet_ids"])
        assert [g["GroupId"] for g in endpoint["Groups"]] == [net["endpoint_security_group_id"]]
    groups = {g["GroupName"]: g for g in found["groups"]}
    assert groups["oce-t1-node"]["IpPermissions"] == []
    (rule,) = groups["oce-t1-endpoints"]["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)
    assert [r["CidrIp"] for r in rule["IpRanges"]] == ["10.64.0.0/16"]
    (table,) = found["route_tables"]
    assert not [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]

    again = run(capsys, **net_args(egress="none"))
    assert again["changed"] is False and again["actions"] == [], again["actions"]


def test_a_service_with_a_dot_in_its_name_keeps_its_endpoint(moto, capsys):
    """ecr.api: the service is all that follows the region, not the name's last word."""
    args = net_args(egress="none", interface_endpoints=["logs", "ecr.api"])
    made = run(capsys, **args)
    assert made["changed"] is True and not made.get("failed"), made
    assert sorted(made["network"]["endpoints"]) == ["ecr.api", "logs", "s3"]
    again = run(capsys, **args)
    assert again["changed"] is False and again["actions"] == [], again["actions"]
    services = sorted(e["ServiceName"] for e in ours(moto.ec2)["endpoints"])
    assert services == ["com.amazonaws.us-east-1.ecr.api", "com.amazonaws.us-east-1.logs", "com.amazonaws.us-east-1.s3"]


def test_check_mode_on_nothing_plans_and_creates_nothing(moto, capsys):
    planned = run(capsys, check_mode=True, diff=True, **net_args())
    assert planned["changed"] is True and not planned.get("failed"), planned
    assert planned["network"]["vpc_id"] == "" and planned["network"]["private_subnet_ids"] == []
    assert planned["actions"][0] == "create VPC oce-t1 (10.64.0.0/16)"
    assert "create NAT gateway oce-t1 in subnet oce-t1-public" in planned["actions"]
    assert "create security group oce-t1-node" in planned["actions"]
    assert planned["diff"]["before"] == {}
    assert planned["diff"]["after"]["nat_gateways"] == ["oce-t1"]
    assert ours(moto.ec2) == {}
    # The fixture's VPC is all there is besides the default one.
    assert len(moto.ec2.describe_vpcs()["Vpcs"]) == 2


def test_check_mode_on_an_existing_network_acts_on_nothing(moto, capsys):
    run(capsys, **net_args())
    before = ours(moto.ec2)
    unchanged = run(capsys, check_mode=True, **net_args())
    assert unchanged["changed"] is False and unchanged["actions"] == []
    assert unchanged["network"]["vpc_id"] == before["vpcs"][0]["VpcId"]
    # Drift and a switch of egress are planned, not done.
    vpc_id = before["vpcs"][0]["VpcId"]
    moto.ec2.delete_tags(Resources=[vpc_id], Tags=[{"Key": "team"}])
    planned = run(capsys, check_mode=True, diff=True, **net_args(egress="none"))
    assert planned["changed"] is True
    assert f"tag oce-t1 ({vpc_id})" in planned["actions"]
    assert any(a.startswith("delete NAT gateway oce-t1") for a in planned["actions"])
    assert "create gateway endpoint oce-t1-s3 (com.amazonaws.us-east-1.s3)" in planned["actions"]
    assert planned["diff"]["before"]["nat_gateways"] == ["oce-t1"] and planned["diff"]["after"]["nat_gateways"] == []
    assert planned["diff"]["after"]["endpoints"] == [
        "oce-t1-logs",
        "oce-t1-monitoring",
        "oce-t1-s3",
        "oce-t1-secretsmanager",
    ]
    after = ours(moto.ec2)
    assert "endpoints" not in after and len(after["nats"]) == 1
    assert "team" not in tags(moto.ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0])


def test_diff_and_drift_are_corrected(moto, capsys):
    net = run(capsys, **net_args())["network"]
    # Someone admits SSH to the node, maps public IPs in a private subnet, drops the NAT route and a tag.
    moto.ec2.authorize_security_group_ingress(
        GroupId=net["security_group_id"], IpProtocol="tcp", FromPort=22, ToPort=22, CidrIp="0.0.0.0/0"
    )
    moto.ec2.modify_subnet_attribute(SubnetId=net["private_subnet_ids"][0], MapPublicIpOnLaunch={"Value": True})
    moto.ec2.delete_route(RouteTableId=net["private_route_table_id"], DestinationCidrBlock="0.0.0.0/0")
    moto.ec2.delete_tags(Resources=[net["private_subnet_ids"][1]], Tags=[{"Key": "oce-tier"}])
    fixed = run(capsys, diff=True, **net_args(tags={"team": "ml", "cost": "gpu"}))
    assert fixed["changed"] is True and not fixed.get("failed"), fixed
    actions = "; ".join(fixed["actions"])
    assert "revoke 1 ingress rule(s) of security group oce-t1-node" in actions
    assert "turn off public IPs on launch in subnet oce-t1-private-us-east-1a" in actions
    assert "route 0.0.0.0/0 of route table oce-t1-private to " + net["nat_gateway_id"] in actions
    assert fixed["diff"]["before"] == fixed["diff"]["after"]  # the same resources, corrected in place
    (group,) = moto.ec2.describe_security_groups(GroupIds=[net["security_group_id"]])["SecurityGroups"]
    assert group["IpPermissions"] == []
    subnets = moto.ec2.describe_subnets(SubnetIds=net["private_subnet_ids"])["Subnets"]
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    assert all(tags(s)["oce-tier"] == "private" and tags(s)["cost"] == "gpu" for s in subnets)
    (table,) = moto.ec2.describe_route_tables(RouteTableIds=[net["private_route_table_id"]])["RouteTables"]
    assert [r.get("NatGatewayId") for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == [
        net["nat_gateway_id"]
    ]
    assert run(capsys, **net_args(tags={"team": "ml", "cost": "gpu"}))["changed"] is False


def test_egress_switch_converges_both_ways(moto, capsys):
    nat = run(capsys, **net_args())["network"]
    air = run(capsys, **net_args(egress="none"))
    assert air["changed"] is True and not air.get("failed"), air
    found = ours(moto.ec2)
    assert "nats" not in found and "igws" not in found and "addresses" not in found
    assert len(found["subnets"]) == 2 and len(found["endpoints"]) == 4
    assert (
        air["network"]["vpc_id"] == nat["vpc_id"] and air["network"]["private_subnet_ids"] == nat["private_subnet_ids"]
    )
    assert sorted(tags(t)["Name"] for t in found["route_tables"]) == ["oce-t1-private"]
    assert run(capsys, **net_args(egress="none"))["changed"] is False

    back = run(capsys, **net_args())
    assert back["changed"] is True and not back.get("failed"), back
    found = ours(moto.ec2)
    assert "endpoints" not in found and sorted(g["GroupName"] for g in found["groups"]) == ["oce-t1-node"]
    assert len(found["nats"]) == 1 and len(found["igws"]) == 1 and len(found["subnets"]) == 3
    assert run(capsys, **net_args())["changed"] is False


def test_a_vpc_of_our_name_that_is_not_ours_is_refused_untouched(moto, capsys):
    theirs = moto.ec2.create_vpc(
        CidrBlock="10.64.0.0/16",
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "oce-t1"}]}],
    )["Vpc"]["VpcId"]
    refused = run(capsys, **net_args())
    assert refused["failed"] is True and refused["changed"] is False
    assert f"VPC oce-t1 ({theirs}) exists in region us-east-1 without the tags of deployment t1" in refused["msg"]
    assert "will not change or delete it" in refused["msg"]
    assert ours(moto.ec2) == {}
    assert tags(moto.ec2.describe_vpcs(VpcIds=[theirs])["Vpcs"][0]) == {"Name": "oce-t1"}
    # absent deletes by our tags only: their VPC stays.
    assert run(capsys, **net_args(state="absent"))["changed"] is False
    assert moto.ec2.describe_vpcs(VpcIds=[theirs])["Vpcs"]


def test_a_group_of_our_name_in_our_vpc_is_refused_before_acting(moto, capsys):
    net = run(capsys, **net_args())["network"]
    theirs = moto.ec2.create_security_group(GroupName="oce-t1-endpoints", Description="not ours", VpcId=net["vpc_id"])
    refused = run(capsys, **net_args(egress="none"))
    assert refused["failed"] is True and refused["changed"] is False, refused
    assert f"security group oce-t1-endpoints ({theirs['GroupId']}) exists" in refused["msg"]
    found = ours(moto.ec2)
    assert len(found["nats"]) == 1 and "endpoints" not in found  # nothing acted on
    moto.ec2.delete_security_group(GroupId=theirs["GroupId"])


def test_absent_removes_only_the_deployments_own(moto, capsys):
    run(capsys, **net_args())
    other = run(
        capsys,
        **net_args(
            deployment="t2",
            egress="none",
            vpc_cidr="10.65.0.0/16",
            private_subnet_cidrs=["10.65.1.0/24", "10.65.2.0/24"],
        ),
    )
    assert not other.get("failed"), other
    before_t2 = ours(moto.ec2, "t2")
    gone = run(capsys, diff=True, **net_args(state="absent"))
    assert gone["changed"] is True and not gone.get("failed"), gone
    assert gone["network"] == {} and gone["diff"]["after"] == {}
    assert gone["diff"]["before"]["nat_gateways"] == ["oce-t1"]
    assert any(a.startswith("release elastic IP") for a in gone["actions"])
    assert ours(moto.ec2) == {}
    assert {k: len(v) for k, v in ours(moto.ec2, "t2").items()} == {k: len(v) for k, v in before_t2.items()}
    # The fixture's untagged VPC and its subnets are left alone.
    assert moto.ec2.describe_vpcs(VpcIds=[moto.vpc])["Vpcs"]
    assert len(moto.ec2.describe_subnets(SubnetIds=moto.subnets)["Subnets"]) == 2
    again = run(capsys, **net_args(state="absent"))
    assert again["changed"] is False and again["actions"] == []
    assert run(capsys, check_mode=True, **net_args(deployment="t2", state="absent"))["changed"] is True
    assert len(ours(moto.ec2, "t2")["vpcs"]) == 1
    run(capsys, **net_args(deployment="t2", state="absent"))
    assert ours(moto.ec2, "t2") == {}


def test_a_failure_part_way_says_what_was_done(moto, capsys, monkeypatch):
    proxy = FaultProxy(
        moto.url,
        {"CreateNatGateway": (400, "NatGatewayLimitExceeded", "The maximum number of NAT gateways has been reached.")},
    )
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        failed = run(capsys, **net_args())
    finally:
        proxy.close()
    assert failed["failed"] is True and failed["changed"] is True
    assert "create nat gateway failed" in failed["msg"] and "NatGatewayLimitExceeded" in failed["msg"]
    assert "done before the failure: create VPC oce-t1 (10.64.0.0/16)" in failed["msg"]
    assert "state=absent (playbooks/destroy.yml) to remove what was made" in failed["msg"]
    assert failed["actions"][-1] == "create NAT gateway oce-t1 in subnet oce-t1-public"
    # What was made carries our tags, so absent removes it (the address allocated for the NAT too).
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    assert len(ours(moto.ec2)["addresses"]) == 1
    gone = run(capsys, **net_args(state="absent"))
    assert not gone.get("failed"), gone
    assert ours(moto.ec2) == {}


BAD = {
    "bad CIDR": ({"vpc_cidr": "10.64.0.0/33"}, "vpc_cidr '10.64.0.0/33' is not an IPv4 network in CIDR form"),
    "subnet outside the VPC": (
        {"private_subnet_cidrs": ["10.99.1.0/24", "10.64.2.0/24"]},
        "private_subnet_cidrs 10.99.1.0/24 is not inside vpc_cidr 10.64.0.0/16",
    ),
    "overlapping subnets": (
        {"private_subnet_cidrs": ["10.64.0.0/23", "10.64.2.0/24"]},
        "private_subnet_cidrs 10.64.0.0/23 overlaps public_subnet_cidr 10.64.0.0/24",
    ),
    "too small a VPC": ({"vpc_cidr": "10.64.0.0/29"}, "vpc_cidr 10.64.0.0/29 is a /29: AWS takes /16 to /28"),
    "IPv6": ({"vpc_cidr": "fd00::/56"}, "vpc_cidr fd00::/56 must be an IPv4 range"),
    "a zone short": ({"zones": ["us-east-1a"]}, "zones lists 1 zone(s) for 2 private_subnet_cidrs"),
    "no zones": ({"zones": []}, "zones lists 0 zone(s) for 2 private_subnet_cidrs"),
    "zones elsewhere": (
        {"zones": ["eu-west-1a", "eu-west-1b"]},
        "zones eu-west-1a, eu-west-1b are not in region us-east-1",
    ),
    "our tag in tags": ({"tags": {"oce-deployment": "x"}}, "tags may not set oce-deployment"),
    "bad deployment": ({"deployment": "T_1"}, "deployment 'T_1' is not valid"),
    "bad endpoint": ({"egress": "none", "interface_endpoints": ["logs", "s3 bucket"]}, "are not service names"),
    "no wait": ({"wait_timeout": 0}, "wait_timeout must be at least 1 second"),
}


@pytest.mark.parametrize("case", BAD, ids=str)
def test_bad_input_fails_before_any_call(moto, capsys, monkeypatch, case):
    extra, message = BAD[case]

    def no_call(*_args, **_kwargs):
        raise AssertionError("aws.connect was called for bad input")

    monkeypatch.setattr(aws, "connect", no_call)
    failed = run(capsys, region="us-east-1", **net_args(**extra))
    assert failed["failed"] is True and failed["changed"] is False
    assert message in failed["msg"], failed["msg"]
    assert ours(moto.ec2) == {}


def test_another_public_subnet_cidr_moves_the_nat_gateway(moto, capsys):
    first = run(capsys, **net_args())["network"]
    moved = run(capsys, **net_args(public_subnet_cidr="10.64.3.0/24"))
    assert moved["changed"] is True and not moved.get("failed"), moved
    net = moved["network"]
    assert net["public_subnet_id"] != first["public_subnet_id"] and net["nat_gateway_id"] != first["nat_gateway_id"]
    found = ours(moto.ec2)
    assert [n["NatGatewayId"] for n in found["nats"]] == [net["nat_gateway_id"]]
    assert sorted(s["CidrBlock"] for s in found["subnets"]) == ["10.64.1.0/24", "10.64.2.0/24", "10.64.3.0/24"]
    assert [a["AllocationId"] for a in found["addresses"]] == [net["nat_allocation_id"]]
    (table,) = moto.ec2.describe_route_tables(RouteTableIds=[net["private_route_table_id"]])["RouteTables"]
    assert [r.get("NatGatewayId") for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"] == [
        net["nat_gateway_id"]
    ]
    assert run(capsys, **net_args(public_subnet_cidr="10.64.3.0/24"))["changed"] is False


def test_absent_refused_by_a_dependency_says_to_terminate_the_instances_first(moto, capsys, monkeypatch):
    """AWS refuses to delete a subnet an instance still uses (moto does not play it: the proxy does)."""
    run(capsys, **net_args(egress="none"))
    in_use = (400, "DependencyViolation", "The subnet has dependencies and cannot be deleted.")
    proxy = FaultProxy(moto.url, {"DeleteSubnet": in_use})
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        failed = run(capsys, **net_args(state="absent"))
    finally:
        proxy.close()
    assert failed["failed"] is True and failed["changed"] is True, failed
    assert "DependencyViolation" in failed["msg"] and "terminate the deployment's instances first" in failed["msg"]
    assert "done before the failure: delete VPC endpoints" in failed["msg"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
    assert len(ours(moto.ec2)["subnets"]) == 2 and "endpoints" not in ours(moto.ec2)
    gone = run(capsys, **net_args(state="absent"))
    assert not gone.get("failed"), gone
    assert ours(moto.ec2) == {}
