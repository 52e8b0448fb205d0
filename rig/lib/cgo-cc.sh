#!/usr/bin/env bash
# The C and C++ compiler of the rig's Ollama build (rig_ollama_version sets CC="cgo-cc.sh gcc" and
# CXX="cgo-cc.sh g++"; run, not sourced). cgo compiles each file from its package's directory in
# the module cache, and the last -O of a command line wins. Two changes, both to compile time only:
#   - -O1 instead of the build's -O2 for the code no model the rig serves runs: llama.cpp's
#     library, common code and multimodal tools with Ollama's bindings to them (the older runner,
#     for models Ollama's own engine does not run; the rig's Gemma 3 runs on that engine, over
#     ggml, which keeps -O2 and its own -O3), and SQLite (the desktop app's store);
#   - llama.cpp's model graph builders (llama/llama.cpp/src/models, 100 files, and the 12 of
#     tools/mtmd/models) each parse their package's models.h first, most of their compile time:
#     the first to come precompiles it next to the package's objects, with its own flags, and each
#     then compiles with it (-include), in a quarter of the time. A header that fails to precompile
#     is not tried again, and leaves the compiles as they were (GCC also ignores a PCH that does
#     not fit).
set -u
# Go also runs the command's first word alone (`-### -x c++ -c -` for its cache key, its linker's
# flag probes): that is gcc's, the driver of both languages, unchanged.
case ${1:-} in
  -*) exec gcc "$@" ;;
esac
compiler=$1
shift
case $PWD in
  */ollama@v*/llama/llama.cpp/src/models | */ollama@v*/llama/llama.cpp/tools/mtmd/models) ;;
  */ollama@v*/llama | */ollama@v*/llama/* | */go-sqlite3@v*) exec "$compiler" "$@" -O1 ;;
  *) exec "$compiler" "$@" ;;
esac
out="" src="" prev=""
header_args=()
for arg; do
  if [ "$prev" = -o ]; then
    out=$arg
  elif [ "$arg" != -o ] && [ "$arg" != -c ]; then
    case $arg in
      *.cpp) src=$arg ;;
      *) header_args+=("$arg") ;;
    esac
  fi
  prev=$arg
done
if [ -z "$src" ] || [ -z "$out" ] || [ ! -f models.h ]; then exec "$compiler" "$@" -O1; fi
pch=$(dirname "$out")/oce-pch/models.h
mkdir -p "$(dirname "$pch")"
# One precompile per package, whichever compile comes first; the others wait for it.
(
  flock 9
  [ -f "$pch.gch" ] || [ -f "$pch.failed" ] ||
    # -c: cgo's flags include -Wl options, with which the driver would go on to link.
    { "$compiler" "${header_args[@]}" -O1 -c -x c++-header models.h -o "$pch.gch.tmp" 2>/dev/null &&
      mv "$pch.gch.tmp" "$pch.gch"; } || touch "$pch.failed"
) 9>"$pch.lock"
[ -f "$pch.gch" ] || exec "$compiler" "$@" -O1
exec "$compiler" -include "$pch" "$@" -O1
