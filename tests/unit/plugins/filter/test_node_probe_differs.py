"""node_probe_differs: a role's wants against what node_probe read, one comparison for every role."""

import hashlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ollama_cloud.engine.plugins.filter.node_probe_differs import node_probe_differs

UNIT = "[Unit]\nDescription=tailscaled\n"


def read(type_, **have):
    """One path as node_probe describes it."""
    info = dict.fromkeys(("type", "mode", "owner", "group", "target", "sha1", "sha1_matches"))
    info.update(type=type_, **have)
    return info


def file_read(content, mode="0644", owner="root", group="root"):
    return read("file", mode=mode, owner=owner, group=group, sha1=hashlib.sha1(content.encode()).hexdigest())


PATHS = {
    "/etc/systemd/system/tailscaled.service": file_read(UNIT),
    "/etc/default/tailscaled": file_read("PORT=41641\n", mode="0600"),
    "/usr/bin/tailscale": read("link", owner="root", group="root", target="/opt/tailscale/1.90.6/tailscale"),
    "/var/log/oce": read("directory", mode="0755", owner="root", group="root"),
    "/etc/ollama/extra.env": read("file", mode="0600", owner="root", group="root", sha1_matches=True),
    "/opt/missing": read("absent"),
}


def test_a_file_as_wanted_is_left_out_and_one_that_differs_comes_back_as_config_files_takes_it():
    wants = [
        {"dest": "/etc/systemd/system/tailscaled.service", "src": "tailscaled.service.j2", "validate": "v %s"},
        {"dest": "/etc/default/tailscaled", "src": "tailscaled.defaults.j2", "notify": ["Restart tailscaled"]},
    ]
    differ = node_probe_differs(PATHS, wants, [UNIT, "PORT=41641\n"])
    # The settings hold the wanted content, but with mode 0600 where config_files' default is 0644.
    assert differ == [
        {"dest": "/etc/default/tailscaled", "content": "PORT=41641\n", "mode": "0644", "owner": "root", "group": "root"}
    ]


def test_a_file_wants_its_own_mode_and_its_content_may_come_with_it():
    wants = [{"dest": "/etc/default/tailscaled", "content": "PORT=41641\n", "mode": "0600"}]
    assert node_probe_differs(PATHS, wants) == []
    wants[0]["content"] = "PORT=1\n"
    assert [w["content"] for w in node_probe_differs(PATHS, wants)] == ["PORT=1\n"]


def test_a_file_that_is_a_link_or_absent_differs():
    wants = [{"dest": "/usr/bin/tailscale", "content": ""}, {"dest": "/opt/missing", "content": ""}]
    assert [w["dest"] for w in node_probe_differs(PATHS, wants)] == ["/usr/bin/tailscale", "/opt/missing"]


def test_path_wants_compare_only_the_attributes_they_name_and_come_back_whole():
    wants = [
        {"path": "/usr/bin/tailscale", "type": "link", "target": "/opt/tailscale/1.90.6/tailscale", "name": "cli"},
        {"path": "/usr/bin/tailscale", "type": "link", "target": "/opt/tailscale/1.92.0/tailscale", "name": "new"},
        {"path": "/var/log/oce", "type": "directory"},
        {"path": "/var/log/oce", "type": "directory", "mode": "0750"},
        {"path": "/etc/ollama/extra.env", "type": "file", "sha1_matches": True},
        {"path": "/opt/missing", "type": "absent"},
    ]
    assert node_probe_differs(PATHS, wants) == [wants[1], wants[3]]


def test_named_wants_give_the_names_that_differ_in_their_order():
    wants = {
        "models_dir": {"path": "/var/log/oce", "type": "directory", "mode": "0750"},
        "cli_link": {"path": "/usr/bin/tailscale", "type": "link", "target": "/opt/tailscale/1.90.6/tailscale"},
        "extra_env": {"path": "/etc/ollama/extra.env", "type": "absent"},
    }
    assert node_probe_differs(PATHS, wants) == ["models_dir", "extra_env"]


@pytest.mark.parametrize(
    ("paths", "wants", "contents", "says"),
    [
        ({}, [{"path": "/etc/x", "type": "file"}], None, "the probe did not read /etc/x: add it to node_probe's paths"),
        (PATHS, [{"type": "file"}], None, "a want must be a dict with path or dest"),
        (PATHS, ["/etc/x"], None, "a want must be a dict with path or dest"),
        (PATHS, [{"dest": "/etc/default/tailscaled"}], None, "/etc/default/tailscaled has no content"),
        (PATHS, [{"dest": "/etc/default/tailscaled"}], ["a", "b"], "2 contents for 1 wants"),
        ([], [], None, "its input must be node_probe's paths"),
    ],
)
def test_what_cannot_be_compared_is_said(paths, wants, contents, says):
    with pytest.raises(AnsibleFilterError, match=says):
        node_probe_differs(paths, wants, contents)
