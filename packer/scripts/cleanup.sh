#!/usr/bin/env bash
# The last change to the image before capture: remove everything that belongs to this one builder,
# so that every machine started from the image gets its own identity. Run by Packer as root.
#
# - cloud-init runs again on each clone (cloud-init clean --logs);
# - /etc/machine-id is truncated, never deleted: systemd writes a new one at first boot, while a
#   missing file breaks units that expect it;
# - SSH host keys (regenerated at first boot) and every authorized_keys file go; the session that
#   runs this script stays open;
# - Tailscale's state (/var/lib/tailscale: one node identity shared by every clone otherwise) and
#   Ollama's key pair (each node makes its own at first start) go;
# - DKMS's module-signing key (made when it built the NVIDIA modules) goes: with it, anyone holding
#   the image could sign modules that any clone which enrolled the certificate would load. A node's
#   DKMS makes its own key when it next builds a module;
# - the journal is vacuumed, apt's cache cleaned, the build's tools (ansible-core, the collection)
#   removed.
set -euo pipefail

log() { printf '[cleanup] %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive

log "removing the build's tools"
rm -rf /opt/oce-build /tmp/oce-build /tmp/ollama_cloud-engine.tar.gz \
  /usr/share/ansible/collections/ansible_collections/ollama_cloud /root/.ansible /home/*/.ansible

log "stopping services and clearing their state"
systemctl stop ollama.service tailscaled.service 2>/dev/null || true
rm -rf /var/lib/tailscale
rm -f /usr/share/ollama/.ollama/id_ed25519 /usr/share/ollama/.ollama/id_ed25519.pub

log "apt-get clean"
apt-get -o DPkg::Lock::Timeout=600 -y -q autoremove --purge
apt-get clean

log "removing DKMS's module-signing key"
# After apt, which could run a DKMS build. Ubuntu's dkms keeps it where update-secureboot-policy
# does; upstream dkms in /var/lib/dkms.
rm -f /var/lib/shim-signed/mok/MOK.* /var/lib/dkms/mok.*

log "cloud-init clean --logs"
cloud-init clean --logs

log "truncating /etc/machine-id"
truncate -s 0 /etc/machine-id
if [ -e /var/lib/dbus/machine-id ] && [ ! -L /var/lib/dbus/machine-id ]; then
  rm -f /var/lib/dbus/machine-id
  ln -s /etc/machine-id /var/lib/dbus/machine-id
fi

log "removing SSH host keys and authorized_keys"
rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
find /root /home -xdev -name authorized_keys -type f -delete
rm -f /root/.bash_history /home/*/.bash_history

log "vacuuming the journal"
journalctl --rotate >/dev/null 2>&1 || true
journalctl --vacuum-time=1s >/dev/null
rm -rf /var/log/journal/*/*.journal~

sync
log "done"
