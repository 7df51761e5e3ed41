// Plugins that must be refused, one per definition (tests/CMakeLists.txt builds each):
//   BAD_ABI, BAD_RINGFLOW, BAD_FLATBUFFERS   a table from another version
//   THROWS                                    the entry point throws
//   DUP_BUILTIN                               a kernel named like a built-in (echo)
//   DUP_FUNCTION                              a function named like a built-in (validate)
//   UNKNOWN_TYPES                             a kernel whose reply type is in no table
//   NO_ENTRY                                  a shared library without ringflow_plugin_v1
//   NO_LOAD                                   a good plugin whose kernel has no load hooks
#include <stdexcept>

#include "plugin_example/fill_generated.h"
#include "plugin_example/fill_ringflow.hpp"
#include "plugin_example/trade_generated.h"
#include "plugin_example/trade_ringflow.hpp"
#include "ringflow/plugin.hpp"

namespace {
// A kernel on the example's types, without load hooks.
struct PlainFill {
  using request = desk::rf::Trade;
  using reply = desk::rf::Fill;
  static constexpr const char* name = "plain_fill";
  static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out) {
    ringflow::fb::builder b = out.table<reply>();
    reply::add_trade_id(b, in.as<request>().id());
    return out.finish(b);
  }
};
struct EchoAgain {
  using request = ringflow::msg::Echo;
  using reply = ringflow::msg::Echo;
  static constexpr const char* name = "echo";
  static ringflow::status handle(const ringflow::msg_view&, ringflow::reply_writer& out) {
    return out.fail(ringflow::status::handler_fault, "never");
  }
};
}  // namespace

#if defined(NO_ENTRY)
extern "C" __attribute__((visibility("default"))) int ringflow_not_a_plugin() { return 42; }
#elif defined(DUP_BUILTIN)
#include "ringflow/generated/echo_generated.h"
RINGFLOW_KERNEL_PLUGIN(EchoAgain)
#elif defined(NO_LOAD)
RINGFLOW_KERNEL_PLUGIN(PlainFill)
#elif defined(DUP_FUNCTION)
RINGFLOW_KERNEL_PLUGIN(PlainFill)
RINGFLOW_PLUGIN_FUNCTION("validate",
                         [](std::span<const std::uint8_t> m) { return std::vector<std::uint8_t>(m.begin(), m.end()); })
#else
// A table edited after it was built (what another version's plugin would hand the host).
extern "C" __attribute__((visibility("default"))) const ringflow::plugin_abi::table_v1* ringflow_plugin_v1() {
#if defined(THROWS)
  throw std::runtime_error("the plugin's set-up failed on purpose");
#else
  static ringflow::plugin_abi::table_v1 t = *ringflow::plugin_detail::table<PlainFill>();
  static ringflow::plugin_abi::kernel_v1 k[1];
#if defined(BAD_ABI)
  t.abi_version = 99;
#elif defined(BAD_RINGFLOW)
  t.ringflow_minor += 1;
#elif defined(BAD_FLATBUFFERS)
  t.flatbuffers_revision += 1;
#elif defined(UNKNOWN_TYPES)
  k[0] = t.kernels[0];
  k[0].reply = "desk.Nothing";
  k[0].reply_id = ringflow::type_id_of("NOPE");
  t.kernels = k;
  t.message_count = 1;  // desk.Trade only
#endif
  return &t;
#endif
}
#endif
