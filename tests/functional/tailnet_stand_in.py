"""A stand-in for the controller's `tailscale status --json`, for the playbook tests without a tailnet."""

from __future__ import annotations

import json


def online_peer_cli(hostname, address="100.64.0.9"):
    """``node_tailnet_cli`` (the role adds ``status --json``) that prints a tailnet where ``hostname``
    is online at ``address``: another deployment's node under the name a new one would take."""
    status = {"Peer": {"k": {"HostName": hostname, "Online": True, "TailscaleIPs": [address], "Tags": ["tag:ollama"]}}}
    return {"node_tailnet_cli": ["python3", "-c", f"print({json.dumps(json.dumps(status))})"]}
