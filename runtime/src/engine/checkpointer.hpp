// The checkpointer (part of the engine): durable checkpoints of the stateful nodes that have a
// `checkpoint:` (runtime/checkpoint.hpp; docs/FAULTS.md "Durable checkpoints").
//
// Contract
//   * resume() runs at build, before the ring actor exists: it loads the node's checkpoint (the
//     latest, else the previous one; each refused file is logged) for
//     ring_actor_options::state.initial. A checkpoint of another kernel or state size, or
//     checkpoint files none of which is usable, throw engine_error (the run exits 4) unless
//     `discard` (ringflow run --discard-checkpoints): then the files are moved aside (logged) and
//     the node starts from init. With `durability: reply` it then folds the journal's requests
//     after the checkpoint into the state (kernel_info::apply_state) and opens the journal.
//   * start() runs one thread. Every node's `every_ms` it asks the node's ring actor for a snapshot
//     (ring_core::request_snapshot) and, when one arrives that holds requests the last checkpoint
//     did not, writes it (temp + fsync + rename). So a checkpoint holds every request answered before
//     its snapshot was asked for, at most every_ms + the write old. A failed write is logged and
//     counted (ringflow_checkpoint_failures_total); the previous checkpoint stays valid and the
//     next period tries again.
//   * final_checkpoint() (engine stop, the ring actors stopped): the last checkpoint of each node
//     from its stopped core's handover, so a clean stop loses nothing answered.
//   * stop() ends the thread (idempotent).
// Thread-safety: resume/start/final_checkpoint/stop from the engine's controlling thread; views()
// from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/actors/ring_core.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/checkpoint.hpp"
#include "ringflow/runtime/log.hpp"
#include "ringflow/runtime/reply_journal.hpp"
#include "ringflow/runtime/topology.hpp"

namespace ringflow::ops::engine_parts {

/// What /metrics shows of one node's checkpoints.
struct checkpoint_view {
  std::string ring;
  std::uint64_t writes = 0, failures = 0;
  std::uint64_t last_unix_ms = 0;  // 0: none written in this run
};

class checkpointer {
 public:
  using core_lookup = std::function<std::shared_ptr<ring_core>(const std::string& ring)>;
  explicit checkpointer(event_log& log) : log_(log) {}
  ~checkpointer() { stop(); }
  checkpointer(const checkpointer&) = delete;
  checkpointer& operator=(const checkpointer&) = delete;

  /// A stateful node with a `checkpoint:`: its ring actor `ring` and kernel. Fills the ring
  /// actor's state options: the state to resume from (`initial`, empty: init), the requests it
  /// holds (`initial_covered`) and, for `durability: reply`, the journal (`durable`).
  /// `who` names this process in the node's owner lock (checkpoint_owner: "member m2", "run");
  /// a folder another live process holds is an engine_error naming the holder.
  /// `wait_ms` > 0 (the home member of a stateful node that can fail over): a lock held by the
  /// member that took the node over is asked back (`<ring>.want` in the folder, see wanted_back)
  /// and waited for that long before it is an error. May run while the thread runs (a takeover).
  void resume(const node_spec& n, const std::string& ring, const kernel_info& k, bool discard,
              ring_actor_options::state_options& into, const std::string& who = "run", std::uint32_t wait_ms = 0);
  /// The `<ring>.want` files resume() left (the member that held the node keeps answering "moved"
  /// while they exist): removed once this member takes requests (after its cluster start).
  void clear_wants();
  /// Start the thread even with no node yet (nodes may be taken over later).
  void expect_takeovers() { takeovers_ = true; }
  /// The node's home member asks for it back (`<ring>.want` exists in its folder).
  [[nodiscard]] bool wanted_back(const std::string& ring) const;
  /// Hands a taken-over node back: its last checkpoint from its stopped `core` (as
  /// final_checkpoint()), its journal stopped, its lock released; the node is forgotten here.
  void hand_back(const std::string& ring, const std::shared_ptr<ring_core>& core);
  [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }
  void start(core_lookup lookup);
  /// engine stop(), once the ring actors are stopped and before the runtime goes: each node's last
  /// checkpoint from its stopped core (ring_core::handover(): the snapshot with the requests
  /// applied since folded in by the kernel's handler), so it holds every request answered.
  void final_checkpoint(const core_lookup& stopped_core);
  void stop();
  [[nodiscard]] std::vector<checkpoint_view> views() const;

 private:
  struct node_ckpt {
    std::string node, ring, kernel;
    const kernel_info* info = nullptr;
    std::uint32_t state_bytes = 0, every_ms = 1000;
    checkpoint_store store;
    checkpoint_owner owner;                  // held while this process may write the node's state
    std::shared_ptr<reply_journal> journal;  // durability: reply
    std::uint64_t sequence = 0;              // of the latest checkpoint on disk
    std::uint64_t base_covered = 0;          // requests the resumed state held (the core counts on from there)
    std::uint64_t written_covered = 0;
    bool written_any = false;
    // The thread's progress (its own):
    const ring_core* core = nullptr;
    std::uint64_t due_ns = 0, asked_ns = 0, asked_at = 0;
    bool asked = false;
    std::atomic<std::uint64_t> writes{0}, failures{0}, last_unix_ms{0};
    node_ckpt(checkpoint_store s) : store(std::move(s)) {}
  };
  /// One step for `n` at `now`; `force`: ask now. True once a snapshot arrived and was handled.
  bool step(node_ckpt& n, const std::shared_ptr<ring_core>& core, std::uint64_t now, bool force);
  void write(node_ckpt& n, const state_view& v);
  void discard_journal(const node_ckpt& ck, std::vector<std::string>& moved, std::string& err);
  void fold_journal(node_ckpt& ck, const kernel_info& k, bool discard, std::vector<std::uint8_t>& state,
                    std::uint64_t& covered);
  void run();
  void final_one(node_ckpt& n, const std::shared_ptr<ring_core>& core);

  event_log& log_;
  bool takeovers_ = false;
  std::vector<std::filesystem::path> wants_;
  std::vector<std::unique_ptr<node_ckpt>> nodes_;
  core_lookup lookup_;
  mutable std::mutex mu_;  // nodes_; the thread vs final_checkpoint() and hand_back(): one steps at a time
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ringflow::ops::engine_parts
