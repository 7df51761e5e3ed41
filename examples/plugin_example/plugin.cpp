// The desk plugin: FillKernel and a CPU function, as a shared library a topology loads with
// `plugins: [libdesk_plugin.so]` (desk.yaml). ringflow/plugin.hpp has the contract.
#include <stdexcept>

#include "fill_kernel.hpp"
#include "ringflow/plugin.hpp"

RINGFLOW_KERNEL_PLUGIN(FillKernel)

// risk_check: a desk.Trade goes on unchanged unless it is too large (then the node answers the
// message with an error, and it goes no further).
RINGFLOW_PLUGIN_FUNCTION("risk_check", [](std::span<const std::uint8_t> m) {
  flatbuffers::Verifier v(m.data(), m.size());
  if (!desk::VerifyTradeBuffer(v)) throw std::invalid_argument("risk_check: not a desk.Trade");
  const desk::Trade* t = desk::GetTrade(m.data());
  if (t->quantity() > 10000) throw std::invalid_argument("risk_check: quantity over 10000");
  return std::vector<std::uint8_t>(m.begin(), m.end());
})
