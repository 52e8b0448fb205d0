# Inputs of the build (build.pkr.hcl) of both sources (aws.pkr.hcl, gcp.pkr.hcl) and the values
# they share. Every variable has a default except where a cloud account is named;
# packer/example.pkrvars.hcl lists those.

# ------------------------------------------------------------------------------ what the image holds

variable "image_name" {
  type        = string
  default     = ""
  description = "The base of the image's name (empty: ollama-node). The name, local.image_name: the oce-image tag on AWS and the image family on GCP, which a node's image=golden looks for (the node role's node_image_name)."
  validation {
    condition     = var.image_name == "" || can(regex("^[a-z][a-z0-9-]{0,32}$", var.image_name))
    error_message = "The image_name must be empty or 1-33 lowercase letters, digits or dashes, starting with a letter (with -cpu-ubuntu2204-<14-digit time stamp>, GCP's limit of 63 characters)."
  }
}

variable "deployment" {
  type        = string
  default     = "images"
  description = "The oce-deployment tag/label of the image and of the temporary build instance."
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.deployment))
    error_message = "The deployment must be 1-40 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "ubuntu_version" {
  type        = string
  default     = "24.04"
  description = "The Ubuntu LTS release the image starts from: 22.04 or 24.04."
  validation {
    condition     = contains(["22.04", "24.04"], var.ubuntu_version)
    error_message = "The ubuntu_version must be 22.04 or 24.04."
  }
}

variable "ollama_version" {
  type        = string
  default     = ""
  description = "The Ollama release baked in (empty: the ollama role's default ollama_version); tagged oce-ollama-version."
  validation {
    condition     = var.ollama_version == "" || can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+(-rc[0-9]+)?$", var.ollama_version))
    error_message = "The ollama_version must be empty or a release number such as 0.24.0, without a leading v."
  }
}

variable "ollama_checksum" {
  type        = string
  default     = ""
  description = "sha256:<hex> of the Ollama archive, for a version the ollama role's checksum table does not know."
  validation {
    condition     = var.ollama_checksum == "" || can(regex("^sha256:[0-9a-fA-F]{64}$", var.ollama_checksum))
    error_message = "The ollama_checksum must be empty or sha256: followed by 64 hex digits."
  }
}

variable "tailscale_version" {
  type        = string
  default     = ""
  description = "The Tailscale release installed (not started, no node identity) by the tailscale role (empty: the role's default tailscale_version)."
  validation {
    condition     = var.tailscale_version == "" || can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.tailscale_version))
    error_message = "The tailscale_version must be empty or a release number such as 1.90.0."
  }
}

variable "tailscale_checksum" {
  type        = string
  default     = ""
  description = "sha256:<hex> of the Tailscale archive, for a version the tailscale role's table does not know."
  validation {
    condition     = var.tailscale_checksum == "" || can(regex("^sha256:[0-9a-fA-F]{64}$", var.tailscale_checksum))
    error_message = "The tailscale_checksum must be empty or sha256: followed by 64 hex digits."
  }
}

variable "nvidia_driver_branch" {
  type        = string
  default     = ""
  description = "The NVIDIA driver branch (empty: the nvidia_driver role's default; Ollama needs >= 550, >= 570 for compute capability 5.0-6.2)."
  validation {
    condition     = var.nvidia_driver_branch == "" || (can(regex("^[0-9]{3}$", var.nvidia_driver_branch)) && try(parseint(var.nvidia_driver_branch, 10) >= 550, false))
    error_message = "The nvidia_driver_branch must be empty or a driver branch number of 550 or later, such as 580."
  }
}

variable "nvidia_driver_flavor" {
  type        = string
  default     = ""
  description = "open: NVIDIA's open kernel modules (Turing and newer: T4, A10G, L4, L40S, A100, H100); proprietary: the closed modules (older GPUs); empty: the nvidia_driver role's default."
  validation {
    condition     = var.nvidia_driver_flavor == "" || contains(["open", "proprietary"], var.nvidia_driver_flavor)
    error_message = "The nvidia_driver_flavor must be empty, open or proprietary."
  }
}

variable "nvidia_fabric_manager" {
  type        = bool
  default     = false
  description = "Install NVIDIA Fabric Manager (matching the driver exactly); only for NVSwitch machines (p4d, p5, a2-megagpu, a3). Not the role's auto: that looks for NVSwitches on the builder, not on the nodes."
}

variable "root_volume_gb" {
  type        = number
  default     = 30
  description = "Root disk of the image in GB. A node's disk is never smaller: a catalog disk_gb below it becomes this size (aws_gpu_instance, gcp_gpu_instance)."
  validation {
    condition     = var.root_volume_gb >= 20
    error_message = "The root_volume_gb must be at least 20 (Ubuntu, the NVIDIA driver and Ollama's CUDA libraries)."
  }
}

variable "min_free_gb" {
  type        = number
  default     = 4
  description = "The final validation step fails when the root file system has less free space than this."
}

variable "deprecate_after_days" {
  type        = number
  default     = 90
  description = "AWS: the AMI is marked deprecated this many days after the build (it stays usable)."
}

variable "ansible_core_version" {
  type        = string
  default     = ""
  description = "ansible-core installed in a throw-away virtualenv on the builder for ansible-local (removed before capture); empty: the release the collection is tested with, pinned in requirements-demo.txt."
}

variable "collection_tarball" {
  type        = string
  default     = ""
  description = "The collection artifact (ansible-galaxy collection build). Empty means build/ollama_cloud-engine.tar.gz at the repository root."
}

# ------------------------------------------------------------------------------ AWS (aws.pkr.hcl)

variable "aws_region" {
  type        = string
  default     = "us-east-1"
  description = "The region the AMI is built in."
}

variable "ami_regions" {
  type        = list(string)
  default     = []
  description = "Further regions the AMI is copied to (with its tags)."
}

variable "aws_instance_type" {
  type        = string
  default     = "g4dn.xlarge"
  description = "The builder. Any x86_64 type works (the driver's modules are built for the image's kernel); a GPU type also runs nvidia-smi in the validation step."
}

variable "aws_subnet_id" {
  type        = string
  default     = ""
  description = "A private subnet with a route to the internet (NAT) and to Systems Manager; empty lets Packer pick the default VPC."
}

variable "aws_security_group_ids" {
  type        = list(string)
  default     = []
  description = "Security groups of the builder. Session Manager needs no ingress; empty lets Packer create a temporary group."
}

variable "aws_iam_instance_profile" {
  type        = string
  default     = ""
  description = "Required for the aws build: an instance profile with AmazonSSMManagedInstanceCore, for the Session Manager connection."
}

variable "aws_kms_key_id" {
  type        = string
  default     = ""
  description = "KMS key of the encrypted AMI snapshots in aws_region; empty uses the region's aws/ebs key. Copies (ami_regions) use aws_region_kms_key_ids."
}

variable "aws_region_kms_key_ids" {
  type        = map(string)
  default     = {}
  description = "KMS key of each copy, by region: empty, every copy uses its region's aws/ebs key; otherwise it must name every region of ami_regions (\"\" for that region's aws/ebs key)."
}

variable "aws_nvidia_driver_source" {
  type        = string
  default     = "cuda-repo"
  description = "cuda-repo: NVIDIA's CUDA repository (DKMS modules); ubuntu-signed: Canonical's signed precompiled modules for the aws kernel; none: no driver (CPU image)."
  validation {
    condition     = contains(["cuda-repo", "ubuntu-signed", "none"], var.aws_nvidia_driver_source)
    error_message = "The aws_nvidia_driver_source must be cuda-repo, ubuntu-signed or none."
  }
}

# ------------------------------------------------------------------------------ GCP (gcp.pkr.hcl)

variable "gcp_project_id" {
  type        = string
  default     = ""
  description = "Required for the gcp build: the project that builds and owns the image."
}

variable "gcp_zone" {
  type        = string
  default     = "us-central1-a"
  description = "The builder's zone; it must offer gcp_accelerator_type."
}

variable "gcp_network" {
  type        = string
  default     = ""
  description = "The builder's network; empty means the project's default network."
}

variable "gcp_subnetwork" {
  type        = string
  default     = ""
  description = "The builder's subnetwork: Private Google Access and Cloud NAT (the build downloads packages)."
}

variable "gcp_machine_type" {
  type        = string
  default     = "n1-standard-4"
  description = "The builder's machine type (n1 for a T4, g2 for an L4)."
}

variable "gcp_accelerator_type" {
  type        = string
  default     = "nvidia-tesla-t4"
  description = "The builder's GPU, so the validation step can run nvidia-smi."
}

variable "gcp_accelerator_count" {
  type        = number
  default     = 1
  description = "GPUs on the builder; 0 builds on a machine without a GPU."
}

variable "gcp_service_account_email" {
  type        = string
  default     = ""
  description = "The builder's service account; empty means the project's default compute service account."
}

variable "gcp_image_storage_locations" {
  type        = list(string)
  default     = []
  description = "Where the image is stored (a region or multi-region such as us); empty means the nearest multi-region."
}

variable "gcp_nvidia_driver_source" {
  type        = string
  default     = "ubuntu-signed"
  description = "As aws_nvidia_driver_source. ubuntu-signed by default: gcp_gpu_instance boots with Secure Boot on, which refuses DKMS-built modules."
  validation {
    condition     = contains(["cuda-repo", "ubuntu-signed", "none"], var.gcp_nvidia_driver_source)
    error_message = "The gcp_nvidia_driver_source must be cuda-repo, ubuntu-signed or none."
  }
}

# ------------------------------------------------------------------------------ shared values

locals {
  built_at = timestamp()
  stamp    = formatdate("YYYYMMDDhhmmss", local.built_at)

  ubuntu = {
    "22.04" = {
      ami_name    = "ubuntu/images/hvm-ssd*/ubuntu-jammy-22.04-amd64-server-*"
      gcp_family  = "ubuntu-2204-lts"
      name_suffix = "-ubuntu2204"
    }
    "24.04" = {
      ami_name    = "ubuntu/images/hvm-ssd*/ubuntu-noble-24.04-amd64-server-*"
      gcp_family  = "ubuntu-2404-lts-amd64"
      name_suffix = ""
    }
  }

  # The repository (absolute: file() would resolve a relative path against path.root once more).
  repository = abspath("${path.root}/..")

  # The roles' defaults are the image's: an input left empty takes its role's default, read from
  # roles/*/defaults/main.yml, so that a default is written once and the image holds what
  # configure.yml installs.
  role_defaults = merge([for role in ["ollama", "tailscale", "nvidia_driver"] :
    yamldecode(file("${local.repository}/roles/${role}/defaults/main.yml"))
  ]...)
  role_inputs = { for name, value in {
    ollama_version       = var.ollama_version
    ollama_checksum      = var.ollama_checksum
    tailscale_version    = var.tailscale_version
    tailscale_checksum   = var.tailscale_checksum
    nvidia_driver_branch = var.nvidia_driver_branch
    nvidia_driver_flavor = var.nvidia_driver_flavor
  } : name => value != "" ? value : local.role_defaults[name] }
  # ansible-core on the builder: by default the release the collection is tested with.
  ansible_core_version = var.ansible_core_version != "" ? var.ansible_core_version : regex("(?m)^ansible-core==([^\\s#]+)", file("${local.repository}/requirements-demo.txt"))[0]

  # Each source's image name (the oce-image tag on AWS, the family on GCP), keyed by source name:
  # <image_name or ollama-node>[-cpu][-ubuntu2204]. Given or not, the name carries what makes an
  # image unfit for a GPU node of the current release, so that a CPU image or one of the older
  # release never becomes the newest of the name those nodes boot (nor takes their prune keep-slots).
  variant = {
    aws = var.aws_nvidia_driver_source == "none" ? "-cpu" : ""
    gcp = var.gcp_nvidia_driver_source == "none" ? "-cpu" : ""
  }
  image_base = var.image_name != "" ? var.image_name : "ollama-node"
  image_name = { for source, variant in local.variant :
    source => "${local.image_base}${variant}${local.ubuntu[var.ubuntu_version].name_suffix}"
  }
  # ollama-node-cpu-ubuntu2404-20261122140000: lowercase, digits and dashes, valid on both clouds.
  image_id = { for source, variant in local.variant :
    source => "${local.image_base}${variant}-ubuntu${replace(var.ubuntu_version, ".", "")}-${local.stamp}"
  }

  # The keys of plugins/module_utils/fleet.py (LABEL_MANAGED_BY, LABEL_DEPLOYMENT): what marks a
  # resource as ours. aws_gpu_instance finds the image by oce-image (added per source, as
  # oce-nvidia-driver), aws_image_prune by all of them.
  tags = {
    "oce-managed-by"     = "ollama_cloud.engine"
    "oce-deployment"     = var.deployment
    "oce-ollama-version" = local.role_inputs.ollama_version
    "oce-built-at"       = local.built_at
    "oce-ubuntu"         = var.ubuntu_version
  }

  # The temporary build VM: named and marked as a build, without the keys that make an instance
  # one of our nodes (the fleet inventory lists every instance carrying oce-managed-by).
  builder_labels = { for source, id in local.image_id : source => { "oce-image-build" = id } }

  # GCP label values allow only lowercase letters, digits, "_" and "-" (module_utils/gcp.py
  # label_value): ollama_cloud.engine -> ollama_cloud-engine, 0.24.0 -> 0-24-0.
  labels = { for key, value in local.tags : key => substr(regex_replace(lower(value), "[^a-z0-9_-]", "-"), 0, 63) }

  collection_tarball = var.collection_tarball != "" ? var.collection_tarball : "${path.root}/../build/ollama_cloud-engine.tar.gz"

  # Scripts run as root with these variables (see scripts/*.sh for what each one does).
  execute_command = "sudo env {{ .Vars }} bash '{{ .Path }}'"
  bootstrap_env = [
    "ANSIBLE_CORE_VERSION=${local.ansible_core_version}",
    "COLLECTION_TARBALL=/tmp/ollama_cloud-engine.tar.gz",
  ]
  validate_env = [
    "OLLAMA_VERSION=${local.role_inputs.ollama_version}",
    "MIN_FREE_GB=${var.min_free_gb}",
    "NVIDIA_DRIVER_BRANCH=${local.role_inputs.nvidia_driver_branch}",
  ]

  # ansible-local joins these with spaces into one command for the builder's shell, unquoted: one
  # key=value per --extra-vars, and every value here is checked above (or is a role's default) to
  # be free of spaces and quotes. The nvidia_driver role's source and kernel flavour are added per
  # source (local.aws_build, local.gcp_build).
  ansible_extra_arguments = [
    # What every cloud node shares with the image (Ollama on the tailnet behind the host
    # firewall), from the collection bootstrap-ansible.sh installed: written once, in the collection.
    "--extra-vars", "@/usr/share/ansible/collections/ansible_collections/ollama_cloud/engine/playbooks/vars/cloud_node.yml",
    "--extra-vars", "ollama_version=${local.role_inputs.ollama_version}",
    "--extra-vars", "ollama_checksum=${local.role_inputs.ollama_checksum}",
    "--extra-vars", "tailscale_version=${local.role_inputs.tailscale_version}",
    "--extra-vars", "tailscale_checksum=${local.role_inputs.tailscale_checksum}",
    "--extra-vars", "nvidia_driver_branch=${local.role_inputs.nvidia_driver_branch}",
    "--extra-vars", "nvidia_driver_flavor=${local.role_inputs.nvidia_driver_flavor}",
    "--extra-vars", "nvidia_driver_fabric_manager=${var.nvidia_fabric_manager}",
  ]
}
