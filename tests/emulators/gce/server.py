# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Compute Engine v1 emulator on 127.0.0.1 for the GCP modules' tests.

Why our own and not gcplocal 0.1: gcplocal's instances are RUNNING at insert and its operations
are DONE at once, it has no start/stop, images, accelerator types or aggregatedList, and no way
to inject a fault. This one keeps the same REST paths as the real API, and:

- routes every request through the official discovery document (schema.Discovery): a path or
  query parameter the API does not have, or a body field the schema does not know, is a
  *violation*; every response it sends is checked the same way. Tests assert ``violations == []``.
- plays the API's slow parts: operations go PENDING -> RUNNING -> DONE over polls, instances
  PROVISIONING -> STAGING -> RUNNING, STOPPING -> TERMINATED.
- plays the API's rules we rely on: GPUs need onHostMaintenance=TERMINATE, an accelerator or a
  machine type must be offered in the zone, names are unique per zone.
- plays label and metadata updates (setLabels, setMetadata) guarded by their fingerprints: a
  stale or missing fingerprint is a 412 ``conditionNotMet``, as in the API.
- plays golden images and what holds on to them: images listed by label, deprecated (their
  family then answers with the newest image that is not) and deleted through operations; an
  instance's boot disk is a disk whose ``sourceImage`` is the image it was made from (deleted with
  the instance when ``autoDelete``); instance templates, global and regional, seeded with
  ``add_instance_template``; disks of other tools with ``add_disk``.
- counts every HTTP request it gets (``requests``, whatever the path), so a test can prove that a
  run made no call at all.
- injects faults: HTTP errors for the next N calls of a method (429, 503), or for the calls
  after the first ``after`` ones (a failure midway through a run), a zone whose pool is
  exhausted (an insert or a start operation ends in ZONE_RESOURCE_POOL_EXHAUSTED), a GPU type
  without quota (``no_quota``: an insert asking for it ends in QUOTA_EXCEEDED, in Google's words
  for a regional GPU quota), an operation that ends
  in any error (``op_errors``: instance insert/stop/start/delete, the inserts of networks,
  subnetworks, routers and firewall rules, image deprecate and delete; a failed operation changes
  nothing, as in the API).
- serves a token endpoint, so service-account credentials sign a real JWT against loopback.
- serves, on the same port under a prefix, the parts of IAM (/iam/v1/: service accounts),
  Cloud Resource Manager (/cloudresourcemanager/v1/: the project's IAM policy) and Secret
  Manager (/secretmanager/v1/: secrets and their IAM policies) that gcp_node_identity uses, each
  checked against its own discovery document. IAM policies are guarded by their etag (a stale one
  is a 409 ABORTED, as in the API); ``policy_races`` makes someone else change a policy just
  before our next setIamPolicy; ``sa_propagation`` makes the next setIamPolicy calls refuse a
  service account created a moment ago (IAM is eventually consistent). Errors of these APIs have
  the google.rpc form (``status: NOT_FOUND``), not compute's ``errors[].reason``.
- plays Secret Manager's versions (addVersion, versions.access, ``latest``) with IAM for guests: a
  token from the metadata server reads a secret only if its service account is granted
  secretAccessor on the secret or the project (403 PERMISSION_DENIED otherwise).
- serves the guests' metadata server (metadata.py: /computeMetadata/v1/, Metadata-Flavor: Google),
  and listens on ``host`` (127.0.0.1 by default; the rig's gateway for the simulated cloud, so its
  containers reach it too).
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import hashlib
import http.server
import ipaddress
import itertools
import json
import re
import socket
import socketserver
import threading
import time
import urllib.parse

from .metadata import METADATA_PREFIX, MetadataServer, sim_token_email
from .schema import Discovery, document

PROJECT = "oce-test"
IMAGE_PROJECT = "ubuntu-os-cloud"

# Zone -> accelerators offered; every zone of the region offers n1, g2 needs L4, a2 A100.
ZONES = {
    "us-central1-a": ["nvidia-tesla-t4", "nvidia-l4", "nvidia-tesla-a100"],
    "us-central1-b": ["nvidia-tesla-t4", "nvidia-l4"],
    "us-central1-c": ["nvidia-tesla-t4"],
    "us-central1-f": ["nvidia-l4"],
    "europe-west4-a": ["nvidia-tesla-t4", "nvidia-l4"],
}
# Machine type -> (vCPUs, MiB, accelerator that comes with it, count).
MACHINES = {
    "n1-standard-4": (4, 15360, None, 0),
    "n1-standard-8": (8, 30720, None, 0),
    "n1-standard-16": (16, 61440, None, 0),
    "g2-standard-4": (4, 16384, "nvidia-l4", 1),
    "g2-standard-8": (8, 32768, "nvidia-l4", 1),
    "g2-standard-24": (24, 98304, "nvidia-l4", 2),
    "a2-highgpu-1g": (12, 87040, "nvidia-tesla-a100", 1),
    "a2-highgpu-2g": (24, 174080, "nvidia-tesla-a100", 2),
}

STATUSES = ("PROVISIONING", "STAGING", "RUNNING", "STOPPING", "TERMINATED", "SUSPENDED")
_FILTER = re.compile(r'\(\s*([A-Za-z0-9_.-]+)\s*(=|!=)\s*"?([^")]*)"?\s*\)')


# GCP's label rules: at most 64 labels; keys start with a lowercase letter; keys and values hold
# at most 63 lowercase letters, digits, '_' and '-' (international letters are left out here).
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")


# The other APIs: discovery document and the path prefix they are served under.
OTHER_APIS = (
    ("iam.v1.json", "iam/"),
    ("cloudresourcemanager.v1.json", "cloudresourcemanager/"),
    ("secretmanager.v1.json", "secretmanager/"),
)
# POST methods that change nothing: a check-mode run may send them.
READ_ONLY_POSTS = {"cloudresourcemanager.projects.getIamPolicy"}
SA_DOMAIN = f"{PROJECT}.iam.gserviceaccount.com"
_ACCOUNT_ID = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])$")


@functools.cache
def other_discoveries():
    return tuple(Discovery(document(name), prefix) for name, prefix in OTHER_APIS)


def fingerprint(value):
    """A fingerprint as the API sends them (base64 of 8 bytes) that changes whenever ``value`` does."""
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).digest()[:8]
    return base64.b64encode(digest).decode()


class GceError(Exception):
    def __init__(self, status, reason, message):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime())


class Emulator(MetadataServer):
    project_id = PROJECT

    def __init__(self, discovery=None, op_steps=2, page_size=2, host="127.0.0.1"):
        self.discovery = discovery or Discovery()
        self.apis = (self.discovery,) + other_discoveries()
        self.lock = threading.RLock()
        self.op_steps = op_steps  # polls an operation takes to reach DONE
        self.page_size = page_size  # small pages, so paging is exercised
        self.ids = itertools.count(1000000000000000001)
        emu = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                # Headers and body go out in two writes: without this, delayed ACKs add 40 ms a call.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path.startswith(METADATA_PREFIX) and self.command == "GET":
                    # A guest's metadata server (see metadata.py), not an API: no discovery routing.
                    with emu.lock:
                        emu.requests += 1
                    status, ctype, data = emu.handle_metadata(self.path, self.headers, self.client_address[0])
                    self._send(status, ctype, data, {"Metadata-Flavor": "Google"})
                    return
                status, body = emu.handle(self.command, self.path, raw, self.headers)
                self._send(status, "application/json; charset=UTF-8", json.dumps(body).encode())

            def _send(self, status, ctype, data, extra=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        # host: 127.0.0.1, or an address containers reach too (the rig's gateway) for the simulated cloud.
        self.server = Server((host, 0), Handler)
        self.url = "http://%s:%d" % (host, self.server.server_address[1])
        self.endpoint = self.url + "/compute/v1/"
        self.token_uri = self.url + "/token"
        self.reset()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    # ------------------------------------------------------------ state and fault hooks

    def reset(self):
        with self.lock:
            self.instances = {}  # (zone, name) -> instance
            self.operations = {}  # name -> [operation, polls left, on_done]
            self.images = {}  # (project, name) -> image
            self.disks = {}  # (scope, name) -> disk; scope zones/Z or regions/R
            self.templates = {}  # (scope, name) -> instance template; scope global or regions/R
            self.networks = {}  # name -> network
            self.subnetworks = {}  # (region, name) -> subnetwork
            self.routers = {}  # (region, name) -> router (with its Cloud NATs)
            self.firewalls = {}  # name -> firewall rule
            self.log = []  # (method id or path, http method, path, query, body)
            self.served = set()  # the method ids served since the reset (tests clear log, not this)
            self.requests = 0  # every HTTP request received, routed or not, the token endpoint too
            self.violations = []  # what broke the discovery document's contract
            self.auth = []  # Authorization headers seen
            self.faults = {}  # method id -> [(status, reason, message)] for the next calls
            self.exhausted = set()  # zones whose pool is exhausted (an insert or a start ends in error)
            self.no_quota = set()  # accelerator types with no quota in the region (an insert ends in error)
            self.op_errors = {}  # method id -> (status, code, message): its next operation ends in error
            self.never_running = False  # instances stay PROVISIONING (for deadline tests)
            self.disk_types = {}  # (zone, name) -> the boot disk type asked for
            self.request_ids = {}  # requestId -> operation name
            self.service_accounts = {}  # email -> service account
            self.project_policy = {}  # the project's IAM policy (version, bindings, auditConfigs, etag)
            self.secrets = {}  # projects/P/secrets/S -> secret
            self.secret_policies = {}  # projects/P/secrets/S -> IAM policy
            self.secret_versions = {}  # projects/P/secrets/S -> [version with its "_data", oldest first]
            self.caller = None  # the Authorization header of the request being handled
            self.reset_bodies()
            self.policy_races = 0  # next setIamPolicy calls: someone else changes the policy just before
            self.sa_propagation = 0  # next setIamPolicy calls: a new service account is not known yet
            self.fresh_accounts = set()  # emails created since the last propagation
            self.seed_iam()
            self.add_image(IMAGE_PROJECT, "ubuntu-2204-jammy-v20251001", "ubuntu-2204-lts")
            # Someone else's network (not ours: no deployment marker), with two subnetworks and a rule.
            self.add_network("oce-net")
            self.add_subnetwork("us-central1", "oce-private", private_google_access=True)
            self.add_subnetwork("us-central1", "oce-public", private_google_access=False)

    def link(self, path):
        return self.endpoint + path

    def add_image(self, project, name, family, labels=None, created=None, status="READY", deprecated=None, disk_gb=10):
        """An image as Packer (or anyone) leaves it; ``deprecated`` is a DeprecationStatus state."""
        image = {
            "kind": "compute#image",
            "id": str(next(self.ids)),
            "name": name,
            "status": status,
            "diskSizeGb": str(disk_gb),
            "creationTimestamp": created or now(),
            "selfLink": self.link(f"projects/{project}/global/images/{name}"),
        }
        if family:
            image["family"] = family
        if labels:
            image.update(labels=dict(labels), labelFingerprint=fingerprint(labels))
        if deprecated:
            image["deprecated"] = {"state": deprecated}
        self.images[(project, name)] = image
        return image

    def add_disk(self, zone, name, source_image=None, users=()):
        """A zonal disk made by another tool from ``source_image`` (a path), attached to ``users``."""
        disk = {
            "kind": "compute#disk",
            "id": str(next(self.ids)),
            "name": name,
            "zone": self.link(f"projects/{PROJECT}/zones/{zone}"),
            "sizeGb": "10",
            "type": self.link(f"projects/{PROJECT}/zones/{zone}/diskTypes/pd-balanced"),
            "status": "READY",
            "creationTimestamp": now(),
            "selfLink": self.link(f"projects/{PROJECT}/zones/{zone}/disks/{name}"),
        }
        if source_image:
            image = self._image_at(source_image)
            disk.update(sourceImage=image["selfLink"], sourceImageId=image["id"])
        if users:
            disk["users"] = [self.link(f"projects/{PROJECT}/zones/{zone}/instances/{u}") for u in users]
        self.disks[(f"zones/{zone}", name)] = disk
        return disk

    def add_instance_template(self, name, source_image, region=None):
        """An instance template (regional with ``region``) whose boot disk is made from ``source_image``."""
        scope = f"regions/{region}" if region else "global"
        template = {
            "kind": "compute#instanceTemplate",
            "id": str(next(self.ids)),
            "name": name,
            "properties": {
                "machineType": "n1-standard-4",
                "disks": [
                    {
                        "kind": "compute#attachedDisk",
                        "type": "PERSISTENT",
                        "boot": True,
                        "autoDelete": True,
                        "initializeParams": {"sourceImage": source_image},
                    }
                ],
            },
            "creationTimestamp": now(),
            "selfLink": self.link(f"projects/{PROJECT}/{scope}/instanceTemplates/{name}"),
        }
        if region:
            template["region"] = self.link(f"projects/{PROJECT}/regions/{region}")
        self.templates[(scope, name)] = template
        return template

    def add_network(self, name):
        self.networks[name] = {
            "kind": "compute#network",
            "id": str(next(self.ids)),
            "name": name,
            "autoCreateSubnetworks": False,
            "routingConfig": {"routingMode": "REGIONAL"},
            "mtu": 1460,
            "subnetworks": [],
            "creationTimestamp": now(),
            "selfLink": self.link(f"projects/{PROJECT}/global/networks/{name}"),
        }

    def add_subnetwork(self, region, name, private_google_access=True, network="oce-net", cidr="10.10.0.0/24"):
        self.subnetworks[(region, name)] = {
            "kind": "compute#subnetwork",
            "id": str(next(self.ids)),
            "name": name,
            "region": self.link(f"projects/{PROJECT}/regions/{region}"),
            "network": self.link(f"projects/{PROJECT}/global/networks/{network}"),
            "ipCidrRange": cidr,
            "gatewayAddress": str(ipaddress.ip_network(cidr)[1]),
            "fingerprint": "c3VibmV0",
            "privateIpGoogleAccess": private_google_access,
            "creationTimestamp": now(),
            "selfLink": self.link(f"projects/{PROJECT}/regions/{region}/subnetworks/{name}"),
        }

    def add_instance(self, zone, name, machine, labels, metadata=None, status="RUNNING", accelerator=None):
        """Seed a VM as someone else's tool would have created it, for tests of readers (the inventory).

        It goes through the same checks as an insert (not logged); its subnetwork is
        ``<region>-private``, which the test adds first.
        """
        region = zone.rsplit("-", 1)[0]
        body = {
            "name": name,
            "machineType": f"zones/{zone}/machineTypes/{machine}",
            "labels": labels,
            "scheduling": {"onHostMaintenance": "TERMINATE"},
            "metadata": {"items": [{"key": k, "value": v} for k, v in (metadata or {}).items() if v]},
            "networkInterfaces": [{"subnetwork": f"regions/{region}/subnetworks/{region}-private"}],
        }
        if accelerator:
            body["guestAccelerators"] = [{"acceleratorType": f"zones/{zone}/acceleratorTypes/{accelerator}"}]
        with self.lock:
            self.do_instances_insert(project=PROJECT, zone=zone, query={}, body=body)
            self.instances[(zone, name)]["status"] = status
            return self.instances[(zone, name)]

    def seed_iam(self):
        """Someone else's service account and project policy: a test proves they survive."""
        self.add_service_account("other-app", "Another team's app")
        self.add_service_account("oce-node", "A node identity made elsewhere")
        self.project_policy = {
            "version": 3,
            "auditConfigs": [{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}],
            "bindings": [
                {"role": "roles/owner", "members": ["user:owner@example.com"]},
                {"role": "roles/logging.logWriter", "members": [f"serviceAccount:other-app@{SA_DOMAIN}"]},
                {
                    "role": "roles/storage.objectViewer",
                    "members": ["group:data@example.com"],
                    "condition": {
                        "title": "until-2030",
                        "expression": 'request.time < timestamp("2030-01-01T00:00:00Z")',
                    },
                },
            ],
        }
        self.project_policy["etag"] = fingerprint([self.project_policy["bindings"], 0])

    def add_service_account(self, account_id, display_name="", description=""):
        email = f"{account_id}@{SA_DOMAIN}"
        self.service_accounts[email] = {
            "name": f"projects/{PROJECT}/serviceAccounts/{email}",
            "projectId": PROJECT,
            "uniqueId": str(next(self.ids)),
            "email": email,
            "displayName": display_name,
            "description": description,
            "oauth2ClientId": str(next(self.ids)),
        }
        return self.service_accounts[email]

    def add_secret(self, secret_id, labels=None, members=None):
        """A secret as the user creates it (gcloud secrets create), optionally with others' access."""
        name = f"projects/{PROJECT}/secrets/{secret_id}"
        self.secrets[name] = {
            "name": name,
            "replication": {"automatic": {}},
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "labels": dict(labels or {}),
            "etag": '"%s"' % fingerprint(name),
        }
        bindings = [{"role": "roles/secretmanager.secretAccessor", "members": list(members)}] if members else []
        self.secret_policies[name] = {"version": 1, "bindings": bindings, "etag": fingerprint([bindings, 0])}
        return self.secrets[name]

    def members(self, policy, role):
        """Members of the unconditional binding of ``role`` in ``policy``."""
        return sorted(
            m
            for b in policy.get("bindings") or []
            if b["role"] == role and not b.get("condition")
            for m in b["members"]
        )

    def fail(self, method_id, status, reason, times=1, message=None, after=0):
        """The next ``times`` calls of ``method_id`` fail, once ``after`` calls of it went through."""
        queue = self.faults.setdefault(method_id, [])
        queue.extend([None] * after + [(status, reason, message or f"emulated {status} {reason}")] * times)

    def calls(self, method_id=None):
        return [entry for entry in self.log if method_id is None or entry[0] == method_id]

    def changing_calls(self):
        return [e for e in self.log if e[1] != "GET" and e[0] not in READ_ONLY_POSTS]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------ the HTTP side

    def handle(self, http_method, raw_path, raw_body, headers):
        parts = urllib.parse.urlsplit(raw_path)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        with self.lock:
            self.requests += 1
            self.auth.append(headers.get("Authorization"))
            if parts.path == "/token" and http_method == "POST":
                return 200, {
                    "access_token": "ya29.emulator-token-0123456789abcdef",
                    "expires_in": 3600,
                    "token_type": "Bearer",
                }
            method = variables = None
            for api in self.apis:
                method, variables = api.route(http_method, parts.path)
                if method is not None:
                    discovery = api
                    break
            if method is None:
                names = ", ".join(api.name for api in self.apis)
                self.violations.append(f"{http_method} {parts.path}: no method of {names} has this path")
                return 404, error_body(404, "notFound", f"no method of {names} for {http_method} {parts.path}")
            errors = error_body if discovery is self.discovery else status_body
            try:
                body = json.loads(raw_body) if raw_body else None
            except ValueError:
                self.violations.append(f"{method.id}: the body is not JSON")
                return 400, errors(400, "parseError", "This API does not support parsing form-encoded input.")
            self.log.append((method.id, http_method, parts.path, query, body))
            self.served.add(method.id)
            problems = discovery.check_query(method, query)
            if method.request:
                if body is None:
                    problems.append(f"{method.id}: a {method.request} body is required")
                else:
                    problems += discovery.check(method.request, body, "request", request_of=method.id)
            elif body is not None:
                problems.append(f"{method.id}: takes no body, got one")
            if problems:
                self.violations.extend(f"{method.id} request: {p}" for p in problems)
                return 400, errors(400, "invalid", "; ".join(problems))
            queued = self.faults.get(method.id)
            fault = queued.pop(0) if queued else None
            if fault:
                status, reason, message = fault
                return status, errors(status, reason, message)
            handler = getattr(self, "do_" + method.id.replace("compute.", "").replace(".", "_"), None)
            if handler is None:
                self.violations.append(f"{method.id}: the emulator does not serve it")
                return 501, errors(501, "notImplemented", f"the emulator does not serve {method.id}")
            self.caller = headers.get("Authorization")
            try:
                status, response = 200, handler(query=query, body=body, **variables)
            except GceError as exc:
                return exc.status, errors(exc.status, exc.reason, exc.message)
            if method.response:
                problems = discovery.check(method.response, response, "response")
                self.violations.extend(f"{method.id} response: {p}" for p in problems)
            return status, response

    # ------------------------------------------------------------ helpers

    def project(self, project):
        if project != PROJECT:
            raise GceError(403, "forbidden", f"Required 'compute.networks.get' permission for 'projects/{project}'")

    def zone(self, project, zone):
        if project != PROJECT:
            raise GceError(403, "forbidden", f"Required 'compute.zones.get' permission for 'projects/{project}'")
        if zone not in ZONES:
            raise GceError(404, "notFound", f"The resource 'projects/{project}/zones/{zone}' was not found")
        return zone

    def instance(self, project, zone, name):
        self.zone(project, zone)
        found = self.instances.get((zone, name))
        if found is None:
            raise GceError(
                404, "notFound", f"The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found"
            )
        return found

    def operation(self, zone, kind, target, target_id, on_done, error=None, region=None):
        """An operation in a zone, a region (``region``) or global (``zone`` None)."""
        name = f"operation-{next(self.ids)}"
        if zone:
            scope = {"zone": self.link(f"projects/{PROJECT}/zones/{zone}")}
            path = f"projects/{PROJECT}/zones/{zone}/operations/{name}"
        elif region:
            scope = {"region": self.link(f"projects/{PROJECT}/regions/{region}")}
            path = f"projects/{PROJECT}/regions/{region}/operations/{name}"
        else:
            scope, path = {}, f"projects/{PROJECT}/global/operations/{name}"
        op = {
            "kind": "compute#operation",
            "id": str(next(self.ids)),
            "name": name,
            **scope,
            "operationType": kind,
            "targetLink": target,
            "targetId": target_id,
            "status": "PENDING",
            "user": "emulator@oce-test.iam.gserviceaccount.com",
            "progress": 0,
            "insertTime": now(),
            "selfLink": self.link(path),
        }
        self.operations[name] = [op, self.op_steps, on_done, error]
        return copy.deepcopy(op)

    def _next_op_error(self, method_id):
        return self.op_errors.pop(method_id, None)

    def advance(self, instance):
        """One status step per read, as a real VM moves on while you poll it."""
        steps = {
            "PENDING": "PROVISIONING",
            "PROVISIONING": "STAGING",
            "STAGING": "RUNNING",
            "PENDING_STOP": "STOPPING",
            "STOPPING": "TERMINATED",
            "SUSPENDING": "SUSPENDED",
        }
        if self.never_running and instance["status"] in ("PROVISIONING", "STAGING"):
            return
        if instance["status"] in steps:
            instance["status"] = steps[instance["status"]]
            if instance["status"] == "RUNNING":
                instance["lastStartTimestamp"] = now()
            if instance["status"] == "TERMINATED":
                instance["lastStopTimestamp"] = now()

    def page(self, items, query):
        start = int((query.get("pageToken") or ["0"])[0])
        size = int((query.get("maxResults") or [self.page_size])[0])
        chunk = items[start : start + size]
        more = start + size < len(items)
        return chunk, (str(start + size) if more else None)

    # ------------------------------------------------------------ compute.v1 methods

    def do_zones_get(self, project, zone, query, body):
        self.zone(project, zone)
        region = zone.rsplit("-", 1)[0]
        return {
            "kind": "compute#zone",
            "id": str(abs(hash(zone)) % 10**12),
            "name": zone,
            "description": zone,
            "status": "UP",
            "region": self.link(f"projects/{project}/regions/{region}"),
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "selfLink": self.link(f"projects/{project}/zones/{zone}"),
        }

    def do_regions_get(self, project, region, query, body):
        self.project(project)
        zones = sorted(z for z in ZONES if z.rsplit("-", 1)[0] == region)
        if not zones:
            raise self._missing(f"projects/{project}/regions/{region}")
        return {
            "kind": "compute#region",
            "id": str(abs(hash(region)) % 10**12),
            "name": region,
            "description": region,
            "status": "UP",
            "zones": [self.link(f"projects/{project}/zones/{z}") for z in zones],
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "selfLink": self.link(f"projects/{project}/regions/{region}"),
        }

    def do_acceleratorTypes_list(self, project, zone, query, body):
        self.zone(project, zone)
        items = [
            {
                "kind": "compute#acceleratorType",
                "id": str(10000 + i),
                "name": name,
                "description": name,
                "zone": self.link(f"projects/{project}/zones/{zone}"),
                "maximumCardsPerInstance": 4,
                "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
                "selfLink": self.link(f"projects/{project}/zones/{zone}/acceleratorTypes/{name}"),
            }
            for i, name in enumerate(ZONES[zone])
        ]
        chunk, token = self.page(items, query)
        out = {
            "kind": "compute#acceleratorTypeList",
            "id": f"projects/{project}/zones/{zone}/acceleratorTypes",
            "items": chunk,
        }
        if token:
            out["nextPageToken"] = token
        out["selfLink"] = self.link(f"projects/{project}/zones/{zone}/acceleratorTypes")
        return out

    def offered(self, zone, machine):
        spec = MACHINES.get(machine)
        return spec is not None and (spec[2] is None or spec[2] in ZONES[zone])

    def do_machineTypes_get(self, project, zone, machineType, query, body):
        self.zone(project, zone)
        if not self.offered(zone, machineType):
            raise GceError(
                404,
                "notFound",
                f"The resource 'projects/{project}/zones/{zone}/machineTypes/{machineType}' was not found",
            )
        cpus, mem, acc, count = MACHINES[machineType]
        out = {
            "kind": "compute#machineType",
            "id": str(abs(hash(machineType)) % 10**9),
            "name": machineType,
            "description": machineType,
            "guestCpus": cpus,
            "memoryMb": mem,
            "zone": zone,
            "isSharedCpu": False,
            "creationTimestamp": "1969-12-31T16:00:00.000-08:00",
            "selfLink": self.link(f"projects/{project}/zones/{zone}/machineTypes/{machineType}"),
        }
        if acc:
            out["accelerators"] = [{"guestAcceleratorType": acc, "guestAcceleratorCount": count}]
        return out

    def do_subnetworks_get(self, project, region, subnetwork, query, body):
        found = self.subnetworks.get((region, subnetwork)) if project == PROJECT else None
        if found is None:
            raise GceError(
                404,
                "notFound",
                f"The resource 'projects/{project}/regions/{region}/subnetworks/{subnetwork}' was not found",
            )
        return copy.deepcopy(found)

    def do_images_get(self, project, image, query, body):
        found = self.images.get((project, image))
        if found is None:
            raise GceError(404, "notFound", f"The resource 'projects/{project}/global/images/{image}' was not found")
        return copy.deepcopy(found)

    def do_images_getFromFamily(self, project, family, query, body):
        # As the API: the newest image of the family that is not deprecated.
        found = sorted(
            (
                i
                for (p, _n), i in self.images.items()
                if p == project and i.get("family") == family and "deprecated" not in i
            ),
            key=lambda i: (datetime.datetime.fromisoformat(i["creationTimestamp"]), i["name"]),
        )
        if not found:
            raise GceError(
                404, "notFound", f"The resource 'projects/{project}/global/images/family/{family}' was not found"
            )
        return copy.deepcopy(found[-1])

    def do_images_list(self, project, query, body):
        items = [copy.deepcopy(i) for (p, _n), i in sorted(self.images.items()) if p == project]
        return self._list("image", f"projects/{project}/global/images", items, query)

    def _image_at(self, path):
        """The image a path or link names (projects/P/global/images/NAME or .../images/family/F)."""
        match = re.search(r"projects/([^/]+)/global/images/(family/)?([^/]+)$", path or "")
        if not match:
            raise GceError(400, "invalid", f"Invalid value for field 'sourceImage': '{path}'.")
        project, family, name = match.groups()
        if family:
            return self.do_images_getFromFamily(project, name, {}, None)
        return self.do_images_get(project, name, {}, None)

    def do_images_deprecate(self, project, image, query, body):
        self.project(project)
        found = self.do_images_get(project, image, query, None)
        status = {k: v for k, v in body.items() if v}
        if status.get("replacement"):
            # The API wants the replacement to be an image; it stores the full link.
            status["replacement"] = self._image_at(status["replacement"])["selfLink"]

        def change():
            kept = self.images[(project, image)]
            if status.get("state", "ACTIVE") == "ACTIVE":
                kept.pop("deprecated", None)
            else:
                kept["deprecated"] = status

        def deprecate():
            error = self._next_op_error("compute.images.deprecate")
            return self.operation(None, "deprecate", found["selfLink"], found["id"], change, error)

        return self._once(query, deprecate)

    def do_images_delete(self, project, image, query, body):
        self.project(project)
        return self._once(query, lambda: self._images_delete(project, image))

    def _images_delete(self, project, image):
        found = self.do_images_get(project, image, {}, None)
        return self.operation(
            None,
            "delete",
            found["selfLink"],
            found["id"],
            lambda: self.images.pop((project, image), None),
            self._next_op_error("compute.images.delete"),
        )

    def do_instanceTemplates_aggregatedList(self, project, query, body):
        self.project(project)
        scopes = ["global"] + [f"regions/{r}" for r in sorted({z.rsplit("-", 1)[0] for z in ZONES})]
        return self._aggregated("instanceTemplate", "instanceTemplates", project, scopes, self.templates, query)

    def do_disks_aggregatedList(self, project, query, body):
        self.project(project)
        return self._aggregated("disk", "disks", project, [f"zones/{z}" for z in ZONES], self.disks, query)

    def do_zoneOperations_get(self, project, zone, operation, query, body):
        self.zone(project, zone)
        return self._poll(f"projects/{project}/zones/{zone}/operations/{operation}", operation)

    def do_regionOperations_get(self, project, region, operation, query, body):
        self.project(project)
        return self._poll(f"projects/{project}/regions/{region}/operations/{operation}", operation)

    def do_globalOperations_get(self, project, operation, query, body):
        self.project(project)
        return self._poll(f"projects/{project}/global/operations/{operation}", operation)

    def _poll(self, path, operation):
        entry = self.operations.get(operation)
        if entry is None or not entry[0]["selfLink"].endswith(path):
            raise GceError(404, "notFound", f"The resource '{path}' was not found")
        op = entry[0]
        if op["status"] != "DONE":
            entry[1] -= 1
            if entry[1] <= 0:
                op.update(status="DONE", progress=100, endTime=now())
                error = entry[3]
                if error:
                    status, code, message = error
                    op["error"] = {"errors": [{"code": code, "message": message}]}
                    op["httpErrorStatusCode"] = status
                    op["httpErrorMessage"] = "SERVICE UNAVAILABLE" if status == 503 else "BAD REQUEST"
                elif entry[2]:
                    entry[2]()
            else:
                op.update(status="RUNNING", progress=50, startTime=op.get("startTime") or now())
        return copy.deepcopy(op)

    def _once(self, query, insert):
        """``insert()`` unless the request id was seen: the API answers a repeat with its first operation."""
        request_id = (query.get("requestId") or [None])[0]
        if request_id in self.request_ids:
            return copy.deepcopy(self.operations[self.request_ids[request_id]][0])
        op = insert()
        if request_id:
            self.request_ids[request_id] = op["name"]
        return op

    def do_instances_insert(self, project, zone, query, body):
        self.zone(project, zone)
        return self._once(query, lambda: self._insert(project, zone, body))

    def _insert(self, project, zone, body):
        name = body["name"]
        if (zone, name) in self.instances:
            raise GceError(
                409, "alreadyExists", f"The resource 'projects/{project}/zones/{zone}/instances/{name}' already exists"
            )
        machine = body["machineType"].rsplit("/", 1)[-1]
        if not self.offered(zone, machine):
            raise GceError(
                400,
                "invalid",
                f"Invalid value for field 'resource.machineType': '{body['machineType']}'. "
                f"Machine type with name '{machine}' does not exist in zone '{zone}'.",
            )
        accs = []
        for acc in body.get("guestAccelerators") or []:
            acc_name = acc["acceleratorType"].rsplit("/", 1)[-1]
            if acc_name not in ZONES[zone]:
                raise GceError(
                    400,
                    "invalid",
                    "Invalid value for field 'resource.guestAccelerators[0].acceleratorType': "
                    f"'{acc['acceleratorType']}'. Accelerator type '{acc_name}' does not exist in zone '{zone}'.",
                )
            accs.append(
                {
                    "acceleratorType": self.link(f"projects/{project}/zones/{zone}/acceleratorTypes/{acc_name}"),
                    "acceleratorCount": acc.get("acceleratorCount", 1),
                }
            )
        _cpus, _mem, built_in, count = MACHINES[machine]
        if built_in and not accs:
            accs = [
                {
                    "acceleratorType": self.link(f"projects/{project}/zones/{zone}/acceleratorTypes/{built_in}"),
                    "acceleratorCount": count,
                }
            ]
        if accs and (body.get("scheduling") or {}).get("onHostMaintenance") != "TERMINATE":
            raise GceError(400, "invalid", "Instances with guest accelerators do not support live migration.")
        self._check_labels(body.get("labels") or {}, "resource.labels")
        for i, account in enumerate(body.get("serviceAccounts") or []):
            email = account.get("email") or ""
            if email.endswith("@" + SA_DOMAIN) and email not in self.service_accounts:
                raise GceError(
                    400,
                    "invalid",
                    f"Invalid value for field 'resource.serviceAccounts[{i}].email': '{email}'. "
                    f"The user does not have access to service account '{email}' (or it does not exist).",
                )
        for nic in body.get("networkInterfaces") or []:
            sub = nic.get("subnetwork", "").rsplit("/", 1)[-1]
            subnet = self.subnetworks.get((zone.rsplit("-", 1)[0], sub))
            if subnet is None:
                raise GceError(
                    400,
                    "invalid",
                    "Invalid value for field 'resource.networkInterfaces[0].subnetwork': "
                    f"'{nic.get('subnetwork')}'. The referenced subnetwork resource cannot be found.",
                )
        boot = (body.get("disks") or [{}])[0]
        init = boot.get("initializeParams") or {}
        source = self._image_at(init["sourceImage"]) if init.get("sourceImage") else None
        link = self.link(f"projects/{project}/zones/{zone}/instances/{name}")
        iid = str(next(self.ids))
        instance = {
            "kind": "compute#instance",
            "id": iid,
            "name": name,
            "zone": self.link(f"projects/{project}/zones/{zone}"),
            "machineType": self.link(f"projects/{project}/zones/{zone}/machineTypes/{machine}"),
            "status": "PROVISIONING",
            "creationTimestamp": now(),
            "labels": dict(body.get("labels") or {}),
            "labelFingerprint": fingerprint(body.get("labels") or {}),
            "scheduling": dict(body.get("scheduling") or {}),
            "shieldedInstanceConfig": dict(body.get("shieldedInstanceConfig") or {}),
            "serviceAccounts": copy.deepcopy(body.get("serviceAccounts") or []),
            "metadata": {
                "kind": "compute#metadata",
                "fingerprint": fingerprint((body.get("metadata") or {}).get("items") or []),
                "items": copy.deepcopy((body.get("metadata") or {}).get("items") or []),
            },
            "networkInterfaces": [
                {
                    "kind": "compute#networkInterface",
                    "name": "nic0",
                    "network": subnet["network"],
                    "subnetwork": subnet["selfLink"],
                    "networkIP": str(ipaddress.ip_network(subnet["ipCidrRange"])[len(self.instances) + 2]),
                    "stackType": "IPV4_ONLY",
                    "fingerprint": "Zm9vYmFy",
                    # Copied as given: an accessConfigs entry would mean an external IP.
                    **({"accessConfigs": nic["accessConfigs"]} if nic.get("accessConfigs") else {}),
                }
                for nic in body.get("networkInterfaces") or []
            ],
            "disks": [
                {
                    "kind": "compute#attachedDisk",
                    "type": boot.get("type", "PERSISTENT"),
                    "mode": boot.get("mode", "READ_WRITE"),
                    "source": self.link(f"projects/{project}/zones/{zone}/disks/{name}"),
                    "deviceName": name,
                    "index": 0,
                    "boot": True,
                    "autoDelete": boot.get("autoDelete", False),
                    "interface": "SCSI",
                    "diskSizeGb": init.get("diskSizeGb", "10"),
                }
            ],
            "canIpForward": False,
            "deletionProtection": False,
            "startRestricted": False,
            "cpuPlatform": "Intel Broadwell",
            "fingerprint": "Ym9vdA==",
            "selfLink": link,
        }
        if accs:
            instance["guestAccelerators"] = accs
        if body.get("tags"):
            instance["tags"] = {"items": list(body["tags"].get("items") or []), "fingerprint": "dGFncw=="}
        error = (
            self._exhausted(project, zone)
            or self._over_quota(accs, zone)
            or self._next_op_error("compute.instances.insert")
        )
        self.disk_types[(zone, name)] = init.get("diskType")  # what the boot disk was asked to be
        if error:
            return self.operation(zone, "insert", link, iid, None, error)
        self.instances[(zone, name)] = instance
        if source:
            # The boot disk, named after the instance, remembers the image it was made from.
            self.add_disk(zone, name, source["selfLink"], users=[name])
        return self.operation(zone, "insert", link, iid, None)

    def do_instances_get(self, project, zone, instance, query, body):
        found = self.instance(project, zone, instance)
        self.advance(found)
        return copy.deepcopy(found)

    def _filtered(self, items, query):
        expr = (query.get("filter") or [""])[0]
        for field, op, value in _FILTER.findall(expr):

            def get(item, field=field):
                node = item
                for part in field.split("."):
                    node = node.get(part) if isinstance(node, dict) else None
                return None if node is None else str(node)

            items = [i for i in items if (get(i) == value) == (op == "=")]
        return items

    def do_instances_list(self, project, zone, query, body):
        self.zone(project, zone)
        items = self._filtered([copy.deepcopy(i) for (z, _n), i in sorted(self.instances.items()) if z == zone], query)
        chunk, token = self.page(items, query)
        out = {
            "kind": "compute#instanceList",
            "id": f"projects/{project}/zones/{zone}/instances",
            "items": chunk,
            "selfLink": self.link(f"projects/{project}/zones/{zone}/instances"),
        }
        if token:
            out["nextPageToken"] = token
        return out

    def do_instances_aggregatedList(self, project, query, body):
        if project != PROJECT:
            raise GceError(403, "forbidden", f"Required 'compute.instances.list' permission for 'projects/{project}'")
        instances = {(f"zones/{z}", n): i for (z, n), i in self.instances.items()}
        return self._aggregated("instance", "instances", project, [f"zones/{z}" for z in ZONES], instances, query)

    def _aggregated(self, kind, resource, project, scopes, found, query):
        """An aggregatedList of ``found`` ((scope, name) -> item) over ``scopes``, paged two scopes a page."""
        items = {}
        for scope in scopes:
            listed = self._filtered([copy.deepcopy(v) for (s, _n), v in sorted(found.items()) if s == scope], query)
            if listed:
                items[scope] = {resource: listed}
            else:
                items[scope] = {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": f"There are no results for scope '{scope}' on this page.",
                        "data": [{"key": "scope", "value": scope}],
                    }
                }
        chunk, token = self.page(sorted(items), query)
        out = {
            "kind": f"compute#{kind}AggregatedList",
            "id": f"projects/{project}/aggregated/{resource}",
            "items": {k: items[k] for k in chunk},
            "selfLink": self.link(f"projects/{project}/aggregated/{resource}"),
        }
        if token:
            out["nextPageToken"] = token
        return out

    def _over_quota(self, accelerators, zone):
        """The operation error of an insert asking for a GPU type without quota, else None."""
        for acc in accelerators or []:
            kind = acc["acceleratorType"].rsplit("/", 1)[-1]
            if kind in self.no_quota:
                metric = kind.upper().replace("TESLA-", "").replace("-", "_") + "_GPUS"
                region = zone.rsplit("-", 1)[0]
                return 403, "QUOTA_EXCEEDED", f"Quota '{metric}' exceeded.  Limit: 0.0 in region {region}."
        return None

    def _exhausted(self, project, zone):
        """The operation error of an insert or a start in a zone whose pool is exhausted, else None."""
        if zone not in self.exhausted:
            return None
        return (
            503,
            "ZONE_RESOURCE_POOL_EXHAUSTED",
            f"The zone 'projects/{project}/zones/{zone}' does not have enough resources available to "
            "fulfill the request.  Try a different zone, or try again later.",
        )

    def _change(self, project, zone, instance, kind, change, allowed):
        found = self.instance(project, zone, instance)
        if found["status"] not in allowed:
            raise GceError(
                400,
                "resourceNotReady",
                f"The resource 'projects/{project}/zones/{zone}/instances/{instance}' is not ready",
            )
        exhausted = self._exhausted(project, zone) if kind == "start" and found["status"] != "RUNNING" else None
        error = exhausted or self._next_op_error(f"compute.instances.{kind}")
        return self.operation(zone, kind, found["selfLink"], found["id"], lambda: change(found), error)

    def _change_once(self, query, project, zone, instance, kind, change, allowed):
        """``_change`` unless the request id was seen: a repeat gets the first operation back."""
        return self._once(query, lambda: self._change(project, zone, instance, kind, change, allowed))

    def do_instances_stop(self, project, zone, instance, query, body):
        return self._change_once(
            query,
            project,
            zone,
            instance,
            "stop",
            lambda i: i.update(status="STOPPING"),
            ("RUNNING", "PROVISIONING", "STAGING", "TERMINATED"),
        )

    def do_instances_start(self, project, zone, instance, query, body):
        return self._change_once(
            query, project, zone, instance, "start", lambda i: i.update(status="STAGING"), ("TERMINATED", "RUNNING")
        )

    def do_instances_delete(self, project, zone, instance, query, body):
        def delete(found):
            self.instances.pop((zone, instance), None)
            for attached in found["disks"]:
                disk = (f"zones/{zone}", attached["source"].rsplit("/", 1)[-1])
                if attached.get("autoDelete"):
                    self.disks.pop(disk, None)
                elif disk in self.disks:
                    self.disks[disk].pop("users", None)

        return self._change_once(query, project, zone, instance, "delete", delete, tuple(STATUSES))

    @staticmethod
    def _check_labels(labels, field):
        if len(labels) > 64:
            raise GceError(400, "invalid", f"Invalid value for field '{field}': at most 64 labels, got {len(labels)}.")
        for key, value in labels.items():
            if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(value):
                raise GceError(
                    400,
                    "invalid",
                    f"Invalid value for field '{field}': '{key}': '{value}'. Label keys and values may hold "
                    "at most 63 lowercase letters, digits, '_' and '-'; keys start with a letter.",
                )

    def do_instances_setLabels(self, project, zone, instance, query, body):
        return self._once(query, lambda: self._set_labels(project, zone, instance, body))

    def _set_labels(self, project, zone, instance, body):
        found = self.instance(project, zone, instance)
        # The API answers a missing or stale fingerprint alike (and checks it before the labels).
        if body.get("labelFingerprint") != found["labelFingerprint"]:
            raise GceError(412, "conditionNotMet", "Labels fingerprint either invalid or resource labels have changed")
        labels = dict(body.get("labels") or {})
        self._check_labels(labels, "labels")

        def change(i):
            i.update(labels=labels, labelFingerprint=fingerprint(labels))

        return self._change(project, zone, instance, "setLabels", change, tuple(STATUSES))

    def do_instances_setMetadata(self, project, zone, instance, query, body):
        return self._once(query, lambda: self._set_metadata(project, zone, instance, body))

    def _set_metadata(self, project, zone, instance, body):
        found = self.instance(project, zone, instance)
        if body.get("fingerprint") != found["metadata"]["fingerprint"]:
            raise GceError(412, "conditionNotMet", "Supplied fingerprint does not match current metadata fingerprint.")
        items = copy.deepcopy(body.get("items") or [])
        keys = [i.get("key") for i in items]
        bad = [k for k in keys if not re.match(r"^[a-zA-Z0-9_-]{1,128}$", str(k or ""))]
        if bad or len(set(keys)) != len(keys):
            raise GceError(400, "invalid", f"Invalid value for field 'metadata.items': keys {keys!r}.")

        def change(i):
            i["metadata"].update(items=items, fingerprint=fingerprint(items))

        return self._change(project, zone, instance, "setMetadata", change, tuple(STATUSES))

    # ------------------------------------------------------------ networks, subnetworks, routers, firewalls

    def _list(self, kind, path, items, query):
        items = self._filtered(items, query)
        chunk, token = self.page(items, query)
        out = {"kind": f"compute#{kind}List", "id": path, "items": chunk, "selfLink": self.link(path)}
        if token:
            out["nextPageToken"] = token
        return out

    def _missing(self, path):
        return GceError(404, "notFound", f"The resource '{path}' was not found")

    def _network_of(self, project, link, field):
        name = str(link or "").rsplit("/", 1)[-1]
        if name not in self.networks:
            raise GceError(
                400,
                "invalid",
                f"Invalid value for field 'resource.{field}': '{link}'. "
                "The referenced network resource cannot be found.",
            )
        return self.networks[name]

    def _users_of(self, link):
        """Resources that refer to ``link`` (a network or subnetwork self link) and block its deletion."""
        users = [s["selfLink"] for s in self.subnetworks.values() if s["network"] == link]
        users += [f["selfLink"] for f in self.firewalls.values() if f["network"] == link]
        users += [r["selfLink"] for r in self.routers.values() if r["network"] == link]
        users += [
            i["selfLink"]
            for i in self.instances.values()
            if any(link in (n.get("subnetwork"), n.get("network")) for n in i["networkInterfaces"])
        ]
        users += [
            r["selfLink"]
            for r in self.routers.values()
            if any(link == s.get("name") for n in r.get("nats") or [] for s in n.get("subnetworks") or [])
        ]
        return users

    def _in_use(self, link, users):
        return GceError(
            400,
            "resourceInUseByAnotherResource",
            f"The resource '{link.replace(self.endpoint, '')}' is already being used by "
            f"'{users[0].replace(self.endpoint, '')}'",
        )

    def do_networks_insert(self, project, query, body):
        return self._once(query, lambda: self._networks_insert(project, body))

    def _networks_insert(self, project, body):
        self.project(project)
        name = body["name"]
        if name in self.networks:
            raise GceError(
                409, "alreadyExists", f"The resource 'projects/{project}/global/networks/{name}' already exists"
            )
        if body.get("autoCreateSubnetworks") is not False:
            raise GceError(400, "invalid", "the emulator only plays custom-mode networks (autoCreateSubnetworks=false)")
        net = {
            "kind": "compute#network",
            "id": str(next(self.ids)),
            "name": name,
            "description": body.get("description", ""),
            "autoCreateSubnetworks": False,
            "routingConfig": dict(body.get("routingConfig") or {"routingMode": "REGIONAL"}),
            "mtu": body.get("mtu", 1460),
            "subnetworks": [],
            "creationTimestamp": now(),
            "selfLink": self.link(f"projects/{project}/global/networks/{name}"),
        }
        error = self._next_op_error("compute.networks.insert")
        return self.operation(
            None, "insert", net["selfLink"], net["id"], lambda: self.networks.update({name: net}), error
        )

    def do_networks_get(self, project, network, query, body):
        self.project(project)
        found = self.networks.get(network)
        if found is None:
            raise self._missing(f"projects/{project}/global/networks/{network}")
        out = copy.deepcopy(found)
        out["subnetworks"] = [s["selfLink"] for s in self.subnetworks.values() if s["network"] == found["selfLink"]]
        return out

    def do_networks_delete(self, project, network, query, body):
        found = self.do_networks_get(project, network, query, body)
        users = self._users_of(found["selfLink"])
        if users:
            raise self._in_use(found["selfLink"], users)
        return self.operation(None, "delete", found["selfLink"], found["id"], lambda: self.networks.pop(network, None))

    def do_subnetworks_insert(self, project, region, query, body):
        return self._once(query, lambda: self._subnetworks_insert(project, region, body))

    def _subnetworks_insert(self, project, region, body):
        self.project(project)
        name = body["name"]
        if (region, name) in self.subnetworks:
            raise GceError(
                409,
                "alreadyExists",
                f"The resource 'projects/{project}/regions/{region}/subnetworks/{name}' already exists",
            )
        net = self._network_of(project, body.get("network"), "network")
        try:
            cidr = ipaddress.ip_network(body.get("ipCidrRange") or "")
        except ValueError:
            raise GceError(
                400, "invalid", f"Invalid value for field 'resource.ipCidrRange': '{body.get('ipCidrRange')}'."
            ) from None
        for other in self.subnetworks.values():
            if other["network"] == net["selfLink"] and ipaddress.ip_network(other["ipCidrRange"]).overlaps(cidr):
                raise GceError(
                    400,
                    "invalid",
                    f"Invalid IPCidrRange: {cidr} conflicts with existing subnetwork '{other['name']}' "
                    f"in region '{region}'.",
                )
        sub = {
            "kind": "compute#subnetwork",
            "id": str(next(self.ids)),
            "name": name,
            "description": body.get("description", ""),
            "region": self.link(f"projects/{project}/regions/{region}"),
            "network": net["selfLink"],
            "ipCidrRange": str(cidr),
            "gatewayAddress": str(cidr[1]),
            "privateIpGoogleAccess": bool(body.get("privateIpGoogleAccess")),
            "stackType": body.get("stackType", "IPV4_ONLY"),
            "purpose": "PRIVATE",
            "fingerprint": "c3VibmV0",
            "creationTimestamp": now(),
            "selfLink": self.link(f"projects/{project}/regions/{region}/subnetworks/{name}"),
        }
        if body.get("logConfig"):
            sub["logConfig"] = dict(body["logConfig"])
        return self.operation(
            None,
            "insert",
            sub["selfLink"],
            sub["id"],
            lambda: self.subnetworks.update({(region, name): sub}),
            self._next_op_error("compute.subnetworks.insert"),
            region=region,
        )

    def do_subnetworks_delete(self, project, region, subnetwork, query, body):
        found = self.do_subnetworks_get(project, region, subnetwork, query, body)
        users = self._users_of(found["selfLink"])
        if users:
            raise self._in_use(found["selfLink"], users)
        return self.operation(
            None,
            "delete",
            found["selfLink"],
            found["id"],
            lambda: self.subnetworks.pop((region, subnetwork), None),
            region=region,
        )

    def do_subnetworks_setPrivateIpGoogleAccess(self, project, region, subnetwork, query, body):
        found = self.do_subnetworks_get(project, region, subnetwork, query, None)
        flag = bool(body.get("privateIpGoogleAccess"))
        return self.operation(
            None,
            "setPrivateIpGoogleAccess",
            found["selfLink"],
            found["id"],
            lambda: self.subnetworks[(region, subnetwork)].update(privateIpGoogleAccess=flag),
            region=region,
        )

    def _router_body(self, project, region, body, existing=None):
        router = copy.deepcopy(existing) if existing else {}
        router.update({k: copy.deepcopy(v) for k, v in body.items()})
        net = self._network_of(project, router.get("network"), "network")
        router["network"] = net["selfLink"]
        for nat in router.get("nats") or []:
            for item in nat.get("subnetworks") or []:
                link = item.get("name", "")
                if (region, link.rsplit("/", 1)[-1]) not in self.subnetworks:
                    raise GceError(
                        400,
                        "invalid",
                        f"Invalid value for field 'resource.nats[0].subnetworks[0].name': '{link}'. "
                        "The referenced subnetwork resource cannot be found.",
                    )
                item["name"] = self.subnetworks[(region, link.rsplit("/", 1)[-1])]["selfLink"]
            if nat.get("sourceSubnetworkIpRangesToNat") == "LIST_OF_SUBNETWORKS" and not nat.get("subnetworks"):
                raise GceError(400, "invalid", "LIST_OF_SUBNETWORKS needs at least one subnetwork")
        return router

    def do_routers_insert(self, project, region, query, body):
        return self._once(query, lambda: self._routers_insert(project, region, body))

    def _routers_insert(self, project, region, body):
        self.project(project)
        name = body["name"]
        if (region, name) in self.routers:
            raise GceError(
                409,
                "alreadyExists",
                f"The resource 'projects/{project}/regions/{region}/routers/{name}' already exists",
            )
        router = self._router_body(project, region, body)
        router.update(
            kind="compute#router",
            id=str(next(self.ids)),
            region=self.link(f"projects/{project}/regions/{region}"),
            creationTimestamp=now(),
            selfLink=self.link(f"projects/{project}/regions/{region}/routers/{name}"),
        )
        return self.operation(
            None,
            "insert",
            router["selfLink"],
            router["id"],
            lambda: self.routers.update({(region, name): router}),
            self._next_op_error("compute.routers.insert"),
            region=region,
        )

    def do_routers_get(self, project, region, router, query, body):
        self.project(project)
        found = self.routers.get((region, router))
        if found is None:
            raise self._missing(f"projects/{project}/regions/{region}/routers/{router}")
        return copy.deepcopy(found)

    def do_routers_list(self, project, region, query, body):
        self.project(project)
        items = [copy.deepcopy(r) for (reg, _n), r in sorted(self.routers.items()) if reg == region]
        return self._list("router", f"projects/{project}/regions/{region}/routers", items, query)

    def do_routers_patch(self, project, region, router, query, body):
        found = self.do_routers_get(project, region, router, query, None)
        patched = self._router_body(project, region, body, found)
        return self.operation(
            None,
            "patch",
            found["selfLink"],
            found["id"],
            lambda: self.routers.update({(region, router): patched}),
            region=region,
        )

    def do_routers_delete(self, project, region, router, query, body):
        found = self.do_routers_get(project, region, router, query, None)
        return self.operation(
            None,
            "delete",
            found["selfLink"],
            found["id"],
            lambda: self.routers.pop((region, router), None),
            region=region,
        )

    def _firewall_body(self, project, body, existing=None):
        rule = copy.deepcopy(existing) if existing else {"direction": "INGRESS", "priority": 1000, "disabled": False}
        rule.update({k: copy.deepcopy(v) for k, v in body.items()})
        rule["network"] = self._network_of(project, rule.get("network"), "network")["selfLink"]
        if bool(rule.get("allowed")) == bool(rule.get("denied")):
            raise GceError(400, "invalid", "Exactly one of 'allowed' or 'denied' must be specified.")
        if rule["direction"] == "INGRESS" and not (rule.get("sourceRanges") or rule.get("sourceTags")):
            rule["sourceRanges"] = ["0.0.0.0/0"]
        return rule

    def do_firewalls_insert(self, project, query, body):
        return self._once(query, lambda: self._firewalls_insert(project, body))

    def _firewalls_insert(self, project, body):
        self.project(project)
        name = body["name"]
        if name in self.firewalls:
            raise GceError(
                409, "alreadyExists", f"The resource 'projects/{project}/global/firewalls/{name}' already exists"
            )
        rule = self._firewall_body(project, body)
        rule.update(
            kind="compute#firewall",
            id=str(next(self.ids)),
            creationTimestamp=now(),
            selfLink=self.link(f"projects/{project}/global/firewalls/{name}"),
        )
        error = self._next_op_error("compute.firewalls.insert")
        return self.operation(
            None, "insert", rule["selfLink"], rule["id"], lambda: self.firewalls.update({name: rule}), error
        )

    def do_firewalls_get(self, project, firewall, query, body):
        self.project(project)
        found = self.firewalls.get(firewall)
        if found is None:
            raise self._missing(f"projects/{project}/global/firewalls/{firewall}")
        return copy.deepcopy(found)

    def do_firewalls_list(self, project, query, body):
        self.project(project)
        items = [copy.deepcopy(f) for _n, f in sorted(self.firewalls.items())]
        return self._list("firewall", f"projects/{project}/global/firewalls", items, query)

    def do_firewalls_patch(self, project, firewall, query, body):
        found = self.do_firewalls_get(project, firewall, query, None)
        if body.get("name") != firewall:
            raise GceError(400, "invalid", "Invalid value for field 'resource.name': the name cannot change.")
        patched = self._firewall_body(project, body, found)
        return self.operation(
            None, "patch", found["selfLink"], found["id"], lambda: self.firewalls.update({firewall: patched})
        )

    def do_firewalls_delete(self, project, firewall, query, body):
        found = self.do_firewalls_get(project, firewall, query, None)
        return self.operation(
            None, "delete", found["selfLink"], found["id"], lambda: self.firewalls.pop(firewall, None)
        )

    # ------------------------------------------------------------ iam.v1: service accounts

    def _iam_project(self, project):
        if project not in ("-", PROJECT):
            raise GceError(
                403,
                "PERMISSION_DENIED",
                f"Permission 'iam.serviceAccounts.get' denied on resource (or it may not exist): projects/{project}",
            )

    def _account(self, project, ident):
        self._iam_project(project)
        for account in self.service_accounts.values():
            if ident in (account["email"], account["uniqueId"]):
                return account
        raise GceError(404, "NOT_FOUND", f"Unknown service account {ident}")

    def do_iam_projects_serviceAccounts_create(self, projectsId, query, body):
        self._iam_project(projectsId)
        if projectsId == "-":
            raise GceError(400, "INVALID_ARGUMENT", "A project id is required to create a service account")
        account_id = body.get("accountId") or ""
        if not (6 <= len(account_id) <= 30 and _ACCOUNT_ID.match(account_id)):
            raise GceError(
                400,
                "INVALID_ARGUMENT",
                f"Invalid account ID {account_id!r}: it must be 6 to 30 lowercase letters, digits or dashes, "
                "starting with a letter and not ending with a dash",
            )
        email = f"{account_id}@{SA_DOMAIN}"
        if email in self.service_accounts:
            raise GceError(
                409, "ALREADY_EXISTS", f"Service account {account_id} already exists within project projects/{PROJECT}."
            )
        wanted = body.get("serviceAccount") or {}
        if len(wanted.get("displayName") or "") > 100 or len(wanted.get("description") or "") > 256:
            raise GceError(400, "INVALID_ARGUMENT", "displayName is limited to 100 and description to 256 characters")
        self.fresh_accounts.add(email)
        return copy.deepcopy(
            self.add_service_account(account_id, wanted.get("displayName") or "", wanted.get("description") or "")
        )

    def do_iam_projects_serviceAccounts_get(self, projectsId, serviceAccountsId, query, body):
        return copy.deepcopy(self._account(projectsId, serviceAccountsId))

    def do_iam_projects_serviceAccounts_delete(self, projectsId, serviceAccountsId, query, body):
        account = self._account(projectsId, serviceAccountsId)
        del self.service_accounts[account["email"]]
        self.fresh_accounts.discard(account["email"])
        # As in IAM: the bindings stay, their member becomes deleted:serviceAccount:EMAIL?uid=ID.
        member = "serviceAccount:" + account["email"]
        for policy in [self.project_policy, *self.secret_policies.values()]:
            for binding in policy.get("bindings") or []:
                binding["members"] = [
                    f"deleted:{m}?uid={account['uniqueId']}" if m == member else m for m in binding["members"]
                ]
        return {}

    # ------------------------------------------------------------ IAM policies (Resource Manager, Secret Manager)

    def _policy_out(self, policy, requested):
        """The policy as getIamPolicy answers for ``requested`` version (conditions only from 3 on)."""
        out = copy.deepcopy(policy)
        conditional = any(b.get("condition") for b in out.get("bindings") or [])
        if conditional and requested < 3:
            # As the API does: a v1 reader sees conditional bindings under a role it cannot set back.
            for b in out["bindings"]:
                if b.pop("condition", None):
                    b["role"] = f"{b['role']}_withcond_{fingerprint(b)[:8].lower().replace('/', 'x')}"
        out["version"] = 3 if conditional and requested >= 3 else 1
        if not out.get("bindings"):
            out.pop("bindings", None)
        if not out.get("auditConfigs"):
            out.pop("auditConfigs", None)
        return out

    def _set_policy(self, current, body, race):
        """setIamPolicy onto ``current`` (changed in place); the new policy, or GceError as the API says."""
        if self.policy_races > 0:
            self.policy_races -= 1
            race(current)
        new = copy.deepcopy(body["policy"])
        if new.get("etag") and new["etag"] != current.get("etag"):
            raise GceError(
                409,
                "ABORTED",
                "There were concurrent policy changes. "
                "Please retry the whole read-modify-write with exponential backoff.",
            )
        bindings = [b for b in new.get("bindings") or [] if b.get("members")]
        for b in bindings:
            if "_withcond_" in b["role"]:
                raise GceError(400, "INVALID_ARGUMENT", f"Role {b['role']} is not supported for this resource.")
            if not re.match(r"^(roles/|projects/[^/]+/roles/|organizations/[0-9]+/roles/)[A-Za-z0-9_.]+$", b["role"]):
                raise GceError(400, "INVALID_ARGUMENT", f"Role {b['role']} is not supported for this resource.")
            if b.get("condition") and (new.get("version") or 1) < 3:
                raise GceError(
                    400,
                    "INVALID_ARGUMENT",
                    "Policy version 1 cannot contain conditions: read the policy with requestedPolicyVersion 3",
                )
        had = {m for b in current.get("bindings") or [] for m in b["members"]}
        if any(b.get("condition") for b in current.get("bindings") or []) and (new.get("version") or 1) < 3:
            raise GceError(
                400,
                "INVALID_ARGUMENT",
                "The policy has conditional role bindings; a version 1 policy would drop them. Use version 3.",
            )
        for member in sorted({m for b in bindings for m in b["members"]} - had):
            email = member.split(":", 1)[1] if member.startswith("serviceAccount:") else ""
            if not email.endswith("@" + SA_DOMAIN):
                continue
            if email in self.fresh_accounts and self.sa_propagation > 0:
                self.sa_propagation -= 1
            elif email in self.service_accounts:
                continue
            raise GceError(400, "INVALID_ARGUMENT", f"Service account {email} does not exist.")
        serial = int(current.get("_serial", 0)) + 1
        current.clear()
        current.update(
            bindings=bindings,
            etag=fingerprint([bindings, serial]),
            version=3 if any(b.get("condition") for b in bindings) else 1,
            _serial=serial,
        )
        if new.get("auditConfigs") is not None:
            current["auditConfigs"] = new["auditConfigs"]
        return current

    @staticmethod
    def _race(policy):
        """Someone else grants roles/viewer between our read and our write: the etag moves on."""
        bindings = policy.setdefault("bindings", [])
        bindings.append({"role": "roles/viewer", "members": ["user:racer@example.com"]})
        policy["_serial"] = int(policy.get("_serial", 0)) + 1
        policy["etag"] = fingerprint([bindings, policy["_serial"]])

    @staticmethod
    def _public(policy):
        return {k: v for k, v in policy.items() if not k.startswith("_")}

    def do_cloudresourcemanager_projects_getIamPolicy(self, resource, query, body):
        if resource != PROJECT:
            raise GceError(403, "PERMISSION_DENIED", f"The caller does not have permission (projects/{resource})")
        requested = ((body or {}).get("options") or {}).get("requestedPolicyVersion") or 1
        return self._policy_out(self._public(self.project_policy), requested)

    def do_cloudresourcemanager_projects_setIamPolicy(self, resource, query, body):
        if resource != PROJECT:
            raise GceError(403, "PERMISSION_DENIED", f"The caller does not have permission (projects/{resource})")
        return self._policy_out(self._public(self._set_policy(self.project_policy, body, self._race)), 3)

    # ------------------------------------------------------------ secretmanager.v1: secrets

    def _secret(self, project, secret):
        if project != PROJECT:
            raise GceError(
                403,
                "PERMISSION_DENIED",
                f"Permission 'secretmanager.secrets.get' denied for resource projects/{project}",
            )
        name = f"projects/{project}/secrets/{secret}"
        if name not in self.secrets:
            raise GceError(404, "NOT_FOUND", f"Secret [{name}] not found or has no versions.")
        return name

    def do_secretmanager_projects_secrets_get(self, projectsId, secretsId, query, body):
        return copy.deepcopy(self.secrets[self._secret(projectsId, secretsId)])

    def do_secretmanager_projects_secrets_getIamPolicy(self, projectsId, secretsId, query, body):
        name = self._secret(projectsId, secretsId)
        requested = int((query.get("options.requestedPolicyVersion") or ["1"])[0])
        return self._policy_out(self._public(self.secret_policies[name]), requested)

    def do_secretmanager_projects_secrets_setIamPolicy(self, projectsId, secretsId, query, body):
        name = self._secret(projectsId, secretsId)
        return self._policy_out(self._public(self._set_policy(self.secret_policies[name], body, self._race)), 3)

    # A secret's versions: added by the deployer, read by a node with its own service account.
    # A token from the metadata server (ya29.sim.<email>) is held to IAM, as Google holds a VM's
    # account: the secret's or the project's policy must grant the role; other credentials are
    # the deployer's (owner) and may do anything.
    READERS = ("roles/secretmanager.secretAccessor", "roles/secretmanager.admin", "roles/owner")
    ADDERS = ("roles/secretmanager.secretVersionAdder", "roles/secretmanager.admin", "roles/owner")

    def _allowed(self, name, roles, permission):
        email = sim_token_email(self.caller)
        if email is None:
            return
        member = f"serviceAccount:{email}"
        policies = [self.project_policy, self.secret_policies.get(name) or {}]
        # Conditional bindings are not evaluated: only an unconditional grant counts.
        if any(member in self.members(policy, role) for policy in policies for role in roles):
            return
        raise GceError(
            403,
            "PERMISSION_DENIED",
            f"Permission '{permission}' denied for resource '{name}' (or it may not exist).",
        )

    def do_secretmanager_projects_secrets_addVersion(self, projectsId, secretsId, query, body):
        name = f"projects/{projectsId}/secrets/{secretsId}"
        self._allowed(name, self.ADDERS, "secretmanager.versions.add")
        self._secret(projectsId, secretsId)
        payload = body.get("payload") or {}
        data = base64.b64decode(payload.get("data") or "")
        if len(data) > 65536:
            raise GceError(400, "INVALID_ARGUMENT", "Secret payload data must be no larger than 64KiB.")
        if payload.get("dataCrc32c") is not None and str(crc32c(data)) != str(payload["dataCrc32c"]):
            raise GceError(400, "INVALID_ARGUMENT", "Checksum mismatch: the payload's dataCrc32c is not its data's.")
        versions = self.secret_versions.setdefault(name, [])
        version = {
            "name": f"{name}/versions/{len(versions) + 1}",
            "createTime": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "state": "ENABLED",
            "etag": '"%s"' % fingerprint([name, len(versions)]),
            "clientSpecifiedPayloadChecksum": payload.get("dataCrc32c") is not None,
            "_data": data,
        }
        versions.append(version)
        return self._public(version)

    def _version(self, projectsId, secretsId, versionsId, permission):
        """A secret's version by number, or its newest enabled one for ``latest``; 404 when there is none."""
        name = f"projects/{projectsId}/secrets/{secretsId}"
        self._allowed(name, self.READERS, permission)
        self._secret(projectsId, secretsId)
        versions = self.secret_versions.get(name, [])
        if versionsId == "latest":
            enabled = [v for v in versions if v["state"] == "ENABLED"]
            found = enabled[-1] if enabled else None
        else:
            found = next((v for v in versions if v["name"] == f"{name}/versions/{versionsId}"), None)
        if found is None:
            raise GceError(404, "NOT_FOUND", f"Secret Version [{name}/versions/{versionsId}] not found.")
        return found

    def do_secretmanager_projects_secrets_versions_get(self, projectsId, secretsId, versionsId, query, body):
        # Metadata only (name, state, createTime): what a deployer checks without reading the value.
        return self._public(self._version(projectsId, secretsId, versionsId, "secretmanager.versions.get"))

    def do_secretmanager_projects_secrets_versions_access(self, projectsId, secretsId, versionsId, query, body):
        found = self._version(projectsId, secretsId, versionsId, "secretmanager.versions.access")
        if found["state"] != "ENABLED":
            raise GceError(400, "FAILED_PRECONDITION", f"{found['name']} is in {found['state']} state.")
        data = found["_data"]
        return {
            "name": found["name"],
            "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc32c(data))},
        }

    def add_secret_version(self, secret_id, value):
        """Add a version to a secret as the deployer would (gcloud secrets versions add)."""
        with self.lock:
            self.caller = None
            return self.do_secretmanager_projects_secrets_addVersion(
                PROJECT, secret_id, {}, {"payload": {"data": base64.b64encode(value.encode()).decode()}}
            )


def crc32c(data):
    """CRC-32C (Castagnoli), as Secret Manager reports a payload's checksum."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _bit in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def error_body(status, reason, message):
    return {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }


def status_body(status, code, message):
    """An error as IAM, Resource Manager and Secret Manager send it (google.rpc.Status)."""
    codes = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS"}
    if not code.isupper():
        code = codes.get(status, "UNKNOWN" if status < 500 else "UNAVAILABLE")
    return {"error": {"code": status, "message": message, "status": code}}
