# shellcheck shell=bash
# The private model registry: Debian's docker-registry and an nginx blob server, as sidecars.
# Sourced by rig/lib.sh (never on its own).

registry_up() { curl -fsS -o /dev/null "$OCE_REGISTRY_URL/v2/" 2>/dev/null; }

# Debian's docker-registry as a sidecar, and nginx serving its blobs. Ollama downloads a blob
# from the URL the registry redirects it to (as registry.ollama.ai sends it to a CDN) and fails
# with "no Location header" on a registry that serves blobs itself; the registry's `redirect`
# storage middleware sends blob GETs to the nginx sidecar, which serves them with Range support.
# Both listen on the rig bridge; the registry also on 127.0.0.1 for pushes. Nothing else.
rig_registry() {
  rig_registry_image
  # The mirror is filled by the builds, which may still be running beside this step.
  mkdir -p "$OCE_CACHE/registry" "$OCE_CACHE/mirror"
  sed "s|@BLOBS@|http://$OCE_BLOBS_IP:8080|" <<'EOF' | rig_write "$OCE_RIG_DIR/registry.yml"
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
middleware:
  storage:
    - name: redirect
      options:
        baseurl: @BLOBS@
http:
  addr: 0.0.0.0:5000
EOF
  rig_write "$OCE_RIG_DIR/blobs.conf" <<'EOF'
daemon off;
worker_processes 2;
error_log stderr warn;
pid /run/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  sendfile on;
  server {
    listen 8080;
    root /var/lib/registry;
    location / { limit_except GET { deny all; } }
    # The artifact mirror of the simulated cloud: release tarballs, as an internal mirror serves them.
    location /mirror/ { alias /srv/mirror/; autoindex on; limit_except GET { deny all; } }
  }
}
EOF
  # A blob server made before the mirror existed lacks its mount: make it again.
  if podman container exists oce-blobs &&
    ! podman container inspect --format '{{range .Mounts}}{{.Destination}} {{end}}' oce-blobs | grep -q /srv/mirror; then
    podman rm -f -t 0 oce-blobs >/dev/null
  fi
  if ! podman container exists oce-registry; then
    log "registry: starting oce-registry ($OCE_REGISTRY_IP:5000 and $OCE_REGISTRY_URL), oce-blobs ($OCE_BLOBS_IP:8080)"
    podman create --name oce-registry --network "$OCE_RIG_NETWORK" --ip "$OCE_REGISTRY_IP" \
      -p "127.0.0.1:$OCE_REGISTRY_PORT:5000" \
      -v "$OCE_RIG_DIR/registry.yml:/etc/registry.yml:ro" -v "$OCE_CACHE/registry:/var/lib/registry" \
      "$OCE_REGISTRY_IMAGE" /usr/bin/docker-registry serve /etc/registry.yml >/dev/null
  fi
  if ! podman container exists oce-blobs; then
    podman create --name oce-blobs --network "$OCE_RIG_NETWORK" --ip "$OCE_BLOBS_IP" \
      -v "$OCE_RIG_DIR/blobs.conf:/etc/nginx/blobs.conf:ro" -v "$OCE_CACHE/registry:/var/lib/registry:ro" \
      -v "$OCE_CACHE/mirror:/srv/mirror:ro" \
      "$OCE_REGISTRY_IMAGE" /usr/sbin/nginx -c /etc/nginx/blobs.conf >/dev/null
  fi
  rig_start_on_fixed_ip "$OCE_REGISTRY_IP" oce-registry
  rig_start_on_fixed_ip "$OCE_BLOBS_IP" oce-blobs
  for _ in $(seq 1 50); do registry_up && return 0; sleep 0.2; done
  podman logs --tail 20 oce-registry >&2 || true
  die "the registry did not answer on $OCE_REGISTRY_URL/v2/"
}
