# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection and credential options of every GCP module (module_utils/gcp.py GCP_ARGS).
    DOCUMENTATION = r"""
options:
  project:
    description:
      - The GCP project id.
      - If not set, E(GCP_PROJECT), E(GOOGLE_CLOUD_PROJECT) then E(CLOUDSDK_CORE_PROJECT) are used.
    type: str
  auth_kind:
    description:
      - V(application) uses Application Default Credentials (E(GOOGLE_APPLICATION_CREDENTIALS),
        C(gcloud auth application-default login), or the metadata server of a GCE host).
      - V(serviceaccount) reads the key file O(service_account_file).
      - V(anonymous) sends no credentials; only allowed with O(endpoint), for emulators.
      - If not set, E(GCP_AUTH_KIND) is used.
    type: str
    choices: [application, serviceaccount, anonymous]
    default: application
  service_account_file:
    description:
      - A service account key file (JSON) for O(auth_kind=serviceaccount). If not set,
        E(GCP_SERVICE_ACCOUNT_FILE) is used. Its contents are never logged.
    type: path
  impersonate_service_account:
    description:
      - Act as this service account (email) through the IAM Credentials API, with the credentials
        of O(auth_kind) as the source; they need C(roles/iam.serviceAccountTokenCreator) on it.
      - If not set, E(CLOUDSDK_AUTH_IMPERSONATE_SERVICE_ACCOUNT) is used.
    type: str
  endpoint:
    description:
      - The Compute Engine API root, V(https://compute.googleapis.com/compute/v1/) when not set;
        point it at an emulator in tests, for example V(http://127.0.0.1:8089/compute/v1/).
      - If not set, E(OCE_GCE_ENDPOINT) then E(CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE) are used.
    type: str
requirements:
  - google-auth >= 2.20 and requests on the host that runs the module (usually the controller).
notes:
  - Every call has a 10 s connect and 60 s read timeout. HTTP 429 and 5xx answers are retried with
    jittered exponential backoff; operations are polled to a deadline (C(wait_timeout)). Other errors fail at
    once with a sentence that says what to change; it never carries a request body or a token.
"""
