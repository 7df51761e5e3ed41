// tests/support/stateful_vwap.hpp — driving a stateful ring actor of VwapKernel (demo_kernels.hpp)
// without the actor layer: deterministic trades, the fault-free state they give, rings that carry
// the state, a ring_core with state options, fresh snapshots, and a one-thread submitter that
// records each reply. Shared by the state tests on every backend (test_state_faults: CPU and sim;
// test_gpu_device: the GPU device).
#pragma once

#include <catch2/catch.hpp>

#include <atomic>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "actor_test_support.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"

namespace ringflow::test::stateful_vwap {

using namespace std::chrono_literals;
using vwap_state = demo_kernels::VwapKernel::state;

struct trade_spec {
  std::uint32_t key;
  std::int64_t price;
  std::uint32_t qty;
  std::uint64_t seq;
};

trade_spec trade_for(std::uint64_t seq) {
  return {static_cast<std::uint32_t>((seq * 7) % demo_kernels::vwap_keys), 100 + static_cast<std::int64_t>(seq % 13),
          1 + static_cast<std::uint32_t>(seq % 9), seq};
}

fb_msg trade_msg(const trade_spec& t) {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishTradeBuffer(b, demo::CreateTrade(b, t.key, t.price, t.qty, t.seq));
  return fb_msg(std::vector<std::uint8_t>(b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()));
}

/// The fault-free state after `trades` (sums: any order gives the same bytes).
vwap_state reference(const std::vector<trade_spec>& trades) {
  vwap_state s;
  demo_kernels::VwapKernel::init(s);
  for (const trade_spec& t : trades) {
    auto& k = s.keys[t.key];
    k.trades += 1;
    k.volume += t.qty;
    k.notional =
        static_cast<std::int64_t>(static_cast<std::uint64_t>(k.notional) + static_cast<std::uint64_t>(t.price) * t.qty);
    s.applied += 1;
  }
  return s;
}

/// Rings that carry the 776-byte state both ways.
cpu_incarnation_options state_rings() {
  cpu_incarnation_options o = quick_park();
  o.rings.requests = {.capacity = 64, .arena_bytes = 64 << 10};
  o.rings.replies = {.capacity = 64, .arena_bytes = 64 << 10};
  return o;
}

ring_actor_options state_options(std::uint32_t snapshot_every, std::uint32_t window = 64) {
  ring_actor_options o;
  o.window = window;
  o.stop_timeout = 500ms;
  o.state.state_bytes = sizeof(vwap_state);
  o.state.snapshot_every = snapshot_every;
  o.state.journal_max = snapshot_every + window + 64;
  return o;
}

std::shared_ptr<ring_core> make_core(completion_poller& poller, const ring_actor_options& o) {
  return std::make_shared<ring_core>("vwap", msg::Trade::type_id_, msg::VwapReply::type_id_, o, poller);
}

/// A fresh snapshot taken after everything answered so far; its bytes.
std::vector<std::uint8_t> fresh_snapshot(ring_core& core) {
  const std::uint64_t before = core.state()->snapshots;
  core.request_snapshot();
  REQUIRE(wait_until([&] { return core.state()->snapshots > before; }, 20000ms));
  return core.state()->bytes;
}

bool same_state(const std::vector<std::uint8_t>& bytes, const vwap_state& want) {
  return bytes.size() == sizeof want && std::memcmp(bytes.data(), &want, sizeof want) == 0;
}

/// Submits `trades` from one thread (at most `window` outstanding); records each reply's trade count.
struct one_submitter {
  std::shared_ptr<ring_core> core;
  std::vector<std::atomic<int>> answers;
  std::vector<std::atomic<std::uint64_t>> key_trades;  // the reply's running trade count of the key
  std::atomic<int> errors{0};
  explicit one_submitter(std::shared_ptr<ring_core> c, std::size_t n) : core(std::move(c)), answers(n), key_trades(n) {}
  /// Waits until each of the first `n` trades has its answer counted (the callback counts it last:
  /// after that nothing of it touches the submitter, which may then go; the core's in_flight drops
  /// before the callback runs, so it cannot tell).
  bool wait_answered(std::size_t n, std::chrono::milliseconds limit = 30000ms) {
    return wait_until(
        [&] {
          for (std::size_t i = 0; i < n; ++i)
            if (answers[i].load() == 0) return false;
          return true;
        },
        limit);
  }
  /// Waits for every answer, then checks each trade was answered once, without an error, with the
  /// running count of its key a fault-free run gives at that point (one submitter: the kernel
  /// applied them in submission order).
  void require_answered_in_order(const std::vector<trade_spec>& trades) {
    REQUIRE(wait_answered(trades.size()));
    CHECK(errors.load() == 0);
    std::vector<std::uint64_t> running(demo_kernels::vwap_keys, 0);
    for (std::size_t i = 0; i < trades.size(); ++i) {
      INFO("trade " << i);
      REQUIRE(answers[i].load() == 1);
      REQUIRE(key_trades[i].load() == ++running[trades[i].key]);
    }
  }
  void submit(const trade_spec& t, std::size_t i) {
    completion_target target;
    target.callback = [this, i](call_result&& r) {
      if (!r.ok()) {
        errors.fetch_add(1);
      } else {
        const auto* v = flatbuffers::GetRoot<demo::VwapReply>(r.reply.bytes.data());
        key_trades[i].store(v->trades());
      }
      answers[i].fetch_add(1);
    };
    std::string detail;
    for (;;) {
      fb_msg m = trade_msg(t);
      const errc e = core->submit(std::move(m), std::move(target), nullptr, detail);
      if (e == errc::ok) return;
      REQUIRE(e == errc::overloaded);  // the window: wait for replies
      std::this_thread::yield();
    }
  }
};

}  // namespace ringflow::test::stateful_vwap
