// Catch2 main of the GPU tests (label gpu): exits 77 — ctest reports the test skipped — when the
// backend under test has no usable device, printing why (the driver's own words).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "ringflow/gpu/gpu_device.hpp"

int main(int argc, char** argv) {
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
