"""The IAM permissions the controller's GCP calls need, against the custom role the docs give users
(docs/permissions/gcp-controller-role.yaml).

The emulator records the discovery method id of every call it serves (Emulator.served). Google checks
one or more permissions per method, some only for what the request asks for (a subnetwork to attach,
metadata, labels, a service account to act as). PERMISSIONS holds them for every method the
collection calls, as Google's IAM documentation lists them for the requests the modules make.
"""

from __future__ import annotations

import os

import yaml

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(REPO_ROOT, "docs", "permissions", "gcp-controller-role.yaml")
# An insert into a network changes the network's policy: Google asks for updatePolicy on it too.
_INTO_NETWORK = "compute.networks.updatePolicy"

PERMISSIONS = {
    # gcp_gpu_instance, and the fleet inventory (aggregatedList).
    "compute.instances.insert": [
        "compute.instances.create",
        "compute.disks.create",
        "compute.images.useReadOnly",
        "compute.subnetworks.use",
        "compute.instances.setMetadata",
        "compute.instances.setLabels",
        "compute.instances.setServiceAccount",
        "iam.serviceAccounts.actAs",
    ],
    "compute.instances.get": ["compute.instances.get"],
    "compute.instances.aggregatedList": ["compute.instances.list"],
    "compute.instances.start": ["compute.instances.start"],
    "compute.instances.stop": ["compute.instances.stop"],
    "compute.instances.delete": ["compute.instances.delete"],
    "compute.instances.setLabels": ["compute.instances.setLabels"],
    "compute.instances.setMetadata": ["compute.instances.setMetadata"],
    "compute.zoneOperations.get": ["compute.zoneOperations.get"],
    "compute.regionOperations.get": ["compute.regionOperations.get"],
    "compute.globalOperations.get": ["compute.globalOperations.get"],
    "compute.zones.get": ["compute.zones.get"],
    "compute.regions.get": ["compute.regions.get"],
    "compute.machineTypes.get": ["compute.machineTypes.get"],
    "compute.acceleratorTypes.list": ["compute.acceleratorTypes.list"],
    "compute.images.get": ["compute.images.get"],
    "compute.images.getFromFamily": ["compute.images.getFromFamily"],
    # gcp_network.
    "compute.networks.get": ["compute.networks.get"],
    "compute.networks.insert": ["compute.networks.create"],
    "compute.networks.delete": ["compute.networks.delete"],
    "compute.subnetworks.get": ["compute.subnetworks.get"],
    "compute.subnetworks.insert": ["compute.subnetworks.create", _INTO_NETWORK],
    "compute.subnetworks.setPrivateIpGoogleAccess": ["compute.subnetworks.setPrivateIpGoogleAccess"],
    "compute.subnetworks.delete": ["compute.subnetworks.delete"],
    "compute.routers.get": ["compute.routers.get"],
    "compute.routers.insert": ["compute.routers.create", _INTO_NETWORK],
    "compute.routers.patch": ["compute.routers.update"],
    "compute.routers.delete": ["compute.routers.delete"],
    "compute.firewalls.get": ["compute.firewalls.get"],
    "compute.firewalls.list": ["compute.firewalls.list"],
    "compute.firewalls.insert": ["compute.firewalls.create", _INTO_NETWORK],
    "compute.firewalls.patch": ["compute.firewalls.update", _INTO_NETWORK],
    "compute.firewalls.delete": ["compute.firewalls.delete", _INTO_NETWORK],
    # gcp_node_identity, and the key secret's check.
    "iam.projects.serviceAccounts.get": ["iam.serviceAccounts.get"],
    "iam.projects.serviceAccounts.create": ["iam.serviceAccounts.create"],
    "iam.projects.serviceAccounts.delete": ["iam.serviceAccounts.delete"],
    "cloudresourcemanager.projects.getIamPolicy": ["resourcemanager.projects.getIamPolicy"],
    "cloudresourcemanager.projects.setIamPolicy": ["resourcemanager.projects.setIamPolicy"],
    "secretmanager.projects.secrets.get": ["secretmanager.secrets.get"],
    "secretmanager.projects.secrets.getIamPolicy": ["secretmanager.secrets.getIamPolicy"],
    "secretmanager.projects.secrets.setIamPolicy": ["secretmanager.secrets.setIamPolicy"],
    "secretmanager.projects.secrets.versions.get": ["secretmanager.versions.get"],
    # gcp_image_prune: images, and what may still use one (disks, templates).
    "compute.images.list": ["compute.images.list"],
    "compute.images.deprecate": ["compute.images.deprecate"],
    "compute.images.delete": ["compute.images.delete"],
    "compute.disks.aggregatedList": ["compute.disks.list"],
    "compute.instanceTemplates.aggregatedList": ["compute.instanceTemplates.list"],
}


def role_permissions(path=ROLE):
    with open(path, encoding="utf-8") as f:
        return set(yaml.safe_load(f)["includedPermissions"])


def not_allowed(served):
    """What the served methods need that the role lacks, and the methods PERMISSIONS does not know."""
    unknown = sorted(m for m in served if m not in PERMISSIONS)
    needed = {p for m in served if m in PERMISSIONS for p in PERMISSIONS[m]}
    return sorted(needed - role_permissions()) + [f"{m} (add it to PERMISSIONS)" for m in unknown]


def assert_allowed(served):
    """Fail with what to add when the served methods need a permission the documented role lacks."""
    missing = not_allowed(served)
    assert not missing, "add to docs/permissions/gcp-controller-role.yaml: " + " ".join(missing)
