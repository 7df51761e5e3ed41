// ringflow/cpu/cpu_kernel.hpp — a persistent ring kernel on a CPU thread (the CPU backend).
//
// Contract
//   * One cpu_kernel = one thread = one control_block, hosting any number of rings (channels).
//     Each channel binds one ring kernel type K (ringflow/kernel.hpp) to a request ring and a
//     response ring. Channels are added before start().
//   * The thread runs a scheduler loop: each pass serves up to `max_batch` requests per channel
//     (serve_one: type check, deadline check against the steady clock, handler, one reply per
//     request), updates the heartbeat and progress, and rings the channel's reply doorbell.
//     With no work it waits in a ladder: spin (PAUSE) -> yield -> park on a futex doorbell.
//     Producers call notify() after pushing; a parked kernel wakes within microseconds.
//     While parked it uses no CPU (stats().parks / passes stop moving).
//   * stop(): sets the stop flag and wakes the thread; the kernel drains (serves every request
//     that was in each ring when it saw the flag), publishes, sets `stopped`, wakes all clients,
//     and exits; the host joins it. If the drain does not finish within the timeout (a client
//     stopped reading replies), the kernel faults with kernel_error::reply_stuck and exits.
//     Requests pushed after the drain are answered with status::stopped by the host client.
//   * A handler that throws produces an error reply (status::handler_fault) with the exception's
//     message; the kernel keeps serving.
//   * start() after stop() starts a new incarnation (epoch + 1) on the same rings, resuming at the
//     rings' shared positions; no client may be sweeping a channel concurrently.
//
// Thread-safety: start/stop/add_ring from one controlling thread; notify(), stats(), control()
// readers from any thread. Each channel has one client (see host_client.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/control_block.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/host_serve.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/kernel.hpp"
#include "ringflow/ring_storage.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::cpu {

/// How an idle kernel (or a waiting client) waits: backends/core wait_policy.hpp.
using ringflow::wait_policy;

struct kernel_config {
  std::string name = "cpu-kernel";
  /// The kernel thread's name (cut to 15 bytes); "" = "rf-k-" + name.
  std::string thread_name;
  /// CPUs the kernel thread is pinned to (empty: not pinned). start() throws std::invalid_argument
  /// for a CPU outside the process's allowed set.
  std::vector<int> cpus;
  wait_policy wait{};
  std::uint32_t max_batch = 32;  // requests served per channel per pass (fairness across rings)
  /// Optional extra doorbell rung whenever a channel's reply bell is (after a pass that published
  /// replies, and at stop): lets one completion poller wait on many kernels. Must outlive the kernel.
  doorbell* completion_bell = nullptr;
  /// Placement in memory someone else owns (a kernel host's shared segment): the control block
  /// and the kernel's wake bell (a process-shared doorbell) the requests' producer rings. nullptr:
  /// the kernel's own. Must outlive the kernel.
  control_block* control = nullptr;
  doorbell* bell = nullptr;
};

struct ring_options {
  ring_config requests{};
  ring_config replies{};
  /// Placement: the two rings in memory someone else owns (ring_storage's external form;
  /// nullptr = the channel's own). `attach`: the rings are already formatted there (by the
  /// process that created the memory) and must match the configs; otherwise they are formatted.
  void* request_memory = nullptr;
  void* reply_memory = nullptr;
  bool attach = false;

  /// The small-ring preset for many mostly idle ring actors: 32 slots of 256 bytes each way
  /// (2 x 8.4 KiB of ring memory instead of 2 x 256 KiB; requests up to 192 bytes inline, larger
  /// ones need `arena_bytes`). docs/EMBEDDING.md lists what a ring actor costs with it.
  static ring_options small() noexcept {
    ring_options o;
    o.requests.capacity = o.replies.capacity = 32;
    return o;
  }
};

/// Counters the kernel thread keeps about itself (relaxed; for tests, metrics, the watchdog).
struct kernel_stats {
  std::uint64_t passes = 0;       // scheduler passes (awake iterations)
  std::uint64_t idle_passes = 0;  // passes that found no work
  std::uint64_t parks = 0;        // times it parked on the doorbell
  std::uint64_t wakeups = 0;      // parks that ended because the doorbell rang
  bool parked = false;            // parked right now
};

enum class [[nodiscard]] stop_outcome{stopped, already_stopped, faulted};

using serve_fn = host_serve_fn;

/// A kernel as the CPU backend runs it: its name, message types and the function that serves one
/// request (host_serve<K> of ringflow/host_serve.hpp, compiled in or from a kernel plugin). The
/// name must outlive every channel bound to it (a literal, or a plugin's string: plugins are never
/// unloaded). A stateful kernel (kernel.hpp) has serve_state instead of serve, the size of its
/// state and the function that initializes one; each channel keeps its own state.
struct kernel_binding {
  const char* name = nullptr;
  type_id request_type = 0;
  type_id reply_type = 0;
  serve_fn serve = nullptr;
  host_serve_state_fn serve_state = nullptr;
  std::uint32_t state_bytes = 0;
  void (*init_state)(void*) = nullptr;
  /// Has what it needs to serve (a name, and serve or the three stateful parts).
  bool usable() const noexcept { return name && (serve || (serve_state && state_bytes && init_state)); }
};

/// K's binding (host_serve<K>, or host_serve_state<K> for a stateful kernel).
template <ring_kernel K>
kernel_binding bind_kernel() noexcept {
  kernel_binding b{K::name, K::request::type_id_, K::reply::type_id_, nullptr};
  if constexpr (stateful_kernel<K>) {
    b.serve_state = &host_serve_state<K>;
    b.state_bytes = state_bytes_of<K>;
    b.init_state = &host_init_state<K>;
  } else {
    b.serve = &host_serve<K>;
  }
  return b;
}

class pooled_ring;  // kernel_pool.hpp
namespace pool_detail {
struct pool_state;
}

/// One request ring + one response ring served by kernel type K.
class channel {
 public:
  /// Throws std::invalid_argument unless k.usable().
  channel(const kernel_binding& k, const ring_options& opts);
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  const std::string& kernel_name() const noexcept { return kernel_name_; }
  type_id request_type() const noexcept { return request_type_; }
  type_id reply_type() const noexcept { return reply_type_; }
  ring_region requests() const noexcept { return requests_.region(); }
  ring_region replies() const noexcept { return replies_.region(); }
  std::uint64_t* request_producer_scratch() const noexcept { return requests_.producer_scratch(); }
  /// Rung by the kernel after it published replies (and when it stops).
  doorbell& reply_bell() noexcept { return reply_bell_; }
  /// One client per channel: claims the client role (false if already claimed).
  bool claim_client() noexcept { return !client_claimed_.exchange(true, std::memory_order_acq_rel); }
  void release_client() noexcept { client_claimed_.store(false, std::memory_order_release); }
  /// The kernel thread hands this channel's replies to `sink` itself after publishing them
  /// (incarnation.hpp, reply_sink); empty: it only rings the bells. Any thread, any time.
  void set_reply_sink(std::weak_ptr<reply_sink> sink) noexcept {
    std::lock_guard<std::mutex> lock(sink_mu_);
    sink_ = std::move(sink);
  }
  /// Serves the next request (the kernel thread): serve_one() over the kernel, on this channel's
  /// state when the kernel is stateful.
  serve_result serve(std::uint64_t now_ns, serve_tally& t) {
    return state_ ? serve_state_(kernel_requests_, kernel_replies_, now_ns, t, state_.get())
                  : serve_(kernel_requests_, kernel_replies_, now_ns, t);
  }
  /// The stateful kernel's state bytes (0: stateless). Only the kernel thread may touch the state
  /// while it serves: read it through a snapshot request (kernel.hpp), or while stopped.
  std::uint32_t state_bytes() const noexcept { return state_bytes_; }
  const void* state() const noexcept { return state_.get(); }

  /// The kernel side after a batch published replies: rings the reply bell and lets the reply
  /// sink complete the callers on this thread when it can. True when it could not (whoever
  /// consumes the replies must be woken: the caller rings its completion bell).
  bool deliver_replies() noexcept;

 private:
  friend class cpu_kernel;
  friend struct pool_detail::pool_state;
  friend class pooled_ring;
  std::string kernel_name_;
  type_id request_type_;
  type_id reply_type_;
  serve_fn serve_;
  host_serve_state_fn serve_state_;
  std::uint32_t state_bytes_;
  struct free_state {
    void operator()(void* p) const noexcept;
  };
  std::unique_ptr<void, free_state> state_;  // max_align_t-aligned, state_bytes_ (stateful kernels)
  ring_storage requests_;
  ring_storage replies_;
  // Kernel-side endpoints: touched only by the kernel thread (re-created at each start()).
  ring_consumer kernel_requests_;
  ring_producer kernel_replies_;
  doorbell reply_bell_;
  std::atomic<bool> client_claimed_{false};
  std::mutex sink_mu_;  // sink_ (set by the controlling thread, read by the kernel after each batch)
  std::weak_ptr<reply_sink> sink_;
};

class cpu_kernel {
 public:
  explicit cpu_kernel(kernel_config cfg = {});
  ~cpu_kernel();  // stops (draining) if running
  cpu_kernel(const cpu_kernel&) = delete;
  cpu_kernel& operator=(const cpu_kernel&) = delete;

  /// Adds a ring served by kernel K. Only before start() (throws std::logic_error otherwise);
  /// throws std::invalid_argument for a bad ring configuration.
  template <ring_kernel K>
  channel& add_ring(const ring_options& opts = {}) {
    return add_ring(bind_kernel<K>(), opts);
  }
  /// The same for a kernel bound at run time (a plugin's): throws std::invalid_argument when the
  /// binding has no name or serve function.
  channel& add_ring(const kernel_binding& k, const ring_options& opts = {});

  /// Launches the kernel thread (new epoch). Throws std::logic_error if already running.
  void start();
  /// Stop flag -> drain -> stopped; joins the thread. Waits at most `timeout` for the drain.
  stop_outcome stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(5000));
  /// Stop flag only (no join): the kernel drains (within `timeout`) and exits; stop() or the
  /// destructor joins it later. For a kernel the host no longer waits for (abandoned).
  void request_stop(std::chrono::milliseconds timeout) noexcept;
  bool running() const noexcept { return thread_.joinable(); }

  /// Doorbell: call after pushing requests. Cheap (one fence + load) when the kernel is awake.
  void notify() noexcept { bell_->ring(); }

  control_block& control() noexcept { return *control_; }
  kernel_stats stats() const noexcept;
  const kernel_config& config() const noexcept { return cfg_; }
  std::size_t ring_count() const noexcept { return channels_.size(); }
  channel& ring(std::size_t i) { return *channels_.at(i); }

 private:
  channel& add_channel(std::unique_ptr<channel> ch);
  void run() noexcept;
  bool any_work() noexcept;
  bool drain(std::chrono::steady_clock::time_point deadline) noexcept;
  void wake_clients() noexcept;
  void ring_reply_bells(channel& ch) noexcept;
  void deliver_replies(channel& ch) noexcept;

  kernel_config cfg_;
  std::vector<std::unique_ptr<channel>> channels_;
  std::unique_ptr<control_block> own_control_;
  control_block* control_ = nullptr;
  doorbell own_bell_;
  doorbell* bell_ = &own_bell_;
  std::thread thread_;
  std::uint64_t epoch_ = 0;
  std::atomic<std::int64_t> stop_timeout_ms_{5000};
  // stats (written by the kernel thread, relaxed)
  std::atomic<std::uint64_t> passes_{0}, idle_passes_{0}, parks_{0}, wakeups_{0};
  std::atomic<bool> parked_{false};
};

/// The current time on the clock of slot_header::deadline_ns (steady clock, ns).
inline std::uint64_t steady_now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

}  // namespace ringflow::cpu
