# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The options every cloud's node module takes (module_utils/cloud.py NODE_ARGS), written once.
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Node name, the instance's C(Name) tag on AWS and the VM's name on GCP.
      - A DNS label (lowercase letters, digits and dashes, starting with a letter, at most 63), as every
        cloud and the tailnet accept; its tailnet hostname must be one too.
    type: str
    required: true
  deployment:
    description:
      - Deployment name, the node's C(oce-deployment) tag (AWS) or label (GCP), which marks it as ours.
        Lowercase letters, digits, dashes.
    type: str
    required: true
  state:
    description:
      - V(present) creates the node if missing (running) and leaves an existing one as it is.
      - V(running) and V(stopped) also start or stop it; V(absent) removes it with its boot disk.
    type: str
    choices: [present, running, stopped, absent]
    default: running
  model:
    description: Catalog model the node serves; required to create a node.
    type: str
  environment:
    description: The node's environment tag or label (dev, staging, prod).
    type: str
  catalog:
    description:
      - Catalog entries merged over the built-in catalog, C({models, instance_types}); see the
        P(ollama_cloud.engine.model_catalog#lookup) lookup for the shape (a model's C(gcp) list holds
        C({machine_type, accelerator, count, disk_type})). A malformed entry fails.
    type: dict
    default: {}
  key_secret:
    description:
      - Where the node reads its Tailscale auth key, C({source, name}), as its first boot reads it.
        C(source) is V(aws_secretsmanager) or V(aws_ssm) on AWS; V(gcp_secretmanager) on GCP, where
        C(name) is a secret id of the project or C(projects/P/secrets/S).
      - When given, a create checks before anything is created that the secret exists and has a
        current (AWS) or enabled latest (GCP) version; its value is never read.
    type: dict
    default: {}
    version_added: "0.3.0"
  capacity_wait:
    description:
      - Seconds a start of a stopped node keeps asking while its zone has no capacity for its type
        (AWS C(InsufficientInstanceCapacity), GCP C(ZONE_RESOURCE_POOL_EXHAUSTED)); the stopped node
        keeps its boot disk, which cannot move zones.
      - When the time is over the module fails with the choices (start again later, or destroy and create
        with other zones or types). V(0) asks once.
    type: int
    default: 300
    version_added: "0.3.0"
  wait:
    description:
      - Wait for the node to reach the requested state. A GCP operation (insert, start, stop, delete) is
        followed to its end either way, to O(wait_timeout), so that its errors are reported.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for a state change (or a GCP operation) before giving up.
    type: int
    default: 900
"""
