"""A joined node runs in the rig's Headscale tailnet with no trace of its key; an image node has no identity."""

import json
import os
import subprocess

import pytest

KEY_FILE = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "tailscale-auth-key")


def name_of(host):
    return host.check_output("hostname")


def tailnet_only(host):
    if name_of(host) != "oce-molecule-tailnet":
        pytest.skip("the image node does not join")


def image_only(host):
    if name_of(host) != "oce-molecule-image":
        pytest.skip("only the image node is built as a golden image")


def status(host):
    return json.loads(host.check_output("tailscale status --json --peers=false"))


def test_pinned_version_installed(host):
    assert host.check_output("tailscale version").splitlines()[0] == os.environ["OCE_TAILSCALE_VERSION"]
    assert (
        host.file("/usr/sbin/tailscaled").linked_to
        == "/opt/tailscale/%s/tailscaled" % os.environ["OCE_TAILSCALE_VERSION"]
    )


def test_service_enabled(host):
    assert host.service("tailscaled").is_enabled


def test_node_runs_in_tailnet(host):
    tailnet_only(host)
    assert host.service("tailscaled").is_running
    state = status(host)
    assert state["BackendState"] == "Running"
    assert any(ip.startswith("100.64.") for ip in state["Self"]["TailscaleIPs"]), state["Self"]["TailscaleIPs"]


def test_headscale_sees_node_online(host):
    tailnet_only(host)
    address = status(host)["Self"]["TailscaleIPs"][0]
    out = subprocess.run(
        ["podman", "exec", "oce-headscale", "headscale", "nodes", "list", "--output", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    mine = [n for n in json.loads(out) if address in n["ip_addresses"]]
    assert len(mine) == 1, out
    assert mine[0]["given_name"] == "oce-molecule-tailnet"
    assert mine[0].get("online") is True


def on_node(*argv):
    """Run on the node through podman, not through Ansible: Ansible would write the command (and
    so the key being searched for) into a module file under /root/.ansible on the node."""
    return subprocess.run(["podman", "exec", "oce-molecule-tailnet", *argv], capture_output=True, text=True)


def test_key_left_no_trace_on_node(host):
    tailnet_only(host)
    with open(KEY_FILE) as handle:
        key = handle.read().strip()
    assert len(key) > 20
    # Not in the unit, its settings, temp dirs, root's home (Ansible's remote tmp), nor the journal.
    for where in ("/etc", "/tmp", "/var/tmp", "/root", "/run/tailscale", "/opt/tailscale"):
        found = on_node("grep", "-rlF", "--", key, where)
        assert found.returncode == 1, (where, found.stdout)
    journal = on_node("journalctl", "--no-pager", "-o", "cat")
    assert journal.returncode == 0 and "tailscaled" in journal.stdout
    assert key not in journal.stdout
    assert not [n for n in on_node("ls", "-a", "/tmp").stdout.split() if n.startswith("tailscale-up-")]
    assert key not in host.check_output("systemctl show -p ExecStart --value tailscaled")


def test_state_dir_private(host):
    tailnet_only(host)
    assert host.file("/var/lib/tailscale").mode == 0o700


def test_image_node_has_no_identity(host):
    image_only(host)
    assert not host.service("tailscaled").is_running
    assert not host.file("/var/lib/tailscale").exists
