#!/usr/bin/python
# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gcp_node_identity
short_description: The service account of one deployment's GCP nodes, with the least it needs
version_added: 0.2.0
description:
  - Creates, reuses or deletes the service account C(oce-DEPLOYMENT-node) that a C(cloud=gcp) node
    runs as, and the only access it gets, the equivalent of the AWS node's instance role.
  - "V(present): the service account (its description carries the marker
    C(oce-deployment=DEPLOYMENT oce-managed-by=ollama_cloud.engine), since service accounts have no
    labels); C(roles/logging.logWriter) and C(roles/monitoring.metricWriter) on the project (the Ops
    Agent's logs and GPU metrics); C(roles/secretmanager.secretAccessor) on exactly one secret,
    C(oce-DEPLOYMENT-tailscale), from which the node reads its Tailscale auth key itself. No secret
    travels in instance metadata."
  - The secret is yours to create, with a reusable (non-ephemeral) auth key as its value, before the
    first run (C(printf %s tskey-auth-... | gcloud secrets create oce-DEPLOYMENT-tailscale --data-file=-)).
    The module never creates, reads or changes the secret's value. When the secret does not exist the
    module fails before it creates anything and says how to create it.
  - IAM policies are changed by read-modify-write with the policy's etag (policy version 3, so
    conditional bindings are kept); when someone else changed the policy in between (HTTP 409
    C(ABORTED)), the whole read-modify-write is retried once. Only our member in our roles is ever
    added or removed; every other member, binding, condition and audit configuration stays.
  - A newly created service account takes IAM a moment to know everywhere; a grant refused because the
    account "does not exist" yet is retried for up to two minutes.
  - A service account named C(oce-DEPLOYMENT-node) without our marker (someone else's) is never
    changed, granted or deleted; the module fails instead.
  - "V(absent) removes our member from the two project roles and from the secret (the secret itself
    stays), then deletes the service account. Delete the deployment's nodes first: a node whose
    service account is gone loses its logging and its key."
  - The Compute Engine O(endpoint) of an emulator also points at its IAM, Resource Manager and
    Secret Manager, under C(ROOT/iam/), C(ROOT/cloudresourcemanager/) and C(ROOT/secretmanager/) of
    the same host (the collection's test emulator serves them so). An endpoint on C(googleapis.com)
    leaves those APIs at Google's public roots. E(CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM),
    E(CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDRESOURCEMANAGER) and
    E(CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER) (API roots, without C(v1/)) override one API each.
options:
  deployment:
    description:
      - Deployment label. Lowercase letters, digits and dashes, starting with a letter, at most 21
        characters (a service account id holds at most 30, C(oce-) and C(-node) included).
    type: str
    required: true
  state:
    description: V(present) creates or reuses the service account and grants its roles; V(absent) removes both.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - ollama_cloud.engine.gcp
attributes:
  check_mode:
    support: full
    description: Reads the service account and the IAM policies only; RV(actions) lists what would change.
  diff_mode:
    support: full
    description: Shows the service account, its project roles and its access to the secret before and after.
notes:
  - The account that runs the module needs C(roles/iam.serviceAccountAdmin),
    C(roles/resourcemanager.projectIamAdmin) and C(roles/secretmanager.admin) (or the secret's own
    C(roles/secretmanager.admin) binding), or C(roles/owner).
  - The node uses the service account with the scope C(https://www.googleapis.com/auth/cloud-platform).
    Secret Manager has no narrower OAuth scope, so the roles granted here are what limit the node.
seealso:
  - module: ollama_cloud.engine.gcp_gpu_instance
  - name: Service accounts and IAM policies
    description: How IAM policies, etags and policy versions work.
    link: https://cloud.google.com/iam/docs/policies
author:
  - ollama_cloud.engine maintainers (@ollama-cloud)
"""

EXAMPLES = r"""
# First, once: printf %s "$TS_AUTHKEY" | gcloud secrets create oce-demo-tailscale --data-file=-
- name: The demo deployment's node identity
  ollama_cloud.engine.gcp_node_identity:
    deployment: demo
    project: my-project
  register: identity

- name: A node that runs as it
  ollama_cloud.engine.gcp_gpu_instance:
    name: oce-demo
    deployment: demo
    model: codellama:7b-code
    project: my-project
    zones: [us-central1-a, us-central1-b]
    subnetwork: projects/my-project/regions/us-central1/subnetworks/oce-demo-private
    service_account_email: "{{ identity.service_account_email }}"
    # Secret Manager has no narrower scope: the roles above are what limit the node.
    scopes: [https://www.googleapis.com/auth/cloud-platform]

- name: Remove the identity after the nodes are gone
  ollama_cloud.engine.gcp_node_identity:
    deployment: demo
    project: my-project
    state: absent
"""

RETURN = r"""
service_account_email:
  description:
    - The email of the node's service account, C(oce-DEPLOYMENT-node@PROJECT.iam.gserviceaccount.com), for
      O(ollama_cloud.engine.gcp_gpu_instance#module:service_account_email).
    - After V(absent), the email that was (or would be) deleted.
  returned: always
  type: str
  sample: oce-demo-node@my-project.iam.gserviceaccount.com
service_account:
  description: The service account as IAM has it; empty after V(absent) and in check mode before it exists.
  returned: always
  type: dict
  contains:
    email:
      description: Its email.
      type: str
    unique_id:
      description: Its numeric id.
      type: str
    name:
      description: Its resource name.
      type: str
    display_name:
      description: Its display name.
      type: str
  sample:
    email: oce-demo-node@my-project.iam.gserviceaccount.com
    unique_id: "101234567890123456789"
    name: projects/my-project/serviceAccounts/oce-demo-node@my-project.iam.gserviceaccount.com
    display_name: oce demo node (ollama_cloud.engine)
project_roles:
  description: The project roles the service account holds from this module (none after V(absent)).
  returned: always
  type: list
  elements: str
  sample: [roles/logging.logWriter, roles/monitoring.metricWriter]
secret:
  description:
    - The one secret the service account may read, as the tailscale role's C(tailscale_auth_key_secret.name)
      wants it (C(source=gcp_secretmanager)).
  returned: always
  type: str
  sample: projects/my-project/secrets/oce-demo-tailscale
actions:
  description: What was (in check mode, would be) created, granted, revoked or deleted, in order.
  returned: always
  type: list
  elements: str
  sample:
    - create service account oce-demo-node@my-project.iam.gserviceaccount.com
    - grant roles/logging.logWriter, roles/monitoring.metricWriter on project my-project
    - grant roles/secretmanager.secretAccessor on secret oce-demo-tailscale
conflicts:
  description: IAM policies whose read-modify-write was retried because someone else changed them in between.
  returned: always
  type: list
  elements: str
  sample: [project my-project]
retries:
  description: API calls retried after throttling or a server error, as C([method path, reason, delay seconds]).
  returned: always
  type: list
  elements: list
"""

import copy
import re

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, fleet, gcp, node_module, node_secrets

PROJECT_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter")
SECRET_ROLE = "roles/secretmanager.secretAccessor"
# IAM policy version 3 keeps conditional bindings (a version 1 read would hide them).
POLICY_VERSION = 3
# How long a grant to a service account created a moment ago may be refused ("does not exist").
PROPAGATION_TIMEOUT = 120.0
PROPAGATION_PAUSE = 5.0
ADMIN_ROLES = (
    "the account that runs this needs roles/iam.serviceAccountAdmin, roles/resourcemanager.projectIamAdmin "
    "and roles/secretmanager.admin on the project (or roles/owner)"
)

_PROJECT_RE = re.compile(r"^(?:[a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]$")
_ACCOUNT_RE = re.compile(r"^[a-z]([-a-z0-9]{4,28})[a-z0-9]$")


def sa_domain(project):
    """The email domain of a project's service accounts (``example.com:p`` -> ``p.example.com.iam...``)."""
    if ":" in project:
        domain, name = project.split(":", 1)
        return f"{name}.{domain}.iam.gserviceaccount.com"
    return f"{project}.iam.gserviceaccount.com"


def unconditional(binding, role):
    return binding.get("role") == role and not binding.get("condition")


def holds(policy, role, member):
    """True when ``member`` has ``role`` in ``policy`` without a condition."""
    return any(unconditional(b, role) and member in (b.get("members") or []) for b in policy.get("bindings") or [])


def with_member(policy, roles, member):
    """A copy of ``policy`` where ``member`` holds each of ``roles`` (unconditionally); others untouched."""
    policy = copy.deepcopy(policy)
    bindings = policy.setdefault("bindings", [])
    for role in roles:
        found = next((b for b in bindings if unconditional(b, role)), None)
        if found is None:
            bindings.append({"role": role, "members": [member]})
        elif member not in found.setdefault("members", []):
            found["members"].append(member)
    return policy


def without_member(policy, roles, member):
    """A copy of ``policy`` without ``member`` (or its deleted: form) in ``roles``; empty bindings dropped."""
    policy = copy.deepcopy(policy)
    deleted = f"deleted:{member}?uid="

    def gone(m):
        return m == member or m.startswith(deleted)

    kept = []
    for binding in policy.get("bindings") or []:
        if binding.get("role") in roles and not binding.get("condition"):
            binding["members"] = [m for m in binding.get("members") or [] if not gone(m)]
            if not binding["members"]:
                continue
        kept.append(binding)
    policy["bindings"] = kept
    return policy


def our_roles(policy, roles, member):
    return sorted(r for r in roles if holds(policy, r, member))


def has_stale(policy, roles, member):
    """True when a deleted: form of ``member`` is left in one of ``roles`` (its account was deleted first)."""
    deleted = f"deleted:{member}?uid="
    return any(
        b.get("role") in roles and any(m.startswith(deleted) for m in b.get("members") or [])
        for b in policy.get("bindings") or []
    )


def is_conflict(exc):
    """Someone else changed the policy between our read and our write (its etag moved on)."""
    return exc.details.get("status") in (409, 412) or exc.details.get("code") in ("ABORTED", "conditionNotMet")


def not_known_yet(exc, email):
    """IAM refused a grant to an account created a moment ago: it is not known everywhere yet."""
    return exc.details.get("status") == 400 and email in exc.msg and "does not exist" in exc.msg


class Identity:
    """The deployment's node service account and its grants: read, plan, apply."""

    def __init__(self, apis, params, check_mode):
        self.iam, self.crm, self.sm = apis["iam"], apis["cloudresourcemanager"], apis["secretmanager"]
        self.check = check_mode
        self.project = params["project"]
        self.deployment = params["deployment"]
        names = fleet.deployment_names(self.deployment)
        self.account_id = names["gcp_service_account"]
        self.email = f"{self.account_id}@{sa_domain(self.project)}"
        self.member = f"serviceAccount:{self.email}"
        self.secret_id = names["gcp_key_secret"]
        self.secret = node_secrets.gcp_secret_path(self.project, self.secret_id)
        self.actions, self.conflicts = [], []
        self.done = []  # the actions that were carried out, for the message of a failure
        self.created = False

    @property
    def retries(self):
        return self.iam.retries + self.crm.retries + self.sm.retries

    # --------------------------------------------------------------- reads

    def read_account(self):
        found = self.iam.get(
            f"v1/projects/{self.project}/serviceAccounts/{self.email}",
            action=f"look up service account {self.email}",
            missing_ok=True,
        )
        if found is not None and not gcp.is_marked(found, self.deployment):
            raise cloud.CloudError(
                f"service account {self.email} exists in project {self.project} but is not deployment "
                f"{self.deployment}'s (its description lacks {gcp.marker(self.deployment)!r}): this module will "
                "not adopt, grant or delete it; choose another deployment name, or delete that account if it is "
                "a leftover"
            )
        return found

    def read_secret(self):
        return self.sm.get(f"v1/{self.secret}", action=f"look up secret {self.secret_id}", missing_ok=True)

    def project_policy(self):
        return self.crm.call(
            "POST",
            f"v1/projects/{self.project}:getIamPolicy",
            body={"options": {"requestedPolicyVersion": POLICY_VERSION}},
            action=f"read the IAM policy of project {self.project}",
        )

    def secret_policy(self):
        return self.sm.call(
            "GET",
            f"v1/{self.secret}:getIamPolicy",
            params={"options.requestedPolicyVersion": POLICY_VERSION},
            action=f"read the IAM policy of secret {self.secret_id}",
        )

    # --------------------------------------------------------------- writes

    def update(self, what, read, path, api, change, action):
        """Read-modify-write of an IAM policy with its etag; ``change(policy)`` is the new one or None.

        A conflict (someone else wrote in between) reruns the whole read-modify-write once; a grant
        to an account IAM does not know yet is retried until PROPAGATION_TIMEOUT. Returns the policy.
        """
        conflicted = False
        deadline = api.clock.now() + PROPAGATION_TIMEOUT
        while True:
            policy = read()
            new = change(policy)
            if new is None:
                return policy
            if not self.actions or self.actions[-1] != action:
                self.actions.append(action)
            if self.check:
                return new
            new["version"] = max(int(policy.get("version") or 1), POLICY_VERSION if _conditional(new) else 1)
            try:
                written = api.call("POST", path, body={"policy": new}, action=action)
                self.done.append(action)
                return written
            except cloud.CloudError as exc:
                if is_conflict(exc) and not conflicted:
                    conflicted = True
                    self.conflicts.append(what)
                    continue
                if self.created and not_known_yet(exc, self.email) and api.clock.now() < deadline:
                    api.clock.sleep(PROPAGATION_PAUSE)
                    continue
                if is_conflict(exc):
                    raise cloud.CloudError(
                        f"{action} failed: the IAM policy of {what} kept changing under us (twice in a row); run again",
                        **exc.details,
                    ) from None
                raise

    def create_account(self):
        action = f"create service account {self.email}"
        self.actions.append(action)
        if self.check:
            return None
        body = {
            "accountId": self.account_id,
            "serviceAccount": {
                "displayName": f"oce {self.deployment} node (ollama_cloud.engine)"[:100],
                "description": (
                    f"ollama_cloud.engine {self.deployment}: the GPU nodes' identity (logs, metrics, "
                    f"its Tailscale key). {gcp.marker(self.deployment)}"
                ),
            },
        }
        found = self.iam.call("POST", f"v1/projects/{self.project}/serviceAccounts", body=body, action=action)
        self.done.append(action)
        self.created = True
        return found

    # --------------------------------------------------------------- converge

    def state(self, account, roles, secret_access):
        return {
            "service_account": self.email if account else None,
            "project_roles": roles,
            "secret_access": secret_access,
        }

    def present(self):
        account = self.read_account()
        if account is not None and account.get("disabled"):
            raise cloud.CloudError(
                f"service account {self.email} is deployment {self.deployment}'s but disabled: a node cannot use "
                f"it; enable it (gcloud iam service-accounts enable {self.email} --project {self.project})"
            )
        if self.read_secret() is None:
            raise cloud.CloudError(
                f"secret {self.secret_id} does not exist in project {self.project}: the node reads its Tailscale "
                f"auth key from it. Create it with a reusable auth key first: `gcloud secrets create "
                f"{self.secret_id} --project {self.project} --data-file=-` (paste the key, then Ctrl-D), "
                "then run again. Nothing was created"
            )
        project_before = self.project_policy()
        secret_before = self.secret_policy()
        before = self.state(
            account,
            our_roles(project_before, PROJECT_ROLES, self.member),
            holds(secret_before, SECRET_ROLE, self.member),
        )
        if account is None:
            account = self.create_account()

        def grant(roles):
            def change(policy):
                missing = [r for r in roles if not holds(policy, r, self.member)]
                return with_member(policy, missing, self.member) if missing else None

            return change

        missing = [r for r in PROJECT_ROLES if r not in before["project_roles"]]
        first = [project_before]
        self.update(
            f"project {self.project}",
            lambda: first.pop() if first else self.project_policy(),
            f"v1/projects/{self.project}:setIamPolicy",
            self.crm,
            grant(PROJECT_ROLES),
            f"grant {', '.join(missing or PROJECT_ROLES)} on project {self.project} to {self.email}",
        )
        first_secret = [secret_before]
        self.update(
            f"secret {self.secret_id}",
            lambda: first_secret.pop() if first_secret else self.secret_policy(),
            f"v1/{self.secret}:setIamPolicy",
            self.sm,
            grant([SECRET_ROLE]),
            f"grant {SECRET_ROLE} on secret {self.secret_id} to {self.email}",
        )
        after = self.state(True, sorted(PROJECT_ROLES), True)
        return before, after, account

    def absent(self):
        account = self.read_account()
        secret = self.read_secret()
        project_before = self.project_policy()
        secret_before = self.secret_policy() if secret is not None else {}
        before = self.state(
            account,
            our_roles(project_before, PROJECT_ROLES, self.member),
            holds(secret_before, SECRET_ROLE, self.member),
        )

        def revoke(roles):
            def change(policy):
                if not our_roles(policy, roles, self.member) and not has_stale(policy, roles, self.member):
                    return None
                return without_member(policy, roles, self.member)

            return change

        if secret is not None:
            first_secret = [secret_before]
            self.update(
                f"secret {self.secret_id}",
                lambda: first_secret.pop() if first_secret else self.secret_policy(),
                f"v1/{self.secret}:setIamPolicy",
                self.sm,
                revoke([SECRET_ROLE]),
                f"revoke {SECRET_ROLE} on secret {self.secret_id} from {self.email}",
            )
        first = [project_before]
        self.update(
            f"project {self.project}",
            lambda: first.pop() if first else self.project_policy(),
            f"v1/projects/{self.project}:setIamPolicy",
            self.crm,
            revoke(PROJECT_ROLES),
            f"revoke {', '.join(before['project_roles'] or PROJECT_ROLES)} on project {self.project} from {self.email}",
        )
        if account is not None:
            action = f"delete service account {self.email}"
            self.actions.append(action)
            if not self.check:
                self.iam.call("DELETE", f"v1/projects/{self.project}/serviceAccounts/{self.email}", action=action)
                self.done.append(action)
        return before, self.state(None, [], False), None


def _conditional(policy):
    return any(b.get("condition") for b in policy.get("bindings") or [])


def account_record(account):
    if not account:
        return {}
    return {
        "email": account.get("email"),
        "unique_id": account.get("uniqueId"),
        "name": account.get("name"),
        "display_name": account.get("displayName"),
    }


def check_inputs(params):
    problems = []
    bad = fleet.validate_deployment(params["deployment"])
    if bad:
        problems.append(bad)
    elif not _ACCOUNT_RE.match(account := fleet.deployment_names(params["deployment"])["gcp_service_account"]):
        problems.append(
            f"deployment {params['deployment']!r} is too long for a GCP service account: "
            f"{account} must be at most 30 characters, so use at most 21"
        )
    if not params.get("project"):
        problems.append("no GCP project given: set project (or GCP_PROJECT / GOOGLE_CLOUD_PROJECT)")
    elif not _PROJECT_RE.match(params["project"]):
        problems.append(
            f"project {params['project']!r} is not a GCP project id (6-30 lowercase letters, digits or dashes, "
            "starting with a letter; the id, not the display name or number)"
        )
    return problems


def explain(exc):
    """The sentence of a failed call; what to grant when the credentials lacked a permission."""
    msg = gcp.status_sentence(exc)
    if exc.details.get("status") == 403:
        msg += f"; {ADMIN_ROLES}"
    return msg


def main():
    base = node_module.NodeModule(
        gcp,
        {
            "deployment": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
        },
    )
    base.check(check_inputs(base.params))

    def record(ident, after, account):
        return {
            "service_account_email": ident.email,
            "service_account": account_record(account),
            "project_roles": after["project_roles"],
            "secret": ident.secret,
            "conflicts": ident.conflicts,
        }

    base.apply_state(
        lambda: Identity(
            base.client(("iam", "cloudresourcemanager", "secretmanager"), connect=gcp.connect_apis),
            base.params,
            base.check_mode,
        ),
        lambda exc, ident: cloud.failed_part_way(exc, ident.done if ident else [], msg=explain(exc)),
        record,
    )


if __name__ == "__main__":
    main()
