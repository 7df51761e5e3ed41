// tests/gpu/ll16_stress.cu — ringflow_test_gpu_ll16: does a 16-byte unit {data, flag} cross PCIe
// whole? The ring protocol v2 design (docs/design/gpu-ring-protocol-v2.md, "What the hardware must
// guarantee", item 1) relies on it beyond the PTX memory model, as NCCL's LL protocol does: a
// naturally aligned 16-byte GPU store to mapped host memory arrives as one unit, and a 16-byte GPU
// load returns one. This program checks both directions on the device at hand before v2 may use it:
//   device -> host: every thread of the grid rewrites its units round after round, each unit
//     {data = mix(round, unit), flag = round} in ONE 16-byte store (st.volatile.v2.u64); a host
//     thread reads the units with 16-byte loads (SSE/AVX movdqa, single-copy atomic on AVX x86)
//     and counts units whose data is not mix(flag, unit): torn;
//   host -> device: the host rewrites the units with 16-byte stores; every device thread reads its
//     units with 16-byte loads (ld.volatile.v2.u64) and counts torn ones.
//   negative control (the check can fail): the same device -> host run with each unit written as
//     two 8-byte stores, data first; on the emulator a yield between them makes tearing certain
//     (the control must find torn units, else this program fails); on a GPU it is reported only
//     (PCIe may well deliver the two stores together).
// Output: one line per direction, "RESULT ll16 <direction> units=<written> reads=<checked>
// torn=<n>". Exit: 0 no torn unit in either direction (and enough reads), 1 otherwise, 77 no usable
// GPU ("SKIP: no usable <backend> device: <why>"). RINGFLOW_LL16_ROUNDS overrides the rounds.
// Built by nvcc (CUDA) and, as ringflow_test_gpu_ll16_emulated, by the host compiler with
// RINGFLOW_GPU_TEST_EMULATE (the "device" is host threads): CI runs that one.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "ll16_host.hpp"

#if defined(RINGFLOW_GPU_TEST_EMULATE)
#define __global__
#define __device__
#define __host__
namespace {
constexpr const char* kBackend = "emulated";
struct dim3e {
  unsigned x = 0;
};
thread_local dim3e blockIdx, threadIdx;
dim3e blockDim{1}, gridDim{1};
}  // namespace
#else
#include <cuda_runtime.h>
namespace {
constexpr const char* kBackend = "cuda";
}
#endif

namespace {

using ringflow::test::unit16;

constexpr std::uint32_t kUnits = 4096;  // 64 KiB: the units every round rewrites

__host__ __device__ inline std::uint64_t mix(std::uint64_t round, std::uint64_t unit) {
  std::uint64_t x = round * 0x9e3779b97f4a7c15ull ^ (unit + 1) * 0xc2b2ae3d27d4eb4full;
  x ^= x >> 31;
  return x * 0x94d049bb133111ebull | 1;  // never 0 (0 = never written)
}

// ---- the device side -----------------------------------------------------------------------------------
__device__ inline void store_unit(unit16* u, std::uint64_t data, std::uint64_t flag, bool split) {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  if (split) {
    reinterpret_cast<std::atomic<std::uint64_t>*>(&u->data)->store(data, std::memory_order_relaxed);
    std::this_thread::yield();
    reinterpret_cast<std::atomic<std::uint64_t>*>(&u->flag)->store(flag, std::memory_order_relaxed);
  } else {
    ringflow::test::ll16_store(u, data, flag);
  }
#else
  if (split) {
    *reinterpret_cast<volatile std::uint64_t*>(&u->data) = data;
    *reinterpret_cast<volatile std::uint64_t*>(&u->flag) = flag;
  } else {
    // One 16-byte store (what NCCL's LL protocol issues).
    asm volatile("st.volatile.v2.u64 [%0], {%1, %2};" ::"l"(u), "l"(data), "l"(flag) : "memory");
  }
#endif
}
__device__ inline void load_unit(const unit16* u, std::uint64_t& data, std::uint64_t& flag) {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  ringflow::test::ll16_load(u, data, flag);
#else
  // One 16-byte load.
  asm volatile("ld.volatile.v2.u64 {%0, %1}, [%2];" : "=l"(data), "=l"(flag) : "l"(u) : "memory");
#endif
}

__global__ void d2h_writer(unit16* units, std::uint32_t rounds, bool split) {
  const std::uint32_t tid = blockIdx.x * blockDim.x + threadIdx.x, threads = gridDim.x * blockDim.x;
  for (std::uint32_t r = 1; r <= rounds; ++r)
    for (std::uint32_t i = tid; i < kUnits; i += threads) store_unit(&units[i], mix(r, i), r, split);
}

__global__ void h2d_reader(const unit16* units, volatile const std::uint32_t* stop, volatile std::uint32_t* started,
                           unsigned long long* reads, unsigned long long* torn) {
  const std::uint32_t tid = blockIdx.x * blockDim.x + threadIdx.x, threads = gridDim.x * blockDim.x;
  unsigned long long my_reads = 0, my_torn = 0;
  if (tid == 0) {
    *started = 1;  // the host starts writing once the device reads
#if !defined(RINGFLOW_GPU_TEST_EMULATE)
    __threadfence_system();
#endif
  }
  for (;;) {
    const bool last = *stop != 0;  // one more pass after the host's last round
    for (std::uint32_t i = tid; i < kUnits; i += threads) {
      std::uint64_t d = 0, f = 0;
      load_unit(&units[i], d, f);
      ++my_reads;
      if (f != 0 && d != mix(f, i)) ++my_torn;
    }
    if (last) break;
  }
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  reinterpret_cast<std::atomic<unsigned long long>*>(reads)->fetch_add(my_reads);
  reinterpret_cast<std::atomic<unsigned long long>*>(torn)->fetch_add(my_torn);
#else
  atomicAdd(reads, my_reads);
  atomicAdd(torn, my_torn);
#endif
}

// ---- the host side -------------------------------------------------------------------------------------
struct result {
  std::uint64_t units = 0, reads = 0, torn = 0;
};

#if defined(RINGFLOW_GPU_TEST_EMULATE)
template <class F>
void run_grid(unsigned blocks, unsigned threads, F f) {
  gridDim.x = blocks;
  blockDim.x = threads;
  std::vector<std::thread> ts;
  for (unsigned b = 0; b < blocks; ++b)
    for (unsigned t = 0; t < threads; ++t)
      ts.emplace_back([=] {
        blockIdx.x = b;
        threadIdx.x = t;
        f();
      });
  for (auto& t : ts) t.join();
}
#endif

#define CHECK(call)                                                                            \
  do {                                                                                         \
    if (!(call)) {                                                                             \
      std::fprintf(stderr, "ringflow_test_gpu_ll16: %s failed at line %d\n", #call, __LINE__); \
      std::exit(1);                                                                            \
    }                                                                                          \
  } while (0)

// Pinned, mapped host memory the device reaches (emulated: plain host memory).
void* host_mapped(std::size_t n, void** dev) {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  void* p = std::aligned_alloc(4096, (n + 4095) / 4096 * 4096);
  CHECK(p != nullptr);
  std::memset(p, 0, n);
  *dev = p;
  return p;
#else
  void* p = nullptr;
  CHECK(cudaHostAlloc(&p, n, cudaHostAllocMapped) == cudaSuccess);
  std::memset(p, 0, n);
  CHECK(cudaHostGetDevicePointer(dev, p, 0) == cudaSuccess);
  return p;
#endif
}
void host_free(void* p) {
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  std::free(p);
#else
  cudaFreeHost(p);
#endif
}

result device_to_host(std::uint32_t rounds, bool split, unsigned blocks, unsigned threads) {
  void* d_units = nullptr;
  auto* units = static_cast<unit16*>(host_mapped(kUnits * sizeof(unit16), &d_units));
  result r;
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  std::atomic<bool> writing{true};
  std::thread grid([&] {
    run_grid(blocks, threads, [&] { d2h_writer(static_cast<unit16*>(d_units), rounds, split); });
    writing.store(false);
  });
  auto running = [&] { return writing.load(); };
#else
  d2h_writer<<<blocks, threads>>>(static_cast<unit16*>(d_units), rounds, split);
  CHECK(cudaGetLastError() == cudaSuccess);
  auto running = [] { return cudaStreamQuery(nullptr) == cudaErrorNotReady; };
#endif
  // The host reads while the device writes, and once more after it finished.
  for (;;) {
    const bool last = !running();
    for (std::uint32_t i = 0; i < kUnits; ++i) {
      std::uint64_t d = 0, f = 0;
      ringflow::test::ll16_load(&units[i], d, f);
      ++r.reads;
      if (f != 0 && d != mix(f, i)) ++r.torn;
    }
    if (last) break;
  }
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  grid.join();
#else
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
#endif
  r.units = static_cast<std::uint64_t>(rounds) * kUnits;
  host_free(units);
  return r;
}

result host_to_device(std::uint32_t rounds, unsigned blocks, unsigned threads) {
  void *d_units = nullptr, *d_flags = nullptr;
  auto* units = static_cast<unit16*>(host_mapped(kUnits * sizeof(unit16), &d_units));
  auto* flags = static_cast<std::uint32_t*>(host_mapped(2 * sizeof(std::uint32_t), &d_flags));  // stop, started
  auto* d_stop = static_cast<std::uint32_t*>(d_flags);
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  std::atomic<unsigned long long> counts[2] = {};
  std::thread grid([&] {
    run_grid(blocks, threads, [&] {
      h2d_reader(static_cast<unit16*>(d_units), d_stop, d_stop + 1, reinterpret_cast<unsigned long long*>(&counts[0]),
                 reinterpret_cast<unsigned long long*>(&counts[1]));
    });
  });
#else
  unsigned long long* dev_counts = nullptr;
  CHECK(cudaMalloc(&dev_counts, 2 * sizeof(unsigned long long)) == cudaSuccess);
  CHECK(cudaMemset(dev_counts, 0, 2 * sizeof(unsigned long long)) == cudaSuccess);
  h2d_reader<<<blocks, threads>>>(static_cast<unit16*>(d_units), d_stop, d_stop + 1, dev_counts, dev_counts + 1);
  CHECK(cudaGetLastError() == cudaSuccess);
#endif
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (__atomic_load_n(&flags[1], __ATOMIC_ACQUIRE) == 0 && std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
  for (std::uint32_t rd = 1; rd <= rounds; ++rd)
    for (std::uint32_t i = 0; i < kUnits; ++i) ringflow::test::ll16_store(&units[i], mix(rd, i), rd);
  __atomic_store_n(&flags[0], 1u, __ATOMIC_RELEASE);
  result r;
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  grid.join();
  r.reads = counts[0].load();
  r.torn = counts[1].load();
#else
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
  unsigned long long c[2] = {};
  CHECK(cudaMemcpy(c, dev_counts, sizeof c, cudaMemcpyDeviceToHost) == cudaSuccess);
  cudaFree(dev_counts);
  r.reads = c[0];
  r.torn = c[1];
#endif
  r.units = static_cast<std::uint64_t>(rounds) * kUnits;
  host_free(units);
  host_free(flags);
  return r;
}

void print(const char* what, const result& r) {
  std::printf("RESULT ll16 %s units=%llu reads=%llu torn=%llu\n", what, static_cast<unsigned long long>(r.units),
              static_cast<unsigned long long>(r.reads), static_cast<unsigned long long>(r.torn));
}

}  // namespace

int main() {
#if !defined(RINGFLOW_GPU_TEST_EMULATE)
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("SKIP: no usable %s device: %s\n", kBackend, e != cudaSuccess ? cudaGetErrorString(e) : "count 0");
    return 77;
  }
  if (const cudaError_t c = cudaFree(nullptr); c != cudaSuccess) {
    std::printf("SKIP: no usable %s device: context creation failed: %s\n", kBackend, cudaGetErrorString(c));
    return 77;
  }
  constexpr unsigned blocks = 8, threads = 256;
  std::uint32_t rounds = 20000;  // 8.2e7 units each way, ~1.3 GB across PCIe
#else
  constexpr unsigned blocks = 1, threads = 2;
  std::uint32_t rounds = 200;
#endif
  if (const char* v = std::getenv("RINGFLOW_LL16_ROUNDS")) rounds = static_cast<std::uint32_t>(std::atoi(v));
  if (rounds == 0) rounds = 1;
  const auto t0 = std::chrono::steady_clock::now();
  const result d2h = device_to_host(rounds, false, blocks, threads);
  print("device_to_host", d2h);
  const result h2d = host_to_device(rounds, blocks, threads);
  print("host_to_device", h2d);
  // The negative control: two 8-byte stores per unit.
  const result split = device_to_host(rounds / 10 + 1, true, blocks, threads);
  print("device_to_host_split_control", split);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  bool ok = d2h.torn == 0 && h2d.torn == 0 && d2h.reads >= kUnits && h2d.reads >= kUnits;
#if defined(RINGFLOW_GPU_TEST_EMULATE)
  // The check must be able to fail: with a yield between the halves, torn units are certain.
  if (split.torn == 0) {
    std::printf("FAIL: the split-store control found no torn unit: the check cannot see tearing\n");
    ok = false;
  }
#else
  std::printf("note: the split-store control found %llu torn units (informational on a GPU)\n",
              static_cast<unsigned long long>(split.torn));
#endif
  std::printf("%s (%s, %.1f s)\n", ok ? "PASS" : "FAIL", kBackend, s);
  return ok ? 0 : 1;
}
