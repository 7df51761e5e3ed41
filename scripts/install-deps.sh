#!/usr/bin/env bash
# Installs every Debian package ringflow's whole design needs, and only what is missing.
# Idempotent: a second run installs nothing and does not touch the network.
# Works as root on a fresh Debian 12 machine (uses sudo when not root and sudo exists).
# CUDA (nvcc) is not a Debian package here: it is expected in /usr/local/cuda and is optional.
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake ninja-build make pkg-config
  # clang + libFuzzer runtime for the fuzz targets (clang-14 cannot build CAF code; messages/ has no CAF)
  clang libclang-rt-14-dev
  # formatting (make format-check, run by CI)
  clang-format-14
  # actor system, queues, messages
  libcaf-dev libconcurrentqueue-dev libflatbuffers-dev flatbuffers-compiler
  # tests and benchmarks
  catch2 libbenchmark-dev
  # cluster tests: network namespaces for member_partition (ip) and test certificates (openssl)
  iproute2 openssl
  # HIP backend (hipcc + HIP runtime headers)
  hipcc libamdhip64-dev
  # the ringflow program
  libyaml-cpp-dev libyaml-dev libspdlog-dev libfmt-dev libcpp-httplib-dev libcli11-dev nlohmann-json3-dev
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else
    echo "install-deps: missing ${missing[*]}; run as root to install them" >&2; exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
