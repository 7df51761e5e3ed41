// ringflow/process/segment.hpp — the shared-memory segment between a service and one kernel-host
// worker: its header, its layout, its name, and the RAII mapping (backends/process).
//
// Contract
//   * One segment per incarnation: a header, the kernel's control block, two process-shared
//     doorbells (the kernel's wake bell, the reply bell) and the request and response rings, at the
//     offsets segment_layout::of() computes from the two ring configs (a pure function, so both
//     sides agree without trusting each other's numbers).
//   * Names are per service instance: "/<prefix>.<pid>.<start-time>.<n>.<kernel>", start-time the
//     service's start in clock ticks (/proc/<pid>/stat field 22), so a reused pid is told apart.
//     reclaim_stale_segments() removes those whose service is gone.
//   * The peer is untrusted in both directions: the worker copies and validates the set-up line
//     once (what was validated is what is used); the service never reads back what it set up (it
//     keeps its own copies) and checks every word the worker writes before it uses it
//     (host_incarnation's monitor; see docs/ARCHITECTURE.md "Kernel hosts").
//
// The shared words (besides the control block — control_block.hpp — and the rings — ring.hpp —
// whose own tables apply), each with its writer, its reader, its order and why:
//
//   word                 writer    reader    order                       why / what the reader trusts
//   -------------------  --------  --------  --------------------------  ------------------------------------
//   set-up line          service   worker    plain; published by the     written before the worker exists (exec)
//   (magic .. rules)                         exec, or by the standby     or before the activation byte (pipe
//                                            pipe's write -> read        write/read order it); the worker reads
//                                                                        it once into a private copy, validates
//   generation           service   worker    release / acquire           bumped before each start, after the
//                                                                        set-up line; the worker records it
//   inject_rule          service   worker    plain, before inject_seq    the rule a new inject_seq announces
//   inject_seq           service   worker    release / acquire           a new value = a new rule; the worker
//                                                                        validates the rule (from_wire)
//   worker_pid,          worker    service   relaxed                     diagnostics only: the service knows the
//   worker_generation                                                    pid it spawned and never uses these
//   worker_version       worker    service   relaxed, before the kernel  the version the worker speaks: read once
//                                            state `running` (release)   the kernel runs; another value is refused
//   liveness             worker    service   relaxed                     only "did it move" matters: no data is
//                                                                        ordered by it; silence past the heartbeat
//                                                                        timeout kills the worker
//   faults_fired         worker    service   relaxed                     a count for metrics; a lying worker can
//                                                                        skew only its own node's counter
//   kernel_bell          service   worker    doorbell.hpp (seq_cst       a bad peer can cause spurious or missed
//                        (rings)   (parks)   fences)                     wake-ups of its own rings only: every
//   reply_bell           worker    service                               service wait is bounded (monitor_interval)
//
// Thread-safety: segment_layout and the free functions are reentrant; a shm_mapping is owned by one
// object.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/control_block.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/ring.hpp"
#include "ringflow/sim/fault_injector.hpp"

namespace ringflow::process {

/// The segment header. Lines: set-up (service, before the worker starts), service line (service
/// writes, worker reads), worker line (worker writes, service reads and checks).
struct host_segment_header {
  static constexpr std::uint64_t magic_value = 0x3130545348464b52ull;  // "RKFHST01"
  // The segment protocol's version: the worker refuses a set-up line of another version, and the
  // service refuses a worker that reports another (worker_version) before it uses its rings.
  // 2: worker_version; GPU backends (cuda, hip) in `backend`.
  static constexpr std::uint32_t version_value = 2;
  static constexpr std::uint32_t max_rules = 8;
  struct rule {  // a standing sim fault rule (a worker's injector gets them at start)
    std::uint32_t kind;
    std::uint32_t times;
    std::uint64_t at_message;
    double probability;
    std::uint32_t latency_us;
    std::uint32_t pad;
  };
  // -- set-up
  alignas(128) std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t rule_count;
  std::uint64_t total_bytes;
  std::int64_t service_pid;
  std::uint64_t service_start;
  char kernel[32];
  char backend[16];
  ring_config requests;
  ring_config replies;
  std::uint32_t max_batch;
  std::uint32_t liveness_interval_us;
  rule rules[max_rules];
  // -- service line
  alignas(128) std::uint64_t generation;  // bumped before each worker start
  std::uint32_t inject_seq;               // a new value: inject_rule is a new rule (sim workers)
  std::uint32_t inject_pad;
  rule inject_rule;
  // -- worker line
  alignas(128) std::int64_t worker_pid;
  std::uint64_t worker_generation;  // the generation the worker started in
  std::uint64_t liveness;           // bumped every liveness interval while the process lives
  std::uint64_t faults_fired;       // sim workers: faults their injector fired
  std::uint32_t worker_version;     // the segment protocol version the worker speaks (version_value)
  std::uint32_t worker_pad;
};
// Each side's words on lines of their own (no false sharing across processes; one writer a line).
static_assert(offsetof(host_segment_header, magic) == 0);
static_assert(offsetof(host_segment_header, generation) % 128 == 0);
static_assert(offsetof(host_segment_header, worker_pid) % 128 == 0);
static_assert(sizeof(host_segment_header::rule) == 32);

/// Byte offsets of a segment's parts (a pure function of the two ring configs).
struct segment_layout {
  std::uint64_t control = 0, kernel_bell = 0, reply_bell = 0, requests = 0, replies = 0, total = 0;
  [[nodiscard]] static segment_layout of(const ring_config& requests, const ring_config& replies);
};

/// A POSIX shared-memory mapping; unlinks its name when destroyed if it created it.
class shm_mapping {
 public:
  shm_mapping() = default;
  shm_mapping(const shm_mapping&) = delete;
  shm_mapping& operator=(const shm_mapping&) = delete;
  shm_mapping(shm_mapping&& o) noexcept { *this = std::move(o); }
  shm_mapping& operator=(shm_mapping&& o) noexcept;
  ~shm_mapping() { reset(); }

  /// Creates "/<prefix>.<pid>.<start>.<n>.<kernel>" (O_EXCL, mode 0600) of `bytes`, mapped and
  /// populated. Throws std::runtime_error naming the step that failed.
  [[nodiscard]] static shm_mapping create(const std::string& prefix, const std::string& kernel, std::size_t bytes);
  /// Maps an existing segment (the worker). nullopt with `error` set when it cannot, or when it is
  /// smaller than `min_bytes`.
  [[nodiscard]] static std::optional<shm_mapping> open(const std::string& name, std::size_t min_bytes,
                                                       std::string& error);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  [[nodiscard]] byte* base() const noexcept { return base_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  void reset() noexcept;

 private:
  std::string name_;
  byte* base_ = nullptr;
  std::size_t bytes_ = 0;
  bool owner_ = false;
};

/// The wire form of a sim fault rule (service -> worker).
[[nodiscard]] host_segment_header::rule to_wire(const sim::fault_rule& r);
/// A rule from the wire (the worker side): at_message counts from `seen` requests. nullopt when
/// malformed (unknown kind, or a rule that could never fire).
[[nodiscard]] std::optional<sim::fault_rule> from_wire(const host_segment_header::rule& w, std::uint64_t seen);

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 when unreadable.
[[nodiscard]] std::uint64_t process_start_ticks(pid_t pid);

/// Removes segments named "/<prefix>.<pid>.<start>..." whose service process is gone (or whose pid
/// now belongs to another process); returns their names. Segments of live services are kept.
std::vector<std::string> reclaim_stale_segments(const std::string& prefix = "ringflow");
/// Removes this process's own segments (the fast exit of a second SIGTERM, which skips the
/// destructors); the mappings stay valid until the process ends. Returns their names.
std::vector<std::string> remove_own_segments(const std::string& prefix = "ringflow");
/// The segments of this prefix that exist now (for tests and operators).
[[nodiscard]] std::vector<std::string> list_segments(const std::string& prefix = "ringflow");

}  // namespace ringflow::process
