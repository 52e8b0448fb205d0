# shellcheck shell=bash
# Container images: the Debian systemd base image (debootstrap from this machine's mirror), the
# image the sidecars run (registry, blob server, Headscale) and the simulated cloud's stock image.
# Sourced by rig/lib.sh (never on its own).

# The Debian mirror this machine's apt uses for $OCE_DEBIAN_SUITE (deb822 .sources or
# sources.list): debootstrap fetches the base image from the same place.
rig_debian_mirror() {
  python3 - "$OCE_DEBIAN_SUITE" <<'PY'
import glob, re, sys
suite = sys.argv[1]
def entries():
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in open(path).read().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"]) != ["no"]:
                yield fields.get("uris", []), fields.get("suites", [])
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")):
        try:
            lines = open(path).read().splitlines()
        except OSError:
            continue
        for line in lines:
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()  # no [options]
            if len(words) >= 3 and words[0] == "deb":
                yield [words[1]], [words[2]]
for uris, suites in entries():
    if suite in suites and uris:
        print(uris[0].rstrip("/"))
        break
PY
}

rig_base_image() {
  if podman image exists "$OCE_BASE_IMAGE"; then return 0; fi
  local rootfs=$OCE_CACHE/rootfs-$OCE_DEBIAN_SUITE mirror
  mirror=$(rig_debian_mirror)
  [ -n "$mirror" ] || die "apt on this machine has no source for Debian $OCE_DEBIAN_SUITE: debootstrap needs its mirror"
  log "image: debootstrap $OCE_DEBIAN_SUITE from $mirror into $rootfs (about a minute)"
  rm -rf "$rootfs"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,curl,iproute2,procps \
    "$OCE_DEBIAN_SUITE" "$rootfs" "$mirror" >/dev/null
  # A bare host, as a fresh cloud image would be: no machine id, apt lists kept for the role.
  : >"$rootfs/etc/machine-id"
  tar -C "$rootfs" -c . | podman import -q \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' - "$OCE_BASE_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

rig_registry_image() {
  podman image exists "$OCE_REGISTRY_IMAGE" && return 0
  log "registry: building $OCE_REGISTRY_IMAGE (docker-registry + nginx-light from Debian)"
  local ctx
  ctx=$(mktemp -d)
  printf 'FROM %s\nRUN %s\n' "$OCE_BASE_IMAGE" \
    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry nginx-light && apt-get clean && rm -rf /var/lib/apt/lists/*" \
    >"$ctx/Containerfile"
  podman build -q -f "$ctx/Containerfile" -t "$OCE_REGISTRY_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
}

# A stock cloud image for the simulated cloud: the base image plus what a Debian cloud image carries
# to boot as an instance (cloud-init, sshd, and en_US.UTF-8 generated and set as the system's
# locale, as a cloud image ships it: cloud-init's locale module then finds it in place; without it,
# every first boot ran locale-gen again, 5-30 s of CPU per body). No SSH host keys (cloud-init makes
# them at first boot); cloud-init leaves the network to podman, and has no boot loader to record
# (grub_dpkg) in a container. Rebuilt when the key (pinned versions, the base image, this recipe)
# changes.
rig_cloud_image() {
  local key have ctx old
  key=$( (cat "$OCE_ROOT/rig/versions.env"; podman image inspect --format '{{.Id}}' "$OCE_BASE_IMAGE"
    declare -f rig_cloud_image) | sha256sum | cut -c1-12)
  have=$(podman image inspect --format '{{index .Labels "oce.cloud-image.key"}}' "$OCE_CLOUD_IMAGE" 2>/dev/null || true)
  [ "$have" = "$key" ] && return 0
  old=$(podman image inspect --format '{{.Id}}' "$OCE_CLOUD_IMAGE" 2>/dev/null || true)
  log "cloudimage: building $OCE_CLOUD_IMAGE (cloud-init and openssh-server from Debian)"
  ctx=$(mktemp -d)
  cat >"$ctx/Containerfile" <<EOF
FROM $OCE_BASE_IMAGE
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      cloud-init openssh-server locales >/dev/null && apt-get clean \
 && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null \
 && update-locale LANG=en_US.UTF-8 \
 && rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub \
 && printf '%s\n' '# podman gives the container its network; a container has no boot loader' \
      'network: {config: disabled}' 'grub_dpkg: {enabled: false}' >/etc/cloud/cloud.cfg.d/99-oce-container.cfg \
 && cloud-init clean --logs && : >/etc/machine-id
LABEL oce.cloud-image.key=$key
EOF
  podman build -q -f "$ctx/Containerfile" -t "$OCE_CLOUD_IMAGE" "$ctx" >/dev/null
  rm -rf "$ctx"
  # The previous build, unless a container still uses it.
  if [ -n "$old" ]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
}
