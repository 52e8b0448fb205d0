"""The golden-image pipeline (packer/, .github/workflows/images.yml) restates no default of the
roles or of the collection's tested ansible-core, names each image so that no CPU image and no
image of the older Ubuntu release becomes the newest of the name GPU nodes boot, and leaves no
module-signing key in the image."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).parents[3]
PACKER = ROOT / "packer"
WORKFLOW = ROOT / ".github" / "workflows" / "images.yml"
VARIABLES = (PACKER / "variables.pkr.hcl").read_text()
HCL = {path.name: path.read_text() for path in PACKER.glob("*.pkr.hcl")}


def role_defaults(role):
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


def ansible_core_pin():
    (version,) = re.findall(r"(?m)^ansible-core==([^\s#]+)", (ROOT / "requirements-demo.txt").read_text())
    return version


def variable_block(name, text=VARIABLES):
    match = re.search(r'(?ms)^variable "%s" \{\n.*?^\}' % name, text)
    assert match, name
    return match.group(0)


def role_inputs():
    """local.role_inputs: {input name: the variable it reads}, and the roles whose defaults it reads."""
    match = re.search(
        r"role_inputs = \{ for name, value in \{(.*?)\} : "
        r'name => value != "" \? value : local\.role_defaults\[name\] \}',
        VARIABLES,
        flags=re.S,
    )
    assert match, "local.role_inputs: an empty input takes its role's default"
    inputs = dict(re.findall(r"(\w+)\s*=\s*var\.(\w+)", match.group(1)))
    (roles,) = re.findall(r"role_defaults = merge\(\[for role in \[([^\]]*)\] :", VARIABLES)
    assert 'file("${local.repository}/roles/${role}/defaults/main.yml")' in VARIABLES
    return inputs, re.findall(r'"(\w+)"', roles)


def test_every_role_input_defaults_to_its_role():
    inputs, roles = role_inputs()
    assert set(inputs) == {
        "ollama_version",
        "ollama_checksum",
        "tailscale_version",
        "tailscale_checksum",
        "nvidia_driver_branch",
        "nvidia_driver_flavor",
    }
    defaults = {role: role_defaults(role) for role in roles}
    code = "\n".join(HCL.values())
    for name, variable in inputs.items():
        assert variable == name
        # Empty by default, so the role's default applies; the validation lets empty through.
        block = variable_block(name)
        assert re.search(r'default\s*=\s*""\n', block), name
        assert re.search(r'condition\s*=\s*var\.%s == "" \|\|' % name, block), name
        # Exactly one role defines it, as a literal Packer can pass as one shell word (not Jinja).
        (value,) = [d[name] for d in defaults.values() if name in d]
        assert isinstance(value, str) and "{{" not in value, (name, value)
        assert re.fullmatch(r"[^\s\"'\\]*", value), (name, value)
        # Nothing reads the variable but the role input (and its own validation): no use bypasses
        # the role's default.
        assert len(re.findall(r"\bvar\.%s\b" % name, code.replace(block, ""))) == 1, name
        assert '"--extra-vars", "%s=${local.role_inputs.%s}"' % (name, name) in VARIABLES


def test_no_file_of_the_pipeline_restates_a_pinned_version():
    pins = {
        "ollama_version": role_defaults("ollama")["ollama_version"],
        "tailscale_version": role_defaults("tailscale")["tailscale_version"],
        "ansible-core": ansible_core_pin(),
    }
    files = [WORKFLOW, *(p for p in PACKER.rglob("*") if p.is_file())]
    for path in files:
        text = path.read_text()
        for what, version in pins.items():
            assert version not in text, "%s restates %s %s" % (path.relative_to(ROOT), what, version)


def test_ansible_core_on_runner_builder_and_ee_is_the_tested_release():
    pin = ansible_core_pin()
    # Packer: empty by default, then the version its regex finds in requirements-demo.txt.
    assert re.search(r'default\s*=\s*""\n', variable_block("ansible_core_version"))
    (pattern,) = re.findall(r'regex\("([^"]+)", file\("\$\{local\.repository\}/requirements-demo\.txt"\)\)', VARIABLES)
    pattern = pattern.encode().decode("unicode_escape")  # HCL's "\\s" is the regex's \s
    assert re.search(pattern, (ROOT / "requirements-demo.txt").read_text()).group(1) == pin
    assert '"ANSIBLE_CORE_VERSION=${local.ansible_core_version}"' in VARIABLES
    # The workflow: each pip install of ansible-core asks requirements-demo.txt.
    workflow = yaml.safe_load(WORKFLOW.read_text())
    code = workflow["env"]["ANSIBLE_CORE_PIN"]
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ansible-core==%s" % pin
    runs = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    installs = [line for run in runs for line in run.splitlines() if "pip install" in line]
    assert [line for line in installs if "ansible-core" in line] == []
    assert sum('"$(python -c "$ANSIBLE_CORE_PIN")"' in line for line in installs) == 3
    # AWX's execution environment: ansible-builder takes a literal pin, so it is compared here.
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["dependencies"]["ansible_core"]["package_pip"] == "ansible-core==%s" % pin


def test_cleanup_removes_every_signing_key_validation_looks_for():
    cleanup = (PACKER / "scripts" / "cleanup.sh").read_text()
    validate = (PACKER / "scripts" / "validate.sh").read_text()
    (removed,) = [line.split()[2:] for line in cleanup.splitlines() if line.startswith("rm -f /var/lib/shim-signed")]
    (check,) = [line for line in validate.splitlines() if line.startswith("mok=")]
    checked = re.findall(r"compgen -G '([^']+)'", check)
    # Ubuntu's dkms signs with update-secureboot-policy's key; upstream dkms keeps its own.
    assert sorted(removed) == sorted(checked) == ["/var/lib/dkms/mok.*", "/var/lib/shim-signed/mok/MOK.*"]


# ------------------------------------------------------------------ evaluated by Packer itself


def packer_env():
    """The environment of rig/packer-check's Packer (built by rig/packer-check, not by this test)."""
    out = subprocess.run([ROOT / "rig" / "packer-check", "--env"], capture_output=True, text=True, check=False)
    exports = dict(re.findall(r"^export (\w+)=(.*)$", out.stdout, flags=re.M))
    if out.returncode != 0 or "PATH" not in exports:
        pytest.skip("rig/packer-check --env failed: %s" % out.stderr.strip())
    bindir = exports["PATH"].split(":", 1)[0]
    if not os.access(os.path.join(bindir, "packer"), os.X_OK):
        pytest.skip("Packer is not built yet: run rig/packer-check")
    exports["PATH"] = "%s:%s" % (bindir, os.environ["PATH"])
    return {**os.environ, **exports}


@pytest.fixture(scope="module")
def evaluate():
    env = packer_env()

    def run(**variables):
        args = ["packer", "console", "-var-file=%s" % (PACKER / "example.pkrvars.hcl")]
        args += ["-var=%s=%s" % item for item in variables.items()]
        expression = (
            "jsonencode({image_name = local.image_name, image_id = local.image_id, role_inputs = local.role_inputs,"
            ' ansible = local.ansible_core_version, aws_image = local.aws_tags["oce-image"],'
            ' gcp_image = local.gcp_labels["oce-image"]})'
        )
        out = subprocess.run(
            [*args, str(PACKER)], input=expression, env=env, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    return run


@pytest.mark.parametrize(
    "variables, aws, gcp",
    [
        ({}, "ollama-node", "ollama-node"),
        ({"aws_nvidia_driver_source": "none"}, "ollama-node-cpu", "ollama-node"),
        (
            {"gcp_nvidia_driver_source": "none", "ubuntu_version": "22.04"},
            "ollama-node-ubuntu2204",
            "ollama-node-cpu-ubuntu2204",
        ),
        ({"image_name": "team-node"}, "team-node", "team-node"),
        ({"image_name": "team-node", "ubuntu_version": "22.04"}, "team-node-ubuntu2204", "team-node-ubuntu2204"),
        (
            {"image_name": "team-node", "aws_nvidia_driver_source": "none", "gcp_nvidia_driver_source": "none"},
            "team-node-cpu",
            "team-node-cpu",
        ),
    ],
)
def test_only_a_gpu_image_of_the_current_release_gets_the_bare_name(evaluate, variables, aws, gcp):
    got = evaluate(**variables)
    assert got["image_name"] == {"aws": aws, "gcp": gcp}
    assert (got["aws_image"], got["gcp_image"]) == (aws, gcp)
    release = "ubuntu" + variables.get("ubuntu_version", "24.04").replace(".", "")
    for source, name in got["image_name"].items():
        base = name.removesuffix("-ubuntu2204")
        assert re.fullmatch(r"%s-%s-\d{14}" % (re.escape(base), release), got["image_id"][source])


def test_the_longest_name_fits_gcp(evaluate):
    base = "a" * 33  # variables.pkr.hcl's longest image_name
    got = evaluate(image_name=base, ubuntu_version="22.04", gcp_nvidia_driver_source="none")
    assert len(got["image_id"]["gcp"]) == 63
    assert re.search(r'"\^\[a-z\]\[a-z0-9-\]\{0,32\}\$"', variable_block("image_name"))


def test_the_node_role_boots_the_default_gpu_image(evaluate):
    node = role_defaults("node")["node_image_name"]
    assert evaluate()["image_name"] == {"aws": node, "gcp": node}


def test_packer_passes_the_roles_defaults_unless_told_otherwise(evaluate):
    got = evaluate()
    roles = {**role_defaults("ollama"), **role_defaults("tailscale"), **role_defaults("nvidia_driver")}
    assert got["role_inputs"] == {name: roles[name] for name in got["role_inputs"]}
    assert got["ansible"] == ansible_core_pin()
    told = evaluate(ollama_version="0.30.1", nvidia_driver_branch="570", ansible_core_version="2.18.9")
    assert (told["role_inputs"]["ollama_version"], told["role_inputs"]["nvidia_driver_branch"]) == ("0.30.1", "570")
    assert told["ansible"] == "2.18.9"
