// The group-committing reply journal under concurrency (runtime/reply_journal.hpp; label tsan):
// one reply consumer holding requests as fast as it can, a checkpointer thread rotating the file,
// a flusher, and write failures injected at random. Invariants: every release runs exactly once,
// and only with true when its request is in the file; the file stays gap-free and ends with the
// last request held; it keeps everything after the checkpoint before the latest one.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "ringflow/runtime/reply_journal.hpp"
#include "support/program_run.hpp"

namespace fs = std::filesystem;
using namespace ringflow::ops;

TEST_CASE("reply journal stress: exactly one release per request, a gap-free file, rotations and failures",
          "[checkpoint][stress]") {
  const fs::path dir = ringflow::testing::temp_dir() / "journal-stress";
  fs::remove_all(dir);
  fs::create_directories(dir);
  constexpr std::uint64_t n = 20000;
  std::vector<std::atomic<int>> released(n + 1), durable(n + 1);
  std::atomic<std::uint64_t> failures{0};
  reply_journal j(dir / "r.journal", [&](const std::string&) { failures.fetch_add(1); });
  std::atomic<std::uint32_t> fail_seed{1};
  j.fail_step = [&](const char*) {  // about 1 commit in 50 fails (ENOSPC or EIO)
    const std::uint32_t x = fail_seed.fetch_add(0x9e3779b9u) * 2654435761u;
    return (x >> 24) % 50 == 0 ? ((x & 1) ? ENOSPC : EIO) : 0;
  };
  REQUIRE(j.open(0, {}).empty());

  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> held{0}, last_checkpoint{0};
  std::thread checkpointer([&] {
    std::uint64_t c = 0;
    while (!done.load()) {
      const std::uint64_t h = held.load();
      if (h > c + 1000) {
        c = h - 500;
        j.checkpointed(c);
        last_checkpoint.store(c);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  std::thread flusher([&] {
    while (!done.load()) {
      j.flush();
      std::this_thread::sleep_for(std::chrono::microseconds(700));
    }
  });
  for (std::uint64_t s = 1; s <= n; ++s) {
    j.hold(s, std::vector<std::uint8_t>(1 + s % 40, static_cast<std::uint8_t>(s)), [&, s](bool d) {
      released[s].fetch_add(1);
      if (d) durable[s].fetch_add(1);
    });
    held.store(s);
    if (s % 16 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));  // replies arrive over time
    if (s % 200 == 0) j.flush();  // at least one commit per 200 (a slow machine groups more)
  }
  j.flush();
  done.store(true);
  checkpointer.join();
  flusher.join();
  j.stop();

  std::uint64_t ok = 0;
  for (std::uint64_t s = 1; s <= n; ++s) {
    REQUIRE(released[s].load() == 1);
    ok += static_cast<std::uint64_t>(durable[s].load());
  }
  const reply_journal::counters st = j.stats();
  CHECK(st.commits >= n / 200);  // many commits (the flushes force them), each a group
  CHECK(st.failures > 0);        // the injection fired (its 5th call does), those replies failed
  CHECK(ok < n);
  CHECK(st.rewrites > 0);
  INFO("durable " << ok << ", failed commits " << st.failures << ", commits " << st.commits);
  CHECK(failures.load() == st.failures);
  // Every request reached the file in the end (the failed ones at a later rewrite), gap-free.
  const journal_contents c = read_journal(dir / "r.journal");
  INFO("journal: " << c.note << " base " << c.base << " entries " << c.entries.size());
  CHECK(c.note.empty());
  REQUIRE_FALSE(c.entries.empty());
  CHECK(c.entries.back().seq == n);
  CHECK(c.base <= last_checkpoint.load());
  CHECK(c.entries.front().seq == c.base + 1);
  for (const journal_entry& e : c.entries) {
    CHECK(e.bytes.size() == 1 + e.seq % 40);
    CHECK(e.bytes[0] == static_cast<std::uint8_t>(e.seq));
  }
}
