"""The metadata address inside a body: 169.254.169.254:80 DNATed to the cloud's metadata server.

Set from this machine in the body's network namespace (nsenter -n + nft), in a table of our own:
nothing is put into the guest's filesystem, and the guest's own rules (the hardening role's
inet oce_filter) are left alone. A namespace lives as long as the container runs, so the rule is
set again after every start; ``has_metadata_dnat`` lets the reconciler notice a guest that
flushed the whole ruleset (Debian's stock nftables.service does).
"""

from __future__ import annotations

import subprocess

METADATA_IP = "169.254.169.254"
TABLE = "oce_sim"


def dnat_ruleset(host, port):
    # The first two lines make the delete succeed whether or not the table exists: one transaction.
    return (
        f"table ip {TABLE}\n"
        f"delete table ip {TABLE}\n"
        f"table ip {TABLE} {{\n"
        "  chain output {\n"
        # -100 is dstnat; nft 1.0.6 (Debian 12) refuses the keyword in an output chain.
        "    type nat hook output priority -100; policy accept;\n"
        f"    ip daddr {METADATA_IP} tcp dport 80 dnat to {host}:{port}\n"
        "  }\n"
        "}\n"
    )


def _nft(pid, *args, ruleset=None):
    return subprocess.run(
        ["nsenter", "-t", str(pid), "-n", "nft", *args],
        input=ruleset,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def set_metadata_dnat(pid, host, port):
    """DNAT the metadata address in the network namespace of process ``pid`` (a body's init)."""
    result = _nft(pid, "-f", "-", ruleset=dnat_ruleset(host, port))
    if result.returncode != 0:
        raise RuntimeError(f"cannot set the metadata DNAT in the namespace of pid {pid}: {result.stderr.strip()}")


def has_metadata_dnat(pid, host, port):
    result = _nft(pid, "list", "table", "ip", TABLE)
    return result.returncode == 0 and f"dnat to {host}:{port}" in result.stdout
