// Catch2 main of the GPU tests (label gpu): exits 77 — ctest reports the test skipped — when the
// backend under test has no usable device, printing why (the driver's own words). ctest runs each
// test case in a process of its own (a trap poisons a process's context for good).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <string_view>

#include "ringflow/gpu/gpu_device.hpp"

int main(int argc, char** argv) {
  // Listing the tests (ctest's discovery at build time) needs no device.
  for (int i = 1; i < argc; ++i)
    if (std::string_view(argv[i]).rfind("--list", 0) == 0) return Catch::Session().run(argc, argv);
#if defined(RINGFLOW_DUT_CUDA)
  const ringflow::gpu::gpu_probe p = ringflow::gpu::probe_cuda();
#else
  const ringflow::gpu::gpu_probe p = ringflow::gpu::probe_hip();
#endif
  if (!p.usable) {
    std::printf("SKIP: no usable %s device: %s\n", p.backend.c_str(), p.detail.c_str());
    return 77;
  }
  for (const auto& d : p.devices)
    std::printf("%s:%d %s (%s, %d multiprocessors), %s\n", p.backend.c_str(), d.ordinal, d.name.c_str(), d.arch.c_str(),
                d.multiprocessors, p.detail.c_str());
  return Catch::Session().run(argc, argv);
}
