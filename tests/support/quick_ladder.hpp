// A fault ladder configuration for tests: recovery in milliseconds (short back-off, probe window and
// breaker cool-down), so a test sees restart, reroute and fail-back quickly. Each suite states only
// how it differs (the hang timeout: a kernel-host worker or a GPU kernel needs longer than a thread).
#pragma once

#include <chrono>

#include "ringflow/supervision/fault_ladder.hpp"

namespace ringflow::test {

struct quick_ladder_options {
  std::chrono::milliseconds hang_timeout{50};
  std::chrono::milliseconds probe_window{50};
  std::chrono::milliseconds open_for{50};
  std::chrono::milliseconds max_open_for{200};
  std::chrono::milliseconds restart_window{2000};
};

inline ladder_config quick_ladder(const quick_ladder_options& o = {}) {
  using namespace std::chrono_literals;
  ladder_config c;
  c.hang_timeout = o.hang_timeout;
  c.backoff_initial = 500us;
  c.backoff_max = 20ms;
  c.probe_window = o.probe_window;
  c.breaker.open_for = o.open_for;
  c.breaker.max_open_for = o.max_open_for;
  c.restart_window = o.restart_window;
  return c;
}

}  // namespace ringflow::test
