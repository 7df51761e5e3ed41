// durability: reply — the group-committing journal: see ringflow/runtime/reply_journal.hpp.
#include "ringflow/runtime/reply_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ringflow::ops {

namespace {

std::string errno_text(const char* step, const std::filesystem::path& p, int err) {
  return std::string(step) + " " + p.string() + ": " + std::strerror(err);
}

// Writes all of `b` at the file offset; false with errno set.
bool write_all(int fd, const std::vector<std::uint8_t>& b) {
  for (std::size_t off = 0; off < b.size();) {
    const ssize_t n = ::write(fd, b.data() + off, b.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

reply_journal::reply_journal(std::filesystem::path file, std::function<void(const std::string&)> on_failure)
    : file_(std::move(file)), on_failure_(std::move(on_failure)) {}

reply_journal::~reply_journal() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

std::string reply_journal::open(std::uint64_t base, std::vector<journal_entry> tail) {
  std::lock_guard<std::mutex> lock(mu_);
  base_ = base;
  keep_after_ = base;
  last_checkpoint_ = base;
  tail_.assign(std::make_move_iterator(tail.begin()), std::make_move_iterator(tail.end()));
  if (std::string why = rewrite({}, base); !why.empty()) return why;
  if (!thread_.joinable()) {
    thread_running_ = true;
    thread_ = std::thread([this] { run(); });
  }
  return {};
}

void reply_journal::hold(std::uint64_t seq, const std::vector<std::uint8_t>& request,
                         std::function<void(bool)> release) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(held{journal_entry{seq, request}, std::move(release)});
    ++unreleased_;
  }
  cv_.notify_one();
}

void reply_journal::checkpointed(std::uint64_t covered) {
  std::lock_guard<std::mutex> lock(mu_);
  if (covered <= last_checkpoint_) return;
  // Keep what follows the checkpoint before this one: if this one is found torn at a restart,
  // the previous one plus the journal still hold every released reply.
  keep_after_ = last_checkpoint_;
  last_checkpoint_ = covered;
  rewrite_ = true;
  cv_.notify_one();
}

void reply_journal::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_running_) {  // never opened, or stopped: nothing can become durable
    std::vector<held> q;
    q.swap(queue_);
    unreleased_ = 0;
    lock.unlock();
    for (held& h : q)
      if (h.release) h.release(false);
    return;
  }
  idle_cv_.wait(lock, [&] { return unreleased_ == 0 || (stop_ && !thread_running_); });
}

void reply_journal::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Nothing runs to commit what is left: its callers hear so.
  std::vector<held> q;
  {
    std::lock_guard<std::mutex> lock(mu_);
    q.swap(queue_);
    unreleased_ = 0;
    thread_running_ = false;
  }
  for (held& h : q)
    if (h.release) h.release(false);
  idle_cv_.notify_all();
}

reply_journal::counters reply_journal::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void reply_journal::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty() || rewrite_; });
    // At stop, what waits for its release is still committed (flush() and the core's stop() wait
    // for it); retries of requests already answered stay for the final checkpoint.
    if (stop_ && unreleased_ == 0) break;
    std::vector<held> batch;
    batch.swap(queue_);
    const bool whole = rewrite_ || fd_ < 0;
    rewrite_ = false;
    const std::uint64_t base = keep_after_;
    if (whole)
      while (!tail_.empty() && tail_.front().seq <= base) tail_.pop_front();
    busy_ = true;
    lock.unlock();
    // The commit (this thread owns fd_ and tail_ while busy_).
    std::string why = whole ? rewrite(batch, base) : append(batch);
    std::uint64_t released = 0;
    for (const held& h : batch) released += h.release ? 1 : 0;
    if (!why.empty() && on_failure_) on_failure_(why);
    for (held& h : batch)
      if (h.release) h.release(why.empty());
    lock.lock();
    busy_ = false;
    unreleased_ -= released;
    ++stats_.commits;
    stats_.largest_batch = std::max<std::uint64_t>(stats_.largest_batch, batch.size());
    if (why.empty()) {
      stats_.records += batch.size();
      if (whole) ++stats_.rewrites;
      for (held& h : batch) tail_.push_back(std::move(h.e));
    } else {
      ++stats_.failures;
      // Their effect is in the state: they go into the file at the next (whole) rewrite, before
      // anything held since, so the journal stays gap-free.
      rewrite_ = true;
      std::vector<held> retry;
      for (held& h : batch) retry.push_back(held{std::move(h.e), nullptr});
      queue_.insert(queue_.begin(), std::make_move_iterator(retry.begin()), std::make_move_iterator(retry.end()));
    }
    idle_cv_.notify_all();
    if (!why.empty()) {  // a full disk: do not spin
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      lock.lock();
    }
  }
  idle_cv_.notify_all();
}

std::string reply_journal::append(const std::vector<held>& batch) {
  std::vector<std::uint8_t> b;
  for (const held& h : batch) encode_journal_record(h.e, b);
  if (int e = fail_step ? fail_step("write") : 0) return errno_text("write", file_, e);
  if (!write_all(fd_, b)) return errno_text("write", file_, errno);
  if (int e = fail_step ? fail_step("sync") : 0) return errno_text("fdatasync", file_, e);
  if (::fdatasync(fd_) != 0) return errno_text("fdatasync", file_, errno);
  return {};
}

// The whole file afresh: header(base) + tail + batch, through a temp file and a rename.
std::string reply_journal::rewrite(const std::vector<held>& batch, std::uint64_t base) {
  std::vector<journal_entry> all;
  for (const journal_entry& e : tail_)
    if (e.seq > base) all.push_back(e);
  for (const held& h : batch)  // a retry may be older than the checkpoint before the latest: it holds it
    if (h.e.seq > base) all.push_back(h.e);
  const std::vector<std::uint8_t> b = encode_journal(base, all);
  std::filesystem::path tmp = file_;
  tmp += ".tmp";
  if (int e = fail_step ? fail_step("rewrite") : 0) return errno_text("write", tmp, e);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_text("open", tmp, errno);
  auto fail = [&](const char* step) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return errno_text(step, tmp, err);
  };
  if (!write_all(fd, b)) return fail("write");
  if (::fsync(fd) != 0) return fail("fsync");
  if (::rename(tmp.c_str(), file_.c_str()) != 0) return fail("rename");
  const int dfd =
      ::open(file_.parent_path().empty() ? "." : file_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;  // appends go on at its end
  ::lseek(fd_, 0, SEEK_END);
  base_ = base;
  return {};
}

}  // namespace ringflow::ops
