# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The GCE metadata server, as a guest sees it at http://metadata.google.internal (169.254.169.254).

Mixed into the emulator and served on its port, outside the discovery routing (as ``/token``): the
simulated cloud's harness DNATs each body's 169.254.169.254:80 to the emulator, so a guest reads
it at the real address. The emulator knows the calling instance by the request's source address,
which the harness registers with ``bind_body(ip, zone, name)``.

What a guest (cloud-init, our node code, google-auth) reads: the default service account's token
and email, the instance's name, id, zone, hostname and metadata attributes, the project id. As
Google's server: every request needs ``Metadata-Flavor: Google`` (else 403), one with an
``X-Forwarded-For`` header is refused, text values are ``application/text``, the token is JSON.

The token names the instance's service account (``ya29.sim.<email>``): Secret Manager's access
method lets such a token read a secret only when IAM grants that account secretAccessor.
"""

from __future__ import annotations

import json

SIM_TOKEN_PREFIX = "ya29.sim."
PROJECT_NUMBER = "123456789012"
METADATA_PREFIX = "/computeMetadata/v1/"


def sim_token_email(authorization):
    """The service account a metadata-server token names, or None for any other credentials."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    return token[len(SIM_TOKEN_PREFIX) :] if token.startswith(SIM_TOKEN_PREFIX) else None


class MetadataServer:
    """Mixin for the Emulator: needs ``self.lock``, ``self.instances`` and ``PROJECT`` from it."""

    def reset_bodies(self):
        self.bodies = {}  # source IP -> (zone, instance name)
        self.metadata_requests = []  # (source IP, path, status)

    def bind_body(self, ip, zone, name):
        """Requests from ``ip`` come from instance ``name`` in ``zone`` (its body's address)."""
        with self.lock:
            self.bodies[ip] = (zone, name)

    def unbind_body(self, ip):
        with self.lock:
            self.bodies.pop(ip, None)

    def handle_metadata(self, path, headers, client_ip):
        """(status, content type, bytes) for a GET under /computeMetadata/v1/."""
        with self.lock:
            status, ctype, data = self._metadata(path.split("?", 1)[0], headers, client_ip)
            self.metadata_requests.append((client_ip, path, status))
            return status, ctype, data

    def _metadata(self, path, headers, client_ip):
        text = "application/text"
        if headers.get("Metadata-Flavor") != "Google" or headers.get("X-Forwarded-For"):
            # Google's words, and the reason our node code must send the header.
            return 403, "text/html", b"Missing Metadata-Flavor:Google header.\n"
        key = path[len(METADATA_PREFIX) :]
        if key == "project/project-id":
            return 200, text, self.project_id.encode()
        if key == "project/numeric-project-id":
            return 200, text, PROJECT_NUMBER.encode()
        bound = self.bodies.get(client_ip)
        instance = self.instances.get(bound) if bound else None
        if instance is None:
            why = f"no instance is bound to {client_ip} (the harness calls bind_body)"
            return 404, text, why.encode()
        zone, name = bound
        attributes = {i["key"]: i.get("value", "") for i in instance["metadata"].get("items") or []}
        email = self._instance_email(instance)
        values = {
            "instance/name": name,
            "instance/id": instance["id"],
            "instance/zone": f"projects/{PROJECT_NUMBER}/zones/{zone}",
            "instance/hostname": f"{name}.{zone}.c.{self.project_id}.internal",
            "instance/attributes/": "".join(k + "\n" for k in sorted(attributes)),
        }
        values.update({f"instance/attributes/{k}": v for k, v in attributes.items()})
        if email:
            values["instance/service-accounts/"] = f"default/\n{email}/\n"
            for alias in ("default", email):
                values[f"instance/service-accounts/{alias}/email"] = email
                values[f"instance/service-accounts/{alias}/scopes"] = "\n".join(self._instance_scopes(instance))
        if key in values:
            return 200, text, values[key].encode()
        if email and key in ("instance/service-accounts/default/token", f"instance/service-accounts/{email}/token"):
            token = {"access_token": SIM_TOKEN_PREFIX + email, "expires_in": 3599, "token_type": "Bearer"}
            return 200, "application/json", json.dumps(token).encode()
        return 404, text, f"{key} is not served for instance {name}".encode()

    @staticmethod
    def _instance_email(instance):
        accounts = instance.get("serviceAccounts") or []
        email = (accounts[0].get("email") or "") if accounts else ""
        # "default" in an insert means the project's Compute Engine default service account.
        return f"{PROJECT_NUMBER}-compute@developer.gserviceaccount.com" if email == "default" else email

    @staticmethod
    def _instance_scopes(instance):
        accounts = instance.get("serviceAccounts") or []
        return (accounts[0].get("scopes") or []) if accounts else []
