"""The model_catalog lookup: its logic directly, and once through ansible itself."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.ollama_cloud.engine.plugins.lookup.model_catalog import lookup
from ansible_collections.ollama_cloud.engine.tests import adhoc


def test_entry_with_types_and_estimate():
    (entry,) = lookup(["codellama:34b-code"])
    assert entry["name"] == "codellama:34b-code" and entry["aws"][0] == "g6e.xlarge"
    assert entry["aws_types"]["g6e.xlarge"]["gpu"] == "L40S"
    assert entry["estimate"]["instance_hourly"] == 1.861


def test_whole_catalog_without_terms():
    (cat,) = lookup([])
    assert "gemma3:270m" in cat["models"] and cat["prices"]["date"] == "2025"


def test_user_override_is_merged():
    over = {"models": {"ourco/coder:14b": {"size_gb": 9, "min_vram_gb": 12, "disk_gb": 120, "aws": ["g6.xlarge"]}}}
    (entry,) = lookup(["ourco/coder:14b"], overrides=over)
    assert entry["estimate"]["instance_hourly"] == 0.805


@pytest.mark.parametrize(
    "terms, kwargs, message",
    [
        (["nope:1b"], {}, "model 'nope:1b' is not in the catalog"),
        (["llama3.3:70b"], {"instance_type": "g6e.xlarge"}, "needs 64 GB of GPU memory but g6e.xlarge has 48 GB"),
        (["mistral:7b"], {"overrides": {"models": {"mistral:7b": {"size_gb": -1}}}}, "size_gb must be a number"),
    ],
)
def test_errors_are_sentences(terms, kwargs, message):
    with pytest.raises(AnsibleLookupError, match=message):
        lookup(terms, **kwargs)


# ---------------------------------------------------------------- the cost preview of create, both clouds


@pytest.mark.parametrize(
    "cloud, kwargs, first",
    [
        (
            "aws",
            {},
            "oce-t (gemma3:270m) on AWS, estimated: g4dn.xlarge 0.526 USD/h + 30 GB gp3 0.0033 USD/h "
            "+ NAT gateway 0.045 USD/h = 0.574 USD/h, about 419 USD/month (730 h).",
        ),
        (
            "aws",
            {"instance_type": "g6.xlarge", "nat": False},
            "oce-t (gemma3:270m) on AWS, estimated: g6.xlarge 0.805 USD/h + 30 GB gp3 0.0033 USD/h "
            "(no NAT: egress=none) = 0.808 USD/h, about 590 USD/month (730 h).",
        ),
        (
            "gcp",
            {},
            "oce-t (gemma3:270m) on GCP, estimated: n1-standard-4 + 1 x nvidia-tesla-t4 0.54 USD/h "
            "+ 30 GB pd-balanced 0.0041 USD/h + Cloud NAT 0.0014 USD/h = 0.545 USD/h, about 398 USD/month (730 h).",
        ),
        (
            "gcp",
            {"instance_type": "g2-standard-4", "nat": False},
            "oce-t (gemma3:270m) on GCP, estimated: g2-standard-4 + 1 x nvidia-l4 0.707 USD/h "
            "+ 30 GB pd-balanced 0.0041 USD/h (no NAT: egress=none) = 0.711 USD/h, about 519 USD/month (730 h).",
        ),
    ],
)
def test_cost_preview_has_one_shape_for_both_clouds(cloud, kwargs, first):
    (entry,) = lookup(["gemma3:270m"], cloud=cloud, node="oce-t", **kwargs)
    est = entry["estimate"]
    assert est["cloud"] == cloud and est["lines"][0] == first
    assert est["lines"][1].startswith("This is an estimate from on-demand ") and " prices of 2025 " in est["lines"][1]
    assert est["monthly"] == pytest.approx(est["hourly"] * 730, abs=0.01)


def test_cost_preview_keys_are_the_same_for_both_clouds_plus_the_gcp_accelerator():
    (aws,) = lookup(["gemma3:270m"], cloud="aws")
    (gcp,) = lookup(["gemma3:270m"], cloud="gcp")
    assert set(gcp["estimate"]) - set(aws["estimate"]) == {"accelerator", "accelerator_count"}
    assert set(aws["estimate"]) <= set(gcp["estimate"])
    assert (aws["estimate"]["price_region"], gcp["estimate"]["price_region"]) == ("us-east-1", "us-central1")


def test_cost_preview_of_a_machine_missing_from_the_price_table_says_so():
    (entry,) = lookup(["llama3.3:70b"], cloud="gcp", node="oce-t")
    assert entry["estimate"]["hourly"] is None and entry["estimate"]["monthly"] is None
    assert entry["estimate"]["lines"][0].startswith(
        "oce-t (llama3.3:70b) on GCP: a2-ultragpu-1g + 1 x nvidia-a100-80gb is not in the collection's price table"
    )
    assert "This is an estimate" in entry["estimate"]["lines"][1]


TOO_SMALL_ON_GCP = {
    "models": {"llama3.3:70b": {"gcp": [{"machine_type": "n1-standard-8", "accelerator": "nvidia-tesla-t4"}]}}
}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"cloud": "aws", "instance_type": "g5.xlarge"},
            r"model llama3.3:70b needs 64 GB of GPU memory but g5.xlarge has 24 GB \(1 x A10G 24 GB\); "
            r"pick one of g5.12xlarge, g6e.12xlarge",
        ),
        (
            {"cloud": "gcp", "overrides": TOO_SMALL_ON_GCP},
            r"model llama3.3:70b needs 64 GB of GPU memory but n1-standard-8 has 16 GB "
            r"\(1 x nvidia-tesla-t4 16 GB\); add a bigger machine to the catalog",
        ),
        (
            {"cloud": "gcp", "instance_type": "n1-standard-96"},
            "machine type n1-standard-96 is not a gcp option of llama3.3:70b in the catalog",
        ),
        ({"cloud": "azure"}, "there is no price table for cloud 'azure': the cost estimate covers aws, gcp"),
        (
            {"cloud": "gcp", "instance_type": "x", "overrides": {"models": {"llama3.3:70b": {"gcp": [{}]}}}},
            "needs a machine_type",
        ),
    ],
    ids=["aws too small", "gcp too small", "gcp not an option", "unknown cloud", "gcp malformed override"],
)
def test_cost_preview_refuses_what_create_would_refuse(kwargs, message):
    with pytest.raises(AnsibleLookupError, match=message):
        lookup(["llama3.3:70b"], **kwargs)


def test_cost_preview_through_ansible_options():
    out = _ansible_debug(
        "{{ (lookup('ollama_cloud.engine.model_catalog', 'codellama:7b-code', cloud='gcp', "
        "machine='g2-standard-8', nat=false, node='oce-x')).estimate }}"
    )
    assert out["machine"] == "g2-standard-8 + 1 x nvidia-l4" and out["nat"] is False
    assert out["lines"][0].startswith("oce-x (codellama:7b-code) on GCP, estimated: g2-standard-8")


def _ansible_debug(expr):
    rc, msg = adhoc.debug(expr)
    assert rc == 0, msg
    return msg


def test_through_ansible_with_inventory_style_override():
    result = _ansible_debug(
        "{{ lookup('ollama_cloud.engine.model_catalog', 'mistral:7b', "
        "overrides={'models': {'mistral:7b': {'disk_gb': 64}}}) }}"
    )
    assert result["disk_gb"] == 64 and result["aws"][0] == "g5.xlarge"


# ---------------------------------------------------------------- live AWS prices (aws_price_info's prices)

LIVE = {
    "instance_hourly": {"g4dn.xlarge": 0.587},
    "gp3_gb_month": 0.088,
    "nat_gateway_hour": 0.048,
    "region": "eu-west-1",
    "source": "AWS Pricing API",
    "date": "2026-11-22",
}


def test_live_prices_pass_through_to_the_estimate():
    (entry,) = lookup(["gemma3:270m"], node="oce-t", prices=LIVE)
    est = entry["estimate"]
    assert est["lines"][0] == (
        "oce-t (gemma3:270m) on AWS, estimated: g4dn.xlarge 0.587 USD/h + 30 GB gp3 0.0036 USD/h "
        "+ NAT gateway 0.048 USD/h = 0.639 USD/h, about 466 USD/month (730 h)."
    )
    assert est["lines"][1].startswith(
        "This is an estimate from live AWS Pricing API prices of 2026-11-22 for eu-west-1"
    )
    assert (est["price_region"], est["price_date"]) == ("eu-west-1", "2026-11-22")


def test_live_prices_through_ansible_options():
    out = _ansible_debug(
        "{{ (lookup('ollama_cloud.engine.model_catalog', 'gemma3:270m', machine='g4dn.xlarge', prices=%s)).estimate }}"
        % json.dumps(LIVE)
    )
    assert out["instance_hourly"] == 0.587 and out["hourly"] == 0.6386
    assert "live AWS Pricing API prices of 2026-11-22 for eu-west-1" in out["lines"][1]


def test_empty_prices_through_ansible_is_the_table():
    out = _ansible_debug("{{ (lookup('ollama_cloud.engine.model_catalog', 'gemma3:270m', prices={})).estimate }}")
    assert out["instance_hourly"] == 0.526 and out["price_date"] == "2025"


def test_live_prices_with_gcp_are_refused():
    with pytest.raises(AnsibleLookupError, match="live prices come from the AWS Pricing API and price only cloud=aws"):
        lookup(["gemma3:270m"], cloud="gcp", prices=LIVE)
