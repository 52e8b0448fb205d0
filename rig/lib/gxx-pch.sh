#!/usr/bin/env bash
# g++ for the rig's Ollama build (rig_ollama_version sets CXX to this file; run, not sourced).
# llama.cpp's model graph builders (llama/llama.cpp/src/models, 100 files that Go compiles one
# after the other) each parse the same models.h first, three quarters of their compile time. The
# first of them precompiles it next to the package's objects, with that file's own flags, and each
# then compiles with it (-include): the same code, in a quarter of the time. Any other file, or a
# header that fails to precompile, goes to g++ unchanged (GCC also ignores a PCH that does not fit).
set -u
case $PWD in
  */llama/llama.cpp/src/models) ;;
  *) exec g++ "$@" ;;
esac
out="" src="" prev=""
header_args=()
for arg in "$@"; do
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
if [ -z "$src" ] || [ -z "$out" ] || [ ! -f models.h ]; then exec g++ "$@"; fi
pch=$(dirname "$out")/oce-pch/models.h
if [ ! -f "$pch.gch" ]; then
  mkdir -p "$(dirname "$pch")"
  g++ "${header_args[@]}" -x c++-header models.h -o "$pch.gch.tmp" 2>/dev/null && mv -f "$pch.gch.tmp" "$pch.gch"
fi
[ -f "$pch.gch" ] || exec g++ "$@"
exec g++ -include "$pch" "$@"
