# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: ollama_generate
short_description: Ask a model on an Ollama server for one completion, from the controller
version_added: 0.2.0
description:
  - Sends the prompt to O(url)'s C(/api/generate) (not streamed) and returns Ollama's answer, the
    whole JSON object (C(response), C(total_duration), C(eval_count) ...).
  - Runs in the controller's own Ansible process, where M(ansible.builtin.uri) delegated to
    C(localhost) starts a module process for one request; set it with M(ansible.builtin.set_fact)
    so that it is asked once.
  - A request that does not get to Ollama (a refused connection, a gateway's 502, 503 or 504, or
    Ollama's own 503 when its queue is full) is sent again for up to O(settle) seconds. Right after
    a node starts, Ollama may not listen yet, and a userspace C(tailscaled)'s proxy answers 502
    until its way to the node is made.
  - An Ollama that does not answer, refuses or reports an error fails the lookup with a sentence
    that says what to check.
options:
  _terms:
    description: The prompt (one).
    type: list
    elements: str
    required: true
  url:
    description: The Ollama server, for example C(http://oce-demo:11434) (a node's C(ollama_url)).
    type: str
    required: true
  model:
    description: The model to ask.
    type: str
    required: true
  options:
    description: Ollama's generation options (C(num_predict), C(stop), C(temperature) ...).
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for the whole answer.
    type: int
    default: 600
  settle:
    description:
      - Seconds to keep sending the request while it does not get to Ollama (see above); V(0)
        sends it once. Never after a timeout (Ollama may be working on it) or any other error.
    type: int
    default: 90
  proxy:
    description:
      - An HTTP proxy to reach O(url) through, such as a userspace C(tailscaled)'s; empty means the
        environment's proxy settings, as for any HTTP client.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Ask the node's model
  ansible.builtin.set_fact:
    answer: >-
      {{ lookup('ollama_cloud.engine.ollama_generate', 'Why is the sky blue?', url=ollama_url,
                model='gemma3:270m', options={'num_predict': 48}) }}

- name: Print it
  ansible.builtin.debug:
    msg: "{{ answer.response }} ({{ answer.total_duration / 1e9 }} s)"
"""

RETURN = r"""
_raw:
  description: Ollama's answer to C(/api/generate), one object.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.ollama_cloud.engine.plugins.module_utils import cloud, ollama_api

display = Display()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if len(terms) != 1:
            raise AnsibleLookupError(f"ollama_generate takes one prompt, got {len(terms)}")
        body = {
            "model": self.get_option("model"),
            "prompt": terms[0],
            "stream": False,
            "options": self.get_option("options"),
        }
        settle = self.get_option("settle")
        try:
            client = ollama_api.OllamaClient(
                self.get_option("url"), timeout=self.get_option("timeout"), proxy=self.get_option("proxy") or None
            )
            clock = cloud.Clock()
            answer = cloud.retry_until(
                lambda: client.request("POST", "/api/generate", body),
                ollama_api.never_reached,
                deadline=clock.now() + settle,
                base=2.0,
                cap=10.0,
                clock=clock,
                on_retry=lambda exc, attempt, delay: display.vv(
                    f"ollama_generate: the request did not get to Ollama ({exc}); sending it again in {delay:.0f} s"
                ),
            )
            return [answer]
        except ollama_api.OllamaError as exc:
            tried = f" (sent again for {settle} s)" if settle and ollama_api.never_reached(exc) else ""
            url = self.get_option("url")
            raise AnsibleLookupError(f"asking {body['model']} at {url} failed{tried}: {exc}") from None
