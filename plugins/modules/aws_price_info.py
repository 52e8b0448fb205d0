#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: aws_price_info
short_description: Today's on-demand prices of a node's parts from the AWS Pricing API
version_added: 0.1.0
description:
  - Reads the on-demand USD prices of the parts of an AWS node from the AWS Pricing API
    (C(GetProducts) of C(AmazonEC2)) for one region. The instance types, hourly, on Linux with shared
    tenancy, no pre-installed software and capacity status C(Used); a gp3 volume, per GB-month; a NAT
    gateway, hourly (the C(NatGateway-Hours) usage type).
  - Returns them as RV(prices) in the shape the
    P(ollama_cloud.engine.model_catalog#lookup) lookup takes as its O(ollama_cloud.engine.model_catalog#lookup:prices)
    option, so the cost preview prints live prices instead of the collection's dated price table.
  - Only runs when asked. The collection's cost preview calls it only with C(node_aws_live_prices=true);
    otherwise nothing calls the Pricing API.
  - An instance type (or the gp3 volume, or the NAT gateway) without an on-demand price in the
    region fails with a sentence that names it; nothing is guessed.
  - Answers are read page by page (C(NextToken)); throttling and server errors are retried as for
    every AWS module of this collection.
options:
  instance_types:
    description: The EC2 instance types to price, for example V(g5.xlarge).
    type: list
    elements: str
    required: true
  region:
    description:
      - The region whose prices are read (where the node would run), for example V(eu-west-1).
      - This is not where the Pricing API is called; see O(pricing_region).
      - If not set, E(AWS_REGION) then E(AWS_DEFAULT_REGION) are used.
    type: str
    aliases: [aws_region]
  pricing_region:
    description:
      - The region of the Pricing API endpoint. The API is offered only in these three regions;
        the prices of every region are read from any of them.
    type: str
    choices: [us-east-1, eu-central-1, ap-south-1]
    default: us-east-1
extends_documentation_fragment:
  - ollama_cloud.engine.aws
  - ollama_cloud.engine.info_module
notes:
  - The credentials need C(pricing:GetProducts). The Pricing API is free of charge.
  - Savings plans, reserved instances, spot prices, data transfer and NAT data processing are not read.
seealso:
  - name: AWS Price List Query API
    description: The GetProducts call this module makes.
    link: https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: Read today's prices of the node's instance types in eu-west-1
  ollama_cloud.engine.aws_price_info:
    instance_types: [g5.xlarge, g6.xlarge]
    region: eu-west-1
  register: live

- name: The cost preview from those prices
  ansible.builtin.debug:
    msg: >-
      {{ (lookup('ollama_cloud.engine.model_catalog', 'codellama:7b-code',
                 machine='g5.xlarge', prices=live.prices)).estimate.lines }}
"""

RETURN = r"""
prices:
  description:
    - The prices read, for the O(ollama_cloud.engine.model_catalog#lookup:prices) option of the
      P(ollama_cloud.engine.model_catalog#lookup) lookup.
  returned: success
  type: dict
  contains:
    instance_hourly:
      description: On-demand USD per hour of each instance type (Linux, shared tenancy).
      type: dict
      sample: {g5.xlarge: 1.006, g6.xlarge: 0.8048}
    gp3_gb_month:
      description: USD per GB-month of a gp3 volume's storage.
      type: float
      sample: 0.08
    nat_gateway_hour:
      description: USD per hour of a NAT gateway (its data processing is charged on top).
      type: float
      sample: 0.045
    region:
      description: The region these prices are for.
      type: str
      sample: us-east-1
    source:
      description: Where the prices come from.
      type: str
      sample: AWS Pricing API
    date:
      description: The day (UTC, ISO 8601) the prices were read.
      type: str
      sample: "2026-11-22"
  sample:
    instance_hourly: {g5.xlarge: 1.006}
    gp3_gb_month: 0.08
    nat_gateway_hour: 0.045
    region: us-east-1
    source: AWS Pricing API
    date: "2026-11-22"
retries:
  description: API calls retried after throttling or a server error, as C([operation, code, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import datetime
import json

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, catalog, cloud, node_module

PRICING_REGIONS = ["us-east-1", "eu-central-1", "ap-south-1"]
SOURCE = "AWS Pricing API"


def _filters(**fields):
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in fields.items()]


def instance_filters(instance_type, region):
    return _filters(
        instanceType=instance_type,
        regionCode=region,
        locationType="AWS Region",
        operatingSystem="Linux",
        tenancy="Shared",
        preInstalledSw="NA",
        capacitystatus="Used",
    )


def gp3_filters(region):
    return _filters(productFamily="Storage", volumeApiName="gp3", regionCode=region, locationType="AWS Region")


def nat_filters(region):
    return _filters(productFamily="NAT Gateway", regionCode=region, locationType="AWS Region")


def products(api, filters):
    """Every product of AmazonEC2 that matches, each PriceList JSON string parsed, over all pages."""
    pages = api.paginate("get_products", "PriceList", ServiceCode="AmazonEC2", Filters=filters, FormatVersion="aws_v1")
    return [_product(p) for p in pages]


def _product(entry):
    """A PriceList entry as an object; what is not one (an endpoint that is not AWS's) is a CloudError."""
    try:
        product = json.loads(entry) if isinstance(entry, str) else entry
    except ValueError:
        product = None
    if not isinstance(product, dict):
        raise cloud.CloudError(
            f"the AWS Pricing API answered with a price list entry that is not a product ({str(entry)[:80]!r}): "
            f"check AWS_ENDPOINT_URL and any proxy between here and AWS, or leave node_aws_live_prices false "
            f"to use the collection's dated price table ({catalog.PRICES['date']})"
        )
    return product


def on_demand_usd(product, unit):
    """The product's on-demand USD prices per ``unit`` (terms -> OnDemand -> priceDimensions)."""
    found = []
    for term in (product.get("terms") or {}).get("OnDemand", {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            if dimension.get("unit") != unit:
                continue
            try:
                found.append(float(dimension.get("pricePerUnit", {})["USD"]))
            except (KeyError, TypeError, ValueError):
                continue
    return found


def _attributes(product):
    return (product.get("product") or {}).get("attributes") or {}


def first_price(found, unit, prefer=None):
    """The first non-zero price of ``unit``, trying products that ``prefer`` accepts first; None if none."""
    ordered = sorted(found, key=lambda p: not (prefer and prefer(_attributes(p))))
    for product in ordered:
        prices = [p for p in on_demand_usd(product, unit) if p > 0]
        if prices:
            return prices[0]
    return None


def read_prices(api, region, instance_types, today=None):
    """The prices dict of the result; CloudError naming every part without an on-demand price."""
    hourly, missing = {}, []
    for itype in dict.fromkeys(instance_types):
        price = first_price(
            products(api, instance_filters(itype, region)), "Hrs", lambda a: a.get("operation") == "RunInstances"
        )
        if price is None:
            missing.append(f"instance type {itype}")
        else:
            hourly[itype] = price
    gp3 = first_price(products(api, gp3_filters(region)), "GB-Mo")
    if gp3 is None:
        missing.append("a gp3 volume")
    nat = [
        p
        for p in products(api, nat_filters(region))
        if _attributes(p).get("usagetype", "").endswith("NatGateway-Hours")
    ]
    nat_hour = first_price(nat, "Hrs")
    if nat_hour is None:
        missing.append("a NAT gateway")
    if missing:
        raise cloud.CloudError(
            f"the AWS Pricing API has no on-demand Linux price (shared tenancy, no pre-installed software) "
            f"for {', '.join(missing)} in {region}: check the instance type and the region. Without live "
            f"prices (node_aws_live_prices: false, the default) the cost preview uses the collection's "
            f"dated price table ({catalog.PRICES['date']}) instead",
            missing=missing,
        )
    return {
        "instance_hourly": hourly,
        "gp3_gb_month": gp3,
        "nat_gateway_hour": nat_hour,
        "region": region,
        "source": SOURCE,
        "date": (today or datetime.datetime.now(datetime.timezone.utc).date()).isoformat(),
    }


def main():
    base = node_module.NodeModule(
        aws,
        {
            "instance_types": {"type": "list", "elements": "str", "required": True},
            "pricing_region": {"type": "str", "choices": PRICING_REGIONS, "default": "us-east-1"},
        },
    )
    params = base.params
    region = params["region"]
    types = [t for t in params["instance_types"] if t]
    if not types:
        base.fail("instance_types is empty: name at least one EC2 instance type to price, e.g. g5.xlarge")
    if not region:
        base.fail("no AWS region given: set region (or AWS_REGION) to the region whose prices to read")

    def work():
        if region not in aws.known_regions():
            raise cloud.CloudError(f"region {region!r} is not an AWS region this botocore knows; check the spelling")
        # The Pricing API answers only in PRICING_REGIONS, for every region's prices.
        api = base.client("pricing", params=dict(params, region=params["pricing_region"]))
        return {"changed": False, "prices": read_prices(api, region, types)}

    base.run(work)


if __name__ == "__main__":
    main()
