# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a file written by the config_files module is when a role gives no more: its mode and owners.

The module's options default to these, and the node_probe_differs filter compares a role's files
with what node_probe read by them, so the two cannot disagree.
"""

from __future__ import annotations

FILE_DEFAULTS = {"mode": "0644", "owner": "root", "group": "root"}
