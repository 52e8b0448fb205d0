# Copyright: ollama_cloud.engine contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # Options of every golden image pruning module (aws_image_prune, gcp_image_prune):
    # module_utils/images.py PRUNE_ARGS.
    DOCUMENTATION = r"""
options:
  keep:
    description:
      - How many of the newest usable images to keep in each group (an image name on AWS, an image
        family on GCP). At least 1.
      - Usable means C(available) on AWS; C(READY) and not deprecated (active) on GCP.
    type: int
    default: 3
  deployment:
    description:
      - Only images with this C(oce-deployment) tag or label (the Packer variable C(deployment),
        C(images) by default). Empty means any.
    type: str
"""
