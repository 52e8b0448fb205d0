# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Options shared by the modules that talk to Ollama's HTTP API on the target node.
    DOCUMENTATION = r"""
options:
  host:
    description:
      - Where Ollama's API answers, as seen from the target node.
      - Accepts what C(OLLAMA_HOST) accepts, for example V(http://127.0.0.1:11434), V(127.0.0.1:11434) (no
        scheme means http, no port means 11434), V(https://ollama.internal).
      - If not set, the environment variable E(OLLAMA_HOST) of the module's process is used, then
        V(http://127.0.0.1:11434).
    type: str
  request_timeout:
    description:
      - Seconds to wait for an answer to each plain API request (list, show, delete, create).
      - Streams (pulls) use O(stall_timeout) and O(timeout) instead where the module has them.
    type: float
    default: 30
notes:
  - The module talks to Ollama over HTTP only; it never runs the C(ollama) command.
  - Ollama bound to loopback answers 403 to unknown Host headers; keep O(host) on the node itself
    or use a name Ollama allows (localhost, *.local, *.internal).
"""
