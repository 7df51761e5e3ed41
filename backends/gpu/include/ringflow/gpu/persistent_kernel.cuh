// ringflow/gpu/persistent_kernel.cuh — the persistent ring kernel for a kernel table, and the
// RINGFLOW_CUDA_KERNELS macro that adds a program's own kernels. Include from a .cu file compiled
// by nvcc (CUDA) or hipcc (HIP); host-only code includes gpu_device.hpp instead.
//
// Contract
//   * persistent_kernel<Table>: every warp is one worker of persistent_worker<Table>
//     (persistent.hpp): lane 0 serves, the other lanes leave at once. Launched once per device
//     (launch_persistent<Table>) with at most one block per multiprocessor, so every block is
//     resident at the same time — a persistent kernel must never wait for blocks that cannot be
//     scheduled. Never grid.sync(): workers are independent.
//   * RINGFLOW_CUDA_KERNELS(K1, K2, ...) — in ONE .cu file of the program, at namespace scope
//     (outside any namespace): kernels of the table = echo, saxpy, score, then K1, K2, ...; the
//     table is registered before main() and every GPU device the program opens serves it. Under
//     hipcc the same line registers the HIP table (RINGFLOW_HIP_KERNELS is the same macro).
//     Kernels must satisfy ring_kernel (kernel.hpp) with RINGFLOW_HD handlers; build the file
//     with --fmad=false (nvcc) / -ffp-contract=off (hipcc) when replies must be bit-identical to
//     the CPU backend's.
// Thread-safety: see persistent.hpp.
#pragma once

#include "ringflow/gpu/kernel_registry.hpp"
#include "ringflow/persistent.hpp"

#if defined(__CUDACC__)
#include <cuda_runtime.h>
#define RINGFLOW_GPU_BACKEND_NAME "cuda"
#define RINGFLOW_GPU_BUILTIN_TABLE builtin_cuda_table
#elif defined(__HIPCC__)
#include <hip/hip_runtime.h>
#define RINGFLOW_GPU_BACKEND_NAME "hip"
#define RINGFLOW_GPU_BUILTIN_TABLE builtin_hip_table
#else
#error "persistent_kernel.cuh needs nvcc or hipcc"
#endif

namespace ringflow::gpu {

template <class Table>
__global__ void persistent_kernel(persistent_args args) {
  if (threadIdx.x % warpSize != 0) return;
  const unsigned worker = (blockIdx.x * blockDim.x + threadIdx.x) / warpSize;
  // The host sized staging for args.workers (from the device's warp size); never more.
  if (worker >= args.workers) return;
  persistent_worker<Table>(args, worker, args.workers);
}

/// A cooperative launch: it fails (cudaErrorCooperativeLaunchTooLarge) unless every block can be
/// resident at once — a persistent kernel whose blocks could wait for each other's SMs would
/// leave some rings unserved forever.
template <class Table>
int launch_persistent(unsigned blocks, unsigned threads, void* stream, const persistent_args& args) {
  persistent_args a = args;
  void* params[] = {&a};
#if defined(__CUDACC__)
  return static_cast<int>(cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(&persistent_kernel<Table>),
                                                      dim3(blocks), dim3(threads), params, 0,
                                                      static_cast<cudaStream_t>(stream)));
#else
  return static_cast<int>(hipLaunchCooperativeKernel(reinterpret_cast<const void*>(&persistent_kernel<Table>),
                                                     dim3(blocks), dim3(threads), params, 0,
                                                     static_cast<hipStream_t>(stream)));
#endif
}

/// The built-in tables of the backend libraries (their builtin_kernels.cu).
kernel_table_info builtin_cuda_table();
kernel_table_info builtin_hip_table();

}  // namespace ringflow::gpu

#define RINGFLOW_CUDA_KERNELS(...)                                                                        \
  namespace {                                                                                             \
  [[maybe_unused]] const bool ringflow_kernel_table_registered_ = ::ringflow::gpu::register_kernel_table( \
      ::ringflow::gpu::describe_table<::ringflow::gpu::table_with_demos<__VA_ARGS__>>(                    \
          RINGFLOW_GPU_BACKEND_NAME,                                                                      \
          &::ringflow::gpu::launch_persistent<::ringflow::gpu::table_with_demos<__VA_ARGS__>>));          \
  }
#define RINGFLOW_HIP_KERNELS(...) RINGFLOW_CUDA_KERNELS(__VA_ARGS__)
