// Load with exactly-once accounting, shared by the fault tests: several client threads, each
// pipelining echo requests through its own ring_client, and a check that every request got
// exactly one answer (sent = ok + typed errors; lost = 0; duplicated = 0; the right replies).
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "actor_test_support.hpp"

namespace ringflow::test {

using namespace std::chrono_literals;

// ---- load: several threads, each pipelining echo requests through its own ring_client ---------
struct load_result {
  std::uint64_t sent = 0, ok = 0, errors = 0, lost = 0, duplicated = 0, wrong_reply = 0;
  std::vector<errc> error_codes;
};

inline load_result run_load(runtime& rt, const std::string& ring, int threads, int per_thread, int window = 16) {
  const std::size_t total = static_cast<std::size_t>(threads) * per_thread;
  auto answers = std::make_shared<std::vector<std::atomic<std::uint32_t>>>(total);
  auto ok = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto errs = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto wrong = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto codes_mu = std::make_shared<std::mutex>();
  auto codes = std::make_shared<std::vector<errc>>();
  std::atomic<std::uint64_t> sent{0};
  std::atomic<int> undrained{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      client_options co;
      co.window = static_cast<std::uint32_t>(window);
      co.default_timeout = 10000ms;
      ring_client c = rt.client(ring, co).value();
      auto outstanding = std::make_shared<std::atomic<int>>(0);
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t seq = static_cast<std::uint64_t>(t) * per_thread + i;
        while (outstanding->load() >= window) std::this_thread::yield();
        outstanding->fetch_add(1);
        sent.fetch_add(1);
        c.submit(echo_msg(seq), [=](call_result&& r) {
          (*answers)[seq].fetch_add(1);
          if (r.ok()) {
            if (echo_seq(r.reply) != seq) wrong->fetch_add(1);
            ok->fetch_add(1);
          } else {
            errs->fetch_add(1);
            std::lock_guard<std::mutex> lock(*codes_mu);
            codes->push_back(r.code);
          }
          outstanding->fetch_sub(1);
        });
      }
      // No Catch assertion on this thread (Catch is not thread-safe): the verdict is checked after join.
      if (!wait_until([&] { return outstanding->load() == 0; }, 30000ms)) undrained.fetch_add(1);
    });
  }
  for (auto& th : ts) th.join();
  REQUIRE(undrained.load() == 0);  // every thread saw all its answers within 30 s
  load_result r;
  r.sent = sent.load();
  r.ok = ok->load();
  r.errors = errs->load();
  r.wrong_reply = wrong->load();
  for (auto& a : *answers) {
    const std::uint32_t n = a.load();
    if (n == 0) ++r.lost;
    if (n > 1) ++r.duplicated;
  }
  r.error_codes = *codes;
  return r;
}

inline void require_exactly_once(const load_result& r) {
  INFO("sent " << r.sent << " ok " << r.ok << " errors " << r.errors << " lost " << r.lost << " duplicated "
               << r.duplicated << " wrong " << r.wrong_reply);
  REQUIRE(r.sent == r.ok + r.errors);
  REQUIRE(r.lost == 0);
  REQUIRE(r.duplicated == 0);
  REQUIRE(r.wrong_reply == 0);
}

}  // namespace ringflow::test
