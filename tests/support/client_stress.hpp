// The client stress harness of the stress tests (label tsan): N threads, each with its own
// ring_client on one ring core, M echo requests each, tagged (thread << 32 | i); every answer is
// counted per request, so a test checks exactly once (lost 0, duplicated 0) and matching replies.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "actor_test_support.hpp"

namespace ringflow::test {

struct client_stress {
  int threads = 3;
  int per_thread = 1000;
  client_options client{16, std::chrono::milliseconds(30000)};
  /// callbacks: every request through submit(msg, callback); mixed: call(), the future and the
  /// callback in turn (request i uses i % 3).
  enum class mode { callbacks, mixed } how = mode::callbacks;
  int callback_window = 16;                // callbacks outstanding per thread at most
  std::chrono::milliseconds drain{60000};  // how long a thread waits for its last callbacks
};

struct client_stress_result {
  std::uint64_t once = 0;        // requests answered exactly once
  std::uint64_t lost = 0;        // never answered
  std::uint64_t duplicated = 0;  // answered more than once
  std::uint64_t mismatched = 0;  // answered with another request's reply
  std::uint64_t errors = 0;      // answered with a typed error
  int undrained = 0;             // threads whose callbacks were not all back within `drain`
};

inline client_stress_result run_client_stress(const std::shared_ptr<ring_core>& core, const client_stress& s) {
  // Shared with the callbacks (held by each): a thread that gives up waiting for its last callbacks
  // (`drain`) returns, and those callbacks must still find what they count into.
  struct tally {
    std::vector<std::vector<std::atomic<std::uint8_t>>> seen;
    std::atomic<std::uint64_t> mismatched{0}, errors{0};
  };
  auto t = std::make_shared<tally>();
  t->seen = std::vector<std::vector<std::atomic<std::uint8_t>>>(static_cast<std::size_t>(s.threads));
  for (auto& v : t->seen) v = std::vector<std::atomic<std::uint8_t>>(static_cast<std::size_t>(s.per_thread));
  std::atomic<int> undrained{0};
  std::vector<std::thread> ts;
  for (int th = 0; th < s.threads; ++th) {
    ts.emplace_back([&, th] {
      auto outstanding = std::make_shared<std::atomic<int>>(0);
      ring_client c(core, s.client);
      for (int i = 0; i < s.per_thread; ++i) {
        const std::uint64_t seq = static_cast<std::uint64_t>(th) << 32 | static_cast<std::uint64_t>(i);
        auto check = [t, th, i, seq](const call_result& r) {
          if (!r.ok()) t->errors.fetch_add(1);
          else if (echo_seq(r.reply) != seq) t->mismatched.fetch_add(1);
          t->seen[th][i].fetch_add(1);
        };
        const int way = s.how == client_stress::mode::mixed ? i % 3 : 2;
        if (way == 0) {
          check(c.call(echo_msg(seq)));  // blocking
        } else if (way == 1) {
          check(c.submit(echo_msg(seq)).get());  // future
        } else {
          while (outstanding->load() >= s.callback_window) std::this_thread::yield();
          outstanding->fetch_add(1);
          c.submit(echo_msg(seq), [outstanding, check](call_result&& r) {
            check(r);
            outstanding->fetch_sub(1);
          });
        }
      }
      if (!wait_until([&] { return outstanding->load() == 0; }, s.drain)) undrained.fetch_add(1);
    });
  }
  for (auto& x : ts) x.join();
  client_stress_result r;
  for (auto& v : t->seen)
    for (auto& n : v) {
      const std::uint8_t k = n.load();
      r.once += k == 1;
      r.lost += k == 0;
      r.duplicated += k > 1;
    }
  r.mismatched = t->mismatched.load();
  r.errors = t->errors.load();
  r.undrained = undrained.load();
  return r;
}

}  // namespace ringflow::test
