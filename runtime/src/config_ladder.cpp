// to_ladder_config (ringflow/runtime/config.hpp): apart from config.cpp, which builds without the
// actor and supervision headers (the config fuzz target compiles it on its own).
#include "ringflow/runtime/config.hpp"
#include "ringflow/supervision/fault_ladder.hpp"

namespace ringflow::ops {

ringflow::ladder_config to_ladder_config(const program_config& cfg) {
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  ringflow::ladder_config l;
  const auto& ld = cfg.ladder;
  l.hang_timeout = milliseconds(ld.hang_timeout_ms);
  l.restarts_before_reinit = static_cast<std::uint32_t>(ld.restarts_before_reinit);
  l.restart_window = milliseconds(ld.restart_window_ms);
  l.probe_window = milliseconds(ld.probe_window_ms);
  l.backoff_initial = microseconds(ld.backoff_initial_us);
  l.backoff_max = milliseconds(ld.backoff_max_ms);
  l.stop_timeout = milliseconds(ld.stop_timeout_ms);
  const auto& b = cfg.breaker;
  l.breaker.failure_threshold = static_cast<std::uint32_t>(b.failure_threshold);
  l.breaker.window = milliseconds(b.window_ms);
  l.breaker.open_for = milliseconds(b.cooldown_ms);
  l.breaker.max_open_for = milliseconds(b.cooldown_max_ms);
  l.breaker.backoff = b.backoff;
  return l;
}

}  // namespace ringflow::ops
