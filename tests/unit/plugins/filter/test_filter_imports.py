"""Loading the collection's filters imports none of the module_utils they call.

Ansible loads every filter file of the collection in each worker that templates any one of
them, so a module_utils a filter needs (and what it imports: urls, cryptography, the price
table) is imported when the filter is called, not when its file is loaded. Each filter still
works when called in a fresh process (its own tests call them in this one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

FILTER_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "plugins", "filter")
FILTERS = sorted(name[:-3] for name in os.listdir(FILTER_DIR) if name.endswith(".py") and name != "__init__.py")
PACKAGE = "ansible_collections.ollama_cloud.engine.plugins"

LOAD_ALL = (
    """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module("%s.filter." + name)
print(json.dumps(sorted(sys.modules)))
"""
    % PACKAGE
)

FIRST_BOOT = {
    "deployment": "demo",
    "node": "oce-demo",
    "cloud": "aws",
    "tailnet": {"key_secret": "s"},
    "tailscale": {"version": "1.96.5", "url": "https://example.invalid/t.tgz", "checksum": "sha256:" + "0" * 64},
}
# Each filter (named as its file) called with these arguments answers with this in its repr.
CALLS = {
    "first_boot_user_data": ((FIRST_BOOT, "ssh-ed25519 AAAA oce"), "#cloud-config"),
    "model_specs": ((["gemma3:270m"], "models.internal:5000"), "models.internal:5000/library/gemma3:270m"),
    "running_cost": (([{"state": "running", "hourly_cost": 1.0}],), "1 running node(s)"),
    "tailnet_peer": (("oce-demo", '{"Peer": {}}'), "oce-demo"),
    "tailnet_hostname": (("prod", "gpu1"), "oce-prod-gpu1"),
    "deployment_labels": (("demo", "dev", None, "marker"), "demo"),
    "deployment_names": (("demo",), "oce/demo/tailscale"),
    "deployment_owns": (({}, "demo"), "False"),
    "node_input_problems": (({"cloud": "gcp"},), "["),
    "node_probe_differs": (({"/e": {"type": "absent"}}, [{"dest": "/e", "content": "x"}]), "'mode': '0644'"),
}


def python(code, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_loading_every_filter_imports_no_module_utils_nor_urls():
    loaded = json.loads(python(LOAD_ALL, *FILTERS))
    assert [m for m in loaded if m.startswith(PACKAGE + ".filter.")] == [PACKAGE + ".filter." + f for f in FILTERS]
    heavy = [m for m in loaded if m.startswith(PACKAGE + ".module_utils.")]
    heavy += [m for m in loaded if m.split(".")[0] in ("cryptography", "boto3")]
    heavy += [m for m in ("ansible.module_utils.urls", "urllib.request", "http.client") if m in loaded]
    assert heavy == []


@pytest.mark.parametrize("module", sorted(CALLS))
def test_each_filter_imports_what_it_needs_when_called(module):
    args, expected = CALLS[module]
    code = "from %s.filter.%s import %s as f\nprint(repr(f(*%r)))" % (PACKAGE, module, module, args)
    assert expected in python(code)
