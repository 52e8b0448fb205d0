# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The model catalog: what each model needs, which machines serve it, what they cost.

Python data rather than a YAML file so modules (which run without the collection's files next
to them) and controller plugins read the same thing. Users override or add entries with a dict
of the same shape (``merge``); ``check_fit`` refuses a machine whose GPU memory is too small.
"""

from __future__ import annotations

import copy
import math

# Per model: approximate download size (GB, the default quantisation on ollama.com), the GPU
# memory it needs with a working context (weights + KV cache + runtime), the root disk to give
# the node, machines in order of preference. GCP machines of the a2/a3/g2 families come with
# their GPUs; `accelerator` then names what they carry.
MODELS = {
    "codellama:7b-code": {
        "size_gb": 3.8,
        "min_vram_gb": 6,
        "disk_gb": 100,
        "aws": ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-8", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
    "codellama:13b-code": {
        "size_gb": 7.4,
        "min_vram_gb": 10,
        "disk_gb": 150,
        "aws": ["g5.2xlarge", "g5.xlarge", "g6.2xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-16", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
    "codellama:34b-code": {
        "size_gb": 19,
        "min_vram_gb": 26,
        "disk_gb": 200,
        "aws": ["g6e.xlarge", "g6e.2xlarge", "g5.12xlarge"],
        "gcp": [
            {"machine_type": "a2-highgpu-1g", "accelerator": "nvidia-tesla-a100", "count": 1},
            {"machine_type": "g2-standard-24", "accelerator": "nvidia-l4", "count": 2},
        ],
    },
    "deepseek-coder:6.7b-base": {
        "size_gb": 3.8,
        "min_vram_gb": 6,
        "disk_gb": 100,
        "aws": ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-8", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
    "llama3:8b-instruct-q5_1": {
        "size_gb": 6.1,
        "min_vram_gb": 8,
        "disk_gb": 100,
        "aws": ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-8", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
    "qwen2.5-coder:32b": {
        "size_gb": 20,
        "min_vram_gb": 26,
        "disk_gb": 200,
        "aws": ["g6e.xlarge", "g6e.2xlarge", "g5.12xlarge"],
        "gcp": [
            {"machine_type": "a2-highgpu-1g", "accelerator": "nvidia-tesla-a100", "count": 1},
            {"machine_type": "g2-standard-24", "accelerator": "nvidia-l4", "count": 2},
        ],
    },
    "mistral:7b": {
        "size_gb": 4.1,
        "min_vram_gb": 6,
        "disk_gb": 100,
        "aws": ["g5.xlarge", "g6.xlarge", "g4dn.xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-8", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-8", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
    # The test model: small enough for the cheapest GPU (and for a CPU in the local rig).
    "gemma3:270m": {
        "size_gb": 0.3,
        "min_vram_gb": 1,
        "disk_gb": 30,
        "aws": ["g4dn.xlarge", "g6.xlarge", "g5.xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-4", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-4", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
    # 43 GB of weights: no single 48 GB GPU holds it with a useful context, so multi-GPU types.
    "llama3.3:70b": {
        "size_gb": 43,
        "min_vram_gb": 64,
        "disk_gb": 300,
        "aws": ["g6e.12xlarge", "p4d.24xlarge", "g5.12xlarge"],
        "gcp": [
            {"machine_type": "a2-ultragpu-1g", "accelerator": "nvidia-a100-80gb", "count": 1},
            {"machine_type": "a2-highgpu-2g", "accelerator": "nvidia-tesla-a100", "count": 2},
        ],
    },
    "nomic-embed-text": {
        "kind": "embedding",
        "size_gb": 0.3,
        "min_vram_gb": 1,
        "disk_gb": 30,
        "aws": ["g4dn.xlarge", "g6.xlarge"],
        "gcp": [
            {"machine_type": "n1-standard-4", "accelerator": "nvidia-tesla-t4", "count": 1},
            {"machine_type": "g2-standard-4", "accelerator": "nvidia-l4", "count": 1},
        ],
    },
}

# AWS instance types: GPU model, GPUs, GPU memory per GPU (GB, nominal), vCPUs, RAM (GiB).
INSTANCE_TYPES = {
    "g4dn.xlarge": {"gpu": "T4", "gpu_count": 1, "vram_gb": 16, "vcpu": 4, "ram_gb": 16},
    "g4dn.2xlarge": {"gpu": "T4", "gpu_count": 1, "vram_gb": 16, "vcpu": 8, "ram_gb": 32},
    "g5.xlarge": {"gpu": "A10G", "gpu_count": 1, "vram_gb": 24, "vcpu": 4, "ram_gb": 16},
    "g5.2xlarge": {"gpu": "A10G", "gpu_count": 1, "vram_gb": 24, "vcpu": 8, "ram_gb": 32},
    "g5.12xlarge": {"gpu": "A10G", "gpu_count": 4, "vram_gb": 24, "vcpu": 48, "ram_gb": 192},
    "g6.xlarge": {"gpu": "L4", "gpu_count": 1, "vram_gb": 24, "vcpu": 4, "ram_gb": 16},
    "g6.2xlarge": {"gpu": "L4", "gpu_count": 1, "vram_gb": 24, "vcpu": 8, "ram_gb": 32},
    "g6e.xlarge": {"gpu": "L40S", "gpu_count": 1, "vram_gb": 48, "vcpu": 4, "ram_gb": 32},
    "g6e.2xlarge": {"gpu": "L40S", "gpu_count": 1, "vram_gb": 48, "vcpu": 8, "ram_gb": 64},
    "g6e.12xlarge": {"gpu": "L40S", "gpu_count": 4, "vram_gb": 48, "vcpu": 48, "ram_gb": 384},
    "p4d.24xlarge": {"gpu": "A100", "gpu_count": 8, "vram_gb": 40, "vcpu": 96, "ram_gb": 1152},
    "p5.48xlarge": {"gpu": "H100", "gpu_count": 8, "vram_gb": 80, "vcpu": 192, "ram_gb": 2048},
}

# GCP accelerators: GPU memory per GPU (GB).
GCP_ACCELERATORS = {
    "nvidia-tesla-t4": 16,
    "nvidia-l4": 24,
    "nvidia-tesla-a100": 40,
    "nvidia-a100-80gb": 80,
    "nvidia-h100-80gb": 80,
}

# GCP machine families: the boot disk type they take, and whether their GPUs come with the
# machine type (a2, a3, g2) or are attached as guestAccelerators (n1).
GCP_FAMILIES = {
    "n1": {"disk_type": "pd-balanced", "attach_accelerators": True},
    "g2": {"disk_type": "pd-balanced", "attach_accelerators": False},
    "a2": {"disk_type": "pd-balanced", "attach_accelerators": False},
    "a3": {"disk_type": "pd-ssd", "attach_accelerators": False},
}
GCP_OPTION_KEYS = {"machine_type", "accelerator", "count", "disk_type"}

# On-demand USD per hour, Linux, from the public price lists (2025; p4d/p5 after the June 2025
# cut). Estimates only, for the cost preview: the live Pricing API is the truth.
PRICES = {
    "date": "2025",
    "currency": "USD",
    "aws": {
        "region": "us-east-1",
        "gp3_gb_month": 0.08,
        "nat_gateway_hour": 0.045,
        "instances": {
            "g4dn.xlarge": 0.526,
            "g4dn.2xlarge": 0.752,
            "g5.xlarge": 1.006,
            "g5.2xlarge": 1.212,
            "g5.12xlarge": 5.672,
            "g6.xlarge": 0.805,
            "g6.2xlarge": 0.978,
            "g6e.xlarge": 1.861,
            "g6e.2xlarge": 2.242,
            "g6e.12xlarge": 10.493,
            "p4d.24xlarge": 21.958,
            "p5.48xlarge": 55.040,
        },
    },
    "gcp": {
        "region": "us-central1",
        "pd_balanced_gb_month": 0.10,
        "pd_ssd_gb_month": 0.17,
        # Cloud NAT gateway, per VM-hour (the per-GB data processing charge comes on top).
        "nat_vm_hour": 0.0014,
        "accelerators": {"nvidia-tesla-t4": 0.35, "nvidia-l4": 0.56, "nvidia-tesla-a100": 2.934},
        # The host part only: a machine's GPUs are priced under accelerators (for g2 the listed
        # total minus its L4s).
        "machines": {
            "n1-standard-4": 0.19,
            "n1-standard-8": 0.38,
            "n1-standard-16": 0.76,
            "g2-standard-4": 0.147,
            "g2-standard-8": 0.294,
            "g2-standard-24": 0.88,
            "a2-highgpu-1g": 0.739,
            "a2-highgpu-2g": 1.478,
        },
    },
}

MODEL_KEYS = {"size_gb", "min_vram_gb", "disk_gb", "aws", "gcp", "kind"}
TYPE_KEYS = {"gpu", "gpu_count", "vram_gb", "vcpu", "ram_gb"}
OVERRIDE_KEYS = {"models", "instance_types"}
HOURS_PER_MONTH = 730


class CatalogError(ValueError):
    pass


def _number(where, key, value, minimum, above=False):
    """``value`` must be a number >= ``minimum`` (> ``minimum`` with ``above``)."""
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if bad or value < minimum or (above and value == minimum):
        raise CatalogError(f"{where}: {key} must be a number {'>' if above else '>='} {minimum:g}, got {value!r}")


# What a node's root disk holds besides the model: the OS, the NVIDIA driver and CUDA libraries
# and Ollama (a golden image is about 15 GB), with room for logs and a model update.
SYSTEM_DISK_GB = 20


def min_disk_gb(entry):
    """The smallest root disk (GB) that holds the system and the model's weights."""
    return SYSTEM_DISK_GB + math.ceil(entry["size_gb"])


def disk_size(model, entry, requested, option, image=None):
    """The root disk to give a node of ``model``: ``requested`` GB, or the catalog's when None.

    ``option`` names the module option in the message (volume_size, disk_size). ``image`` is
    (name, GB) of the image to boot: a cloud refuses a disk smaller than the image's own, so a
    catalog size below it becomes the image's and a requested one fails. Fails on a disk too small
    for the model, before anything is created.
    """
    image_name, image_gb = image or ("", 0)
    if requested is None:
        return max(entry["disk_gb"], image_gb)
    need = min_disk_gb(entry)
    if requested < need:
        raise CatalogError(
            f"{option} {requested} GB is too small for {model}: it needs at least {need} GB "
            f"({math.ceil(entry['size_gb'])} GB of weights + {SYSTEM_DISK_GB} GB for the system, driver and Ollama); "
            f"leave {option} out for the catalog's {entry['disk_gb']} GB"
        )
    if requested < image_gb:
        raise CatalogError(
            f"{option} {requested} GB is smaller than the {image_gb} GB disk of image {image_name}: "
            f"give at least {image_gb} GB, or leave {option} out"
        )
    return requested


def validate_model(name, entry):
    where = f"catalog model {name!r}"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where} must be a dict, got {type(entry).__name__}")
    unknown = sorted(set(entry) - MODEL_KEYS)
    if unknown:
        raise CatalogError(f"{where}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(MODEL_KEYS))})")
    missing = sorted({"size_gb", "min_vram_gb", "disk_gb", "aws"} - set(entry))
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)} (a new model needs all of them)")
    _number(where, "size_gb", entry["size_gb"], 0)
    _number(where, "min_vram_gb", entry["min_vram_gb"], 0, above=True)
    _number(where, "disk_gb", entry["disk_gb"], 1)
    if entry["disk_gb"] < min_disk_gb(entry):
        raise CatalogError(
            f"{where}: disk_gb {entry['disk_gb']:g} is smaller than the model needs: at least {min_disk_gb(entry)} GB "
            f"({math.ceil(entry['size_gb'])} GB of weights + {SYSTEM_DISK_GB} GB for the system, driver and Ollama)"
        )
    aws = entry["aws"]
    if not isinstance(aws, list) or not aws or not all(isinstance(t, str) and t for t in aws):
        raise CatalogError(f"{where}: aws must be a non-empty list of instance type names, got {aws!r}")
    for option in entry.get("gcp") or []:
        validate_gcp_option(where, option)


def validate_gcp_option(where, option):
    if not isinstance(option, dict) or not isinstance(option.get("machine_type"), str) or not option["machine_type"]:
        raise CatalogError(f"{where}: each gcp option needs a machine_type, got {option!r}")
    unknown = sorted(set(option) - GCP_OPTION_KEYS)
    if unknown:
        raise CatalogError(
            f"{where}: gcp option {option['machine_type']} has unknown keys {', '.join(unknown)} "
            f"(known: {', '.join(sorted(GCP_OPTION_KEYS))})"
        )
    family = option["machine_type"].split("-")[0]
    if family not in GCP_FAMILIES:
        raise CatalogError(
            f"{where}: gcp machine type {option['machine_type']} is not of a GPU family this collection knows "
            f"({', '.join(sorted(GCP_FAMILIES))})"
        )
    if option.get("accelerator") not in GCP_ACCELERATORS:
        raise CatalogError(
            f"{where}: gcp option {option['machine_type']} needs an accelerator, one of "
            f"{', '.join(sorted(GCP_ACCELERATORS))}; got {option.get('accelerator')!r}"
        )
    _number(where, "count", option.get("count", 1), 1)


def validate_type(name, entry):
    where = f"catalog instance type {name!r}"
    if not isinstance(entry, dict):
        raise CatalogError(f"{where} must be a dict, got {type(entry).__name__}")
    missing = sorted(TYPE_KEYS - set(entry))
    if missing:
        raise CatalogError(f"{where}: missing {', '.join(missing)}")
    _number(where, "gpu_count", entry["gpu_count"], 1)
    _number(where, "vram_gb", entry["vram_gb"], 1)


def merge(overrides=None):
    """The built-in catalog with the user's entries merged over it, validated.

    ``overrides`` is ``{"models": {name: fields}, "instance_types": {name: fields}}``; a known
    model's fields are replaced one by one, a new model must give every required field.
    """
    catalog = {"models": copy.deepcopy(MODELS), "instance_types": copy.deepcopy(INSTANCE_TYPES)}
    if not overrides:
        return catalog
    if not isinstance(overrides, dict):
        raise CatalogError(f"the catalog override must be a dict with models and instance_types, got {overrides!r}")
    unknown = sorted(set(overrides) - OVERRIDE_KEYS)
    if unknown:
        raise CatalogError(f"the catalog override has unknown keys {', '.join(unknown)}: use models and instance_types")
    for section, check in (("instance_types", validate_type), ("models", validate_model)):
        given = overrides.get(section) or {}
        if not isinstance(given, dict):
            raise CatalogError(f"catalog {section} must be a dict keyed by name, got {type(given).__name__}")
        for name, fields in given.items():
            if not isinstance(fields, dict):
                raise CatalogError(f"catalog {section[:-1].replace('_', ' ')} {name!r} must be a dict, got {fields!r}")
            merged = dict(catalog[section].get(name, {}), **fields)
            check(name, merged)
            catalog[section][name] = merged
    return catalog


def model_entry(catalog, model):
    try:
        return catalog["models"][model]
    except KeyError:
        raise CatalogError(
            f"model {model!r} is not in the catalog; known models: {', '.join(sorted(catalog['models']))}. "
            "Add it through the catalog override (size_gb, min_vram_gb, disk_gb, aws)"
        ) from None


def gpu_memory_gb(catalog, instance_type):
    spec = catalog["instance_types"].get(instance_type)
    return spec["gpu_count"] * spec["vram_gb"] if spec else None


def check_fit(catalog, model, instance_type):
    """Raise CatalogError with the numbers when the model does not fit the type's GPU memory."""
    need = model_entry(catalog, model)["min_vram_gb"]
    spec = catalog["instance_types"].get(instance_type)
    if spec is None:
        raise CatalogError(
            f"instance type {instance_type!r} is not in the catalog, so its GPU memory is unknown; "
            f"known types: {', '.join(sorted(catalog['instance_types']))}. Add it under instance_types"
        )
    have = spec["gpu_count"] * spec["vram_gb"]
    _fit(
        model, need, instance_type, have, spec["gpu_count"], spec["gpu"], spec["vram_gb"], fitting_types(catalog, model)
    )


def _fit(model, need, machine, have, count, gpu, per_gpu, alternatives):
    """The one fit rule of every cloud: the machine's GPU memory must hold what the model needs."""
    if have < need:
        hint = f"pick one of {', '.join(alternatives)}" if alternatives else "add a bigger machine to the catalog"
        raise CatalogError(
            f"model {model} needs {need:g} GB of GPU memory but {machine} has {have:g} GB "
            f"({count} x {gpu} {per_gpu:g} GB); {hint}"
        )


def fitting_types(catalog, model):
    need = model_entry(catalog, model)["min_vram_gb"]
    fits = [t for t, s in catalog["instance_types"].items() if s["gpu_count"] * s["vram_gb"] >= need]
    return sorted(fits, key=lambda t: PRICES["aws"]["instances"].get(t, float("inf")))


def aws_hourly_cost(instance_type):
    return PRICES["aws"]["instances"].get(instance_type)


# Live prices: the ``prices`` of the aws_price_info module (the AWS Pricing API, read when asked).
LIVE_PRICE_KEYS = {"instance_hourly", "gp3_gb_month", "nat_gateway_hour", "region", "source", "date"}
TABLE_SOURCE = "collection price table"


def live_aws_prices(prices):
    """``prices`` checked against the shape aws_price_info returns; None when none were given."""
    if not prices:
        return None
    where = "the live prices (the prices of ollama_cloud.engine.aws_price_info)"
    if not isinstance(prices, dict):
        raise CatalogError(f"{where} must be a dict, got {type(prices).__name__}")
    unknown = sorted(set(prices) - LIVE_PRICE_KEYS)
    if unknown:
        hint = " (pass the module result's prices, not the whole result)" if "prices" in prices else ""
        raise CatalogError(
            f"{where} have unknown keys {', '.join(unknown)}{hint}; known: {', '.join(sorted(LIVE_PRICE_KEYS))}"
        )
    for key in ("region", "date"):
        if not isinstance(prices.get(key), str) or not prices[key]:
            raise CatalogError(f"{where} need {key}, the {key} the prices are of; got {prices.get(key)!r}")
    hourly = prices.get("instance_hourly") or {}
    if not isinstance(hourly, dict):
        raise CatalogError(f"{where}: instance_hourly must be a dict of instance type to USD per hour, got {hourly!r}")
    for itype, price in hourly.items():
        _number(where, f"instance_hourly[{itype}]", price, 0)
    for key in ("gp3_gb_month", "nat_gateway_hour"):
        if prices.get(key) is not None:
            _number(where, key, prices[key], 0)
    return prices


def _pick(live, key, table):
    """(the live figure when ``live`` has one, else the table's; whether it was live)."""
    if live is not None and live.get(key) is not None:
        return live[key], True
    return table, False


def aws_estimate(catalog, model, instance_type, nat_gateways=1, prices=None, disk_gb=None):
    """Hourly and monthly (730 h) estimate of one node: instance, its gp3 root volume, the NAT gateway.

    ``prices`` (aws_price_info's ``prices``) replaces the table figures it covers; the estimate
    then names its source, date and region, and which parts still come from the table.
    ``disk_gb``: the volume launched (volume_size, or the image's own size), not the catalog's.
    """
    entry = model_entry(catalog, model)
    aws = PRICES["aws"]
    live = live_aws_prices(prices)
    instance, live_instance = _pick(live and live.get("instance_hourly"), instance_type, aws_hourly_cost(instance_type))
    per_gb, live_disk = _pick(live, "gp3_gb_month", aws["gp3_gb_month"])
    nat_hour, live_nat = _pick(live, "nat_gateway_hour", aws["nat_gateway_hour"])
    disk_gb = disk_gb or entry["disk_gb"]
    volume = disk_gb * per_gb / HOURS_PER_MONTH
    nat = nat_gateways * nat_hour
    source = None
    if live is not None:
        table_parts = [
            part
            for part, is_live in ((instance_type, live_instance), ("gp3 volume", live_disk), ("NAT gateway", live_nat))
            if not is_live and (part != "NAT gateway" or nat_gateways > 0)
        ]
        source = {
            "price_source": live.get("source") or "AWS Pricing API",
            "price_date": live["date"],
            "price_region": live["region"],
            "price_table_parts": table_parts,
        }
    return _estimate(
        "aws",
        instance_type,
        instance,
        disk=(disk_gb, "gp3", volume),
        nat=(nat_gateways > 0, nat),
        source=source,
        instance_type=instance_type,
    )


def _estimate(cloud, machine, instance, disk, nat, source=None, **extra):
    """The one shape of every cloud's estimate (the cost preview prints it with ``estimate_lines``).

    ``source`` names live prices (price_source, price_date, price_region, price_table_parts);
    without it the figures are the collection's dated table.
    """
    disk_gb, disk_type, volume = disk
    has_nat, nat_hourly = nat
    hourly = None if instance is None else round(instance + volume + nat_hourly, 4)
    return dict(
        extra,
        cloud=cloud,
        machine=machine,
        instance_hourly=instance,
        disk_gb=disk_gb,
        disk_type=disk_type,
        volume_hourly=round(volume, 4),
        nat=has_nat,
        nat_hourly=round(nat_hourly, 4),
        hourly=hourly,
        monthly=None if hourly is None else round(hourly * HOURS_PER_MONTH, 2),
        currency=PRICES["currency"],
        **(
            source
            or {
                "price_source": TABLE_SOURCE,
                "price_date": PRICES["date"],
                "price_region": PRICES[cloud]["region"],
                "price_table_parts": [],
            }
        ),
    )


# ---------------------------------------------------------------- GCP


def gcp_option(option):
    """A catalog gcp option with its defaults filled in: count, family, disk type, attach."""
    family = GCP_FAMILIES[option["machine_type"].split("-")[0]]
    return {
        "machine_type": option["machine_type"],
        "accelerator": option["accelerator"],
        "count": int(option.get("count", 1)),
        "disk_type": option.get("disk_type") or family["disk_type"],
        "attach_accelerators": family["attach_accelerators"],
    }


def gcp_options(catalog, model, machine_types=None):
    """The model's GCP options in order of preference, or those of ``machine_types`` in that order."""
    entry = model_entry(catalog, model)
    options = [gcp_option(o) for o in entry.get("gcp") or []]
    if not options:
        raise CatalogError(f"model {model!r} has no gcp machines in the catalog: add a gcp list to its entry")
    if machine_types:
        by_type = {o["machine_type"]: o for o in options}
        missing = [t for t in machine_types if t not in by_type]
        if missing:
            raise CatalogError(
                f"machine type {', '.join(missing)} is not a gcp option of {model} in the catalog "
                f"(options: {', '.join(by_type)}); add it to the model's gcp list through the catalog override"
            )
        options = [by_type[t] for t in machine_types]
    for option in options:
        check_gcp_fit(catalog, model, option)
    return options


def check_gcp_fit(catalog, model, option):
    need = model_entry(catalog, model)["min_vram_gb"]
    per_gpu = GCP_ACCELERATORS[option["accelerator"]]
    count = int(option.get("count", 1))
    fitting = [
        o["machine_type"]
        for o in model_entry(catalog, model).get("gcp") or []
        if int(o.get("count", 1)) * GCP_ACCELERATORS.get(o.get("accelerator"), 0) >= need
    ]
    _fit(model, need, option["machine_type"], count * per_gpu, count, option["accelerator"], per_gpu, fitting)


def gcp_hourly_cost(machine_type, accelerator=None, count=1):
    """Machine plus its GPUs, USD per hour; None when either price is not in the table."""
    gcp = PRICES["gcp"]
    host = gcp["machines"].get(machine_type)
    gpu = gcp["accelerators"].get(accelerator) if accelerator else 0
    if host is None or gpu is None:
        return None
    return round(host + gpu * count, 4)


def gcp_estimate(catalog, model, option, nat=True, disk_gb=None):
    """Hourly and monthly (730 h) estimate of one node: machine + GPUs, its boot disk, Cloud NAT.

    ``disk_gb``: the boot disk launched (disk_size, or the image's own size), not the catalog's.
    """
    entry = model_entry(catalog, model)
    disk_gb = disk_gb or entry["disk_gb"]
    gcp = PRICES["gcp"]
    option = gcp_option(option)
    instance = gcp_hourly_cost(option["machine_type"], option["accelerator"], option["count"])
    per_gb = gcp["pd_ssd_gb_month"] if option["disk_type"] == "pd-ssd" else gcp["pd_balanced_gb_month"]
    return _estimate(
        "gcp",
        f"{option['machine_type']} + {option['count']} x {option['accelerator']}",
        instance,
        disk=(disk_gb, option["disk_type"], disk_gb * per_gb / HOURS_PER_MONTH),
        nat=(bool(nat), gcp["nat_vm_hour"] if nat else 0.0),
        instance_type=option["machine_type"],
        accelerator=option["accelerator"],
        accelerator_count=option["count"],
    )


# ---------------------------------------------------------------- the cost preview, both clouds

CLOUD_NAMES = {"aws": "AWS", "gcp": "GCP"}
NAT_NAMES = {"aws": "NAT gateway", "gcp": "Cloud NAT"}
NOT_INCLUDED = {
    "aws": "data transfer, NAT data processing and VPC endpoints",
    "gcp": "data transfer and NAT data processing",
}


def estimate(catalog, model, cloud, machine=None, nat=True, node=None, prices=None):
    """The estimate of the node ``create`` would make, on either cloud, with the lines to print.

    ``machine`` is the first choice (an AWS instance type or a GCP machine type), checked against
    the model's GPU memory as the modules check it; without it, the catalog's first choice.
    ``nat`` is whether the deployment's network has NAT egress. ``prices`` are live AWS prices
    (aws_price_info's ``prices``) that replace the table figures they cover; cloud=aws only.
    """
    if cloud not in CLOUD_NAMES:
        raise CatalogError(
            f"there is no price table for cloud {cloud!r}: the cost estimate covers {', '.join(CLOUD_NAMES)}"
        )
    if prices and cloud != "aws":
        raise CatalogError(
            f"live prices come from the AWS Pricing API and price only cloud=aws; cloud {cloud} is priced "
            "from the collection's dated table, so leave prices out"
        )
    if cloud == "aws":
        if machine:
            check_fit(catalog, model, machine)
        itype = machine or model_entry(catalog, model)["aws"][0]
        found = aws_estimate(catalog, model, itype, 1 if nat else 0, prices=prices)
    else:
        option = gcp_options(catalog, model, [machine] if machine else None)[0]
        found = gcp_estimate(catalog, model, option, nat=nat)
    found["lines"] = estimate_lines(found, model, node)
    return found


def estimate_lines(est, model, node=None):
    """Two lines, the same for every cloud: the sum with its parts, then the date and what it leaves out."""
    who = f"{node} ({model})" if node else model
    disk = f"{est['disk_gb']:g} GB {est['disk_type']} {est['volume_hourly']:g} USD/h"
    nat = f"+ {NAT_NAMES[est['cloud']]} {est['nat_hourly']:g} USD/h" if est["nat"] else "(no NAT: egress=none)"
    live = est["price_source"] != TABLE_SOURCE
    if est["hourly"] is None:
        where = (
            "is in neither the live prices nor the collection's price table"
            if live
            else "is not in the collection's price table"
        )
        first = (
            f"{who} on {CLOUD_NAMES[est['cloud']]}: {est['machine']} {where}, "
            f"so there is no estimate of its total; the rest is {disk} {nat}."
        )
    else:
        first = (
            f"{who} on {CLOUD_NAMES[est['cloud']]}, estimated: {est['machine']} {est['instance_hourly']:g} USD/h "
            f"+ {disk} {nat} = {est['hourly']:.3f} USD/h, about {est['monthly']:.0f} USD/month "
            f"({HOURS_PER_MONTH} h)."
        )
    if not live:
        source = f"on-demand {est['price_region']} prices of {est['price_date']} in the collection's price table"
    else:
        source = f"live {est['price_source']} prices of {est['price_date']} for {est['price_region']} (on-demand)"
        if est["price_table_parts"]:
            source += (
                f", {' and '.join(est['price_table_parts'])} from the collection's "
                f"{PRICES[est['cloud']]['region']} price table of {PRICES['date']}"
            )
    return [first, f"This is an estimate from {source}; {NOT_INCLUDED[est['cloud']]} are not included."]
