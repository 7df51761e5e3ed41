// tests/support/once_kernels.hpp — test kernels for GPU kernel-host workers: Echo, except that the
// request whose sequence equals this worker's *armed* sequence traps (trap_once) or never returns
// (hang_once). The worker program arms it when it becomes active (tests/gpu_worker_main.cpp: the
// value in its --fault-file), so a test decides which request each worker in turn faults on: the
// replacement worker, armed with the next value, serves the replayed request — a transient device
// fault that a fresh context gets past. On a GPU the armed value is a __device__ variable set with
// cudaMemcpyToSymbol before the worker's device opens (tests/gpu/once_kernels.cu); on the host (the
// emulator) a plain atomic.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "support/trap_kernel.hpp"

namespace ringflow::test {

/// Sets the sequence this worker's once-kernels fault on (0: none). Before the device opens.
void arm_fault_sequence(std::uint64_t seq);

#if defined(__CUDACC__) || defined(__HIPCC__)
__device__ std::uint64_t g_armed_fault_device = 0;  // (included by one .cu file only)
#endif
inline std::atomic<std::uint64_t> g_armed_fault_host{0};

RINGFLOW_HD inline std::uint64_t armed_fault_sequence() {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  return *static_cast<volatile std::uint64_t*>(&g_armed_fault_device);
#else
  return g_armed_fault_host.load(std::memory_order_relaxed);
#endif
}

RINGFLOW_HD inline void hang_now() {
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__)
  for (;;) {}
#else
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
#endif
}

template <bool Hang>
struct once_kernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = Hang ? "hang_once" : "trap_once";
  RINGFLOW_HD static std::uint32_t reply_capacity(const msg_view& in) {
    return demo_kernels::EchoKernel::reply_capacity(in);
  }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    const std::uint64_t armed = armed_fault_sequence();
    if (armed != 0 && in.as<msg::Echo>().sequence() == armed) {
      if (Hang) hang_now();
      else trap_now();
    }
    return demo_kernels::EchoKernel::handle(in, out);
  }
};
using TrapOnceKernel = once_kernel<false>;
using HangOnceKernel = once_kernel<true>;

}  // namespace ringflow::test
