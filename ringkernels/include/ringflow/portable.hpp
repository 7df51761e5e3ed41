// ringflow/portable.hpp — the one header that tells host from device.
//
// Contract: defines RINGFLOW_HD (host+device function attribute), ringflow::atomic_ref<T> (a
// system-scope atomic reference usable on the host and on the device), the load/store helpers every
// other header uses, and ringflow::cpu_relax() / ringflow::backoff (a bounded spin/sleep step).
// It is the only file of the portable layers (ringkernels/, messages/) that tests __CUDACC__, __CUDA_ARCH__, __HIPCC__
// or
// __HIP_DEVICE_COMPILE__; every other header is free of backend conditionals.
// It depends on nothing else in ringflow, so messages/ (the view) may include it too.
//
// Thread-safety: the helpers are atomic accesses; what they order is documented at each use.
//
// Scope: all atomics are *system* scope, because the two sides of a ring may be a host thread and a
// device thread across PCIe. On the host, std::atomic_ref (or cuda::atomic_ref under nvcc) gives
// the same guarantees; system scope costs nothing extra there.
#pragma once

#include <cstdint>
#include <type_traits>

// Unrolls the next loop in device passes (registers instead of local memory); nothing on the host.
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
#define RINGFLOW_UNROLL _Pragma("unroll")
#else
#define RINGFLOW_UNROLL
#endif

// ThreadSanitizer builds: ll_store()/ll_load() use atomics TSan can see instead of inline assembly.
#if defined(__SANITIZE_THREAD__)
#define RINGFLOW_TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RINGFLOW_TSAN_BUILD 1
#endif
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define RINGFLOW_HD __host__ __device__
#define RINGFLOW_DEVICE_COMPILER 1
#else
#define RINGFLOW_HD
#define RINGFLOW_DEVICE_COMPILER 0
#endif

#if defined(__CUDACC__)
#include <cuda/atomic>  // CUDA 13: /usr/local/cuda/include/cccl
#elif defined(__HIPCC__)
#include <hip/hip_runtime.h>
#else
#include <atomic>
#endif
#if !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#include <chrono>  // backoff's host path
#include <thread>
#endif
// _mm_pause for cpu_relax() on x86 hosts: every compiler's host pass needs it (nvcc and hipcc
// compile the host side of RINGFLOW_HD functions too); device passes do not use it.
#if (defined(__x86_64__) || defined(__i386__)) && !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
#include <immintrin.h>
#endif

namespace ringflow {

/// Memory orders used by ringflow (a subset of std::memory_order, usable in device code).
enum class mem_order { relaxed, acquire, release, seq_cst };

#if defined(__CUDACC__)
// nvcc: cuda::atomic_ref works on both sides; system scope covers host<->device through mapped
// memory (PCIe / NVLink-C2C).
template <class T>
class atomic_ref {
 public:
  static_assert(std::is_integral_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  RINGFLOW_HD explicit atomic_ref(T& obj) : ref_(obj) {}
  RINGFLOW_HD T load(mem_order o) const { return ref_.load(to_cuda(o)); }
  RINGFLOW_HD void store(T v, mem_order o) const { ref_.store(v, to_cuda(o)); }

 private:
  RINGFLOW_HD static constexpr cuda::std::memory_order to_cuda(mem_order o) {
    return o == mem_order::relaxed   ? cuda::std::memory_order_relaxed
           : o == mem_order::acquire ? cuda::std::memory_order_acquire
           : o == mem_order::release ? cuda::std::memory_order_release
                                     : cuda::std::memory_order_seq_cst;
  }
  cuda::atomic_ref<T, cuda::thread_scope_system> ref_;
};
RINGFLOW_HD inline void atomic_fence_seq_cst() {
  cuda::atomic_thread_fence(cuda::std::memory_order_seq_cst, cuda::thread_scope_system);
}
#elif defined(__HIPCC__)
// hipcc (clang): the __hip_atomic builtins with system scope, valid on host and device.
template <class T>
class atomic_ref {
 public:
  static_assert(std::is_integral_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  RINGFLOW_HD explicit atomic_ref(T& obj) : ptr_(&obj) {}
  RINGFLOW_HD T load(mem_order o) const {
    switch (o) {
      case mem_order::relaxed: return __hip_atomic_load(ptr_, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_SYSTEM);
      case mem_order::acquire: return __hip_atomic_load(ptr_, __ATOMIC_ACQUIRE, __HIP_MEMORY_SCOPE_SYSTEM);
      default: return __hip_atomic_load(ptr_, __ATOMIC_SEQ_CST, __HIP_MEMORY_SCOPE_SYSTEM);
    }
  }
  RINGFLOW_HD void store(T v, mem_order o) const {
    switch (o) {
      case mem_order::relaxed: __hip_atomic_store(ptr_, v, __ATOMIC_RELAXED, __HIP_MEMORY_SCOPE_SYSTEM); break;
      case mem_order::release: __hip_atomic_store(ptr_, v, __ATOMIC_RELEASE, __HIP_MEMORY_SCOPE_SYSTEM); break;
      default: __hip_atomic_store(ptr_, v, __ATOMIC_SEQ_CST, __HIP_MEMORY_SCOPE_SYSTEM); break;
    }
  }

 private:
  T* ptr_;
};
RINGFLOW_HD inline void atomic_fence_seq_cst() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
#else
// Host compilers: std::atomic_ref (C++20).
template <class T>
class atomic_ref {
 public:
  static_assert(std::is_integral_v<T> && (sizeof(T) == 4 || sizeof(T) == 8));
  explicit atomic_ref(T& obj) : ref_(obj) {}
  T load(mem_order o) const { return ref_.load(to_std(o)); }
  void store(T v, mem_order o) const { ref_.store(v, to_std(o)); }

 private:
  static constexpr std::memory_order to_std(mem_order o) {
    return o == mem_order::relaxed   ? std::memory_order_relaxed
           : o == mem_order::acquire ? std::memory_order_acquire
           : o == mem_order::release ? std::memory_order_release
                                     : std::memory_order_seq_cst;
  }
  std::atomic_ref<T> ref_;
};
inline void atomic_fence_seq_cst() { std::atomic_thread_fence(std::memory_order_seq_cst); }
#endif

// Shorthands; each call site states why its order is sufficient.
template <class T>
RINGFLOW_HD inline T load_acquire(T& w) {
  return atomic_ref<T>(w).load(mem_order::acquire);
}
template <class T>
RINGFLOW_HD inline T load_relaxed(T& w) {
  return atomic_ref<T>(w).load(mem_order::relaxed);
}
template <class T>
RINGFLOW_HD inline void store_release(T& w, T v) {
  atomic_ref<T>(w).store(v, mem_order::release);
}
template <class T>
RINGFLOW_HD inline void store_relaxed(T& w, T v) {
  atomic_ref<T>(w).store(v, mem_order::relaxed);
}

/// Polls a sequence word: true when it holds `expected` — and then with acquire semantics (what
/// the writer wrote before its release store of that value is visible). On a device (CUDA, HIP):
/// a relaxed load and, only on a hit, an acquire fence: an acquire load on every idle poll would
/// invalidate the SM's / CU's cache each time (evicting the poller's own state). On the host: an
/// acquire load.
template <class T>
RINGFLOW_HD inline bool poll_acquire(T& w, T expected) {
#if defined(__CUDA_ARCH__)
  if (atomic_ref<T>(w).load(mem_order::relaxed) != expected) return false;
  cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_system);
  return true;
#elif defined(__HIP_DEVICE_COMPILE__)
  if (atomic_ref<T>(w).load(mem_order::relaxed) != expected) return false;
  __atomic_thread_fence(__ATOMIC_ACQUIRE);  // system scope (AMDGPU's default sync scope)
  return true;
#else
  return load_acquire(w) == expected;
#endif
}

/// One LL16 unit of a protocol-v2 ring slot (ring.hpp): 8 bytes of data and the 8-byte flag that
/// says which message they belong to. Written by ONE 16-byte store and read by ONE 16-byte load, so
/// a unit whose flag is current carries that message's data (the hardware assumption v2 relies
/// on: docs/ARCHITECTURE.md, "Ring protocol v2").
struct alignas(16) ll_unit {
  std::uint64_t data;
  std::uint64_t flag;
};
static_assert(sizeof(ll_unit) == 16);

/// Stores a unit in one 16-byte access, no ordering with other units (none is needed: every unit
/// validates itself). Device: st.volatile.v2.u64 (CUDA, as NCCL's LL protocol stores its lines) /
/// a volatile 16-byte vector store (HIP: global_store_dwordx4). Host x86-64: one movdqa. Hosts
/// without a 16-byte single-copy-atomic store, and ThreadSanitizer builds (which cannot see inline
/// assembly), store the data relaxed and then the flag with release: a reader that sees the flag
/// (acquire) sees the data, which keeps the unit's contract on any host.
RINGFLOW_HD inline void ll_store(ll_unit* u, std::uint64_t data, std::uint64_t flag) {
#if defined(__CUDA_ARCH__)
  asm volatile("st.volatile.v2.u64 [%0], {%1, %2};" ::"l"(u), "l"(data), "l"(flag) : "memory");
#elif defined(__HIP_DEVICE_COMPILE__)
  typedef unsigned long long v2u64 __attribute__((ext_vector_type(2)));
  v2u64 v = {data, flag};
  *reinterpret_cast<volatile v2u64*>(u) = v;
#elif defined(__x86_64__) && !defined(RINGFLOW_TSAN_BUILD)
  const __m128i v = _mm_set_epi64x(static_cast<long long>(flag), static_cast<long long>(data));
  asm volatile("movdqa %1, %0" : "=m"(*reinterpret_cast<__m128i*>(u)) : "x"(v) : "memory");
#else
  store_relaxed(u->data, data);
  store_release(u->flag, flag);
#endif
}

/// Loads a unit in one 16-byte access (see ll_store()).
RINGFLOW_HD inline void ll_load(const ll_unit* u, std::uint64_t& data, std::uint64_t& flag) {
#if defined(__CUDA_ARCH__)
  asm volatile("ld.volatile.v2.u64 {%0, %1}, [%2];" : "=l"(data), "=l"(flag) : "l"(u) : "memory");
#elif defined(__HIP_DEVICE_COMPILE__)
  typedef unsigned long long v2u64 __attribute__((ext_vector_type(2)));
  const v2u64 v = *reinterpret_cast<const volatile v2u64*>(u);
  data = v.x;
  flag = v.y;
#elif defined(__x86_64__) && !defined(RINGFLOW_TSAN_BUILD)
  __m128i v;
  asm volatile("movdqa %1, %0" : "=x"(v) : "m"(*reinterpret_cast<const __m128i*>(u)) : "memory");
  data = static_cast<std::uint64_t>(_mm_cvtsi128_si64(v));
  flag = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)));
#else
  auto* w = const_cast<ll_unit*>(u);
  flag = load_acquire(w->flag);
  data = load_relaxed(w->data);
#endif
}

/// Orders the plain stores before it (arena payload bytes) before the unit stores after it, for a
/// reader that checks the units and then reads the plain bytes after ll_acquire_fence(): a
/// system-scope release fence on a device (fence.acq_rel.sys); on the host a release fence (x86:
/// compiler-only, TSO orders the stores).
RINGFLOW_HD inline void ll_release_fence() {
#if defined(__CUDA_ARCH__)
  cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_system);
#elif defined(__HIP_DEVICE_COMPILE__)
  __atomic_thread_fence(__ATOMIC_RELEASE);
#elif defined(__CUDACC__)
  cuda::atomic_thread_fence(cuda::std::memory_order_release, cuda::thread_scope_system);
#elif defined(__HIPCC__)
  __atomic_thread_fence(__ATOMIC_RELEASE);
#else
  std::atomic_thread_fence(std::memory_order_release);
#endif
}
/// The reader's side of ll_release_fence().
RINGFLOW_HD inline void ll_acquire_fence() {
#if defined(__CUDA_ARCH__)
  cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_system);
#elif defined(__HIP_DEVICE_COMPILE__)
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
#elif defined(__CUDACC__)
  cuda::atomic_thread_fence(cuda::std::memory_order_acquire, cuda::thread_scope_system);
#elif defined(__HIPCC__)
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
#else
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}

/// One polite spin step: PAUSE on x86 hosts; on devices a short sleep so a polling warp leaves
/// issue slots (and PCIe read bandwidth) to others.
RINGFLOW_HD inline void cpu_relax() {
#if defined(__CUDA_ARCH__)
  __nanosleep(32);
#elif defined(__HIP_DEVICE_COMPILE__)
  __builtin_amdgcn_s_sleep(1);
#elif defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Exponential back-off for device-side pollers: 32 ns doubling up to max_ns. On the host the CPU
/// backend uses its own spin -> yield -> park ladder (backends/cpu); there this is PAUSEs, then
/// a yield at the ceiling.
struct backoff {
  std::uint32_t ns = 32;
  std::uint32_t max_ns = 4096;
  RINGFLOW_HD void reset() { ns = 32; }
  RINGFLOW_HD void pause() {
#if defined(__CUDA_ARCH__)
    __nanosleep(ns);
#elif defined(__HIP_DEVICE_COMPILE__)
    // s_sleep takes 64-clock units; roughly ns/64 at ~1-2 GHz, at least 1.
    for (std::uint32_t i = 0; i < (ns >> 6) + 1; ++i) __builtin_amdgcn_s_sleep(1);
#else
    // Host (the GPU emulator of CI's tests runs device workers on threads): PAUSEs, and at the
    // ceiling a short sleep, so idle workers leave a small machine's cores to the host side.
    if (ns >= max_ns) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      return;
    }
    for (std::uint32_t i = 0; i < (ns >> 5); ++i) cpu_relax();
#endif
    ns = ns * 2 > max_ns ? max_ns : ns * 2;
  }
};

}  // namespace ringflow
