# Build speed for the libraries behind the `ringflow` program: unity batches (RINGFLOW_UNITY, ON by
# default), so `make demo` on 2 cores is quick.
#
# Three quarters of a ringflow translation unit's compile time at -O3 is spent instantiating,
# optimizing and emitting the same inline templates — CAF 0.17's message and actor machinery,
# nlohmann::json, fmt/spdlog, yaml-cpp, CLI11 — once in every TU that uses them. A unity batch
# compiles several sources as one TU, so that code is generated once per batch. Measured on the
# 2-vCPU VM (docs/BENCHMARKS.md, "make demo"): the operations library's 21 sources take 160 s of
# CPU one by one and 86 s in two batches. Precompiled headers were measured too and lost: with
# unity batches they saved less parsing than the precompiled header cost to build.
#
# Batches are sized for 2 cores: a big library gets about two, so both cores stay busy. Developers
# who edit one file at a time may prefer -DRINGFLOW_UNITY=OFF (a batch recompiles whole). The
# sanitizer builds (make sanitize, make tsan) turn it off, so CI still compiles every source on its
# own: a missing #include, or two files' internal names that clash, fails there.
#
# ringflow_fast_build(<target> [BATCH <n>])   n: sources per unity batch (default 8)
option(RINGFLOW_UNITY "Compile the ringflow libraries in unity batches" ON)

function(ringflow_fast_build target)
  cmake_parse_arguments(ARG "" "BATCH" "" ${ARGN})
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "ringflow_fast_build(${target}): unexpected arguments '${ARG_UNPARSED_ARGUMENTS}'")
  endif()
  if(NOT ARG_BATCH)
    set(ARG_BATCH 8)
  endif()
  if(RINGFLOW_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH UNITY_BUILD_BATCH_SIZE ${ARG_BATCH})
  endif()
endfunction()
