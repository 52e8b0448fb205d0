# The GCP golden image: Canonical's Ubuntu LTS family, the NVIDIA driver, Ollama and Tailscale
# (installed, not logged in), cleaned for cloning, published into the image family
# local.image_name.gcp that gcp_gpu_instance boots (image=golden). Built privately: no external
# IP, SSH through IAP. The steps are the one build in build.pkr.hcl:
# `packer build -only='*.gcp' packer`.

locals {
  # Image names are label-safe already (variables.pkr.hcl checks image_name).
  gcp_labels = merge(local.labels, {
    "oce-image"         = local.image_name.gcp
    "oce-nvidia-driver" = var.gcp_nvidia_driver_source == "none" ? "none" : local.role_inputs.nvidia_driver_branch
    # gcp_gpu_instance refuses Secure Boot (node_gcp_secure_boot) with a DKMS-built (cuda-repo) driver.
    "oce-nvidia-source" = var.gcp_nvidia_driver_source
  })

  # What the build passes for this source only (build.pkr.hcl looks it up by source name).
  gcp_build = {
    extra_arguments = [
      "--extra-vars", "cloud=gcp",
      "--extra-vars", "nvidia_driver_source=${var.gcp_nvidia_driver_source}",
      "--extra-vars", "nvidia_driver_kernel_flavour=gcp",
      "--extra-vars", "ollama_gpu=${var.gcp_nvidia_driver_source != "none"}",
      "--extra-vars", "monitoring_agent_gpu=${var.gcp_nvidia_driver_source != "none"}",
    ]
    validate_env = ["NVIDIA_DRIVER_SOURCE=${var.gcp_nvidia_driver_source}"]
  }
}

source "googlecompute" "gcp" {
  project_id              = var.gcp_project_id
  zone                    = var.gcp_zone
  source_image_family     = local.ubuntu[var.ubuntu_version].gcp_family
  source_image_project_id = ["ubuntu-os-cloud"]
  machine_type            = var.gcp_machine_type
  disk_size               = var.root_volume_gb
  disk_type               = "pd-balanced"

  # A GPU VM cannot live-migrate: host maintenance stops it.
  accelerator_type    = var.gcp_accelerator_count > 0 ? "projects/${var.gcp_project_id}/zones/${var.gcp_zone}/acceleratorTypes/${var.gcp_accelerator_type}" : null
  accelerator_count   = var.gcp_accelerator_count
  on_host_maintenance = "TERMINATE"

  # Private build: no external IP; Packer reaches the VM through an IAP TCP tunnel (a firewall rule
  # must admit IAP's range to port 22 for the network tag below, as ollama_cloud.engine.gcp_network's
  # iap_ssh rule does; packer/README.md gives the range).
  omit_external_ip      = true
  use_internal_ip       = true
  use_iap               = true
  network               = var.gcp_network != "" ? var.gcp_network : null
  subnetwork            = var.gcp_subnetwork != "" ? var.gcp_subnetwork : null
  tags                  = ["oce-packer"]
  service_account_email = var.gcp_service_account_email != "" ? var.gcp_service_account_email : null
  ssh_username          = "packer"
  metadata = {
    block-project-ssh-keys = "true"
  }

  # Secure Boot only loads signed modules: on for Canonical's signed driver, off for DKMS builds.
  enable_secure_boot          = var.gcp_nvidia_driver_source != "cuda-repo"
  enable_vtpm                 = true
  enable_integrity_monitoring = true

  image_name              = local.image_id.gcp
  image_family            = local.image_name.gcp
  image_description       = "Ollama ${local.role_inputs.ollama_version} on Ubuntu ${var.ubuntu_version} (ollama_cloud.engine golden image)"
  image_labels            = local.gcp_labels
  image_storage_locations = var.gcp_image_storage_locations
  labels                  = local.builder_labels.gcp
}
