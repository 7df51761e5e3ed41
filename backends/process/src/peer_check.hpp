// The service's checks of what a kernel-host worker wrote (internal to backends/process).
//
// Contract: check_peer() reads the shared control block and the rings' shared indices once, checks
// them against what the service last saw (`seen`) and against its own pinned ring geometry, and
// returns a verdict. Once the control block's counters and the ring indices passed, it updates
// `seen` and mirrors the counters into the service's own block; then it checks a state change
// (a fault needs a valid error code) and returns it for the caller to apply. Nothing read here is
// used before it was checked.
//   * state in range, never going back (idle < starting < running < draining < stopped|faulted);
//   * heartbeat and processed count monotonic;
//   * both ring config lines intact;
//   * request head monotonic and never past what the service published (tail) by more than a ring;
//   * response tail monotonic and never more than two rings past what the service consumed (head);
//   * a fault's error code in range; its detail copied and NUL-terminated.
// Thread-safety: the monitor thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "ringflow/control_block.hpp"
#include "ringflow/ring_storage.hpp"

namespace ringflow::process {

/// What the service last saw of its worker (monitor thread only).
struct peer_seen {
  std::uint32_t state = 0;
  std::uint64_t heartbeat = 0, processed = 0, request_head = 0, reply_tail = 0;
};

/// A state change the worker reported (checked), for the service's own control block.
struct peer_state_change {
  kernel_state state = kernel_state::idle;
  kernel_error error = kernel_error::none;  // with state faulted
  std::uint32_t error_flags = 0;            // sticky only
  std::string detail;
};

struct peer_verdict {
  bool ok = true;
  kernel_error code = kernel_error::none;  // when !ok: bad_ring (indices, configs) or internal (control block)
  std::string why;
  std::optional<peer_state_change> change;  // when ok and the state moved
};

/// Checks the worker's words; on success mirrors the counters into `local` and updates `seen`.
[[nodiscard]] peer_verdict check_peer(const control_block& shared, const ring_storage& requests,
                                      const ring_storage& replies, peer_seen& seen, control_block& local);

}  // namespace ringflow::process
