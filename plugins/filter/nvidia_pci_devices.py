# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nvidia_pci_devices
short_description: Find NVIDIA GPUs and NVSwitches in a list of PCI devices read from sysfs
version_added: 0.1.0
description:
  - Takes one line per PCI device, C(<address> <vendor> <device> <class>), as read from
    C(/sys/bus/pci/devices/*/{vendor,device,class}), and returns the NVIDIA devices that matter to
    the driver.
  - A GPU is a device of vendor C(0x10de) whose class is a display controller, VGA (C(0x0300xx))
    or 3D controller (C(0x0302xx), the class of datacenter GPUs such as the T4, A10G, L4, A100 and
    H100).
  - An NVSwitch is a device of vendor C(0x10de) of class C(0x0680xx) (bridge, other), found on the machines
    that need NVIDIA Fabric Manager (p4d, p5, a2-megagpu, a3).
  - Other devices (NVIDIA's HDMI audio function, other vendors' controllers) and lines that are not
    four fields of hexadecimal numbers are left out.
positional: _input
options:
  _input:
    description: Lines C(<address> <vendor> <device> <class>), for example C(0000:00:1e.0 0x10de 0x1eb8 0x030200).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Read the PCI devices
  ansible.builtin.shell: |
    for dev in /sys/bus/pci/devices/*; do
      [ -r "$dev/vendor" ] && [ -r "$dev/class" ] || continue
      echo "${dev##*/} $(cat "$dev/vendor") $(cat "$dev/device") $(cat "$dev/class")"
    done
  register: pci
  changed_when: false

- name: Count the GPUs
  ansible.builtin.debug:
    msg: "{{ (pci.stdout_lines | ollama_cloud.engine.nvidia_pci_devices).gpus | length }} NVIDIA GPU(s)"
"""

RETURN = r"""
_value:
  description: The NVIDIA GPUs and NVSwitches found, in the order of the input.
  type: dict
  contains:
    gpus:
      description: One dict per GPU with C(address), C(device) (PCI device id) and C(class).
      type: list
      elements: dict
    nvswitches:
      description: One dict per NVSwitch, with the same keys.
      type: list
      elements: dict
"""

from ansible.errors import AnsibleFilterError

NVIDIA_VENDOR = 0x10DE
# PCI base class + subclass (the class file is 0xCCSSPP: class, subclass, programming interface).
GPU_CLASSES = (0x0300, 0x0302)  # VGA compatible controller, 3D controller
NVSWITCH_CLASS = 0x0680  # bridge, other


def _hex(value):
    try:
        return int(value, 16)
    except (TypeError, ValueError):
        return None


def nvidia_pci_devices(lines):
    if lines is None:
        lines = []
    if isinstance(lines, str):
        lines = lines.splitlines()
    if not isinstance(lines, (list, tuple)):
        raise AnsibleFilterError("nvidia_pci_devices expects a list of lines, not %s" % type(lines).__name__)
    found = {"gpus": [], "nvswitches": []}
    for line in lines:
        fields = str(line).split()
        if len(fields) != 4:
            continue
        address, vendor, device, pci_class = fields
        vendor_id, device_id, class_id = _hex(vendor), _hex(device), _hex(pci_class)
        if vendor_id != NVIDIA_VENDOR or class_id is None:
            continue
        entry = {
            "address": address,
            "device": "0x%04x" % device_id if device_id is not None else device.lower(),
            "class": "0x%06x" % class_id,
        }
        if class_id >> 8 in GPU_CLASSES:
            found["gpus"].append(entry)
        elif class_id >> 8 == NVSWITCH_CLASS:
            found["nvswitches"].append(entry)
    return found


class FilterModule:
    def filters(self):
        return {"nvidia_pci_devices": nvidia_pci_devices}
