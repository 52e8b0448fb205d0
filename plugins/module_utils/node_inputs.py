# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node role's settings checked before anything is created: sentences that say what to change.

Only what needs no cloud call: names, address ranges, zones against the region, and whether an
egress=none node could reach what it downloads. What needs the cloud (offerings, the image, the
key secret) is the instance modules' check-mode plan.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud

# Where a node goes when a source is left empty: public services, out of reach with egress=none.
PUBLIC_DEFAULTS = {
    "model_mirror": "the public model registry (registry.ollama.ai)",
    "login_server": "Tailscale's public control plane (controlplane.tailscale.com)",
    "tailscale_url": "Tailscale's public package server (pkgs.tailscale.com)",
}
# Hosts known to be on the internet (a name here is never a private mirror).
PUBLIC_HOSTS = ("ollama.ai", "ollama.com", "tailscale.com", "tailscale.io", "github.com")
# Hosts a node without egress still reaches: the object stores behind the VPC's gateway endpoint
# (AWS S3) or Private Google Access (GCP), and names of a private DNS zone.
PRIVATE_SUFFIXES = {
    "aws": (".internal", ".amazonaws.com"),
    "gcp": (".internal", "storage.googleapis.com", ".googleapis.com"),
}
# AWS: a VPC and its subnets take /16 to /28.
AWS_PREFIXES = (16, 28)


def _network(text, what):
    try:
        return ipaddress.ip_network(str(text), strict=True), None
    except ValueError as exc:
        return None, f"{what} {text!r} is not an IPv4 network in CIDR form, such as 10.64.0.0/16 ({exc})"


# The names aws_cidr_problems gives the three ranges: the node role's variables, unless told others.
AWS_CIDR_NAMES = ("node_aws_vpc_cidr", "node_aws_public_subnet_cidr", "node_aws_private_subnet_cidrs")


def aws_cidr_problems(vpc_cidr, public_cidr, private_cidrs, egress, names=AWS_CIDR_NAMES):
    """The VPC range must hold every subnet, and no two subnets may overlap (each range called by ``names``)."""
    vpc_name, public_name, private_name = names
    vpc, problem = _network(vpc_cidr, vpc_name)
    if problem:
        return [problem]
    subnets = [(private_name, c) for c in private_cidrs]
    if egress == "nat":
        subnets.insert(0, (public_name, public_cidr))
    problems, seen = [], []
    for what, text in [(vpc_name, vpc_cidr)] + subnets:
        net, problem = _network(text, what)
        if problem:
            problems.append(problem)
            continue
        if not AWS_PREFIXES[0] <= net.prefixlen <= AWS_PREFIXES[1]:
            problems.append(f"{what} {text} is a /{net.prefixlen}: AWS takes /{AWS_PREFIXES[0]} to /{AWS_PREFIXES[1]}")
        if what == vpc_name:
            continue
        if net.version != vpc.version or not net.subnet_of(vpc):
            problems.append(f"{what} {text} is not inside {vpc_name} {vpc_cidr}: give a range within it")
        for other_what, other in seen:
            if net.overlaps(other):
                problems.append(f"{what} {text} overlaps {other_what} {other}: give each subnet its own range")
        seen.append((what, net))
    return problems


def zone_problems(cloud_name, region, zones):
    # Imported here: aws and gcp import their SDKs (about 1 s), and the filter over this module is
    # loaded by every templating worker of a play, on every cloud.
    from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, gcp  # pylint: disable=import-outside-toplevel

    if cloud_name == "aws":
        wrong = [z for z in zones if not aws.zone_in_region(str(z), region)]
        example = f"{region}a"
    else:
        wrong = [
            z for z in zones if not re.match(r"^[a-z]+-[a-z]+[0-9]+-[a-z]$", str(z)) or gcp.region_of_zone(z) != region
        ]
        example = f"{region}-a"
    if not wrong:
        return []
    return [
        f"node_{cloud_name}_zones {', '.join(map(str, wrong))} are not in node_{cloud_name}_region {region}: "
        f"give zones of that region (for example {example}) or another region"
    ]


def _reachable_without_egress(url, cloud_name, network):
    """Whether a node with no internet egress can reach ``url`` (an address in its network or a private name)."""
    host = urllib.parse.urlsplit(url if "//" in url else "//" + url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith(PRIVATE_SUFFIXES[cloud_name]):
            return True
        return not any(host == h or host.endswith("." + h) for h in PUBLIC_HOSTS)
    return address.is_private and (network is None or address in network or not address.is_global)


def egress_problems(settings):
    """egress=none: every source the node downloads from must be reachable without the internet."""
    cloud_name = settings["cloud"]
    network, _problem = _network(settings.get("network_cidr") or "", "network")
    sources = {
        "model_mirror": ("ollama_models_registry_mirror", settings.get("model_mirror") or ""),
        "login_server": ("node_tailnet_login_server", settings.get("login_server") or ""),
    }
    if settings.get("installs_tailscale"):
        sources["tailscale_url"] = ("node_tailscale_download_url", settings.get("tailscale_url") or "")
    problems = []
    for key, (variable, url) in sources.items():
        if not url:
            problems.append(
                f"node_{cloud_name}_egress=none leaves the node no internet, but {variable} is empty, which "
                f"means {PUBLIC_DEFAULTS[key]}: set {variable} to a server inside the network, or use egress nat"
            )
        elif not _reachable_without_egress(url, cloud_name, network):
            problems.append(
                f"node_{cloud_name}_egress=none leaves the node no internet, but {variable} {url} is on the "
                f"internet: set it to a server inside the network, or use egress nat"
            )
    return problems


def tailscale_checksum_problem(settings):
    """A node that installs Tailscale at first boot checks the archive: its sha256 must be known."""
    checksum = str(settings.get("tailscale_checksum") or "")
    if re.fullmatch(r"sha256:[0-9a-fA-F]{64}", checksum):
        return None
    if not checksum:
        return (
            f"no sha256 is known for Tailscale {settings.get('tailscale_version')}: set tailscale_checksum "
            "(sha256: and the archive's 64 hex digits), pick a version the tailscale role knows, or use a golden image"
        )
    return f"tailscale_checksum {checksum!r} is not sha256: followed by 64 hex digits"


def problems(settings):
    """Everything wrong with the node role's settings for a create, as sentences (empty: nothing).

    ``settings``: cloud (aws, gcp), deployment, name, region, zones, egress, and for AWS vpc_cidr,
    public_cidr, private_cidrs; model_mirror, login_server, tailscale_url, installs_tailscale,
    network_cidr for the egress=none checks; with installs_tailscale, tailscale_version and
    tailscale_checksum (what first boot checks the archive against).
    """
    cloud_name = settings["cloud"]
    found = [cloud.node_name_problem(settings.get("name"), settings.get("deployment"))]
    found += zone_problems(cloud_name, settings.get("region") or "", settings.get("zones") or [])
    if cloud_name == "aws":
        found += aws_cidr_problems(
            settings.get("vpc_cidr"),
            settings.get("public_cidr"),
            settings.get("private_cidrs") or [],
            settings["egress"],
        )
    if settings.get("installs_tailscale"):
        found.append(tailscale_checksum_problem(settings))
    if settings.get("egress") == "none":
        found += egress_problems(settings)
    return [p for p in found if p]
