// ringflow/control_block.hpp — the shared state of one persistent ring kernel (one per kernel,
// which may host many rings).
//
// Contract: the host writes the host line (stop flag, epoch) — the kernel only reads it; the kernel
// writes the kernel line (state, heartbeat, progress, counters, error) — the host only reads it.
// One writer per word, so it may live in host-mapped memory read across PCIe.
//   state:      idle -> starting (host, before launch) -> running -> draining -> stopped,
//               or -> faulted (kernel) with error_code/error_detail set.
//   heartbeat:  incremented by the kernel at least once per scheduler pass while awake.
//   last_progress: the heartbeat value when the kernel last served a message; the watchdog calls
//               a kernel *hung* when heartbeat and progress stall while a request ring is non-empty.
//   epoch:      incarnation number, set by the host before each (re)start.
// Errors: the kernel writes error_detail (NUL-terminated) and error_flags first, then
// store-releases error_code; the host load-acquires error_code, then reads the rest.
//
// Thread-safety: single writer per field as above; readers use the accessors (atomic loads).
#pragma once

#include <cstdint>

#include "ringflow/portable.hpp"

namespace ringflow {

enum class kernel_state : std::uint32_t { idle = 0, starting, running, draining, stopped, faulted };

RINGFLOW_HD constexpr const char* to_string(kernel_state s) {
  switch (s) {
    case kernel_state::idle: return "idle";
    case kernel_state::starting: return "starting";
    case kernel_state::running: return "running";
    case kernel_state::draining: return "draining";
    case kernel_state::stopped: return "stopped";
    case kernel_state::faulted: return "faulted";
  }
  return "unknown";
}

/// Kernel-level fault codes (handler errors are per-request replies, not kernel faults).
enum class kernel_error : std::uint32_t {
  none = 0,
  launch_failed = 1,  // the backend could not start the kernel
  bad_ring = 2,       // a ring region failed validation (magic/config)
  reply_stuck = 3,    // could not publish a reply before the stop timeout
  device_fault = 4,   // trap / illegal address reported by the device runtime
  internal = 5,       // a transient kernel error (restart in place may help)
  out_of_memory = 6,  // the kernel or its device ran out of memory (pools exhausted)
  crashed = 7,        // the kernel's thread / grid ended without stopping (detected by the backend)
  device_lost = 8,    // the device is gone (fell off the bus, driver reset): nothing runs there now
};

RINGFLOW_HD constexpr const char* to_string(kernel_error e) {
  switch (e) {
    case kernel_error::none: return "none";
    case kernel_error::launch_failed: return "launch_failed";
    case kernel_error::bad_ring: return "bad_ring";
    case kernel_error::reply_stuck: return "reply_stuck";
    case kernel_error::device_fault: return "device_fault";
    case kernel_error::internal: return "internal";
    case kernel_error::out_of_memory: return "out_of_memory";
    case kernel_error::crashed: return "crashed";
    case kernel_error::device_lost: return "device_lost";
  }
  return "unknown";
}

namespace kernel_error_flags {
inline constexpr std::uint32_t sticky = 1u << 0;  // context poisoned: restart in place cannot help
}

struct control_block {
  static constexpr std::uint32_t detail_bytes = 96;

  // -- host line (host writes, kernel reads) ---------------------------------------------------
  alignas(128) std::uint32_t stop_requested;
  std::uint32_t host_reserved;
  std::uint64_t epoch;
  // -- kernel status line (kernel writes rarely, clients poll `state` on every call) -------------
  alignas(128) std::uint32_t state;
  std::uint32_t error_code;
  std::uint32_t error_flags;
  std::uint32_t kernel_reserved;
  // -- kernel progress line (kernel writes every pass; watchdog and metrics read) ---------------
  // Kept off the status line: otherwise every poll of `state` misses on a line the kernel just
  // wrote (measured: CPU kernel round trip p50 -20% with the split).
  alignas(128) std::uint64_t heartbeat;
  std::uint64_t last_progress;
  std::uint64_t processed;       // requests served (ok + error replies + rejections)
  std::uint64_t handler_errors;  // handler returned a non-ok status (error reply sent)
  std::uint64_t rejected;        // wrong type / deadline / reply too large (error reply sent)
  char error_detail[detail_bytes];

  // ---- host side
  /// Resets the block for a new incarnation (host, before launch; not concurrently with a kernel).
  /// Atomic stores, because monitoring threads may be reading the previous incarnation's values.
  RINGFLOW_HD void reset(std::uint64_t new_epoch) {
    store_relaxed(stop_requested, 0u);
    store_relaxed(epoch, new_epoch);
    store_relaxed(error_flags, 0u);
    store_relaxed(kernel_reserved, 0u);
    store_relaxed(host_reserved, 0u);
    store_relaxed(heartbeat, std::uint64_t{0});
    store_relaxed(last_progress, std::uint64_t{0});
    store_relaxed(processed, std::uint64_t{0});
    store_relaxed(handler_errors, std::uint64_t{0});
    store_relaxed(rejected, std::uint64_t{0});
    store_relaxed(error_code, 0u);
    for (auto& c : error_detail) c = 0;
    store_release(state, static_cast<std::uint32_t>(kernel_state::starting));
  }
  /// Release: anything the host wrote before asking to stop is visible to the kernel that sees it.
  RINGFLOW_HD void request_stop() { store_release(stop_requested, 1u); }

  // ---- kernel side
  /// Acquire: pairs with request_stop().
  RINGFLOW_HD bool stop_is_requested() { return load_acquire(stop_requested) != 0; }
  /// Release: a reader that sees the new state also sees every reply published before it (the
  /// host relies on this to drain the response ring completely after `stopped`).
  RINGFLOW_HD void set_state(kernel_state s) { store_release(state, static_cast<std::uint32_t>(s)); }
  // Relaxed counters: single writer, read for monitoring only.
  RINGFLOW_HD void beat() { store_relaxed(heartbeat, load_relaxed(heartbeat) + 1); }
  RINGFLOW_HD void progressed(std::uint64_t served, std::uint64_t errors, std::uint64_t rejects) {
    store_relaxed(processed, load_relaxed(processed) + served);
    store_relaxed(handler_errors, load_relaxed(handler_errors) + errors);
    store_relaxed(rejected, load_relaxed(rejected) + rejects);
    store_relaxed(last_progress, load_relaxed(heartbeat));
  }
  /// Stores the progress line from counters the kernel keeps elsewhere (a device worker keeps
  /// them in its own memory): stores only, so a device writing host-mapped memory never reads
  /// across PCIe for it. Same single writer and relaxed order as beat() / progressed().
  RINGFLOW_HD void publish_counters(std::uint64_t beats, std::uint64_t progress_beat, std::uint64_t served,
                                    std::uint64_t errors, std::uint64_t rejects) {
    store_relaxed(heartbeat, beats);
    store_relaxed(last_progress, progress_beat);
    store_relaxed(processed, served);
    store_relaxed(handler_errors, errors);
    store_relaxed(rejected, rejects);
  }
  /// Records a kernel fault and moves to `faulted`.
  RINGFLOW_HD void fault(kernel_error code, std::uint32_t flags, const char* detail) {
    std::uint32_t i = 0;
    for (; detail && detail[i] && i + 1 < detail_bytes; ++i) error_detail[i] = detail[i];
    error_detail[i] = 0;
    error_flags = flags;
    // Release: detail and flags are visible to a host that acquires error_code.
    store_release(error_code, static_cast<std::uint32_t>(code));
    set_state(kernel_state::faulted);
  }

  // ---- readers (any thread)
  RINGFLOW_HD kernel_state current_state() { return static_cast<kernel_state>(load_acquire(state)); }
  /// True when no kernel runs on these rings (never started, stopped, or faulted). Acquire: every
  /// reply the kernel published before its last state change is visible.
  RINGFLOW_HD bool finished() {
    const kernel_state s = current_state();
    return s == kernel_state::stopped || s == kernel_state::faulted || s == kernel_state::idle;
  }
  RINGFLOW_HD kernel_error current_error() { return static_cast<kernel_error>(load_acquire(error_code)); }
  RINGFLOW_HD std::uint64_t heartbeat_count() { return load_relaxed(heartbeat); }
  RINGFLOW_HD std::uint64_t last_progress_beat() { return load_relaxed(last_progress); }
  RINGFLOW_HD std::uint64_t processed_count() { return load_relaxed(processed); }
  RINGFLOW_HD std::uint64_t handler_error_count() { return load_relaxed(handler_errors); }
  RINGFLOW_HD std::uint64_t rejected_count() { return load_relaxed(rejected); }
};

static_assert(sizeof(control_block) % 128 == 0);

}  // namespace ringflow
