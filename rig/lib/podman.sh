# shellcheck shell=bash
# Podman settings and the rig's network: containers.conf, stale containers of a killed session
# removed, the DNS-less bridge the nodes and sidecars share.
# Sourced by rig/lib.sh (never on its own).

rig_containers_conf() {
  mkdir -p "$OCE_RIG_DIR"
  # runc + cgroupfs + explicit ulimits: what works on these VMs (RIG.md), without editing /etc.
  rig_write "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
}

# When a session ends, its processes are killed but /run survives: podman still lists
# the containers as running, and their networks still hold addresses and bridges. Such
# containers cannot be started again. Remove them (the registry's data is a bind mount
# in the cache; nodes are rebuilt by their playbooks) so the rig can start afresh.
rig_recover() {
  local name status pid proc stale=()
  while read -r name status pid; do
    case "$status" in
      running)  # alive, and not a zombie left unreaped after its conmon was killed
        proc=$(ps -o stat= -p "${pid:-0}" 2>/dev/null) || proc=""
        [ -n "$proc" ] && [ "${proc#Z}" = "$proc" ] && continue ;;
      stopping) ;;
      *) continue ;;
    esac
    stale+=("$name")
  done < <(podman ps -a --format '{{.Names}} {{.State}}' | awk '{print $1}' | while read -r n; do
             podman container inspect --format '{{.Name}} {{.State.Status}} {{.State.Pid}}' "$n" 2>/dev/null
           done)
  [ ${#stale[@]} -eq 0 ] && return 0
  log "podman lists ${stale[*]} as running but their processes are gone; removing them"
  # netavark refuses to tear a network down while aardvark-dns's pid file names a dead process.
  local pidfile=/run/containers/networks/aardvark-dns/aardvark.pid
  if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then rm -f "$pidfile"; fi
  # The first rm of such a container may only move it to "stopping"; the next one removes it.
  for name in "${stale[@]}"; do
    for _ in 1 2 3; do
      podman container exists "$name" || break
      podman rm -f -t 0 "$name" >/dev/null 2>&1 || sleep 0.5
    done
    podman container exists "$name" && die "cannot remove the stale container $name: see podman rm -f $name"
  done
  # Addresses are held only while a container runs; with none running, what IPAM still
  # holds leaked from the killed teardown (a reboot would have emptied /run).
  if [ -z "$(podman ps -q)" ]; then rm -f /run/containers/networks/ipam.db; fi
}

rig_network() {
  rig_recover
  # DNS off: nodes find the registry through --add-host, and without aardvark-dns a
  # killed session leaves nothing that blocks the teardown above.
  if podman network exists "$OCE_RIG_NETWORK"; then
    [ "$(podman network inspect --format '{{.DNSEnabled}}' "$OCE_RIG_NETWORK")" = false ] && return 0
    log "network: recreating $OCE_RIG_NETWORK without DNS"
    podman network rm -f "$OCE_RIG_NETWORK" >/dev/null
  fi
  # A bridge left holding the subnet by an interrupted teardown blocks the create.
  local dev
  dev=$(ip -o -4 addr show to "$OCE_RIG_GATEWAY/32" | awk '{print $2}' | head -n1)
  if [ -n "$dev" ]; then log "network: removing stale bridge $dev"; ip link del "$dev"; fi
  log "network: creating $OCE_RIG_NETWORK ($OCE_RIG_SUBNET)"
  podman network create --disable-dns --subnet "$OCE_RIG_SUBNET" --gateway "$OCE_RIG_GATEWAY" \
    "$OCE_RIG_NETWORK" >/dev/null
}

# Each sidecar (registry, blob server, Headscale) starts here, on its fixed address, freed if a
# node holds it: rig/demo makes its node before rig/test starts the Headscale sidecar, and the
# network gives a node the first free address. That node is stopped while the sidecar starts,
# then started again (with another address; it is reached through podman and its published port,
# not by address).
#   rig_start_on_fixed_ip IP CONTAINER
rig_start_on_fixed_ip() {
  local ip=$1 name=$2 holder
  # Already running: it holds its address (the usual case of a warm rig).
  [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] && return 0
  # One inspect of every running container on the network: "name address" lines.
  holder=$(podman ps -q --filter "network=$OCE_RIG_NETWORK" |
    xargs -r podman inspect --format "{{.Name}} {{(index .NetworkSettings.Networks \"$OCE_RIG_NETWORK\").IPAddress}}" |
    awk -v ip="$ip" -v name="$name" '$2 == ip && $1 != name { print $1; exit }')
  [ -n "$holder" ] && { log "network: $holder holds $ip, $name's address: restarting it elsewhere"; podman stop -t 10 "$holder" >/dev/null; }
  podman start "$name" >/dev/null
  [ -z "$holder" ] || podman start "$holder" >/dev/null ||
    log "network: $holder did not start again (a fixed address of its own, $ip?): start it with another"
}
