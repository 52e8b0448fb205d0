"""The node without a GPU, after converge, idempotence, check and every bad input, carries nothing of
the role; the fixture node's PCI tree is what the role was shown, and state=absent removed the
stand-in driver, its apt source and keyring and the holds on them and on the kernel, and nothing else."""

import pytest

MODULES_LOAD = "/etc/modules-load.d/nvidia-uvm.conf"
KEYRING = "/usr/share/keyrings/cuda-archive-keyring.gpg"
CUDA_SOURCE = "/etc/apt/sources.list.d/cuda-debian12-x86_64.list"
STAGING = "/var/cache/oce/nvidia-driver"
FIXTURE = "/opt/oce-test/sysfs/bus/pci/devices"


def kind_of(host):
    return host.backend.get_hostname().removeprefix("oce-molecule-nv-")


def only(host, kind):
    """Skip unless on this node."""
    if kind_of(host) != kind:
        pytest.skip("not on this node")
    return host


def status(host, package):
    """dpkg's two-letter status of a package ("ii", "hi", ...), or "" when dpkg does not know it."""
    result = host.run("dpkg-query -W -f='${db:Status-Abbrev}' %s", package)
    return result.stdout.strip() if result.rc == 0 else ""


def holds(host):
    return host.check_output("apt-mark showhold").split()


def test_plain_node_really_has_no_nvidia_device(host):
    host = only(host, "plain")
    # The premise of "no GPU": the role read the container's real sysfs, which has no NVIDIA device.
    vendors = host.run("cat /sys/bus/pci/devices/*/vendor").stdout.split()
    assert "0x10de" not in vendors


def test_plain_node_has_nothing_of_the_role(host):
    host = only(host, "plain")
    for path in (MODULES_LOAD, KEYRING, STAGING):
        assert not host.file(path).exists, path
    sources = host.check_output("ls -1 /etc/apt/sources.list.d").split()
    assert [s for s in sources if "cuda" in s or "nvidia" in s] == []
    assert holds(host) == []
    installed = host.run("dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\\n' '*nvidia*' 'cuda-*'")
    assert [line for line in installed.stdout.splitlines() if line[1:2] == "i"] == []


def test_fixture_tree_shows_one_datacenter_gpu(host):
    host = only(host, "gpu")
    # One command for the whole tree: "<address> <vendor> <class>" per device directory.
    listing = host.check_output('cd %s && for d in *; do echo "$d $(cat "$d/vendor") $(cat "$d/class")"; done', FIXTURE)
    devices = {address: (vendor, cls) for address, vendor, cls in (line.split() for line in listing.splitlines())}
    assert devices == {
        "0000:00:00.0": ("0x8086", "0x060000"),
        "0000:00:1e.0": ("0x10de", "0x030200"),
        "0000:00:1e.1": ("0x10de", "0x040300"),
    }


def test_absent_purged_the_driver_and_its_repository(host):
    host = only(host, "gpu")
    for package in ("nvidia-open-580", "libnvidia-compute-580", "cuda-keyring"):
        assert status(host, package) in ("", "un", "pn"), package
    for path in (CUDA_SOURCE, KEYRING, MODULES_LOAD, STAGING):
        assert not host.file(path).exists, path


def test_absent_released_the_kernel_but_kept_it(host):
    host = only(host, "gpu")
    assert status(host, "linux-image-cloud-amd64") == "ii"
    assert "linux-image-cloud-amd64" not in holds(host)


def test_absent_left_other_packages_and_their_holds_alone(host):
    host = only(host, "gpu")
    assert status(host, "oce-unrelated") == "hi"
    assert holds(host) == ["oce-unrelated"]
