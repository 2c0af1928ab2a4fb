#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds tests/consumer against it, runs it.
set -euo pipefail
build_dir=$1 consumer_src=$2 cxx=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$consumer_src" -B "$scratch/build" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
      -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$scratch/build" >/dev/null
output=$("$scratch/build/consumer")
echo "consumer printed: $output"
[ "$output" = "404 Not Found" ]
