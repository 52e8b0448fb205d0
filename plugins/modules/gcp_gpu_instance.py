#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_gpu_instance
short_description: A private Compute Engine GPU node for one Ollama model (the C(cloud=gcp) provider)
version_added: 0.1.0
description:
  - Creates, starts, stops and deletes one Compute Engine VM that serves a model from the
    collection's model catalog, and returns the same node record as the local and AWS providers.
  - The VM has no external IP (no access config), C(onHostMaintenance=TERMINATE) (required with
    GPUs), Shielded VM options, and a boot disk whose type and size come from the catalog. It
    carries our deployment, model and environment labels; label values are made valid for GCP
    (C(gemma3:270m) becomes C(gemma3-270m)), the model's real name is kept in the metadata key
    C(oce-model).
  - Idempotent by our deployment label plus O(name).
  - "Label drift: on a VM that exists already, labels that differ from what this run would set
    (the model, O(environment), O(labels)) are updated with C(instances.setLabels), guarded by the
    VM's label fingerprint (when someone changed the labels in between, the VM is read again and
    the update tried once more). A changed O(model) also updates the metadata key C(oce-model).
    Labels the run does not name are kept unless O(purge_labels); our C(oce-deployment) and
    C(oce-managed-by) labels are never changed or removed. The boot disk keeps the labels it was
    created with."
  - "Capacity-aware placement: the catalog's GCP options for O(model) (or O(machine_types)) are
    tried in order; for each, the zones of O(zones) in order. A zone that does not offer the
    accelerator or the machine type is skipped; C(ZONE_RESOURCE_POOL_EXHAUSTED) moves on to the
    next zone, then to the next option. The result lists every placement tried."
  - A model that does not fit an option's GPU memory fails before any API call, with the numbers.
  - If the VM fails after it was created (it never reaches C(RUNNING) before O(wait_timeout)),
    the VM this run created is deleted before the module fails.
options:
  zones:
    description:
      - Zones to place the node in, in order of preference, all in one region (the subnetwork's).
        Give at least two so that a capacity shortage in one zone does not stop the launch.
      - Required to create a node.
    type: list
    elements: str
    default: []
  subnetwork:
    description:
      - The private subnetwork of the node, a name in the zones' region or a path
        C(projects/P/regions/R/subnetworks/S). Required to create a node.
      - It should have Private Google Access on (the module warns otherwise), since the node has
        no external IP.
    type: str
  machine_types:
    description:
      - Machine types to try, in order, instead of the catalog's GCP options for O(model). Each must
        be one of the model's GCP options (add new ones through O(catalog)).
    type: list
    elements: str
    default: []
  image:
    description:
      - V(golden) boots the newest image of the family O(image_family) in O(project).
      - Otherwise an image or image family path, for example
        C(projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts).
    type: str
    default: golden
  image_family:
    description: The image family of our golden images, for O(image=golden).
    type: str
    default: ollama-node
  disk_size:
    description:
      - Boot disk size in GB; the catalog's C(disk_gb) for O(model) when omitted.
      - It must hold the system and the model's weights (the catalog's C(size_gb) + 20 GB); a smaller size,
        0 or a negative one fails before any call.
      - Never smaller than the image's own disk (the image's C(diskSizeGb)), which the cloud refuses. When omitted,
        the larger of the two; a smaller size fails before the launch.
    type: int
  service_account_email:
    description:
      - The node's own service account (for example one allowed to read its Tailscale key from
        Secret Manager and to write logs and metrics). No service account when omitted.
    type: str
  scopes:
    description:
      - OAuth scopes of the node's service account. The default lets the Ops Agent write logs and
        metrics and nothing else.
      - Secret Manager has no narrower scope than C(https://www.googleapis.com/auth/cloud-platform);
        with that scope the service account's IAM roles alone bound what the node can do.
    type: list
    elements: str
    default:
      - https://www.googleapis.com/auth/logging.write
      - https://www.googleapis.com/auth/monitoring.write
  secure_boot:
    description:
      - Shielded VM Secure Boot. Keep it on with signed NVIDIA modules (Canonical's
        C(linux-modules-nvidia-*-gcp)); DKMS-built drivers need it off. vTPM and integrity
        monitoring are always on.
      - An image whose C(oce-nvidia-source) label says its driver is DKMS-built (Packer's
        C(gcp_nvidia_driver_source=cuda-repo)) fails the module before anything is created while
        this is on, because Secure Boot would refuse to load the driver and the node would have no GPU.
    type: bool
    default: true
  network_tags:
    description: Network tags of the VM (firewall rules target them).
    type: list
    elements: str
    default: []
  metadata:
    description:
      - Extra instance metadata. It must not carry secrets (anyone who can read the VM reads it);
        the module refuses Tailscale auth keys, cloud keys and private keys in it.
      - SSH keys of the project are blocked and OS Login is on; these keys cannot be overridden.
    type: dict
    default: {}
  user_data:
    description: Cloud-init user data (metadata key C(user-data)), with the same secret check as O(metadata).
    type: str
  labels:
    description:
      - Extra labels for the VM and, when it is created, its boot disk. Our C(oce-*) keys cannot be
        overridden.
      - On an existing VM, a label missing or with another value is set; see O(purge_labels) for
        the labels not named here.
    type: dict
    default: {}
  purge_labels:
    description:
      - On an existing VM, also remove the labels that are neither ours nor in O(labels), and
        C(oce-environment) when O(environment) is not given.
      - Our C(oce-deployment) and C(oce-managed-by) labels and the C(goog-*) labels of Google's
        services are never removed.
    type: bool
    default: false
    version_added: "0.2.0"
extends_documentation_fragment:
  - ollama_cloud.engine.node
  - ollama_cloud.engine.gcp
attributes:
  check_mode:
    support: full
    description:
      - Creates nothing; returns the instances.insert request it would send first (RV(request)).
      - On an existing VM, reports the labels it would change (RV(labels_changed)) without changing them.
  diff_mode:
    support: full
    description:
      - Shows the node state before and after, and the labels (and the C(oce-model) metadata key)
        of an existing VM when they change.
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
- name: A private GPU node for codellama:7b-code (n1 + T4, then g2 with L4)
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-demo
    deployment: demo
    environment: dev
    model: codellama:7b-code
    project: my-project
    zones: [us-central1-a, us-central1-b, us-central1-c]
    subnetwork: oce-demo-private
    service_account_email: oce-demo-node@my-project.iam.gserviceaccount.com
  register: node

- name: Stop it (the disk and the pulled models stay)
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-demo
    deployment: demo
    project: my-project
    state: stopped

- name: Try it against the test emulator
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-test
    deployment: test
    model: gemma3:270m
    project: oce-test
    auth_kind: anonymous
    endpoint: http://127.0.0.1:8089/compute/v1/
    zones: [us-central1-a]
    subnetwork: oce-private
    image: projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts

- name: Move the node to another environment and label its team (the VM is kept; its labels change)
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-demo
    deployment: demo
    environment: staging
    model: codellama:7b-code
    project: my-project
    zones: [us-central1-a, us-central1-b, us-central1-c]
    subnetwork: oce-demo-private
    labels:
      team: ml-platform
  register: node
  # node.labels_changed: {set: {oce-environment: staging, team: ml-platform}, removed: []}

- name: Delete it
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-demo
    deployment: demo
    project: my-project
    state: absent
"""

RETURN = r"""
node:
  description:
    - The node record, the same keys on every provider, plus C(hourly_cost) (USD, machine and
      GPUs from the dated price table; null when a price is not in the table).
    - Empty after V(absent).
  returned: always
  type: dict
  sample:
    cloud: gcp
    name: oce-demo
    id: "4567890123456789012"
    state: running
    deployment: demo
    model: codellama:7b-code
    environment: dev
    instance_type: n1-standard-8
    region: us-central1
    private_ip: 10.10.0.2
    api_url: null
    uptime_seconds: 42
    hourly_cost: 0.73
    project: my-project
    availability_zone: us-central1-a
    subnet_id: oce-demo-private
    accelerator: nvidia-tesla-t4
    accelerator_count: 1
    public_ip: null
request:
  description: The instances.insert body (first placement) that was or, in check mode, would be sent.
  returned: when a node is created or would be created
  type: dict
placement:
  description: Placements tried in order, each with C(machine_type), C(accelerator), C(count), C(zone) and C(result).
  returned: when a node is created or would be created
  type: list
  elements: dict
cost:
  description: Estimated hourly and monthly cost (machine and GPUs, boot disk, Cloud NAT) and the date of the prices.
  returned: when a node is created or would be created
  type: dict
image:
  description: The image booted (a path) and how it was found (C(golden) or C(explicit)).
  returned: when a node is created or would be created
  type: dict
labels_changed:
  description:
    - The labels of an existing VM that were (in check mode, would be) updated, C(set) with their
      new values and C(removed) (only with O(purge_labels)).
    - A changed model also updates the metadata key C(oce-model); the diff shows it.
  returned: when an existing VM's labels differed from this run's
  type: dict
  version_added: "0.2.0"
  contains:
    set:
      description: Labels added or given a new value.
      type: dict
      returned: always
      sample: {oce-environment: staging, team: ml-platform}
    removed:
      description: Labels removed.
      type: list
      elements: str
      returned: always
      sample: []
retries:
  description: API calls retried after throttling or a server error, as C([method path, reason, delay seconds]).
  returned: always
  type: list
  elements: list
"""

from ansible_collections.ollama_cloud.engine.plugins.module_utils import (
    catalog,
    cloud,
    fleet,
    gcp,
    node_module,
    node_secrets,
)

# How many earlier generations one insert steps over (see GcpNode.insert_once) before it gives up.
STALE_REQUESTS = 5

# Metadata keys we set; the user's metadata may not override them.
# The label Packer sets on a golden image with the source of its NVIDIA driver (packer/gcp.pkr.hcl),
# and the sources whose modules are built on the node by DKMS, unsigned: Secure Boot refuses them.
LABEL_NVIDIA_SOURCE = "oce-nvidia-source"
UNSIGNED_DRIVER_SOURCES = ("cuda-repo",)
FIXED_METADATA = {"block-project-ssh-keys": "TRUE", "enable-oslogin": "TRUE"}


class GcpNode(cloud.Provider):
    """The gcp_gpu_instance side of cloud.converge."""

    capacity_codes = gcp.CAPACITY_CODES

    def __init__(self, api, params, warn=None):
        self.api = api
        self.params = params
        self.project = api.project
        self.timeout = params["wait_timeout"]
        self.warn = warn or (lambda msg: None)
        self.clock = api.clock
        self.capacity_wait = params.get("capacity_wait", 0)

    # --------------------------------------------------------------- reading

    def find(self):
        return gcp.find_instances(self.api, self.params["deployment"], self.params["name"])

    def ident(self, raw):
        return f"{last_zone(raw)}/{raw['name']}"

    def state(self, raw):
        return gcp.STATES.get(raw.get("status"), "unknown")

    def refresh(self, raw):
        return self.api.get(gcp.instance_path(raw), action=f"get instance {raw['name']}")

    def node(self, raw):
        return gcp.priced_node(raw)

    # --------------------------------------------------------------- planning

    def plan(self):
        """Options that fit, zones that offer them, image, key secret, subnetwork: read-only checks.

        The subnetwork comes last: on a first create it does not exist yet, and a check-mode plan
        before the network is made (the node role's validation) has checked everything else then.
        """
        params, api = self.params, self.api
        cat = catalog.merge(params["catalog"])
        options = catalog.gcp_options(cat, params["model"], params["machine_types"])
        regions = {}
        for zone in params["zones"]:
            found = api.get(f"projects/{self.project}/zones/{zone}", action=f"look up zone {zone}", missing_ok=True)
            if found is None:
                raise cloud.CloudError(
                    f"zone {zone!r} does not exist in Compute Engine (project {self.project}); "
                    "check the spelling, for example us-central1-a"
                )
            regions[zone] = gcp.last(found.get("region")) or gcp.region_of_zone(zone)
        if len(set(regions.values())) > 1:
            raise cloud.CloudError(
                "zones {} are in different regions ({}): give zones of the subnetwork's region only".format(
                    ", ".join(params["zones"]), ", ".join(sorted(set(regions.values())))
                )
            )
        region = regions[params["zones"][0]]

        offered = {}
        for zone in params["zones"]:
            accs = api.list(f"projects/{self.project}/zones/{zone}/acceleratorTypes", action=f"list GPUs of {zone}")
            offered[zone] = {a["name"] for a in accs}
        candidates, skipped = [], []
        for option in options:
            for zone in params["zones"]:
                place = placement(option, zone)
                if option["accelerator"] not in offered[zone]:
                    skipped.append(dict(place, result=f"{option['accelerator']} is not offered in this zone"))
                    continue
                machine = api.get(
                    f"projects/{self.project}/zones/{zone}/machineTypes/{option['machine_type']}",
                    action=f"look up machine type {option['machine_type']} in {zone}",
                    missing_ok=True,
                )
                if machine is None:
                    skipped.append(dict(place, result=f"{option['machine_type']} is not offered in this zone"))
                    continue
                candidates.append(dict(place, option=option))
        if not candidates:
            raise cloud.CloudError(
                "none of the GCP options for {} ({}) is offered in zones {}: "
                "choose other zones or machine types".format(
                    params["model"],
                    ", ".join(describe_option(o) for o in options),
                    ", ".join(params["zones"]),
                ),
                placement=skipped,
            )
        image, source, image_gb = self.image()
        if params["key_secret"]:
            self.check_key_secret(params["key_secret"]["name"])
        subnet = self.subnetwork(region)
        entry = catalog.model_entry(cat, params["model"])
        return {
            "catalog": cat,
            "candidates": candidates,
            "skipped": skipped,
            "subnetwork": subnet,
            "image": image,
            "image_source": source,
            "disk_size": catalog.disk_size(params["model"], entry, params["disk_size"], "disk_size", (image, image_gb)),
            "labels": gcp.our_labels(params["deployment"], params["model"], params["environment"], params["labels"]),
        }

    def check_key_secret(self, name):
        """Fail when the secret the node reads its tailnet key from has no enabled version; never reads it."""
        path = node_secrets.gcp_secret_path(self.project, name)
        secrets = gcp.Api(
            self.api.session, self.project, gcp.api_endpoint("secretmanager", self.params.get("endpoint")), self.clock
        )
        found = secrets.get(f"v1/{path}/versions/latest", action=f"look up secret {name}", missing_ok=True)
        if found is None or found.get("state", "ENABLED") != "ENABLED":
            project, short = path.split("/")[1], path.rsplit("/", 1)[-1]
            raise cloud.CloudError(
                f"the node's tailnet key {path} has no enabled version: the node reads its Tailscale auth key from it "
                f'at first boot. Store a reusable auth key first (printf %s "$KEY" | gcloud secrets create {short} '
                f"--project {project} --data-file=-, or gcloud secrets versions add), then run again. "
                "Nothing was created",
                code="SECRET_NOT_FOUND",
            )

    def subnetwork(self, region):
        given = self.params["subnetwork"]
        path = self.api.path(given) if "/" in given else f"projects/{self.project}/regions/{region}/subnetworks/{given}"
        found = self.api.get(path, action=f"look up subnetwork {given}", missing_ok=True)
        if found is None:
            raise cloud.CloudError(
                f"subnetwork {given!r} does not exist in region {region} of project {self.project}: "
                "create the network first (or give its full path)",
                code="SUBNETWORK_NOT_FOUND",
            )
        if gcp.last(found.get("region")) != region:
            raise cloud.CloudError(
                f"subnetwork {given!r} is in region {gcp.last(found.get('region'))}, the zones are in {region}"
            )
        if not found.get("privateIpGoogleAccess"):
            self.warn(
                f"subnetwork {given} has Private Google Access off: the node (no external IP) cannot reach "
                "Google APIs such as Secret Manager or Cloud Logging"
            )
        return f"projects/{self.project}/regions/{region}/subnetworks/{found['name']}"

    def image(self):
        given = self.params["image"]
        if given == "golden":
            path, source = f"projects/{self.project}/global/images/family/{self.params['image_family']}", "golden"
        elif given.startswith("projects/") and "/global/images/" in given:
            path, source = given, "explicit"
        else:
            raise cloud.CloudError(
                f"image {given!r} is neither golden nor an image path "
                "(projects/P/global/images/NAME or projects/P/global/images/family/FAMILY)"
            )
        found = self.api.get(path, action=f"look up image {given}", missing_ok=True)
        if found is None:
            if source == "golden":
                raise cloud.CloudError(
                    f"no golden image in family {self.params['image_family']} of project {self.project}: "
                    "build one (packer/) or set image to projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"
                )
            raise cloud.CloudError(f"image {given} does not exist (or this project may not use it)")
        if found.get("status") not in (None, "READY"):
            raise cloud.CloudError(f"image {found.get('name')} is {found.get('status')}, not READY")
        driver = (found.get("labels") or {}).get(LABEL_NVIDIA_SOURCE)
        if self.params["secure_boot"] and driver in UNSIGNED_DRIVER_SOURCES:
            raise cloud.CloudError(
                f"image {found.get('name')} has a DKMS-built NVIDIA driver ({LABEL_NVIDIA_SOURCE}={driver}), whose "
                "unsigned modules Secure Boot refuses to load, so the node would have no GPU: set secure_boot to "
                "false (the node role's node_gcp_secure_boot), or build the image with "
                "gcp_nvidia_driver_source=ubuntu-signed"
            )
        booted = f"projects/{gcp.last_project(found) or path.split('/')[1]}/global/images/{found['name']}"
        return booted, source, int(found.get("diskSizeGb") or 0)

    # --------------------------------------------------------------- the request

    def request(self, plan, place):
        """The instances.insert body for one placement."""
        params, option, zone = self.params, place["option"], place["zone"]
        labels = plan["labels"]
        metadata = dict(params["metadata"] or {}, **FIXED_METADATA)
        metadata[fleet.LABEL_MODEL] = params["model"]
        if params["user_data"]:
            metadata["user-data"] = params["user_data"]
        body = {
            "name": params["name"],
            "machineType": f"zones/{zone}/machineTypes/{option['machine_type']}",
            "labels": labels,
            "scheduling": {"onHostMaintenance": "TERMINATE", "automaticRestart": True, "provisioningModel": "STANDARD"},
            # No accessConfigs: no external IP. Egress goes through Cloud NAT, if the network has it.
            "networkInterfaces": [{"subnetwork": plan["subnetwork"]}],
            "disks": [
                {
                    "boot": True,
                    "autoDelete": True,
                    "type": "PERSISTENT",
                    "mode": "READ_WRITE",
                    "initializeParams": {
                        "sourceImage": plan["image"],
                        "diskSizeGb": str(plan["disk_size"]),
                        "diskType": f"zones/{zone}/diskTypes/{option['disk_type']}",
                        "labels": labels,
                    },
                }
            ],
            "shieldedInstanceConfig": {
                "enableSecureBoot": params["secure_boot"],
                "enableVtpm": True,
                "enableIntegrityMonitoring": True,
            },
            "metadata": {"items": [{"key": k, "value": str(v)} for k, v in sorted(metadata.items())]},
            "serviceAccounts": [],
        }
        if option["attach_accelerators"]:
            body["guestAccelerators"] = [
                {
                    "acceleratorType": f"zones/{zone}/acceleratorTypes/{option['accelerator']}",
                    "acceleratorCount": option["count"],
                }
            ]
        if params["service_account_email"]:
            body["serviceAccounts"] = [{"email": params["service_account_email"], "scopes": params["scopes"]}]
        if params["network_tags"]:
            body["tags"] = {"items": params["network_tags"]}
        return body

    def preview(self, plan):
        first = plan["candidates"][0]
        return {
            "request": self.request(plan, first),
            "placement": [public(p) for p in plan["skipped"]] + [public(dict(first, result="would launch"))],
            "cost": catalog.gcp_estimate(
                plan["catalog"], self.params["model"], first["option"], disk_gb=plan["disk_size"]
            ),
            "image": {"path": plan["image"], "source": plan["image_source"]},
        }

    # --------------------------------------------------------------- changing

    def insert(self, plan, place):
        """Insert in one placement and follow the operation; a failed VM is deleted before moving on."""
        zone, name = place["zone"], self.params["name"]
        zone_path = f"projects/{self.project}/zones/{zone}"
        action = f"create instance {name} ({describe_option(place['option'])}) in {zone}"
        op = self.insert_once(zone_path, name, place, self.request(plan, place), action)
        try:
            self.api.wait(op, self.timeout, action)
        except Exception as exc:  # anything at all: a VM this insert made must not be left behind
            # A failed insert may leave a VM record behind; remove ours before the next try.
            left = self.api.get(f"{zone_path}/instances/{name}", action=f"get instance {name}", missing_ok=True)
            labels = (left or {}).get("labels") or {}
            if (
                labels.get(fleet.LABEL_MANAGED_BY) == gcp.MANAGED_BY
                and labels.get(fleet.LABEL_DEPLOYMENT) == (self.params["deployment"])
            ):
                self.delete(left)
            raise cloud.as_error(exc, action) from exc
        return self.api.get(f"{zone_path}/instances/{name}", action=f"get instance {name}")

    def insert_once(self, zone_path, name, place, body, action):
        """instances.insert with a request id derived from the deployment, the name and the placement.

        A retried insert (after a 503), or a second run at the same time, sends the same id and
        gets the first operation back instead of a second VM or a 409. Compute Engine remembers
        a request id for an hour or so: an answer that is already DONE and failed, or whose VM is
        gone or another, belongs to an earlier generation of this node. That operation's name joins
        the id and the insert is sent again, so every run that sees the same answers agrees.
        """
        key = cloud.idempotency_key(self.params["deployment"], name)
        where = (place["zone"], place["machine_type"], place["accelerator"], place["count"])
        stale = []
        for _step in range(STALE_REQUESTS + 1):
            rid = gcp.request_id(key, *where, *stale)
            op = self.api.change("POST", f"{zone_path}/instances", body=body, action=action, request_id=rid)
            if op.get("status") != "DONE" or not self.stale(op, zone_path, name):
                return op
            stale.append(op.get("name"))
        raise cloud.CloudError(
            f"{action} kept answering with operations of earlier runs ({', '.join(stale)}): "
            "wait an hour or use another name"
        )

    def stale(self, op, zone_path, name):
        """True when a finished insert operation is not this node's current VM (an earlier generation's)."""
        if (op.get("error") or {}).get("errors"):
            return True
        found = self.api.get(f"{zone_path}/instances/{name}", action=f"get instance {name}", missing_ok=True)
        return found is None or str(found.get("id")) != str(op.get("targetId"))

    def create(self, plan):
        (instance, chosen), tried = cloud.try_placements(
            plan["candidates"],
            lambda place: (self.insert(plan, place), place),
            gcp.CAPACITY_CODES,
            quota=gcp.QUOTA_CODES,
            tried=plan["skipped"],
            what=self.params["model"],
            label=lambda p: f"{describe_option(p['option'])} in {p['zone']}" if "option" in p else p["zone"],
        )
        tried = [public(p) for p in tried]
        extra = {
            "placement": tried,
            "request": self.request(plan, chosen),
            "cost": catalog.gcp_estimate(
                plan["catalog"], self.params["model"], chosen["option"], disk_gb=plan["disk_size"]
            ),
            "image": {"path": plan["image"], "source": plan["image_source"]},
        }
        if self.params["wait"]:
            try:
                instance = self.wait_state(instance, "running", failed="stopped")
            except Exception as exc:  # anything at all: what this run created must not be left running
                raise cloud.undo_failed(
                    exc, self.ident(instance), lambda: self.delete(instance), placement=tried
                ) from None
        return instance, extra

    def act(self, raw, verb, method="POST"):
        path = gcp.instance_path(raw) + ("" if verb == "delete" else f"/{verb}")
        action = f"{verb} instance {raw['name']}"
        # One request id for the operation: a delete retried after a lost answer is not a 404.
        op = self.api.change(method, path, action=action)
        self.api.wait(op, self.timeout, action)

    def start(self, raw):
        self.act(raw, "resume" if raw.get("status") == "SUSPENDED" else "start")
        return self.wait_state(raw, "running") if self.params["wait"] else raw

    def stop(self, raw):
        self.act(raw, "stop")
        return self.wait_state(raw, "stopped") if self.params["wait"] else raw

    def delete(self, raw):
        self.act(raw, "delete", "DELETE")

    def settle(self, raw):
        # Every status on its way somewhere is waited out (gcp.STATES says where: SUSPENDING ends
        # SUSPENDED, PENDING_STOP and STOPPING end TERMINATED, all of them "stopped").
        wanted = cloud.SETTLES_TO.get(self.state(raw))
        return self.wait_state(raw, wanted) if wanted else raw

    # --------------------------------------------------------------- label drift

    def desired_tags(self):
        """The labels this run wants on the VM; a bad user label key fails before any call."""
        params = self.params
        return gcp.our_labels(params["deployment"], params["model"], params["environment"], params["labels"])

    def drift(self, labels, desired):
        return cloud.tag_drift(labels, desired, self.params["purge_labels"], gcp.RESERVED_LABEL_PREFIXES)

    def retag(self, result, desired, check_mode):
        """Bring the labels of an existing VM, and the metadata key with the model's name, to this run's.

        Reported in ``result`` (changed, labels_changed, the diff); in check mode nothing is sent.
        setLabels and setMetadata replace the whole set, guarded by its fingerprint: when someone
        changed the VM in between (HTTP 412), the VM is read again and the update tried once more.
        """
        node = result["node"]
        changes, removals = self.drift(node["labels"], desired)
        # No model given (a start or stop): the node keeps its own.
        model_stale = self.params["model"] is not None and node["model"] != self.params["model"]
        if not (changes or removals or model_stale):
            return result
        cloud.report_drift(result, "labels", node["labels"], changes, removals)
        if model_stale:
            result["changed"] = True
            result["diff"]["before"]["metadata"] = {fleet.LABEL_MODEL: node["model"]}
            result["diff"]["after"]["metadata"] = {fleet.LABEL_MODEL: self.params["model"]}
        if check_mode:
            return result
        path = f"projects/{self.project}/zones/{node['availability_zone']}/instances/{node['name']}"
        for attempt in (1, 2):
            raw = self.api.get(path, action=f"get instance {node['name']}")
            try:
                self.update_labels(raw, desired)
                break
            except cloud.CloudError as exc:
                if exc.details.get("status") != 412 or attempt == 2:
                    raise
        result["node"] = self.node(self.refresh(raw))
        return result

    def update_labels(self, raw, desired):
        """setLabels and setMetadata (the model's name) on ``raw`` as read, each only when it differs."""
        changes, removals = self.drift(raw.get("labels"), desired)
        if changes or removals:
            body = {
                "labels": cloud.with_drift(raw.get("labels"), changes, removals),
                "labelFingerprint": raw.get("labelFingerprint", ""),
            }
            self.send(raw, "setLabels", body, f"set the labels of instance {raw['name']}")
        meta = raw.get("metadata") or {}
        items = [dict(i) for i in meta.get("items") or []]
        model = self.params["model"]
        if model is not None and gcp.metadata_items(raw).get(fleet.LABEL_MODEL) != model:
            items = [i for i in items if i.get("key") != fleet.LABEL_MODEL]
            items.append({"key": fleet.LABEL_MODEL, "value": model})
            body = {"fingerprint": meta.get("fingerprint", ""), "items": sorted(items, key=lambda i: i["key"])}
            self.send(raw, "setMetadata", body, f"set the metadata key {fleet.LABEL_MODEL} of instance {raw['name']}")

    def send(self, raw, verb, body, action):
        # A request id per call: a retried POST (after a 503) is not applied twice.
        op = self.api.change("POST", f"{gcp.instance_path(raw)}/{verb}", body=body, action=action)
        self.api.wait(op, self.timeout, action)

    def wait_state(self, raw, wanted, failed=None):
        """``raw`` refreshed until its node state (gcp.STATES) is ``wanted``; an error at ``failed``."""
        return cloud.wait_for(
            lambda: self.refresh(raw),
            lambda i: self.state(i) == wanted,
            f"instance {raw['name']} to be {wanted}",
            self.timeout,
            interval=gcp.POLL_INTERVAL,
            clock=self.api.clock,
            failed=lambda i: i.get("status") if failed and self.state(i) == failed else None,
        )


def last_zone(raw):
    return gcp.last(raw.get("zone"))


def placement(option, zone):
    return {
        "machine_type": option["machine_type"],
        "accelerator": option["accelerator"],
        "count": option["count"],
        "zone": zone,
    }


def public(place):
    """A placement as the result shows it (without the catalog option it came from)."""
    return {k: v for k, v in place.items() if k != "option"}


def describe_option(option):
    return f"{option['machine_type']} + {option['count']} x {option['accelerator']}"


def create_problems(params):
    """What creating the node needs and the inputs lack (cloud.Provider.create_problems)."""
    problems = []
    if not params["model"]:
        problems.append("model is required to create a node")
    if not params["zones"]:
        problems.append("zones is required to create a node (zones of one region, ideally two or more)")
    if not params["subnetwork"]:
        problems.append("subnetwork is required to create a node (a private subnetwork of the zones' region)")
    return problems


def check_inputs(params, cat_error):
    problems = [fleet.validate_deployment(params["deployment"]), cat_error]
    problems += cloud.node_input_problems(params)
    if params["state"] != "absent":
        values = [str(v) for v in (params["metadata"] or {}).values()] + [params["user_data"] or ""]
        what = cloud.secret_in(*values)
        if what:
            problems.append(
                f"metadata or user_data carries {what}: anyone who can read the VM can read its metadata; "
                "store the secret in Secret Manager and let the node read it with its service account"
            )
        fixed = sorted(set(params["metadata"] or {}) & (set(FIXED_METADATA) | {fleet.LABEL_MODEL, "user-data"}))
        if fixed:
            problems.append(
                f"metadata may not set {', '.join(fixed)}: the module sets them (use user_data for user-data)"
            )
        if params["key_secret"] and params["key_secret"].get("source") != "gcp_secretmanager":
            problems.append("key_secret source must be gcp_secretmanager")
    return [p for p in problems if p]


def catalog_problem(params):
    """What is wrong with the model, the catalog, the machine types or the disk size (or None)."""
    if params["state"] == "absent" or not params["model"]:
        return None
    try:
        cat = catalog.merge(params["catalog"])
        catalog.gcp_options(cat, params["model"], params["machine_types"])
        entry = catalog.model_entry(cat, params["model"])
        catalog.disk_size(params["model"], entry, params["disk_size"], "disk_size")
    except catalog.CatalogError as exc:
        return str(exc)
    return None


def main():
    base = node_module.NodeModule(
        gcp,
        {
            "zones": {"type": "list", "elements": "str", "default": []},
            "subnetwork": {"type": "str"},
            "machine_types": {"type": "list", "elements": "str", "default": []},
            "image": {"type": "str", "default": "golden"},
            "image_family": {"type": "str", "default": "ollama-node"},
            "disk_size": {"type": "int"},
            "service_account_email": {"type": "str"},
            "scopes": {
                "type": "list",
                "elements": "str",
                "default": [
                    "https://www.googleapis.com/auth/logging.write",
                    "https://www.googleapis.com/auth/monitoring.write",
                ],
            },
            "secure_boot": {"type": "bool", "default": True},
            "network_tags": {"type": "list", "elements": "str", "default": []},
            "metadata": {"type": "dict", "default": {}},
            "user_data": {"type": "str"},
            "labels": {"type": "dict", "default": {}},
            "purge_labels": {"type": "bool", "default": False},
        },
        node=True,
    )
    # Inputs first: a bad model, catalog, name or metadata fails before any API call.
    base.check(check_inputs(base.params, catalog_problem(base.params)))

    def provider():
        node = GcpNode(base.client(), base.params, warn=base.module.warn)
        node.create_problems = create_problems(base.params)
        return node

    base.converge(provider)


if __name__ == "__main__":
    main()
