"""The hardening role's allow list: normalized for the nftables template, every mistake named."""

import pytest

from ansible_collections.ollama_cloud.engine.plugins.filter import firewall_admits as admits_module
from ansible_collections.ollama_cloud.engine.plugins.filter import firewall_allow as allow_module
from ansible_collections.ollama_cloud.engine.plugins.filter.firewall_admits import firewall_admits
from ansible_collections.ollama_cloud.engine.plugins.filter.firewall_allow import firewall_allow


def test_entries_are_normalized():
    result = firewall_allow(
        [
            {"port": 22, "source": "35.235.240.0/20", "comment": "IAP"},
            {"port": "8000 - 8100", "proto": "UDP"},
            {"port": "11434", "proto": "tcp", "source": "10.89.42.1"},
            {"port": 8084, "source": "FD00:89:42::/64"},
            {"port": 443, "source": ""},
        ]
    )
    assert result["problems"] == []
    assert result["rules"] == [
        {"port": "22", "proto": "tcp", "family": "ip", "source": "35.235.240.0/20", "comment": "IAP"},
        {"port": "8000-8100", "proto": "udp", "family": "", "source": "", "comment": ""},
        {"port": "11434", "proto": "tcp", "family": "ip", "source": "10.89.42.1/32", "comment": ""},
        {"port": "8084", "proto": "tcp", "family": "ip6", "source": "fd00:89:42::/64", "comment": ""},
        {"port": "443", "proto": "tcp", "family": "", "source": "", "comment": ""},
    ]


def test_empty_and_missing_lists_allow_nothing():
    assert firewall_allow([]) == {"rules": [], "problems": []}
    assert firewall_allow(None) == {"rules": [], "problems": []}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"port": 0}, "port must be a number from 1 to 65535 or a range such as 8000-8100 (got 0)"),
        ({"port": 70000}, "port must be a number from 1 to 65535"),
        ({"port": "22a"}, "port must be a number from 1 to 65535"),
        ({"port": "9000-8000"}, "port must be a number from 1 to 65535 or a range"),
        ({"port": True}, "port must be a number"),
        ({"proto": "tcp"}, "port must be a number"),
        ({"port": 22, "proto": "icmp"}, "proto must be tcp or udp (got 'icmp')"),
        (
            {"port": 22, "source": "10.0.0.5/24"},
            "has host bits set: write 10.0.0.0/24 (or 10.0.0.5/32 for that one address)",
        ),
        ({"port": 22, "source": "fd00::1/64"}, "write fd00::/64 (or fd00::1/128 for that one address)"),
        ({"port": 22, "source": "10.0.0.0/33"}, "is not an IPv4 or IPv6 address or network"),
        ({"port": 22, "source": "example.com"}, "is not an IPv4 or IPv6 address or network"),
        ({"port": 22, "comment": 'say "hi"'}, "comment must be at most 128 characters, without quotes"),
        ({"port": 22, "sources": "10.0.0.0/8"}, "has unknown keys sources: use only port, proto, source and comment"),
    ],
)
def test_each_mistake_is_named(entry, message):
    result = firewall_allow([{"port": 80}, entry])
    assert result["rules"] == [{"port": "80", "proto": "tcp", "family": "", "source": "", "comment": ""}]
    assert len(result["problems"]) >= 1
    assert result["problems"][0].startswith("hardening_firewall_allow entry 2 (")
    assert message in " ".join(result["problems"])


def test_not_a_list_or_not_a_dict():
    assert firewall_allow("22/tcp")["problems"] == [
        "hardening_firewall_allow must be a list of {port, proto, source} (got '22/tcp')."
    ]
    assert "must be a dict with port" in firewall_allow(["22/tcp"])["problems"][0]


@pytest.mark.parametrize(
    ("allow", "address", "port", "admitted"),
    [
        ([], "10.0.0.5", 22, False),
        ([{"port": 22}], "10.0.0.5", 22, True),
        ([{"port": 22, "proto": "udp"}], "10.0.0.5", 22, False),
        ([{"port": "20-30"}], "10.0.0.5", 22, True),
        ([{"port": 22, "source": "35.235.240.0/20"}], "35.235.241.7", 22, True),
        ([{"port": 22, "source": "35.235.240.0/20"}], "10.0.0.5", 22, False),
        ([{"port": 22, "source": "10.0.0.5"}], "::ffff:10.0.0.5", 22, True),
        ([{"port": 22, "source": "fd7a:115c:a1e0::/48"}], "fd7a:115c:a1e0::12", 22, True),
        ([{"port": 22, "source": "fd7a:115c:a1e0::/48"}], "10.0.0.5", 22, False),
        ([{"port": 22, "source": "10.0.0.5/24"}], "10.0.0.5", 22, False),  # invalid entries admit nothing
        ([{"port": 22}], "not-an-address", 22, False),
    ],
)
def test_admits(allow, address, port, admitted):
    assert firewall_admits(allow, address, port) is admitted


def test_both_filters_are_registered():
    assert admits_module.FilterModule().filters() == {"firewall_admits": firewall_admits}
    assert allow_module.FilterModule().filters() == {"firewall_allow": firewall_allow}
