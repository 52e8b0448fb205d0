# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Connection and credential options of every AWS module (module_utils/aws.py AWS_ARGS).
    DOCUMENTATION = r"""
options:
  region:
    description:
      - The AWS region, for example V(us-east-1). Checked against the regions botocore knows.
      - If not set, E(AWS_REGION) then E(AWS_DEFAULT_REGION) are used.
    type: str
    aliases: [aws_region]
  endpoint_url:
    description:
      - Send API calls to this URL instead of AWS, for example a moto server in tests or a VPC endpoint.
      - If not set, E(AWS_ENDPOINT_URL) is used.
    type: str
  profile:
    description:
      - A named profile of the AWS config files. If not set, E(AWS_PROFILE) is used.
      - Its credentials are used even when the environment has keys (E(AWS_ACCESS_KEY_ID),
        E(AWS_SECRET_ACCESS_KEY), E(AWS_SESSION_TOKEN)), as the fleet inventory does; given beside
        O(access_key), O(secret_key) or O(session_token) it is an error.
    type: str
  access_key:
    description:
      - The access key id. If not set, E(AWS_ACCESS_KEY_ID) is used, then the profile or instance role.
    type: str
  secret_key:
    description:
      - The secret access key. If not set, E(AWS_SECRET_ACCESS_KEY) is used. Never logged.
    type: str
  session_token:
    description:
      - A session token for temporary credentials. If not set, E(AWS_SESSION_TOKEN) is used. Never logged.
    type: str
requirements:
  - boto3 >= 1.34 and botocore >= 1.34 on the host that runs the module (usually the controller).
notes:
  - The IAM actions each module needs are in the collection's C(docs/permissions/aws-controller-policy.json),
    one statement per module; tests hold it to every call the modules make.
  - Throttling and server errors are retried with jittered exponential backoff (botocore's own
    retries are off so that one policy applies); other errors fail at once with a sentence that
    says what to change.
"""
