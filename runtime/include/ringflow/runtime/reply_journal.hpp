// ringflow/runtime/reply_journal.hpp — `durability: reply` (docs/FAULTS.md "Durable checkpoints"):
// the group-committing journal file of one stateful node (format: checkpoint.hpp).
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/actors/ring_core.hpp"
#include "ringflow/runtime/checkpoint.hpp"

namespace ringflow::ops {

/// The group-committing journal of one node (a ringflow::reply_durability for its ring actor).
/// Contract:
///   * open(base, tail) writes the file afresh (temp + fsync + rename): header(base) + tail.
///   * hold() queues a request; one thread writes every queued request at once and fdatasyncs
///     (group commit), then releases their replies (true). A failed write or sync releases them
///     false (errc::unavailable to the callers), is counted and reported through `on_failure`,
///     and the file is rewritten whole at the next commit, those requests included (their effect
///     is in the state: the journal must stay gap-free).
///   * checkpointed(c): a checkpoint holding every request up to c is on disk; the file keeps the
///     requests after the checkpoint before it (a torn latest checkpoint falls back to the
///     previous one, whose journal must still be complete) and drops the rest at the next commit.
///   * flush() waits until everything held was released; stop() flushes and ends the thread.
class reply_journal final : public reply_durability {
 public:
  reply_journal(std::filesystem::path file, std::function<void(const std::string& why)> on_failure);
  ~reply_journal() override;
  reply_journal(const reply_journal&) = delete;
  reply_journal& operator=(const reply_journal&) = delete;

  [[nodiscard]] std::string open(std::uint64_t base, std::vector<journal_entry> tail);
  void hold(std::uint64_t seq, const std::vector<std::uint8_t>& request, std::function<void(bool)> release) override;
  void flush() override;
  void checkpointed(std::uint64_t covered);
  void stop();

  struct counters {
    std::uint64_t commits = 0, records = 0, failures = 0, largest_batch = 0, rewrites = 0;
  };
  [[nodiscard]] counters stats() const;
  /// Tests: called before each step ("write", "sync", "rewrite"); non-zero fails it with that errno.
  std::function<int(const char* step)> fail_step;

 private:
  struct held {
    journal_entry e;
    std::function<void(bool)> release;  // empty: released already (a retry after a failure)
  };
  void run();
  std::string rewrite(const std::vector<held>& batch, std::uint64_t base);
  std::string append(const std::vector<held>& batch);

  const std::filesystem::path file_;
  std::function<void(const std::string&)> on_failure_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::vector<held> queue_;
  bool busy_ = false, stop_ = false, rewrite_ = false, thread_running_ = false;
  std::uint64_t unreleased_ = 0;  // held with a release not called yet
  std::uint64_t base_ = 0, keep_after_ = 0, last_checkpoint_ = 0;
  std::deque<journal_entry> tail_;  // in the file (or to be, at the next rewrite), after base_
  int fd_ = -1;
  counters stats_;
  std::thread thread_;
};

}  // namespace ringflow::ops
