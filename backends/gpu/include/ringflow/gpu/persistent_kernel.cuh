// ringflow/gpu/persistent_kernel.cuh — the persistent ring kernel for a kernel table, and the
// RINGFLOW_CUDA_KERNELS macro that adds a program's own kernels. Include from a .cu file compiled
// by nvcc (CUDA) or hipcc (HIP); host-only code includes gpu_device.hpp instead.
//
// Contract
//   * persistent_kernel<Table>: every warp is one worker of persistent_worker<Table>
//     (persistent.hpp). CUDA: lane 0 runs the worker loop and the warp's 32 lanes serve protocol
//     v2 batches together (cooperative_worker, warp_lanes; needs sm_70+); HIP: lane 0 serves
//     alone, the other lanes leave at once. Launched once per device
//     (launch_persistent<Table>) with at most one block per multiprocessor, so every block is
//     resident at the same time — a persistent kernel must never wait for blocks that cannot be
//     scheduled. Never grid.sync(): workers are independent.
//   * RINGFLOW_CUDA_KERNELS(K1, K2, ...) — in ONE .cu file of the program, at namespace scope
//     (outside any namespace): kernels of the table = echo, saxpy, score, vwap, then K1, K2, ...; the
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

// Warp-cooperative batches need independent thread scheduling (sm_70+); older targets serve
// like HIP does.
#if defined(__CUDACC__) && (!defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700)
#define RINGFLOW_WARP_BATCHES 1
#else
#define RINGFLOW_WARP_BATCHES 0
#endif

#if RINGFLOW_WARP_BATCHES
/// A CUDA warp's 32 lanes as the Lanes of a cooperative worker (persistent.hpp): lane 0 leads,
/// ballots are __ballot_sync, the job is broadcast with __shfl_sync after a __syncwarp (which
/// orders lane 0's writes of the endpoint — its cursors — before the other lanes' reads). The
/// leader calls these intrinsics from inside the worker loop and the other lanes from
/// cooperative_worker's loop: different call sites with the full mask, which independent thread
/// scheduling (sm_70 and later) allows; the warp converges at each of them.
struct warp_lanes {
  static constexpr unsigned full = 0xffffffffu;
  std::uint32_t width = 32;
  std::uint32_t lane = 0;
  template <class T>
  struct local {
    T v;
    __device__ T& operator[](std::uint32_t) { return v; }  // the lane's own
  };
  template <class F>
  __device__ void each(std::uint32_t n, F&& f) {
    if (lane < n) f(lane);
  }
  template <class F>
  __device__ std::uint32_t ballot(std::uint32_t n, F&& pred) {
    return __ballot_sync(full, lane < n && pred(lane));
  }
  __device__ void sync() { __syncwarp(full); }
  __device__ bool leader() const { return lane == 0; }
  template <class Table>
  __device__ batch_outcome run(const batch_job& job) {
    broadcast(job);
    return detail::serve_batch<Table>(*this, job);
  }
  __device__ batch_job receive() { return broadcast(batch_job{}); }
  __device__ void finish() {
    batch_job quit;
    quit.quit = 1;
    broadcast(quit);
  }
  /// Every lane gets lane 0's `job`.
  __device__ batch_job broadcast(const batch_job& job) {
    __syncwarp(full);
    batch_job j;
    j.endpoint = reinterpret_cast<persistent_endpoint*>(
        __shfl_sync(full, static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(job.endpoint)), 0));
    j.staging.request = reinterpret_cast<std::uint8_t*>(
        __shfl_sync(full, static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(job.staging.request)), 0));
    j.staging.reply = reinterpret_cast<std::uint8_t*>(
        __shfl_sync(full, static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(job.staging.reply)), 0));
    j.staging.request_bytes = __shfl_sync(full, job.staging.request_bytes, 0);
    j.staging.reply_bytes = __shfl_sync(full, job.staging.reply_bytes, 0);
    j.n = __shfl_sync(full, job.n, 0);
    j.image_stride = __shfl_sync(full, job.image_stride, 0);
    j.claim_stride = __shfl_sync(full, job.claim_stride, 0);
    j.quit = __shfl_sync(full, job.quit, 0);
    return j;
  }
};
#endif

/// One worker per warp. CUDA: the warp's lanes serve protocol v2 batches together (warp_lanes,
/// args.batch_lanes of them); HIP: lane 0 serves alone, its batches run lane by lane
/// (sequential_lanes), the other lanes leave at once.
template <class Table>
__global__ void persistent_kernel(persistent_args args) {
  const unsigned worker = (blockIdx.x * blockDim.x + threadIdx.x) / warpSize;
  // The host sized staging for args.workers (from the device's warp size); never more. The
  // whole warp leaves together (worker is the same in every lane).
  if (worker >= args.workers) return;
#if RINGFLOW_WARP_BATCHES
  static_assert(max_batch_lanes == 32, "a CUDA warp has 32 lanes");
  warp_lanes lanes;
  lanes.lane = threadIdx.x % 32;
  lanes.width = args.batch_lanes < 32 ? args.batch_lanes : 32;
  cooperative_worker<Table>(args, worker, args.workers, lanes);
#else
  if (threadIdx.x % warpSize != 0) return;
  persistent_worker<Table>(args, worker, args.workers);
#endif
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
