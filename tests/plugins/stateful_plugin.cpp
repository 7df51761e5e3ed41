// A plugin with a stateful kernel (kernel.hpp "stateful"): `position` keeps the net filled
// quantity per account (desk.Trade -> desk.Fill, FillKernel's replies and load hooks) and a JSON
// dump of it, so a topology's stateful node, /state/<node> and checkpoints work with a plugin's
// kernel as with a built-in one. OLD_TABLE: the same kernel in a table as a plugin built before
// kernel_states was appended hands it over (table_bytes of the base; the appended pointers are
// garbage the host must not read): it loads, stateless.
#include <string>

#include "fill_kernel.hpp"
#include "ringflow/plugin.hpp"

struct PositionKernel : FillKernel {
  static constexpr const char* name = "position";
  static constexpr std::uint32_t accounts = 7;
  struct state {
    std::int64_t net[accounts];  // bought - sold, in filled units, per account (trade id % 7)
    std::uint64_t applied;
  };
  RINGFLOW_HD static void init(state& s) {
    for (std::uint32_t i = 0; i < accounts; ++i) s.net[i] = 0;
    s.applied = 0;
  }
  RINGFLOW_HD static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out, state& s) {
    const auto t = in.as<request>();
    const ringflow::status st = FillKernel::handle(in, out);
    if (st != ringflow::status::ok || t.quantity() == 0) return st;
    const std::int64_t filled = t.quantity() < lot ? t.quantity() : lot;
    s.net[t.id() % accounts] += t.side() == desk::rf::Side::Sell ? -filled : filled;
    s.applied += 1;
    return st;
  }
  static std::string dump_state(const state& s) {
    std::string j = "{\"applied\":" + std::to_string(s.applied) + ",\"net\":[";
    for (std::uint32_t i = 0; i < accounts; ++i) j += (i ? "," : "") + std::to_string(s.net[i]);
    return j + "]}";
  }
};

#if defined(OLD_TABLE)
extern "C" __attribute__((visibility("default"))) const ringflow::plugin_abi::table_v1* ringflow_plugin_v1() {
  static ringflow::plugin_abi::table_v1 t = *ringflow::plugin_detail::table<PositionKernel>();
  t.table_bytes = ringflow::plugin_abi::table_v1_base_bytes;
  t.kernel_states = reinterpret_cast<const ringflow::plugin_abi::kernel_state_v1*>(std::uintptr_t{8});
  t.gpu_states = reinterpret_cast<const ringflow::plugin_abi::gpu_state_v1*>(std::uintptr_t{8});
  return &t;
}
#else
RINGFLOW_KERNEL_PLUGIN(PositionKernel)
#endif
