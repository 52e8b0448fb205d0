"""The golden images install the NVIDIA driver with the nvidia_driver role, as the nodes do: Packer
passes only inputs the role knows, image.yml runs it first for a GPU-less builder that must not
reboot, the sources Packer accepts are the role's, and the old shell script is gone."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
PACKER = ROOT / "packer"
ROLE = ROOT / "roles" / "nvidia_driver"


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def role_options():
    return load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_each_build_passes_the_driver_inputs_the_role_knows(cloud):
    text = (PACKER / ("%s.pkr.hcl" % cloud)).read_text() + (PACKER / "variables.pkr.hcl").read_text()
    passed = dict(re.findall(r"\b(nvidia_driver_[a-z_]+)=(\S+?)[\s\"]", text))
    assert set(passed) == {
        "nvidia_driver_source",
        "nvidia_driver_kernel_flavour",
        "nvidia_driver_branch",
        "nvidia_driver_flavor",
        "nvidia_driver_fabric_manager",
    }
    assert set(passed) <= set(role_options())
    assert passed["nvidia_driver_source"] == "${var.%s_nvidia_driver_source}" % cloud
    assert passed["nvidia_driver_kernel_flavour"] == cloud
    # The driver now comes from the role: no build runs a driver script any more.
    assert "nvidia-driver.sh" not in text
    assert "driver_env" not in text


def test_the_script_is_gone():
    assert not (PACKER / "scripts" / "nvidia-driver.sh").exists()
    for path in PACKER.rglob("*"):
        if path.is_file():
            assert "nvidia-driver.sh" not in path.read_text(), path


def test_image_playbook_runs_the_role_first_for_a_builder_without_gpu_that_never_reboots():
    (play,) = load(PACKER / "image.yml")
    roles = play["roles"]
    assert [r["role"] for r in roles][:2] == ["ollama_cloud.engine.nvidia_driver", "ollama_cloud.engine.ollama"]
    assert roles[0]["vars"] == {
        "nvidia_driver_state": "present",
        "nvidia_driver_install_without_gpu": True,
        "nvidia_driver_reboot": False,
    }
    assert play["become"] is True


def test_packer_accepts_exactly_the_role_sources_and_flavors():
    variables = (PACKER / "variables.pkr.hcl").read_text()
    options = role_options()

    def allowed(name):
        match = re.search(r"contains\(\[([^\]]*)\], var\.%s\)" % name, variables)
        assert match, name
        return re.findall(r'"([^"]+)"', match.group(1))

    for name in ("aws_nvidia_driver_source", "gcp_nvidia_driver_source"):
        assert allowed(name) == options["nvidia_driver_source"]["choices"]
    assert allowed("nvidia_driver_flavor") == options["nvidia_driver_flavor"]["choices"]
    # Packer's branch rule is the role's: three digits, 550 or later.
    assert '"^[0-9]{3}$"' in variables and ">= 550" in variables


def test_validation_script_still_checks_what_the_role_promises():
    script = (PACKER / "scripts" / "validate.sh").read_text()
    for promise in ("nvidia-persistenced.service", "/etc/modules-load.d/nvidia-uvm.conf", "kernel_held", "driver_held"):
        assert promise in script
    role_vars = load(ROLE / "vars" / "main.yml")
    assert role_vars["__nvidia_driver_modules_load"] == "/etc/modules-load.d/nvidia-uvm.conf"


@pytest.mark.parametrize("cloud", ["aws", "gcp"])
def test_every_extra_var_is_one_shell_word(cloud):
    # packer-plugin-ansible's ansible-local joins extra_arguments with spaces into a shell command,
    # unquoted: "a=1 b=2" after one --extra-vars would make b=2 a second playbook.
    text = (PACKER / ("%s.pkr.hcl" % cloud)).read_text() + (PACKER / "variables.pkr.hcl").read_text()
    values = re.findall(r'"--extra-vars",\s*"((?:[^"\\$]|\$\{[^}]*\})*)"', text)
    assert len(values) >= 12
    # One vars file, by its path in the collection installed on the builder.
    files = [v for v in values if v.startswith("@")]
    assert files == [
        "@/usr/share/ansible/collections/ansible_collections/ollama_cloud/engine/playbooks/vars/cloud_node.yml"
    ]
    values = [v for v in values if not v.startswith("@")]
    for value in values:
        # An interpolation renders a variable that variables.pkr.hcl checks (or a bool).
        assert re.fullmatch(r"[a-z_]+=\S*", re.sub(r"\$\{[^}]*\}", "V", value)), value
    names = [v.split("=", 1)[0] for v in values]
    assert len(names) == len(set(names)), "a variable is passed twice"
    assert {"cloud", "ollama_gpu", "monitoring_agent_gpu", "nvidia_driver_source"} <= set(names)
