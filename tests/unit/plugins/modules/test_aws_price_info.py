"""aws_price_info through botocore's Stubber (moto has no Pricing API), with GetProducts answers shaped as AWS's.

Each PriceList entry is a JSON string, as GetProducts returns it: product attributes, then
terms -> OnDemand -> <offer> -> priceDimensions -> <rate> -> pricePerUnit.USD (a string).
"""

from __future__ import annotations

import datetime
import json

import boto3
import pytest
from ansible.module_utils.testing import patch_module_args
from botocore.stub import Stubber

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, catalog, cloud
from ansible_collections.ollama_cloud.engine.plugins.modules import aws_price_info as mod

REGION = "eu-west-1"


def price_item(sku, family, attributes, unit, usd, description, reserved=False):
    """One PriceList string as GetProducts (FormatVersion aws_v1) returns it."""
    rate = f"{sku}.JRTCKXETXF.6YS6EN2CT7"
    item = {
        "product": {
            "productFamily": family,
            "attributes": dict(
                attributes,
                servicecode="AmazonEC2",
                servicename="Amazon Elastic Compute Cloud",
                location="EU (Ireland)",
                locationType="AWS Region",
                regionCode=REGION,
            ),
            "sku": sku,
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                f"{sku}.JRTCKXETXF": {
                    "priceDimensions": {
                        rate: {
                            "unit": unit,
                            "endRange": "Inf",
                            "description": description,
                            "appliesTo": [],
                            "rateCode": rate,
                            "beginRange": "0",
                            "pricePerUnit": {"USD": usd},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2025-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            }
        },
        "version": "20251114190543",
        "publicationDate": "2025-11-14T19:05:43Z",
    }
    if reserved:
        # A one-year no-upfront reservation: not on-demand, so never read.
        item["terms"]["Reserved"] = {
            f"{sku}.4NA7Y494T4": {
                "priceDimensions": {
                    f"{sku}.4NA7Y494T4.6YS6EN2CT7": {
                        "unit": "Hrs",
                        "description": "Linux reserved",
                        "pricePerUnit": {"USD": "0.1111000000"},
                        "appliesTo": [],
                        "rateCode": f"{sku}.4NA7Y494T4.6YS6EN2CT7",
                        "beginRange": "0",
                        "endRange": "Inf",
                    }
                },
                "sku": sku,
                "effectiveDate": "2025-11-01T00:00:00Z",
                "offerTermCode": "4NA7Y494T4",
                "termAttributes": {
                    "LeaseContractLength": "1yr",
                    "OfferingClass": "standard",
                    "PurchaseOption": "No Upfront",
                },
            }
        }
    return json.dumps(item)


def instance_item(itype, usd, sku="B9Z9NQYV7H8XQ3EA"):
    return price_item(
        sku,
        "Compute Instance",
        {
            "instanceType": itype,
            "instanceFamily": "GPU instance",
            "operatingSystem": "Linux",
            "tenancy": "Shared",
            "preInstalledSw": "NA",
            "capacitystatus": "Used",
            "licenseModel": "No License required",
            "marketoption": "OnDemand",
            "operation": "RunInstances",
            "usagetype": f"EU-BoxUsage:{itype}",
            "gpu": "1",
            "vcpu": "4",
        },
        "Hrs",
        usd,
        f"${float(usd):g} per On Demand Linux {itype} Instance Hour",
        reserved=True,
    )


GP3 = price_item(
    "Q5KB8KDFSZ4KRP3V",
    "Storage",
    {"volumeApiName": "gp3", "volumeType": "General Purpose", "usagetype": "EU-EBS:VolumeUsage.gp3", "operation": ""},
    "GB-Mo",
    "0.0880000000",
    "$0.088 per GB-month of General Purpose (gp3) provisioned storage - EU (Ireland)",
)
NAT_HOURS = price_item(
    "8YNTU2ZGVPHN6KSG",
    "NAT Gateway",
    {"usagetype": "EU-NatGateway-Hours", "group": "NGW:NatGateway", "operation": "NatGateway"},
    "Hrs",
    "0.0480000000",
    "$0.048 per NAT Gateway Hour",
)
NAT_BYTES = price_item(
    "RS5ZSKR8T2BBGKEP",
    "NAT Gateway",
    {"usagetype": "EU-NatGateway-Bytes", "group": "NGW:NatGateway", "operation": "NatGateway"},
    "GB",
    "0.0480000000",
    "$0.048 per GB Data Processed by NAT Gateways",
)


def page(*items, token=None):
    answer = {"FormatVersion": "aws_v1", "PriceList": list(items)}
    if token:
        answer["NextToken"] = token
    return answer


def request(filters, token=None):
    params = {"ServiceCode": "AmazonEC2", "Filters": filters, "FormatVersion": "aws_v1"}
    if token:
        params["NextToken"] = token
    return params


def stubbed():
    """An Api on a real pricing client (us-east-1, where the Pricing API lives) with a fake clock."""
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    sleeps = []
    clock = cloud.Clock(sleep=sleeps.append, now=lambda: 0.0, rand=lambda: 0.5)
    return aws.Api(client, "us-east-1", clock), Stubber(client), sleeps


@pytest.fixture
def pricing(monkeypatch):
    """The module's aws.connect returns the stubbed Api; ``connected`` records what it was asked for."""
    api, stub, sleeps = stubbed()
    connected = []

    def connect(params, service, clock=None):
        connected.append((params["region"], service))
        return api

    monkeypatch.setattr(aws, "connect", connect)
    with stub:
        yield stub, connected, sleeps
        stub.assert_no_pending_responses()


def run_module(args, capsys):
    """Run main() with these args (ansible-core's supported way); return (exit code, parsed result)."""
    with patch_module_args(args), pytest.raises(SystemExit) as e:
        mod.main()
    return e.value.code, json.loads(capsys.readouterr().out)


def expect_gp3_and_nat(stub):
    stub.add_response("get_products", page(GP3), request(mod.gp3_filters(REGION)))
    stub.add_response("get_products", page(NAT_BYTES, NAT_HOURS), request(mod.nat_filters(REGION)))


TODAY = datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def test_prices_of_the_types_the_volume_and_the_nat_gateway(pricing, capsys):
    stub, connected, _sleeps = pricing
    stub.add_response(
        "get_products",
        page(instance_item("g5.xlarge", "1.1230000000")),
        request(mod.instance_filters("g5.xlarge", REGION)),
    )
    stub.add_response(
        "get_products",
        page(instance_item("g6.xlarge", "0.8925000000", sku="XKD3RFDZQ7M3MJ2T")),
        request(mod.instance_filters("g6.xlarge", REGION)),
    )
    expect_gp3_and_nat(stub)
    rc, res = run_module(
        {"instance_types": ["g5.xlarge", "g6.xlarge", "g5.xlarge"], "region": REGION, "_ansible_check_mode": True},
        capsys,
    )
    assert rc == 0 and res["changed"] is False
    assert res["prices"] == {
        "instance_hourly": {"g5.xlarge": 1.123, "g6.xlarge": 0.8925},
        "gp3_gb_month": 0.088,
        "nat_gateway_hour": 0.048,  # the hours, not the per-GB data processing of the same price
        "region": REGION,
        "source": "AWS Pricing API",
        "date": res["prices"]["date"],
    }
    assert res["prices"]["date"] in (TODAY, datetime.datetime.now(datetime.timezone.utc).date().isoformat())
    # The Pricing API is called in us-east-1 whatever region is priced; the reserved 0.1111 is never read.
    assert connected == [("us-east-1", "pricing")] and res["retries"] == []


def test_the_filters_ask_for_on_demand_linux_shared_tenancy_in_use():
    fields = {f["Field"]: f["Value"] for f in mod.instance_filters("g5.xlarge", "eu-west-1")}
    assert fields == {
        "instanceType": "g5.xlarge",
        "regionCode": "eu-west-1",
        "locationType": "AWS Region",
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
    }
    assert {f["Type"] for f in mod.instance_filters("g5.xlarge", "eu-west-1")} == {"TERM_MATCH"}
    assert {f["Field"]: f["Value"] for f in mod.gp3_filters("eu-west-1")}["volumeApiName"] == "gp3"
    assert {f["Field"]: f["Value"] for f in mod.nat_filters("eu-west-1")}["productFamily"] == "NAT Gateway"


def test_every_page_is_read():
    api, stub, _sleeps = stubbed()
    filters = mod.instance_filters("g5.xlarge", REGION)
    stub.add_response("get_products", page(token="page-2-token"), request(filters))
    stub.add_response(
        "get_products", page(instance_item("g5.xlarge", "1.1230000000")), request(filters, "page-2-token")
    )
    stub.add_response("get_products", page(GP3, token="gp3-2"), request(mod.gp3_filters(REGION)))
    stub.add_response("get_products", page(), request(mod.gp3_filters(REGION), "gp3-2"))
    # The per-GB product comes on the first page, the hourly one on the second.
    stub.add_response("get_products", page(NAT_BYTES, token="nat-2"), request(mod.nat_filters(REGION)))
    stub.add_response("get_products", page(NAT_HOURS), request(mod.nat_filters(REGION), "nat-2"))
    with stub:
        prices = mod.read_prices(api, REGION, ["g5.xlarge"], today=datetime.date(2026, 11, 22))
    stub.assert_no_pending_responses()
    assert prices == {
        "instance_hourly": {"g5.xlarge": 1.123},
        "gp3_gb_month": 0.088,
        "nat_gateway_hour": 0.048,
        "region": REGION,
        "source": "AWS Pricing API",
        "date": "2026-11-22",
    }


def test_a_type_without_an_on_demand_price_fails_with_a_sentence(pricing, capsys):
    stub, _connected, _sleeps = pricing
    stub.add_response(
        "get_products",
        page(instance_item("g5.xlarge", "1.1230000000")),
        request(mod.instance_filters("g5.xlarge", REGION)),
    )
    stub.add_response("get_products", page(), request(mod.instance_filters("p9.huge", REGION)))
    expect_gp3_and_nat(stub)
    rc, res = run_module({"instance_types": ["g5.xlarge", "p9.huge"], "region": REGION}, capsys)
    assert rc == 1 and res["failed"] is True and "prices" not in res
    assert res["msg"] == (
        "the AWS Pricing API has no on-demand Linux price (shared tenancy, no pre-installed software) for "
        "instance type p9.huge in eu-west-1: check the instance type and the region. Without live prices "
        "(node_aws_live_prices: false, the default) the cost preview uses the collection's dated price table "
        f"({catalog.PRICES['date']}) instead"
    )
    assert res["missing"] == ["instance type p9.huge"]


@pytest.mark.parametrize("entry", ["<html>Sign in to the proxy</html>", '["a list"]'])
def test_a_price_list_entry_that_is_not_a_product_fails_with_a_sentence(pricing, capsys, entry):
    stub, _connected, _sleeps = pricing
    stub.add_response("get_products", page(entry), request(mod.instance_filters("g5.xlarge", REGION)))
    rc, res = run_module({"instance_types": ["g5.xlarge"], "region": REGION}, capsys)
    assert rc == 1 and res["failed"] is True and "prices" not in res
    assert res["msg"].startswith(
        f"the AWS Pricing API answered with a price list entry that is not a product ({entry[:80]!r}): check "
        "AWS_ENDPOINT_URL and any proxy"
    ), res["msg"]


def test_throttling_is_retried_with_backoff(pricing, capsys):
    stub, _connected, sleeps = pricing
    filters = mod.instance_filters("g5.xlarge", REGION)
    stub.add_client_error("get_products", "ThrottlingException", "Rate exceeded", 400, expected_params=request(filters))
    stub.add_response("get_products", page(instance_item("g5.xlarge", "1.1230000000")), request(filters))
    expect_gp3_and_nat(stub)
    rc, res = run_module({"instance_types": ["g5.xlarge"], "region": REGION}, capsys)
    assert rc == 0 and res["prices"]["instance_hourly"] == {"g5.xlarge": 1.123}
    # Full jitter, first delay uniform in [0, 1 s]: the fake clock's 0.5 gives 0.5 s.
    assert res["retries"] == [["get_products", "ThrottlingException", 0.5]] and sleeps == [0.5]


def test_access_denied_is_a_sentence_and_not_retried(pricing, capsys):
    stub, _connected, sleeps = pricing
    stub.add_client_error("get_products", "AccessDeniedException", "not authorized to perform pricing:GetProducts", 400)
    rc, res = run_module({"instance_types": ["g5.xlarge"], "region": REGION}, capsys)
    assert rc == 1 and sleeps == []
    assert res["msg"].startswith("get products failed") and "AccessDeniedException" in res["msg"]


@pytest.mark.parametrize(
    "args, message",
    [
        ({"instance_types": ["g5.xlarge"], "region": "eu-westish-1"}, "region 'eu-westish-1' is not an AWS region"),
        ({"instance_types": [], "region": REGION}, "instance_types is empty"),
        ({"instance_types": ["g5.xlarge"], "region": REGION, "pricing_region": "eu-west-1"}, "value of pricing_region"),
    ],
)
def test_bad_input_fails_before_any_call(monkeypatch, capsys, args, message):
    def connect(params, service, clock=None):
        raise AssertionError("no call may be made")

    monkeypatch.setattr(aws, "connect", connect)
    rc, res = run_module(args, capsys)
    assert rc == 1 and message in res["msg"]


def test_live_prices_feed_the_estimate():
    """The module's prices are what the catalog's estimate takes."""
    api, stub, _sleeps = stubbed()
    stub.add_response(
        "get_products",
        page(instance_item("g5.xlarge", "1.1230000000")),
        request(mod.instance_filters("g5.xlarge", REGION)),
    )
    expect_gp3_and_nat(stub)
    with stub:
        prices = mod.read_prices(api, REGION, ["g5.xlarge"], today=datetime.date(2026, 11, 22))
    est = catalog.estimate(catalog.merge(), "codellama:7b-code", "aws", "g5.xlarge", prices=prices)
    assert est["instance_hourly"] == 1.123 and est["nat_hourly"] == 0.048
    assert est["hourly"] == pytest.approx(1.123 + 100 * 0.088 / 730 + 0.048, abs=1e-4)
    assert "live AWS Pricing API prices of 2026-11-22 for eu-west-1" in est["lines"][1]
