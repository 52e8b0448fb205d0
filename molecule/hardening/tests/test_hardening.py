"""The hardened node drops what it does not allow and accepts what it does, from the rig host and
from a peer on the rig network; its sshd takes keys only; its kernel, update and journal settings
are in effect where a container allows it; unused kernel modules cannot load, core dumps are off,
logins get the login.defs values and umask, auditd has its rules, setuid bits the node does not
need are gone, a banner greets every login, and the user `oce` still logs in with a key and runs
sudo; its firewall comes back after a reboot.
(side_effect.yml then checks refused mistakes and hardening_state=absent.)

Every connection stays on the rig network (10.89.42.0/24) or loopback.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import json
import os
import pathlib
import socket
import struct
import subprocess
import time
import uuid

import pytest
import testinfra
import yaml

NODE = "oce-molecule-hard-node"
PEER = "oce-molecule-hard-peer"
RIG_NETWORK = ipaddress.ip_network("10.89.42.0/24")
API_PORT = 11493  # molecule.yml: 127.0.0.1:11493 on the rig host -> 11434 in the node
TCP_LISTENERS = [8081, 8082, 8083, 8084, 11434, 22]  # 22 is sshd itself
UDP_LISTENERS = [8090, 8092]
TIMEOUT = 2.0

DEFAULTS = yaml.safe_load(
    (pathlib.Path(__file__).parents[3] / "roles" / "hardening" / "defaults" / "main.yml").read_text()
)

# Runs inside the peer: probes [[address, port, proto], ...] at once; prints a verdict for each.
PROBE = r"""
import concurrent.futures, json, socket, sys

def probe(address, port, proto, timeout=%(timeout)s):
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        try:
            s.sendto(b"oce-probe", (address, port))
            return "open" if s.recvfrom(64)[0] == b"oce-probe" else "other"
        except OSError as exc:
            return "timeout" if isinstance(exc, socket.timeout) else type(exc).__name__
        finally:
            s.close()
    try:
        socket.create_connection((address, port), timeout=timeout).close()
        return "open"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"

targets = json.loads(sys.argv[1])
with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
    print(json.dumps(list(pool.map(lambda t: probe(*t), targets))))
""" % {"timeout": TIMEOUT}


def on(name):
    return testinfra.get_host("podman://" + name)


def address_of(host):
    address = host.check_output("ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1")
    assert ipaddress.ip_address(address) in RIG_NETWORK, address
    return address


def wait_listening(host, tcp=(), udp=()):
    for _ in range(50):
        out = host.check_output("ss -Hlntu")
        listening = {(line.split()[0], line.split()[4].rsplit(":", 1)[1]) for line in out.splitlines()}
        if all(("tcp", str(p)) in listening for p in tcp) and all(("udp", str(p)) in listening for p in udp):
            return
        time.sleep(0.2)
    pytest.fail("listeners did not come up on %s: %s" % (host.backend.get_hostname(), out))


# Runs inside the node: an HTTP server on each TCP port and a UDP echo server on each UDP port.
LISTENERS = r"""
import functools, http.server, socket, sys, threading

def tcp(port):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/tmp")
    http.server.ThreadingHTTPServer(("0.0.0.0", port), handler).serve_forever()

def udp(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = sock.recvfrom(64)
        sock.sendto(data, peer)

threads = [threading.Thread(target=tcp, args=(int(p),)) for p in sys.argv[1].split(",")]
threads += [threading.Thread(target=udp, args=(int(p),)) for p in sys.argv[2].split(",")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def start_listeners(host, tcp, udp):
    unit = "oce-test-listeners"
    host.run_expect(
        [0],
        "systemd-run --unit=%s python3 -c %s %s %s",
        unit,
        LISTENERS,
        ",".join(map(str, tcp)),
        ",".join(map(str, udp)),
    )
    wait_listening(host, tcp, udp)
    return [unit]


@pytest.fixture(scope="module")
def node():
    return on(NODE)


@pytest.fixture(scope="module")
def peer():
    return on(PEER)


@pytest.fixture(scope="module")
def listeners(node):
    """http.server on the node's TCP ports (sshd already has 22), and UDP echo servers."""
    units = start_listeners(node, [p for p in TCP_LISTENERS if p != 22], UDP_LISTENERS)
    wait_listening(node, [22])
    yield {"node": address_of(node)}
    node.run("systemctl stop %s", " ".join(units))


def probe_from_peer(peer, addresses, targets):
    """targets: [(who, port, proto)]; returns {(who, port, proto): verdict} from inside the peer."""
    wire = [[addresses[who], port, proto] for who, port, proto in targets]
    for address, _port, _proto in wire:
        assert ipaddress.ip_address(address) in RIG_NETWORK
    out = peer.check_output("python3 -c %s %s", PROBE, json.dumps(wire))
    return dict(zip(targets, json.loads(out)))


def tcp_from_rig_host(address, port):
    assert ipaddress.ip_address(address) in RIG_NETWORK or address == "127.0.0.1"
    try:
        with socket.create_connection((address, port), timeout=TIMEOUT) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            conn.settimeout(TIMEOUT)
            return "open" if conn.recv(12).startswith(b"HTTP/1.0 200") else "other"
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"


def icmp_echo(address):
    """One ICMP echo request from the rig host; True when the node answers."""
    assert ipaddress.ip_address(address) in RIG_NETWORK
    ident = os.getpid() & 0xFFFF
    payload = b"oce-hardening"

    def checksum(data):
        data += b"\0" * (len(data) % 2)
        total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
        total = (total >> 16) + (total & 0xFFFF)
        return ~(total + (total >> 16)) & 0xFFFF

    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, 1) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendto(packet, (address, 0))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                data, (source, _port) = sock.recvfrom(1024)
            except socket.timeout:
                return False
            kind, _code, _sum, got_ident, _seq = struct.unpack("!BBHHH", data[20:28])
            if source == address and kind == 0 and got_ident == ident:
                return True
    return False


# --- the firewall ---


def test_our_table_drops_by_default_and_others_stay(node):
    ruleset = node.check_output("nft list ruleset")
    assert "table inet oce_filter {" in ruleset
    assert "table inet someone_else {" in ruleset, "another team's table was flushed"
    chain = node.check_output("nft list chain inet oce_filter input")
    assert "type filter hook input priority filter; policy drop;" in chain
    assert 'iifname "tailscale0" accept' in chain


def test_allow_list_is_loaded_as_written(node, peer):
    chain = node.check_output("nft list chain inet oce_filter input")
    peer_address = address_of(peer)
    gateway = node.check_output("ip -4 route show default | awk '{print $3}'")
    for rule in (
        'tcp dport 8081 accept comment "anyone on the network"',
        'ip saddr %s tcp dport 8082 accept comment "the peer only"' % peer_address,
        "udp dport 8090-8091 accept",
        "ip6 saddr fd00:89:42::/64 tcp dport 8084 accept",
        'ip saddr %s tcp dport 11434 accept comment "Ollama published by podman"' % gateway,
    ):
        assert rule in chain, rule


def test_firewall_unit_is_enabled_and_active(node):
    assert node.service("oce-firewall.service").is_enabled
    assert node.service("oce-firewall.service").is_running
    assert node.run("systemd-analyze verify /etc/systemd/system/oce-firewall.service").rc == 0


def test_only_allowed_traffic_reaches_the_node_from_the_peer(peer, listeners):
    verdicts = probe_from_peer(
        peer,
        listeners,
        [
            ("node", 8081, "tcp"),  # allowed from anywhere
            ("node", 8082, "tcp"),  # allowed from the peer only
            ("node", 8083, "tcp"),  # listening, not allowed
            ("node", 8084, "tcp"),  # allowed from an IPv6 network only
            ("node", 11434, "tcp"),  # allowed from the podman gateway only
            ("node", 22, "tcp"),  # sshd listens; no inbound SSH on a cloud node either
            ("node", 8090, "udp"),  # allowed range 8090-8091
            ("node", 8092, "udp"),  # listening, not allowed
        ],
    )
    assert verdicts == {
        ("node", 8081, "tcp"): "open",
        ("node", 8082, "tcp"): "open",
        ("node", 8083, "tcp"): "timeout",
        ("node", 8084, "tcp"): "timeout",
        ("node", 11434, "tcp"): "timeout",
        ("node", 22, "tcp"): "timeout",
        ("node", 8090, "udp"): "open",
        ("node", 8092, "udp"): "timeout",
    }


def test_only_allowed_traffic_reaches_the_node_from_the_rig_host(listeners):
    address = listeners["node"]
    ports = [8081, 8082, 8083, 22]
    with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
        verdicts = dict(zip(ports, pool.map(lambda p: tcp_from_rig_host(address, p), ports)))
    # 8082 is the peer's alone; the rig host is not the peer.
    assert verdicts == {8081: "open", 8082: "timeout", 8083: "timeout", 22: "timeout"}


def test_published_api_port_works_through_the_gateway_rule(listeners):
    # As on the local target: 127.0.0.1:<api_port> on the host, forwarded by podman to 11434.
    assert tcp_from_rig_host("127.0.0.1", API_PORT) == "open"


def test_loopback_is_open(node, listeners):
    # Ollama listens on loopback on cloud nodes: nothing the firewall drops there.
    assert node.check_output("curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:8083/") == "200"


def test_icmp_echo_is_answered(listeners):
    assert icmp_echo(listeners["node"])


# --- sshd ---


def test_sshd_configuration_is_valid_and_in_effect(node):
    assert node.file("/etc/ssh/sshd_config.d/50-oce-hardening.conf").mode == 0o644
    assert node.run("sshd -t").rc == 0
    effective = set(node.check_output("sshd -T").splitlines())
    for line in (
        "permitrootlogin without-password",
        "passwordauthentication no",
        "kbdinteractiveauthentication no",
        "permitemptypasswords no",
        "x11forwarding no",
        "allowtcpforwarding no",
        "allowagentforwarding no",
        "maxauthtries 3",
        "logingracetime 30",
        "ciphers " + ",".join(DEFAULTS["hardening_ssh_ciphers"]),
    ):
        assert line in effective, line


def test_sshd_offers_public_keys_only(node):
    # A client that will not use a key is told which methods remain: publickey alone.
    result = node.run(
        "ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o PubkeyAuthentication=no -o ConnectTimeout=5 root@127.0.0.1 true"
    )
    assert result.rc == 255
    assert "Permission denied (publickey)." in result.stderr, result.stderr


# --- kernel settings ---


def test_sysctl_file_holds_the_settings_without_the_left_out_keys(node):
    text = node.file("/etc/sysctl.d/90-oce-hardening.conf").content_string
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    written = dict(line.split(" = ", 1) for line in lines)
    expected = {k: str(v) for k, v in DEFAULTS["hardening_sysctl_settings"].items()}
    del expected["kernel.yama.ptrace_scope"], expected["kernel.sysrq"]  # null in hardening_sysctl_overrides
    assert written == expected
    # procps reads the file as systemd-sysctl will at boot. Every key exists in this kernel except
    # net.core.bpf_jit_harden, which only the host's own network namespace has: a container cannot
    # see it (the role applies nothing in a container; a VM has it).
    dry = node.run("sysctl --dry-run -p /etc/sysctl.d/90-oce-hardening.conf")
    assert dry.stderr.strip() == "sysctl: cannot stat /proc/sys/net/core/bpf_jit_harden: No such file or directory"
    del expected["net.core.bpf_jit_harden"]
    assert dict(line.split(" = ", 1) for line in dry.stdout.splitlines()) == expected


# --- security updates ---


def test_apt_takes_security_updates_only_and_never_reboots(node):
    dump = node.check_output("apt-config dump").splitlines()
    origins = [line.split(" ", 1)[1] for line in dump if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert origins == [
        '"origin=Debian,codename=${distro_codename}-security,label=Debian-Security";',
        '"origin=Debian,codename=${distro_codename},label=Debian-Security";',
    ]
    assert not [line for line in dump if line.startswith("Unattended-Upgrade::Allowed-Origins:: ")]
    for line in (
        'Unattended-Upgrade::Automatic-Reboot "false";',
        'APT::Periodic::Unattended-Upgrade "1";',
        'APT::Periodic::Update-Package-Lists "1";',
    ):
        assert line in dump, line


def test_unattended_upgrade_reads_the_settings(node):
    # The tool itself, in dry-run: the origins it allows and the packages it never touches.
    out = node.run("unattended-upgrade --dry-run --debug 2>&1")
    assert out.rc == 0, out.stdout
    assert (
        "Allowed origins are: origin=Debian,codename=bookworm-security,label=Debian-Security, "
        "origin=Debian,codename=bookworm,label=Debian-Security"
    ) in out.stdout, out.stdout
    blacklist = [line for line in out.stdout.splitlines() if "Initial blacklist:" in line]
    assert blacklist and all(p in blacklist[0] for p in DEFAULTS["hardening_unattended_upgrades_blacklist"])


def test_apt_timers_are_enabled_and_waiting(node):
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert node.service(timer).is_enabled and node.service(timer).is_running, timer


# --- journal ---


def test_journal_is_persistent_and_capped(node):
    machine = node.file("/etc/machine-id").content_string.strip()
    token = uuid.uuid4().hex
    node.run_expect([0], "echo %s | systemd-cat -t oce-hardening-test && journalctl --sync", token)
    on_disk = node.run("journalctl --directory=/var/log/journal/%s --grep=%s --output=cat", machine, token)
    assert on_disk.stdout.strip() == token, on_disk.stderr
    started = node.check_output("journalctl --boot --unit=systemd-journald --output=cat")
    assert "max 64.0M" in started, started


# --- kernel modules, core dumps, logins, audit, setuid bits, time, banner ---

MODULES = DEFAULTS["hardening_kernel_modules_disabled"]
BANNER = DEFAULTS["hardening_banner_text"].strip()
OCE_KEY = "/root/.ssh/oce_test_key"
OCE_SUDOERS = "/etc/sudoers.d/90-oce-test"


def in_container(node):
    return node.run("systemd-detect-virt --container").rc == 0


def test_unused_kernel_modules_cannot_load(node):
    text = node.file("/etc/modprobe.d/oce-hardening.conf").content_string
    assert "nvidia" not in text
    config = node.check_output("modprobe --showconfig")
    for module in MODULES:
        # What modprobe would run: /bin/false instead of loading it (-n: nothing is loaded).
        dry = node.run("modprobe --dry-run --verbose %s", module)
        assert dry.stdout.strip() == "install /bin/false", (module, dry.stdout, dry.stderr)
        assert "blacklist %s" % module.replace("-", "_") in config, module


def test_core_dumps_are_off(node):
    limits = node.file("/etc/security/limits.d/90-oce-hardening.conf").content_string.split("\n")
    assert "*\thard\tcore\t0" in limits and "root\thard\tcore\t0" in limits
    # systemd read its drop-in (re-executed by the handler): services start with no core limit.
    assert node.check_output("systemctl show --property=DefaultLimitCORE") == "DefaultLimitCORE=0"
    coredump = node.check_output("systemd-analyze cat-config systemd/coredump.conf")
    assert "Storage=none" in coredump and "ProcessSizeMax=0" in coredump
    sysctl = node.file("/etc/sysctl.d/90-oce-hardening.conf").content_string
    assert "fs.suid_dumpable = 0" in sysctl.splitlines()


def login_defs(node, path="/etc/login.defs"):
    values = {}
    for line in node.file(path).content_string.splitlines():
        words = line.split()
        if len(words) >= 2 and not words[0].startswith("#"):
            values[words[0]] = words[1]  # the last one wins, as in shadow
    return values


def test_login_defs_holds_the_settings_and_keeps_the_distributions_copy(node):
    values = login_defs(node)
    for key, value in DEFAULTS["hardening_login_defs_settings"].items():
        assert values[key] == str(value), key
    assert values["UMASK"] == DEFAULTS["hardening_umask_value"]
    distrib = login_defs(node, "/etc/oce/login.defs.distrib")
    assert distrib["UMASK"] == "022" and distrib["PASS_MIN_DAYS"] == "0"


@pytest.fixture(scope="module")
def oce(node):
    """The user cloud-init makes on a cloud node, made after the hardening as there: useradd,
    password locked, key login, sudo without a password."""
    node.run_expect([0, 9], "useradd --create-home --shell /bin/bash oce")
    node.run_expect([0], "passwd --lock oce")
    node.run_expect([0], "echo 'oce ALL=(ALL) NOPASSWD:ALL' > %s && chmod 0440 %s", OCE_SUDOERS, OCE_SUDOERS)
    node.run_expect([0], "test -f %s || ssh-keygen -q -t ed25519 -N '' -f %s", OCE_KEY, OCE_KEY)
    node.run_expect(
        [0],
        "install -d -m 0700 -o oce -g oce ~oce/.ssh && install -m 0600 -o oce -g oce %s ~oce/.ssh/authorized_keys",
        OCE_KEY + ".pub",
    )
    return "oce"


def ssh_as_oce(node, command):
    return node.run(
        "ssh -i %s -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
        "-o ConnectTimeout=5 oce@127.0.0.1 %s",
        OCE_KEY,
        command,
    )


def test_oce_logs_in_with_a_key_and_runs_sudo(node, oce):
    # A login shell: pam_limits (sshd) set the core limit, /etc/profile.d the umask.
    result = ssh_as_oce(node, "bash -lc 'umask; ulimit -Hc; ulimit -Sc; sudo -n id -u'")
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == ["0027", "0", "0", "0"]
    # The banner comes first, on stderr; key login and sudo work.
    assert BANNER.splitlines()[0] in result.stderr


def test_accounts_made_now_do_not_expire_and_keep_their_home_private(node, oce):
    # PASS_MAX_DAYS 99999: a key login of a locked account is never expired by pam_unix.
    aging = dict(
        (name.strip(), value.strip())
        for name, value in (line.split(":", 1) for line in node.check_output("chage --list oce").splitlines())
    )
    assert aging["Password expires"] == "never", aging
    assert aging["Minimum number of days between password change"] == "1", aging
    assert node.file("/home/oce").mode == 0o750  # useradd: HOME_MODE from UMASK 027


def test_audit_rules_are_written_and_merged(node):
    rules = node.file("/etc/audit/rules.d/50-oce-hardening.rules").content_string.splitlines()
    merged = node.file("/etc/audit/audit.rules").content_string.splitlines()
    for watch in DEFAULTS["hardening_auditd_watches"]:
        line = "-w %s -p %s -k %s" % (watch["path"], watch.get("perms", "wa"), watch["key"])
        assert line in rules and line in merged, line
    # augenrules: /etc/audit/audit.rules is what rules.d gives.
    assert "No change" in node.check_output("augenrules --check 2>&1")
    auditd = node.service("auditd.service")
    assert auditd.is_enabled
    if in_container(node):
        # systemd skips it (the drop-in's condition) rather than failing it over and over.
        shown = node.check_output("systemctl show --property=ActiveState,ConditionResult auditd.service")
        assert shown.splitlines() == ["ActiveState=inactive", "ConditionResult=no"], shown
        assert "auditd" not in node.check_output("systemctl list-units --failed --plain --no-legend")
    else:
        assert auditd.is_running
        loaded = node.check_output("auditctl -l")
        assert "-w /etc/shadow -p wa -k identity" in loaded


# The listed files Debian 12's base image has with a setuid or setgid bit.
SETID_ON_DEBIAN = {
    "/usr/bin/chage": "2755",
    "/usr/bin/chfn": "4755",
    "/usr/bin/chsh": "4755",
    "/usr/bin/expiry": "2755",
    "/usr/bin/gpasswd": "4755",
    "/usr/bin/newgrp": "4755",
    "/usr/bin/mount": "4755",
    "/usr/bin/umount": "4755",
    "/usr/lib/openssh/ssh-keysign": "4755",
}


def test_setuid_bits_the_node_does_not_need_are_gone_for_good(node):
    for path in DEFAULTS["hardening_suid_sgid_remove"]:
        if node.file(path).exists:
            assert node.file(path).mode & 0o6000 == 0, path
    # dpkg keeps them off across upgrades (its override has the new mode); the record holds the
    # original mode, owner and group that hardening_state=absent gives back.
    overrides = {
        line.split()[3]: line.split()[2] for line in node.check_output("dpkg-statoverride --list").splitlines()
    }
    record = {
        line.split()[3]: line.split()[0] for line in node.file("/etc/oce/setid-removed").content_string.splitlines()
    }
    assert record == SETID_ON_DEBIAN
    assert {path: overrides.get(path) for path in SETID_ON_DEBIAN} == dict.fromkeys(SETID_ON_DEBIAN, "755")
    for path in ("/usr/bin/sudo", "/usr/bin/su", "/usr/bin/passwd"):
        assert node.file(path).mode & 0o4000, path


def test_time_sync_is_left_to_the_host_in_a_container(node):
    if not in_container(node):
        assert node.check_output("timedatectl show --property=NTP") == "NTP=yes"
        return
    # Neither installed nor configured: the clock of a container is its host's.
    assert node.run("test -e /lib/systemd/systemd-timesyncd -o -e /usr/sbin/chronyd").rc != 0
    assert not node.file("/etc/systemd/timesyncd.conf.d/50-oce-hardening.conf").exists


def test_banner_is_shown_on_the_console_and_by_sshd(node):
    for path in ("/etc/issue", "/etc/issue.net"):
        assert node.file(path).content_string == BANNER + "\n", path
        # The distribution's file is set aside by dpkg, not overwritten.
        assert node.check_output("dpkg-divert --listpackage %s", path) == "LOCAL"
        assert node.file(path + ".distrib").content_string.startswith("Debian GNU/Linux")
    assert "banner /etc/issue.net" in node.check_output("sshd -T").splitlines()


def test_a_service_tied_to_the_firewall_stops_with_it_and_brings_it_back(node):
    """hardening_firewall_required_by (converge.yml's stand-in for ollama.service): Requires= and
    After= on the firewall's unit, so stopping the firewall stops it, and starting it starts the
    firewall first."""
    guarded = "oce-molecule-guarded.service"
    shown = node.check_output("systemctl show --property=Requires --property=After %s" % guarded)
    tied = [line.split("=")[0] for line in shown.splitlines() if "oce-firewall.service" in line]
    assert tied == ["Requires", "After"]
    assert node.service(guarded).is_running
    node.run_expect([0], "systemctl stop oce-firewall.service")
    try:
        assert not node.service(guarded).is_running
    finally:
        node.run_expect([0], "systemctl start %s" % guarded)
    assert node.service("oce-firewall.service").is_running
    assert "policy drop;" in node.check_output("nft list chain inet oce_filter input")


# --- last: a reboot (the listeners above do not survive it) ---


def test_firewall_comes_back_after_a_reboot(node):
    subprocess.run(["podman", "restart", "-t", "5", NODE], check=True, capture_output=True)
    for _ in range(120):
        state = node.run("systemctl is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(0.5)
    else:
        pytest.fail("the node did not finish booting after a restart: %s" % state)
    assert node.service("oce-firewall.service").is_running
    chain = node.check_output("nft list chain inet oce_filter input")
    assert "policy drop;" in chain and "tcp dport 8081 accept" in chain
