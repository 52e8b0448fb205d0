# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a node is on the tailnet, as the controller's own ``tailscale status --json`` sees it.

Nodes name themselves at first boot (``fleet.tailnet_hostname``); the controller finds their
addresses here instead of trusting a tag or label that anyone could write.
"""

from __future__ import annotations

import json


def peers(status):
    """The peers of a ``tailscale status --json`` answer (a dict or its text)."""
    if isinstance(status, (str, bytes)):
        status = json.loads(status or "{}")
    return list(((status or {}).get("Peer") or {}).values())


def is_node(peer):
    """Whether a peer can be one of our nodes: nodes join with a tagged key (README, step 2). A
    device without a tag is a person's, named as its owner likes: one named as a node must not
    receive the controller's SSH session (become, the node's settings) or the users' prompts."""
    return bool(peer.get("Tags"))


def find_peer(status, hostname):
    """The tagged peer that joined as ``hostname``: online first, then the most recently seen; or None.

    A node destroyed without logging out can linger in the tailnet under the same name: the one
    that is online is the live one.
    """
    found = [p for p in peers(status) if p.get("HostName") == hostname and is_node(p)]
    return _best(hostname, found) if found else None


def find_peers(status):
    """Every peer by the hostname it joined as, as ``find_peer`` tells each, reading ``status`` once.

    For the fleet inventory: one lookup per node in a dict, not one pass over the tailnet per node.
    """
    by_name = {}
    for peer in peers(status):
        if peer.get("HostName") and is_node(peer):
            by_name.setdefault(peer["HostName"], []).append(peer)
    return {hostname: _best(hostname, found) for hostname, found in by_name.items()}


def _best(hostname, found):
    best = sorted(found, key=lambda p: (bool(p.get("Online")), p.get("LastSeen") or "", p.get("Created") or ""))[-1]
    addresses = [a for a in best.get("TailscaleIPs") or [] if ":" not in a] or list(best.get("TailscaleIPs") or [])
    return {
        "hostname": hostname,
        "address": addresses[0] if addresses else None,
        "dns_name": (best.get("DNSName") or "").rstrip("."),
        "online": bool(best.get("Online")),
        "tags": list(best.get("Tags") or []),
    }


def ssh_common_args(known_hosts_file, proxy_command=""):
    """How the controller's SSH reaches a node over the tailnet, the same from the role and the inventory.

    The tailnet already authenticates the peer, so a node's first host key is learnt (accept-new)
    into a file of the deployment's own; a userspace-mode controller goes through ``proxy_command``.
    """
    # ServerAlive: a node that leaves the tailnet mid-task (logged out, stopped) ends the task within
    # a minute; an established session would otherwise wait on TCP's retransmissions for a quarter hour.
    args = (
        f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known_hosts_file} -o ConnectTimeout=20"
        " -o ServerAliveInterval=15 -o ServerAliveCountMax=4"
    )
    return args + (f' -o ProxyCommand="{proxy_command}"' if proxy_command else "")


def ollama_url(address, port=11434):
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{port}"
