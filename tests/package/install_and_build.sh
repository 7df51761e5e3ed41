#!/usr/bin/env bash
# Installs ringflow from a build tree into a temporary prefix, builds examples/embed_service out of
# tree against it with find_package(ringflow), and runs it. Usage: install_and_build.sh BUILD SRC CXX
set -euo pipefail
build=$1 src=$2 cxx=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/lib/cmake/ringflow/ringflowConfig.cmake"
cmake -S "$src/examples/embed_service" -B "$tmp/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
"$tmp/consumer/ringflow_embed_service" 2 200 1
