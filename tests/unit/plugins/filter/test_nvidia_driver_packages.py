"""The package names of each driver source, branch scheme, flavour, kernel and Fabric Manager choice."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ollama_cloud.engine.plugins.filter.nvidia_driver_packages import nvidia_driver_packages

AWS_KERNEL = "6.8.0-1015-aws"
GCP_KERNEL = "5.15.0-1067-gcp"


def test_cuda_repo_from_590_pins_the_branch_and_names_no_branch():
    plan = nvidia_driver_packages("cuda-repo", branch="590", flavor="open", kernel=AWS_KERNEL, pinning=True)
    assert plan == {
        "prerequisites": ["ca-certificates", "gnupg", "linux-headers-6.8.0-1015-aws"],
        "pinning": ["nvidia-driver-pinning-590"],
        "driver": ["nvidia-open"],
        "services": ["nvidia-persistenced.service"],
    }


def test_cuda_repo_older_branch_uses_branch_named_packages():
    plan = nvidia_driver_packages("cuda-repo", branch="580", flavor="open", kernel=AWS_KERNEL, pinning=False)
    assert plan["pinning"] == []
    assert plan["driver"] == ["nvidia-open-580"]
    assert plan["prerequisites"][-1] == "linux-headers-6.8.0-1015-aws"


@pytest.mark.parametrize(
    "pinning, driver",
    [(True, ["cuda-drivers"]), (False, ["cuda-drivers-570"])],
)
def test_cuda_repo_proprietary_flavor_is_cuda_drivers(pinning, driver):
    plan = nvidia_driver_packages("cuda-repo", branch="570", flavor="proprietary", kernel=AWS_KERNEL, pinning=pinning)
    assert plan["driver"] == driver


@pytest.mark.parametrize(
    "pinning, driver",
    [
        (True, ["nvidia-open", "nvidia-fabricmanager"]),
        (False, ["nvidia-open-580", "nvidia-fabricmanager-580"]),
    ],
)
def test_fabric_manager_follows_the_driver_naming_and_is_a_service(pinning, driver):
    plan = nvidia_driver_packages("cuda-repo", branch="580", kernel=AWS_KERNEL, fabric_manager=True, pinning=pinning)
    assert plan["driver"] == driver
    assert plan["services"] == ["nvidia-persistenced.service", "nvidia-fabricmanager.service"]


def test_fabric_manager_accepts_the_strings_extra_vars_bring():
    # Packer passes nvidia_driver_fabric_manager=true on the command line: a string.
    plan = nvidia_driver_packages("cuda-repo", branch="580", kernel=AWS_KERNEL, fabric_manager="true", pinning="false")
    assert plan["driver"] == ["nvidia-open-580", "nvidia-fabricmanager-580"]


HEADLESS = "nvidia-headless-no-dkms-580-server"


@pytest.mark.parametrize(
    "kernel, flavor, modules, headless",
    [
        (AWS_KERNEL, "open", "linux-modules-nvidia-580-server-open-6.8.0-1015-aws", HEADLESS + "-open"),
        (AWS_KERNEL, "proprietary", "linux-modules-nvidia-580-server-6.8.0-1015-aws", HEADLESS),
        (GCP_KERNEL, "open", "linux-modules-nvidia-580-server-open-5.15.0-1067-gcp", HEADLESS + "-open"),
        (GCP_KERNEL, "proprietary", "linux-modules-nvidia-580-server-5.15.0-1067-gcp", HEADLESS),
    ],
)
def test_ubuntu_signed_names_the_kernels_precompiled_modules(kernel, flavor, modules, headless):
    plan = nvidia_driver_packages("ubuntu-signed", branch="580", flavor=flavor, kernel=kernel)
    assert plan == {
        "prerequisites": [],
        "pinning": [],
        "driver": [modules, headless, "nvidia-utils-580-server"],
        "services": ["nvidia-persistenced.service"],
    }


def test_ubuntu_signed_ignores_the_repository_pinning():
    plan = nvidia_driver_packages("ubuntu-signed", branch="590", kernel=GCP_KERNEL, pinning=True)
    assert plan["pinning"] == [] and plan["driver"][0] == "linux-modules-nvidia-590-server-open-5.15.0-1067-gcp"


def test_fabric_manager_is_refused_with_ubuntu_signed():
    with pytest.raises(AnsibleFilterError, match="Fabric Manager comes only from NVIDIA's CUDA repository"):
        nvidia_driver_packages("ubuntu-signed", branch="580", kernel=GCP_KERNEL, fabric_manager=True)


def test_none_installs_nothing_whatever_else_is_set():
    empty = {"prerequisites": [], "pinning": [], "driver": [], "services": []}
    assert nvidia_driver_packages("none") == empty
    assert nvidia_driver_packages("none", branch="bad", kernel="", fabric_manager=True) == empty


@pytest.mark.parametrize("branch", ["535", "549", "58", "5800", "58O", "", None, "latest"])
def test_branches_below_550_or_not_three_digits_are_refused(branch):
    with pytest.raises(AnsibleFilterError, match="three digits, 550 or later"):
        nvidia_driver_packages("cuda-repo", branch=branch, kernel=AWS_KERNEL)


def test_branch_550_and_an_integer_branch_are_accepted():
    assert nvidia_driver_packages("cuda-repo", branch="550", kernel=AWS_KERNEL)["driver"] == ["nvidia-open-550"]
    assert nvidia_driver_packages("cuda-repo", branch=580, kernel=AWS_KERNEL)["driver"] == ["nvidia-open-580"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"source": "runfile"}, "must be one of cuda-repo, ubuntu-signed, none"),
        ({"flavor": "closed"}, "open or proprietary"),
        ({"kernel": ""}, "a kernel release such as"),
        ({"kernel": "6.8.0-1015-aws; rm -rf /"}, "a kernel release such as"),
        ({"fabric_manager": "maybe"}, "fabric_manager must be true or false"),
    ],
)
def test_bad_inputs_are_refused_with_a_sentence(kwargs, message):
    args = {"source": "cuda-repo", "branch": "580", "kernel": AWS_KERNEL} | kwargs
    source = args.pop("source")
    with pytest.raises(AnsibleFilterError, match=message):
        nvidia_driver_packages(source, **args)
