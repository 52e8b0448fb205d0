"""NVIDIA GPUs and NVSwitches found the FACTS way: vendor 0x10de, class 0x0300xx / 0x0302xx / 0x0680xx."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ollama_cloud.engine.plugins.filter.nvidia_pci_devices import nvidia_pci_devices

# What the role's probe prints on a p4d-like machine: host bridge, NICs, GPUs, NVSwitches, audio.
P4D = [
    "0000:00:00.0 0x8086 0x1237 0x060000",
    "0000:00:05.0 0x1d0f 0xefa1 0x020000",
    "0000:10:1c.0 0x10de 0x20b0 0x030200",
    "0000:10:1d.0 0x10de 0x20b0 0x030200",
    "0000:a0:1c.0 0x10de 0x1af1 0x068000",
    "0000:a0:1d.0 0x10de 0x1af1 0x068000",
]


def test_datacenter_gpus_and_nvswitches():
    found = nvidia_pci_devices(P4D)
    assert found["gpus"] == [
        {"address": "0000:10:1c.0", "device": "0x20b0", "class": "0x030200"},
        {"address": "0000:10:1d.0", "device": "0x20b0", "class": "0x030200"},
    ]
    assert [d["address"] for d in found["nvswitches"]] == ["0000:a0:1c.0", "0000:a0:1d.0"]


def test_vga_gpu_counts_and_its_audio_function_does_not():
    found = nvidia_pci_devices(["0000:01:00.0 0x10de 0x1eb8 0x030000", "0000:01:00.1 0x10de 0x10f8 0x040300"])
    assert found == {"gpus": [{"address": "0000:01:00.0", "device": "0x1eb8", "class": "0x030000"}], "nvswitches": []}


def test_other_vendors_display_controllers_are_not_nvidia_gpus():
    # An AMD 3D controller and a virtio VGA: right class, wrong vendor.
    found = nvidia_pci_devices(["0000:00:02.0 0x1002 0x740f 0x030200", "0000:00:01.0 0x1af4 0x1050 0x030000"])
    assert found == {"gpus": [], "nvswitches": []}


def test_classes_next_to_the_gpu_ones_do_not_match():
    # 0x0301xx (XGA) and 0x0380xx (other display) are not the classes FACTS names.
    found = nvidia_pci_devices(["a 0x10de 0x1 0x030100", "b 0x10de 0x1 0x038000", "c 0x10de 0x1 0x0302ff"])
    assert [d["address"] for d in found["gpus"]] == ["c"]


def test_case_and_unreadable_device_id_are_tolerated_malformed_lines_skipped():
    found = nvidia_pci_devices(
        "0000:00:1e.0 0x10DE - 0x030200\n\nnot a device line\n0000:00:1f.0 0x10de 0x27b8 zz\n0000:00:1d.0 0x10de 0x27b8"
    )
    assert found["gpus"] == [{"address": "0000:00:1e.0", "device": "-", "class": "0x030200"}]


def test_nothing_found_on_an_empty_bus():
    assert nvidia_pci_devices([]) == {"gpus": [], "nvswitches": []}
    assert nvidia_pci_devices(None) == {"gpus": [], "nvswitches": []}


def test_refuses_what_is_not_lines():
    with pytest.raises(AnsibleFilterError, match="expects a list of lines"):
        nvidia_pci_devices({"gpus": []})
