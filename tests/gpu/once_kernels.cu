// The once-kernels (support/once_kernels.hpp) for ringflow_test_gpu_worker_cuda: registered with
// the device's table, and armed through a __device__ variable before the worker's device opens.
#include <cuda_runtime.h>

#include <cstdio>

#include "ringflow/gpu/persistent_kernel.cuh"
#include "support/once_kernels.hpp"

RINGFLOW_CUDA_KERNELS(ringflow::test::TrapOnceKernel, ringflow::test::HangOnceKernel)

namespace ringflow::test {
void arm_fault_sequence(std::uint64_t seq) {
  g_armed_fault_host.store(seq, std::memory_order_relaxed);
  if (cudaMemcpyToSymbol(g_armed_fault_device, &seq, sizeof seq) != cudaSuccess)
    std::fprintf(stderr, "ringflow_test_gpu_worker_cuda: cannot arm the once-kernels: %s\n",
                 cudaGetErrorString(cudaGetLastError()));
}
}  // namespace ringflow::test
