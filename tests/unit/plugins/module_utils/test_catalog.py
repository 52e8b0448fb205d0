"""The model catalog: complete, consistent with its tables, overrides validated, fit checked."""

from __future__ import annotations

import pytest

from ansible_collections.ollama_cloud.engine.plugins.module_utils import catalog

REQUIRED_MODELS = {
    "codellama:7b-code",
    "codellama:13b-code",
    "codellama:34b-code",
    "deepseek-coder:6.7b-base",
    "llama3:8b-instruct-q5_1",
    "qwen2.5-coder:32b",
    "mistral:7b",
    "gemma3:270m",
    "llama3.3:70b",
    "nomic-embed-text",
}


def test_catalog_has_the_required_models_and_every_entry_is_valid():
    assert set(catalog.MODELS) >= REQUIRED_MODELS
    for name, entry in catalog.MODELS.items():
        catalog.validate_model(name, entry)


@pytest.mark.parametrize("model", sorted(catalog.MODELS))
def test_every_listed_machine_is_known_priced_and_fits(model):
    cat = catalog.merge()
    entry = catalog.MODELS[model]
    for itype in entry["aws"]:
        catalog.check_fit(cat, model, itype)  # raises if the catalog contradicts itself
        assert catalog.aws_hourly_cost(itype) > 0
    for option in entry["gcp"]:
        assert option["count"] * catalog.GCP_ACCELERATORS[option["accelerator"]] >= entry["min_vram_gb"]
    assert entry["size_gb"] < entry["min_vram_gb"] + 1 and entry["disk_gb"] > entry["size_gb"] * 2


def test_70b_needs_more_than_one_gpu_or_a_big_one():
    for itype in catalog.MODELS["llama3.3:70b"]["aws"]:
        assert catalog.INSTANCE_TYPES[itype]["gpu_count"] > 1


def test_prices_from_facts_are_kept_and_dated():
    assert catalog.PRICES["date"] == "2025" and catalog.PRICES["aws"]["region"] == "us-east-1"
    facts = {"g4dn.xlarge": 0.526, "g5.xlarge": 1.006, "g5.2xlarge": 1.212, "g6.xlarge": 0.805, "g6e.xlarge": 1.861}
    for itype, price in facts.items():
        assert catalog.aws_hourly_cost(itype) == price


def test_fit_failure_gives_the_numbers():
    with pytest.raises(catalog.CatalogError) as err:
        catalog.check_fit(catalog.merge(), "qwen2.5-coder:32b", "g4dn.xlarge")
    assert "needs 26 GB of GPU memory but g4dn.xlarge has 16 GB (1 x T4 16 GB)" in str(err.value)
    assert "pick one of g6e.xlarge" in str(err.value)


def test_override_changes_one_field_and_adds_a_model():
    cat = catalog.merge(
        {
            "models": {
                "codellama:7b-code": {"disk_gb": 60},
                "ourco/coder:14b": {"size_gb": 9, "min_vram_gb": 12, "disk_gb": 120, "aws": ["g5.xlarge"]},
            }
        }
    )
    assert cat["models"]["codellama:7b-code"]["disk_gb"] == 60
    assert cat["models"]["codellama:7b-code"]["aws"] == catalog.MODELS["codellama:7b-code"]["aws"]
    assert cat["models"]["ourco/coder:14b"]["min_vram_gb"] == 12
    assert catalog.MODELS["codellama:7b-code"]["disk_gb"] == 100  # the built-in data is untouched


@pytest.mark.parametrize(
    "override, message",
    [
        ("g5.xlarge", "must be a dict with models and instance_types"),
        ({"models": {"new:1b": {"size_gb": 1}}}, "missing aws, disk_gb, min_vram_gb (a new model needs all of them)"),
        ({"models": {"mistral:7b": {"aws": []}}}, "aws must be a non-empty list"),
        ({"models": {"mistral:7b": {"disk_gb": 0}}}, "disk_gb must be a number >= 1, got 0"),
        (
            {"models": {"llama3.3:70b": {"disk_gb": 50}}},
            "disk_gb 50 is smaller than the model needs: at least 63 GB (43 GB of weights + 20 GB",
        ),
        ({"models": {"mistral:7b": {"min_vram_gb": 0}}}, "min_vram_gb must be a number > 0, got 0"),
        ({"models": {"mistral:7b": {"vram": 8}}}, "unknown keys vram"),
        ({"models": {"mistral:7b": "big"}}, "catalog model 'mistral:7b' must be a dict"),
        ({"instance_types": {"x1.big": {"gpu": "X"}}}, "catalog instance type 'x1.big': missing gpu_count"),
    ],
)
def test_malformed_overrides_fail_clearly(override, message):
    with pytest.raises(catalog.CatalogError) as err:
        catalog.merge(override)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "requested, message",
    [
        (0, "volume_size 0 GB is too small for codellama:34b-code: it needs at least 39 GB"),
        (-5, "volume_size -5 GB is too small"),
        (
            30,
            "(19 GB of weights + 20 GB for the system, driver and Ollama); leave volume_size out for the catalog's 200",
        ),
    ],
)
def test_a_disk_too_small_for_the_model_fails(requested, message):
    entry = catalog.MODELS["codellama:34b-code"]
    with pytest.raises(catalog.CatalogError) as err:
        catalog.disk_size("codellama:34b-code", entry, requested, "volume_size")
    assert message in str(err.value)


def test_a_disk_is_the_catalogs_unless_given():
    entry = catalog.MODELS["codellama:34b-code"]
    assert catalog.disk_size("codellama:34b-code", entry, None, "disk_size") == 200
    assert catalog.disk_size("codellama:34b-code", entry, 39, "disk_size") == 39


def test_a_disk_is_never_smaller_than_the_image_s_own():
    """A cloud refuses a boot disk smaller than its image's (Packer's golden images have 30 GB)."""
    entry = dict(catalog.MODELS["gemma3:270m"], disk_gb=25)
    image = ("ami-0gold", 30)
    assert catalog.disk_size("gemma3:270m", entry, None, "volume_size", image) == 30
    assert catalog.disk_size("gemma3:270m", entry, None, "volume_size", ("ami-0small", 8)) == 25
    assert catalog.disk_size("gemma3:270m", entry, 40, "volume_size", image) == 40
    with pytest.raises(
        catalog.CatalogError, match="volume_size 25 GB is smaller than the 30 GB disk of image ami-0gold"
    ):
        catalog.disk_size("gemma3:270m", entry, 25, "volume_size", image)


def test_estimate_adds_volume_and_nat():
    est = catalog.aws_estimate(catalog.merge(), "codellama:34b-code", "g6e.xlarge")
    assert est["instance_hourly"] == 1.861 and est["nat_hourly"] == 0.045
    assert est["hourly"] == pytest.approx(1.861 + 200 * 0.08 / 730 + 0.045, abs=1e-3)
    assert est["monthly"] == pytest.approx(est["hourly"] * 730, abs=0.01)


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_estimate_of_every_model_on_both_clouds_reads_as_an_estimate(cloud):
    cat = catalog.merge()
    for model in catalog.MODELS:
        est = catalog.estimate(cat, model, cloud, nat=False)
        assert est["nat"] is False and est["nat_hourly"] == 0
        assert len(est["lines"]) == 2 and "prices of 2025" in est["lines"][1] and "estimate" in est["lines"][1]
        if est["hourly"] is not None:
            assert f"= {est['hourly']:.3f} USD/h" in est["lines"][0] and "(no NAT: egress=none)" in est["lines"][0]


def test_estimate_refuses_an_unknown_cloud():
    with pytest.raises(catalog.CatalogError, match="there is no price table for cloud 'local'"):
        catalog.estimate(catalog.merge(), "mistral:7b", "local")


# ---------------------------------------------------------------- live prices (aws_price_info's prices)

LIVE = {
    "instance_hourly": {"g6e.xlarge": 2.0, "g5.xlarge": 1.123},
    "gp3_gb_month": 0.088,
    "nat_gateway_hour": 0.048,
    "region": "eu-west-1",
    "source": "AWS Pricing API",
    "date": "2026-11-22",
}


def test_live_prices_replace_every_table_figure_they_cover():
    est = catalog.aws_estimate(catalog.merge(), "codellama:34b-code", "g6e.xlarge", prices=LIVE)
    assert (est["instance_hourly"], est["nat_hourly"]) == (2.0, 0.048)
    assert est["volume_hourly"] == round(200 * 0.088 / 730, 4) == 0.0241
    assert est["hourly"] == round(2.0 + 200 * 0.088 / 730 + 0.048, 4) == 2.0721
    assert est["monthly"] == round(2.0721 * 730, 2) == 1512.63
    assert (est["price_source"], est["price_date"], est["price_region"], est["price_table_parts"]) == (
        "AWS Pricing API",
        "2026-11-22",
        "eu-west-1",
        [],
    )


def test_live_prices_say_so_in_the_preview():
    est = catalog.estimate(catalog.merge(), "codellama:34b-code", "aws", "g6e.xlarge", node="oce-t", prices=LIVE)
    assert est["lines"] == [
        "oce-t (codellama:34b-code) on AWS, estimated: g6e.xlarge 2 USD/h + 200 GB gp3 0.0241 USD/h "
        "+ NAT gateway 0.048 USD/h = 2.072 USD/h, about 1513 USD/month (730 h).",
        "This is an estimate from live AWS Pricing API prices of 2026-11-22 for eu-west-1 (on-demand); "
        "data transfer, NAT data processing and VPC endpoints are not included.",
    ]


def test_a_part_the_live_prices_miss_comes_from_the_table_and_the_preview_says_which():
    partial = {k: v for k, v in LIVE.items() if k != "gp3_gb_month"}
    est = catalog.estimate(catalog.merge(), "codellama:34b-code", "aws", "g6e.2xlarge", prices=partial)
    # g6e.2xlarge and the gp3 volume are not in the live prices: the 2025 table's 2.242 and 0.08.
    assert est["instance_hourly"] == 2.242 and est["volume_hourly"] == round(200 * 0.08 / 730, 4)
    assert est["nat_hourly"] == 0.048 and est["price_table_parts"] == ["g6e.2xlarge", "gp3 volume"]
    assert est["lines"][1] == (
        "This is an estimate from live AWS Pricing API prices of 2026-11-22 for eu-west-1 (on-demand), "
        "g6e.2xlarge and gp3 volume from the collection's us-east-1 price table of 2025; "
        "data transfer, NAT data processing and VPC endpoints are not included."
    )


def test_without_nat_the_nat_price_is_neither_used_nor_reported():
    partial = {k: v for k, v in LIVE.items() if k != "nat_gateway_hour"}
    est = catalog.estimate(catalog.merge(), "codellama:34b-code", "aws", "g6e.xlarge", nat=False, prices=partial)
    assert est["nat_hourly"] == 0 and est["price_table_parts"] == []


@pytest.mark.parametrize("prices", [None, {}])
def test_no_live_prices_is_the_dated_table_exactly_as_before(prices):
    est = catalog.estimate(catalog.merge(), "codellama:34b-code", "aws", "g6e.xlarge", prices=prices)
    assert est["instance_hourly"] == 1.861 and est["nat_hourly"] == 0.045 and est["hourly"] == 1.9279
    assert (est["price_source"], est["price_date"], est["price_region"]) == (
        "collection price table",
        "2025",
        "us-east-1",
    )
    assert est["lines"][1] == (
        "This is an estimate from on-demand us-east-1 prices of 2025 in the collection's price table; "
        "data transfer, NAT data processing and VPC endpoints are not included."
    )


@pytest.mark.parametrize(
    "prices, message",
    [
        ({"changed": False, "prices": LIVE}, "unknown keys changed, prices (pass the module result's prices"),
        ({"instance_hourly": {"g5.xlarge": 1.0}, "region": "eu-west-1"}, "need date"),
        (dict(LIVE, instance_hourly={"g5.xlarge": "1.0"}), "instance_hourly[g5.xlarge] must be a number >= 0"),
        (dict(LIVE, gp3_gb_month=-1), "gp3_gb_month must be a number >= 0, got -1"),
        (["g5.xlarge", 1.0], "must be a dict, got list"),
    ],
)
def test_malformed_live_prices_fail_clearly(prices, message):
    with pytest.raises(catalog.CatalogError) as err:
        catalog.estimate(catalog.merge(), "mistral:7b", "aws", prices=prices)
    assert message in str(err.value)


def test_live_prices_are_for_aws_only():
    with pytest.raises(
        catalog.CatalogError, match="live prices come from the AWS Pricing API and price only cloud=aws"
    ):
        catalog.estimate(catalog.merge(), "mistral:7b", "gcp", prices=LIVE)
    # GCP estimates are the table's, with the same keys as before.
    est = catalog.estimate(catalog.merge(), "mistral:7b", "gcp")
    assert est["price_source"] == "collection price table" and est["price_region"] == "us-central1"
