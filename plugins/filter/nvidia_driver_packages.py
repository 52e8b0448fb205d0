# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: nvidia_driver_packages
short_description: The Ubuntu packages of an NVIDIA driver branch, from NVIDIA's CUDA repository or Canonical
version_added: 0.1.0
description:
  - Names the packages that install an NVIDIA driver branch on Ubuntu 22.04 or 24.04, for the
    C(nvidia_driver) role.
  - V(cuda-repo) is NVIDIA's CUDA repository (added through C(cuda-keyring)). From branch 590 on its
    packages carry no branch in their names and a pinning package, C(nvidia-driver-pinning-<branch>),
    keeps them on one branch; it must be installed before the driver. Older branches have
    branch-named packages (C(nvidia-open-580), C(cuda-drivers-580), C(nvidia-fabricmanager-580)).
    Which scheme applies depends on whether the repository has the pinning package, so the caller
    says so with O(pinning). The kernel modules are built by DKMS, which needs the kernel's headers.
  - V(ubuntu-signed) is Canonical's signed, precompiled modules for exactly one kernel
    (C(linux-modules-nvidia-<branch>-server[-open]-<kernel>)) with the headless user space without
    DKMS and C(nvidia-utils); the only choice where Secure Boot is on.
  - V(none) installs nothing.
positional: _input
options:
  _input:
    description: The source, V(cuda-repo), V(ubuntu-signed) or V(none).
    type: str
    required: true
  branch:
    description: The driver branch, three digits, 550 or later.
    type: str
    required: true
  flavor:
    description: V(open) (NVIDIA's open kernel modules, Turing and newer) or V(proprietary).
    type: str
    default: open
  kernel:
    description: The kernel release the modules are for (C(uname -r)), such as C(6.8.0-1015-aws).
    type: str
    required: true
  fabric_manager:
    description: Add NVIDIA Fabric Manager (NVSwitch machines; V(cuda-repo) only).
    type: bool
    default: false
  pinning:
    description: Whether NVIDIA's repository has C(nvidia-driver-pinning-<branch>) (only for V(cuda-repo)).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Name the packages of branch 580 from NVIDIA's repository
  ansible.builtin.set_fact:
    packages: >-
      {{ 'cuda-repo' | ollama_cloud.engine.nvidia_driver_packages(branch='580', kernel=ansible_facts['kernel'],
                                                                  pinning=pinning_probe.rc == 0) }}
"""

RETURN = r"""
_value:
  description: What to install, in order.
  type: dict
  contains:
    prerequisites:
      description: Installed first (the DKMS build needs the kernel's headers; the key check needs gnupg).
      type: list
      elements: str
    pinning:
      description: The pinning package, installed before the driver; empty for branch-named packages.
      type: list
      elements: str
    driver:
      description: The driver packages.
      type: list
      elements: str
    services:
      description: The systemd units the packages bring that must be enabled.
      type: list
      elements: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

SOURCES = ("cuda-repo", "ubuntu-signed", "none")
FLAVORS = ("open", "proprietary")
MIN_BRANCH = 550
# A kernel release as uname -r prints it; it becomes part of a package name.
KERNEL_RE = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?-[0-9]+-[a-z][a-z0-9-]*$")


def _flag(value, name):
    try:
        return boolean(value, strict=True)
    except TypeError as e:
        raise AnsibleFilterError("nvidia_driver_packages: %s must be true or false, not %r" % (name, value)) from e


def nvidia_driver_packages(source, branch=None, flavor="open", kernel=None, fabric_manager=False, pinning=False):
    if source not in SOURCES:
        raise AnsibleFilterError("the NVIDIA driver source must be one of %s, not %r" % (", ".join(SOURCES), source))
    result = {"prerequisites": [], "pinning": [], "driver": [], "services": []}
    fabric_manager = _flag(fabric_manager, "fabric_manager")
    pinning = _flag(pinning, "pinning")
    if source == "none":
        return result

    branch = str(branch if branch is not None else "")
    if not re.match(r"^[0-9]{3}$", branch) or int(branch) < MIN_BRANCH:
        raise AnsibleFilterError(
            "the NVIDIA driver branch must be three digits, %d or later (Ollama's minimum), not %r"
            % (MIN_BRANCH, branch)
        )
    if flavor not in FLAVORS:
        raise AnsibleFilterError("the NVIDIA driver flavor must be open or proprietary, not %r" % (flavor,))
    if not kernel or not KERNEL_RE.match(str(kernel)):
        raise AnsibleFilterError("a kernel release such as 6.8.0-1015-aws is needed, not %r" % (kernel,))

    result["services"].append("nvidia-persistenced.service")
    if source == "cuda-repo":
        # From 590 on the names carry no branch and the pinning package locks one branch.
        suffix = "" if pinning else "-" + branch
        result["prerequisites"] = ["ca-certificates", "gnupg", "linux-headers-%s" % kernel]
        if pinning:
            result["pinning"] = ["nvidia-driver-pinning-%s" % branch]
        result["driver"] = [("nvidia-open" if flavor == "open" else "cuda-drivers") + suffix]
        if fabric_manager:
            result["driver"].append("nvidia-fabricmanager" + suffix)
            result["services"].append("nvidia-fabricmanager.service")
        return result

    if fabric_manager:
        raise AnsibleFilterError(
            "NVIDIA Fabric Manager comes only from NVIDIA's CUDA repository (source cuda-repo), "
            "matching its driver exactly; it cannot go with ubuntu-signed"
        )
    open_suffix = "-open" if flavor == "open" else ""
    result["driver"] = [
        "linux-modules-nvidia-%s-server%s-%s" % (branch, open_suffix, kernel),
        "nvidia-headless-no-dkms-%s-server%s" % (branch, open_suffix),
        "nvidia-utils-%s-server" % branch,
    ]
    return result


class FilterModule:
    def filters(self):
        return {"nvidia_driver_packages": nvidia_driver_packages}
