# shellcheck shell=bash
# The tailnet: Headscale as a sidecar control server, and the Tailscale settings the roles get.
# Sourced by rig/lib.sh (never on its own).

headscale_up() { curl -fsS -o /dev/null "http://$OCE_HEADSCALE_IP:8080/health" 2>/dev/null; }

# Headscale as a sidecar on the rig's network: embedded DERP, no public DERP map, no update
# checks, so nothing leaves the machine. Its state lives in the rig dir and survives restarts.
rig_headscale() {
  mkdir -p "$OCE_RIG_DIR/headscale/lib"
  rig_write "$OCE_RIG_DIR/headscale/config.yaml" <<CONF
server_url: http://$OCE_HEADSCALE_IP:8080
listen_addr: 0.0.0.0:8080
metrics_listen_addr: 127.0.0.1:9090
grpc_listen_addr: 127.0.0.1:50443
noise:
  private_key_path: /var/lib/headscale/noise_private.key
prefixes:
  v4: 100.64.0.0/10
  v6: fd7a:115c:a1e0::/48
  allocation: sequential
derp:
  server:
    enabled: true
    region_id: 999
    region_code: oce
    region_name: oce rig
    stun_listen_addr: 0.0.0.0:3478
    private_key_path: /var/lib/headscale/derp_server_private.key
    automatically_add_embedded_derp_region: true
    ipv4: $OCE_HEADSCALE_IP
  urls: []
  paths: []
  auto_update_enabled: false
disable_check_updates: true
database:
  type: sqlite
  sqlite:
    path: /var/lib/headscale/db.sqlite
log:
  level: info
policy:
  mode: file
  path: ""
dns:
  magic_dns: true
  base_domain: tail.oce
  override_local_dns: false
  nameservers:
    global: []
unix_socket: /var/run/headscale/headscale.sock
unix_socket_permission: "0770"
logtail:
  enabled: false
CONF
  if ! podman container exists oce-headscale; then
    log "headscale: starting oce-headscale ($OCE_HEADSCALE_IP:8080)"
    podman create --name oce-headscale --network "$OCE_RIG_NETWORK" --ip "$OCE_HEADSCALE_IP" \
      -v "$OCE_HEADSCALE_BIN:/usr/local/bin/headscale:ro" \
      -v "$OCE_RIG_DIR/headscale/config.yaml:/etc/headscale/config.yaml:ro" \
      -v "$OCE_RIG_DIR/headscale/lib:/var/lib/headscale" \
      "$OCE_REGISTRY_IMAGE" sh -c 'mkdir -p /var/run/headscale && exec headscale serve' >/dev/null
  fi
  rig_start_on_fixed_ip "$OCE_HEADSCALE_IP" oce-headscale
  for _ in $(seq 1 100); do headscale_up && break; sleep 0.2; done
  headscale_up || { podman logs --tail 20 oce-headscale >&2; die "headscale did not answer on http://$OCE_HEADSCALE_IP:8080/health"; }
  podman exec oce-headscale headscale users list -o json | grep -q '"name": *"oce"' ||
    podman exec oce-headscale headscale users create oce >/dev/null
}

rig_tailscale_vars() {
  [ -f "$OCE_TAILSCALE_TARBALL.sha256" ] || return 0
  cat <<EOF
tailscale_download_url: $OCE_TAILSCALE_TARBALL
tailscale_checksum: sha256:$(cat "$OCE_TAILSCALE_TARBALL.sha256")
tailscale_login_server: $OCE_HEADSCALE_URL
# The local nodes get no /dev/net/tun; and no logs to Tailscale's log servers from the rig.
tailscale_userspace_networking: true
tailscale_extra_flags: [--no-logs-no-support]
EOF
}
