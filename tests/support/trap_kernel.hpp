// tests/support/trap_kernel.hpp — test ring kernels that kill their device: Echo (TrapKernel) and
// the stateful VwapKernel (VwapTrapKernel), except that a request whose sequence is trap_sequence
// traps before it changes anything (__trap() on CUDA, __builtin_trap() on HIP; on the
// host — the CPU backend, the GPU emulator — it throws, which the CPU kernel answers with a
// handler_fault error reply and the emulator turns into a dead grid).
#pragma once

#include <stdexcept>

#include "ringflow/demo_kernels.hpp"

namespace ringflow::test {

inline constexpr std::uint64_t trap_sequence = 0x7a7a7a7aull;

RINGFLOW_HD inline void trap_now() {
#if defined(__CUDA_ARCH__)
  __trap();
#elif defined(__HIP_DEVICE_COMPILE__)
  __builtin_trap();
#else
  throw std::runtime_error("trap kernel: trapped (host)");
#endif
}

struct TrapKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "trap";
  RINGFLOW_HD static std::uint32_t reply_capacity(const msg_view& in) {
    return demo_kernels::EchoKernel::reply_capacity(in);
  }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    if (in.as<msg::Echo>().sequence() == trap_sequence) trap_now();
    return demo_kernels::EchoKernel::handle(in, out);
  }
};

/// VwapKernel (stateful), except that a trade whose sequence is trap_sequence traps before it
/// changes the state.
struct VwapTrapKernel {
  using request = msg::Trade;
  using reply = msg::VwapReply;
  using state = demo_kernels::VwapKernel::state;
  static constexpr const char* name = "vwap_trap";
  RINGFLOW_HD static void init(state& s) { demo_kernels::VwapKernel::init(s); }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out, state& s) {
    const auto t = in.as<msg::Trade>();
    if (t.table_.valid() && t.sequence() == trap_sequence) trap_now();
    return demo_kernels::VwapKernel::handle(in, out, s);
  }
};

}  // namespace ringflow::test
