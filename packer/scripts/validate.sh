#!/usr/bin/env bash
# The build's last step: fail it (no image is captured) unless the image is what we promise.
# Read-only. Run by Packer as root after cleanup.sh.
#
#   OLLAMA_VERSION        the Ollama release that must be installed
#   MIN_FREE_GB           free space the root file system must still have
#   NVIDIA_DRIVER_SOURCE  cuda-repo | ubuntu-signed | none (the nvidia_driver role's nvidia_driver_source)
#   NVIDIA_DRIVER_BRANCH  the branch the kernel modules must be of (when a driver was installed)
set -euo pipefail

ollama_version=${OLLAMA_VERSION:?set OLLAMA_VERSION}
min_free_gb=${MIN_FREE_GB:-4}
source=${NVIDIA_DRIVER_SOURCE:-none}
branch=${NVIDIA_DRIVER_BRANCH:-}

problems=()
ok() { printf '[validate] ok: %s\n' "$*"; }
bad() {
  printf '[validate] FAILED: %s\n' "$*" >&2
  problems+=("$*")
}
# check "what is right" "what is wrong" command...: runs the command, reports either sentence.
check() {
  local good=$1 wrong=$2
  shift 2
  if "$@"; then ok "$good"; else bad "$wrong"; fi
}
no_file() { [ ! -e "$1" ]; }
enabled() { systemctl is-enabled --quiet "$1" 2>/dev/null; }
empty_file() { [ -e "$1" ] && [ ! -s "$1" ]; }
has_ollama_version() { /usr/local/bin/ollama --version 2>&1 | grep -qF "$1"; }
has_tailscale() { command -v tailscale >/dev/null && command -v tailscaled >/dev/null; }
dkms_installed() { dkms status -k "$1" 2>/dev/null | grep -Eq '^nvidia.*: installed'; }
kernel_held() { apt-mark showhold | grep -q '^linux-'; }
# Every installed NVIDIA package held (the nvidia_driver role holds them all).
driver_held() {
  local installed held
  installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' '*nvidia*' 2>/dev/null |
    awk '$1 ~ /^.i$/ {sub(/:amd64$/, "", $2); print $2}' | sort)
  held=$(apt-mark showhold | sed 's/:amd64$//' | sort)
  [ -n "$installed" ] && [ -z "$(comm -23 <(printf '%s\n' "$installed") <(printf '%s\n' "$held"))" ]
}
uvm_at_boot() { grep -qx nvidia_uvm /etc/modules-load.d/nvidia-uvm.conf 2>/dev/null; }
# An NVIDIA display or 3D controller: PCI vendor 0x10de, class 0x0300 or 0x0302.
has_nvidia_gpu() {
  local dev
  for dev in /sys/bus/pci/devices/*; do
    [ "$(cat "$dev/vendor" 2>/dev/null)" = 0x10de ] || continue
    case $(cat "$dev/class" 2>/dev/null) in 0x0300* | 0x0302*) return 0 ;; esac
  done
  return 1
}

# Free space on the root file system.
free_kb=$(df --output=avail -k / | tail -n 1 | tr -d ' ')
if [ "$free_kb" -ge $((min_free_gb * 1024 * 1024)) ]; then
  ok "$((free_kb / 1024 / 1024)) GB free on / (at least $min_free_gb)"
else
  bad "only $((free_kb / 1024)) MB free on /, less than $min_free_gb GB: raise root_volume_gb"
fi

# Ollama at the pinned version, enabled (started at first boot).
if [ -x /usr/local/bin/ollama ] && [ "$(readlink -f /usr/local/bin/ollama)" = "/opt/ollama/$ollama_version/bin/ollama" ]; then
  ok "ollama $ollama_version at $(readlink -f /usr/local/bin/ollama)"
else
  bad "/usr/local/bin/ollama is not Ollama $ollama_version (it points to '$(readlink -f /usr/local/bin/ollama 2>/dev/null || true)')"
fi
check "ollama --version reports $ollama_version" "ollama --version does not report $ollama_version" \
  has_ollama_version "$ollama_version"
check "ollama.service enabled" "ollama.service is not enabled" enabled ollama.service

# Tailscale installed, enabled, without a node identity.
check "tailscale installed" "tailscale is not installed" has_tailscale
check "tailscaled.service enabled" "tailscaled.service is not enabled" enabled tailscaled.service
check "no Tailscale state" "/var/lib/tailscale exists: every clone would share its node identity" \
  no_file /var/lib/tailscale

# Nothing of this machine's identity left.
check "/etc/machine-id empty" "/etc/machine-id must exist and be empty" empty_file /etc/machine-id
keys=$(compgen -G '/etc/ssh/ssh_host_*' | wc -l || true)
check "no SSH host keys" "$keys SSH host key files left in /etc/ssh" test "$keys" -eq 0
auth=$( (find /root /home -xdev -name authorized_keys -type f 2>/dev/null || true) | wc -l)
check "no authorized_keys" "$auth authorized_keys files left" test "$auth" -eq 0
mok=$( (compgen -G '/var/lib/shim-signed/mok/MOK.*' || true; compgen -G '/var/lib/dkms/mok.*' || true) | wc -l)
check "no module-signing key" "$mok DKMS module-signing key files left: every clone would share the key" \
  test "$mok" -eq 0

# The NVIDIA driver: modules of the branch for every installed kernel, DKMS builds installed.
if [ "$source" != none ]; then
  mapfile -t images < <(compgen -G '/boot/vmlinuz-*' || true)
  [ ${#images[@]} -gt 0 ] || bad "no kernel image in /boot"
  for image in "${images[@]}"; do
    k=${image#/boot/vmlinuz-}
    version=$(modinfo -k "$k" -F version nvidia 2>/dev/null || true)
    if [ -n "$version" ] && [[ $version == "$branch".* ]]; then
      ok "nvidia module $version for kernel $k"
    else
      bad "no nvidia module of branch $branch for kernel $k (found '${version:-none}')"
    fi
    if [ "$source" = cuda-repo ]; then
      check "DKMS nvidia installed for kernel $k" "DKMS has not installed nvidia for kernel $k" dkms_installed "$k"
    fi
  done
  check "nvidia-persistenced enabled" "nvidia-persistenced.service is not enabled" \
    enabled nvidia-persistenced.service
  check "kernel meta-packages held" "no kernel package is held" kernel_held
  check "NVIDIA packages held" "an installed NVIDIA package is not held" driver_held
  check "nvidia_uvm loaded at boot" "/etc/modules-load.d/nvidia-uvm.conf does not load nvidia_uvm" uvm_at_boot
  # On a builder with a GPU the driver must also answer - unless nouveau took the GPU at boot
  # (the driver's blacklist of nouveau applies from the image's first boot on).
  if ! has_nvidia_gpu; then
    ok "no GPU on this builder: nvidia-smi not run"
  elif grep -q '^nouveau ' /proc/modules; then
    ok "nouveau holds the builder's GPU until the image boots: nvidia-smi not run"
  else
    check "nvidia-smi sees the builder's GPU" "nvidia-smi fails on the builder's GPU" nvidia-smi -L
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  printf '[validate] %d problem(s); the image is not captured.\n' "${#problems[@]}" >&2
  exit 1
fi
printf '[validate] the image is ready\n'
