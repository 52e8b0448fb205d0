"""Every node module fails in the one shape of node_module.NodeModule: msg, changed, retries, details.

A cloud whose client cannot be made (connect raises a CloudError with a code and the raw ``last``
resource) and a missing SDK, for each module: the same keys, ``last`` never.
"""

from __future__ import annotations

import importlib
import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.ollama_cloud.engine.plugins.module_utils import aws, cloud, gcp, podman

NODE = {"name": "n1", "deployment": "demo", "state": "absent"}

# module: (its cloud's module_utils, the connect functions to break, arguments that pass the input checks)
MODULES = {
    "aws_gpu_instance": (aws, ["connect"], dict(NODE, region="us-east-1")),
    "aws_gpu_instance_info": (aws, ["connect"], {"region": "us-east-1"}),
    "aws_image_prune": (aws, ["connect"], {"region": "us-east-1"}),
    "aws_network": (
        aws,
        ["connect"],
        {"region": "us-east-1", "deployment": "demo", "zones": ["us-east-1a", "us-east-1b"]},
    ),
    "aws_node_identity": (aws, ["connect"], {"region": "us-east-1", "deployment": "demo"}),
    "aws_node_monitoring": (aws, ["connect"], {"region": "us-east-1", "deployment": "demo"}),
    "aws_price_info": (aws, ["connect"], {"region": "us-east-1", "instance_types": ["g5.xlarge"]}),
    "gcp_gpu_instance": (gcp, ["connect"], dict(NODE, project="p")),
    "gcp_gpu_instance_info": (gcp, ["connect"], {"project": "my-project"}),
    "gcp_image_prune": (gcp, ["connect"], {"project": "my-project"}),
    "gcp_network": (gcp, ["connect"], {"project": "my-project", "deployment": "demo", "region": "europe-west4"}),
    "gcp_node_identity": (gcp, ["connect_apis"], {"project": "my-project", "deployment": "demo"}),
    "local_node": (podman, ["connect"], dict(NODE)),
    "local_node_info": (podman, ["connect"], {}),
}

SDK_FLAG = {aws: "HAS_BOTO3", gcp: "HAS_GOOGLE_AUTH", podman: "HAS_SDK"}


def run(name, args, capsys):
    module = importlib.import_module(f"ansible_collections.ollama_cloud.engine.plugins.modules.{name}")
    with patch_module_args(args), pytest.raises(SystemExit) as e:
        module.main()
    return e.value.code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_cloud_error_fails_with_the_message_the_details_and_the_retries(name, monkeypatch, capsys):
    lib, connects, args = MODULES[name]

    def refuse(*_args, **_kwargs):
        raise cloud.CloudError("the cloud said no: ask the account owner", code="Denied", last={"raw": "resource"})

    for attr in connects:
        monkeypatch.setattr(lib, attr, refuse)
    rc, res = run(name, args, capsys)
    assert rc == 1 and res["failed"] is True
    assert res["msg"].startswith("the cloud said no: ask the account owner"), res
    assert res["changed"] is False and res["retries"] == [] and res["code"] == "Denied", res
    assert "last" not in res
    # Nothing but the shape (and what a module tells of its partial work) is in the result.
    assert set(res) - {"invocation", "actions"} == {"failed", "msg", "changed", "retries", "code"}, res


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_missing_sdk_fails_alike(name, monkeypatch, capsys):
    lib, _connects, args = MODULES[name]
    monkeypatch.setattr(lib, SDK_FLAG[lib], False)
    rc, res = run(name, args, capsys)
    assert rc == 1 and res["changed"] is False and res["retries"] == []
    assert "is required" in res["msg"] or "Failed to import" in res["msg"], res
