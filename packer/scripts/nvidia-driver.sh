#!/usr/bin/env bash
# Install the NVIDIA driver into an Ubuntu 22.04/24.04 image build. Run by Packer as root, first,
# before anything else could pull in a new kernel. Ollama needs only the driver (no CUDA toolkit:
# its release bundles the CUDA runtimes). GPU images can be built on machines without a GPU: the
# kernel modules are built (DKMS) or installed (signed, precompiled) for the image's kernel.
#
#   NVIDIA_DRIVER_SOURCE   cuda-repo      NVIDIA's CUDA repository (cuda-keyring), DKMS modules;
#                          ubuntu-signed  Canonical's signed precompiled modules for the cloud
#                                         kernel (needed where Secure Boot is on);
#                          none           no driver: a CPU image.
#   NVIDIA_DRIVER_BRANCH   driver branch, e.g. 580
#   NVIDIA_DRIVER_FLAVOR   open (Turing and newer) or proprietary
#   NVIDIA_FABRIC_MANAGER  true on NVSwitch machines only (p4d, p5, a2-megagpu, a3); cuda-repo only
#   KERNEL_FLAVOUR         the cloud kernel flavour of the image: aws or gcp
#
# Afterwards the kernel meta-packages and the driver packages are held: the image is rebuilt on a
# schedule instead, and a kernel or driver update on a node would break the modules until reboot.
set -euo pipefail

source=${NVIDIA_DRIVER_SOURCE:?set NVIDIA_DRIVER_SOURCE to cuda-repo, ubuntu-signed or none}
branch=${NVIDIA_DRIVER_BRANCH:?set NVIDIA_DRIVER_BRANCH, e.g. 580}
flavor=${NVIDIA_DRIVER_FLAVOR:-open}
fabric_manager=${NVIDIA_FABRIC_MANAGER:-false}
kernel_flavour=${KERNEL_FLAVOUR:?set KERNEL_FLAVOUR to aws or gcp}
# The public signing key of NVIDIA's CUDA repositories (3bf863cc), checked before it is trusted.
cuda_key_fingerprint=EB693B3035CD5710E231E123A4B469963BF863CC

log() { printf '[nvidia-driver] %s\n' "$*"; }
die() {
  printf '[nvidia-driver] ERROR: %s\n' "$*" >&2
  exit 1
}
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -y -q "$@"; }

case $source in
  none)
    log "NVIDIA_DRIVER_SOURCE=none: no driver, a CPU image"
    exit 0
    ;;
  cuda-repo | ubuntu-signed) ;;
  *) die "NVIDIA_DRIVER_SOURCE must be cuda-repo, ubuntu-signed or none, not '$source'" ;;
esac
[[ $branch =~ ^[0-9]{3}$ ]] || die "NVIDIA_DRIVER_BRANCH must be a branch number such as 580, not '$branch'"
[[ $flavor = open || $flavor = proprietary ]] || die "NVIDIA_DRIVER_FLAVOR must be open or proprietary, not '$flavor'"
[ "$(dpkg --print-architecture)" = amd64 ] || die "only amd64 images are supported"

export DEBIAN_FRONTEND=noninteractive
# First boot runs cloud-init and apt in the background: let them finish.
cloud-init status --wait >/dev/null 2>&1 || true

# shellcheck source=/dev/null
. /etc/os-release
kernel=$(uname -r)
log "Ubuntu $VERSION_ID, kernel $kernel, driver $branch ($flavor) from $source"

# 1. Hold the kernel meta-packages of the flavour (linux-aws, linux-image-aws, ...): the image keeps
#    the kernel the modules were built for.
mapfile -t metas < <(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' "linux-*${kernel_flavour}*" 2>/dev/null |
  awk '$1 == "ii" {print $2}' | grep -Ev '[0-9]+\.[0-9]+\.[0-9]+-[0-9]+' || true)
[ ${#metas[@]} -gt 0 ] || die "no kernel meta-package of the '$kernel_flavour' flavour is installed (kernel $kernel)"
apt-mark hold "${metas[@]}" >/dev/null
log "held kernel meta-packages: ${metas[*]}"

apt_get update
if [ "$source" = cuda-repo ]; then
  # 2a. NVIDIA's CUDA repository: cuda-keyring, checked against the known key before installing.
  distro=ubuntu${VERSION_ID//./}
  repo=https://developer.download.nvidia.com/compute/cuda/repos/$distro/x86_64
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  apt_get install --no-install-recommends ca-certificates curl gnupg "linux-headers-$kernel"
  curl -fsSL --retry 3 -o "$work/cuda-keyring.deb" "$repo/cuda-keyring_1.1-1_all.deb"
  dpkg-deb -x "$work/cuda-keyring.deb" "$work/keyring"
  found=$(gpg --show-keys --with-colons "$work"/keyring/usr/share/keyrings/cuda-archive-keyring.gpg 2>/dev/null |
    awk -F: '$1 == "fpr" {print $10}')
  grep -qx "$cuda_key_fingerprint" <<<"$found" ||
    die "cuda-keyring from $repo carries key(s) '$found', not NVIDIA's $cuda_key_fingerprint: refusing it"
  dpkg -i "$work/cuda-keyring.deb"
  apt_get update
  # From branch 590 on, package names carry no branch and a pinning package locks one; older
  # branches have branch-named meta-packages. Use the pinning package where the repository has it.
  driver=cuda-drivers
  [ "$flavor" = open ] && driver=nvidia-open
  if apt-cache show "nvidia-driver-pinning-$branch" >/dev/null 2>&1; then
    apt_get install "nvidia-driver-pinning-$branch"
    suffix=""
  else
    suffix=-$branch
  fi
  packages=("$driver$suffix")
  [ "$fabric_manager" = true ] && packages+=("nvidia-fabricmanager$suffix")
  apt_get install "${packages[@]}"
else
  # 2b. Canonical's signed, precompiled modules for exactly this kernel, and the headless driver.
  [ "$fabric_manager" = true ] && die "NVIDIA_FABRIC_MANAGER needs NVIDIA_DRIVER_SOURCE=cuda-repo"
  open=""
  [ "$flavor" = open ] && open=-open
  apt_get install --no-install-recommends \
    "linux-modules-nvidia-$branch-server$open-$kernel" \
    "nvidia-headless-no-dkms-$branch-server$open" \
    "nvidia-utils-$branch-server"
fi

# 3. Hold the driver too (user space and modules must stay at one version), and keep the GPU
#    initialised between jobs.
mapfile -t held < <(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' '*nvidia*' 'cuda-drivers*' 2>/dev/null |
  awk '$1 == "ii" {print $2}' | grep -v '^cuda-keyring' || true)
[ ${#held[@]} -gt 0 ] || die "no NVIDIA package is installed after the install step"
apt-mark hold "${held[@]}" >/dev/null
systemctl enable nvidia-persistenced.service
[ "$fabric_manager" = true ] && systemctl enable nvidia-fabricmanager.service
log "installed and held ${#held[@]} NVIDIA packages; nvidia-persistenced enabled"
