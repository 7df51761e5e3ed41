#!/usr/bin/env bash
# The CMake package test (ctest "package: ..."): installs ringflow from a build tree into a
# temporary prefix, configures and builds a consumer project out of tree against it with
# find_package(ringflow) (its include and link paths come from the installed package only) and runs
# the consumer with small arguments. The temporary directory is removed on exit, pass or fail.
#
# Usage: install_and_build.sh BUILD_DIR CONSUMER_SOURCE_DIR CXX_COMPILER [GENERATOR [PROGRAM ARGS...]]
#   e.g. tests/package/install_and_build.sh build examples/embed_service /usr/bin/g++ Ninja
#   PROGRAM (in the consumer's build dir) and its ARGS: default ringflow_embed_service --threads 2 --requests 500
# $CMAKE: the cmake to use (ctest passes the one that configured the build; default: cmake).
# $CONSUMER_CMAKE_ARGS: extra arguments for the consumer's configure (word-split), e.g.
#   -DCMAKE_DISABLE_FIND_PACKAGE_CUDAToolkit=ON to stand for a machine without CUDA.
# In PROGRAM and ARGS, @PREFIX@ is the install prefix and @CONSUMER@ the consumer's build dir; a
# PROGRAM starting with @PREFIX@ is the installed one (e.g. @PREFIX@/bin/ringflow run @CONSUMER@/x.yaml).
# $EXPECT: extended regular expressions, separated by @@, the program's output must each contain
#   (besides its exit code 0).
set -euo pipefail
cmake=${CMAKE:-cmake}
build=$(cd "$1" && pwd) consumer=$(cd "$2" && pwd) cxx=$3 generator=${4:-Ninja}
shift $(($# < 4 ? $# : 4))
program=("$@")
((${#program[@]})) || program=(ringflow_embed_service --threads 2 --requests 500)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ringflow-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

step() {  # step NAME COMMAND...: runs quietly; on failure shows the command's output
  local name=$1 start=$SECONDS
  shift
  if ! "$@" >"$tmp/$name.log" 2>&1; then
    echo "package test: '$name' failed: $*" >&2
    cat "$tmp/$name.log" >&2
    exit 1
  fi
  echo "package test: $name ok ($((SECONDS - start)) s)"
}

step install "$cmake" --install "$build" --prefix "$prefix"
# What a consumer relies on is there (the library directory is GNUInstallDirs' choice: lib, lib64,
# lib/<multiarch>); what is not part of the package is not.
config=$(find "$prefix" -path '*/cmake/ringflow/ringflowConfig.cmake' | head -n 1)
[[ -n $config ]] || { echo "package test: no ringflowConfig.cmake under $prefix" >&2; exit 1; }
cmakedir=$(dirname "$config") libdir=$(dirname "$(dirname "$(dirname "$config")")")
for f in "$cmakedir"/{ringflowConfigVersion,ringflowTargets,FindCAF}.cmake "$libdir"/libringflow_{actors,backend_cpu,backend_sim,supervision,messages}.a \
         "$prefix"/include/ringflow/{ringflow.hpp,actors/runtime.hpp,kernel.hpp,fb_view.hpp,cpu/cpu_kernel.hpp,incarnation.hpp} \
         "$prefix"/include/ringflow/{sim/sim_device.hpp,supervision/fault_ladder.hpp,supervision/supervisor.hpp} \
         "$prefix"/include/ringflow/generated/score_request_generated.h; do
  [[ -f $f ]] || { echo "package test: $f was not installed" >&2; exit 1; }
done
# The exported targets name no library by this machine's absolute path (GPU runtimes are found
# again on the consumer's machine).
if grep -lE '/(opt/rocm|usr/local/cuda)[^"]*\.so' "$cmakedir"/*Targets*.cmake; then
  echo "package test: an exported target carries an absolute GPU library path" >&2
  exit 1
fi
[[ -x $prefix/bin/ringflow_schemagen && -f $cmakedir/RingflowSchemas.cmake ]] || {
  echo "package test: ringflow_schemagen or RingflowSchemas.cmake was not installed" >&2
  exit 1
}
# The operations library, the program and the plugin tooling.
for f in "$prefix"/bin/ringflow "$libdir"/libringflow_{ops,backend_process}.a "$cmakedir"/{RingflowPlugins,ringflowOpsTargets}.cmake \
         "$prefix"/include/ringflow/{plugin.hpp,host_serve.hpp,version.hpp,runtime/program.hpp,runtime/plugins.hpp,gpu/plugin_kernels.cuh}; do
  [[ -e $f ]] || { echo "package test: $f was not installed" >&2; exit 1; }
done
if find "$prefix" -name '*test*' -o -name '*bench*' -o -name '*example*' | grep -q .; then
  echo "package test: tests, benchmarks or examples were installed:" >&2
  find "$prefix" -name '*test*' -o -name '*bench*' -o -name '*example*' >&2
  exit 1
fi

step configure "$cmake" -S "$consumer" -B "$tmp/consumer" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
  ${CONSUMER_CMAKE_ARGS:-}
# The consumer must have found the installed package, not a build tree.
grep -qx "ringflow_DIR:PATH=$cmakedir" "$tmp/consumer/CMakeCache.txt" || {
  echo "package test: the consumer did not use the installed package:" >&2
  grep '^ringflow_DIR' "$tmp/consumer/CMakeCache.txt" >&2
  exit 1
}
step build "$cmake" --build "$tmp/consumer"
for i in "${!program[@]}"; do
  program[i]=${program[i]//@PREFIX@/$prefix}
  program[i]=${program[i]//@CONSUMER@/$tmp/consumer}
done
[[ ${program[0]} == /* ]] || program[0]=$tmp/consumer/${program[0]}
if [[ -z ${EXPECT:-} ]]; then
  "${program[@]}"
else
  "${program[@]}" 2>&1 | tee "$tmp/program.log"
  (( PIPESTATUS[0] == 0 )) || { echo "package test: ${program[*]} failed" >&2; exit 1; }
  rest=$EXPECT
  while [[ -n $rest ]]; do
    want=${rest%%@@*}
    [[ $rest == *@@* ]] && rest=${rest#*@@} || rest=
    [[ -z $want ]] || grep -qE -- "$want" "$tmp/program.log" || {
      echo "package test: the output has no match for: $want" >&2
      exit 1
    }
  done
fi
