// Two-thread stress of the SPSC ring with checked invariants: every message arrives exactly once,
// in order, with intact payload. Message count: RINGFLOW_STRESS_MESSAGES (default 10,000,000).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <thread>

#include "ringflow/ring.hpp"
#include "ringflow/ring_storage.hpp"

using namespace ringflow;

namespace {

std::uint64_t stress_messages(std::uint64_t fallback) {
  const char* env = std::getenv("RINGFLOW_STRESS_MESSAGES");
  return env ? std::strtoull(env, nullptr, 10) : fallback;
}

// Payload of message i: 8..(8 + 8*k) bytes, each u64 word = i * (w + 1); occasionally large
// (arena) when the ring has one.
std::uint32_t words_of(std::uint64_t i, bool arena) {
  if (arena && i % 61 == 0) return 40 + static_cast<std::uint32_t>(i % 50);  // 320..712 bytes
  return 1 + static_cast<std::uint32_t>(i % 7);
}

// Spin briefly, then yield: on a 2-core machine (and under TSan) a pure spin starves the peer.
struct spin_then_yield {
  std::uint32_t n = 0;
  void operator()() {
    if (++n < 64) {
      cpu_relax();
    } else {
      n = 0;
      std::this_thread::yield();
    }
  }
};

void run_stress(const ring_config& cfg, std::uint64_t total, bool bulk) {
  ringflow::ring_storage storage(cfg);
  const bool arena = cfg.arena_bytes > 0;
  std::uint64_t received = 0;
  bool order_ok = true, payload_ok = true;

  std::thread consumer([&] {
    ring_consumer c(storage.region());
    std::uint64_t expect = 0;
    spin_then_yield idle;
    while (expect < total) {
      const std::uint32_t n = bulk ? c.peek_bulk(32) : (c.try_peek() ? 1u : 0u);
      if (n == 0) {
        idle();
        continue;
      }
      for (std::uint32_t k = 0; k < n; ++k) {
        const slot_header* h = c.at(k);
        order_ok = order_ok && h->correlation_id == expect;
        const std::uint32_t words = words_of(expect, arena);
        payload_ok = payload_ok && h->payload_len == words * 8;
        const std::uint8_t* p = c.payload(h);
        for (std::uint32_t w = 0; w < words && payload_ok; ++w) {
          std::uint64_t v;
          std::memcpy(&v, p + 8 * w, 8);
          payload_ok = v == expect * (w + 1);
        }
        ++expect;
      }
      c.release_bulk(n);
    }
    c.publish();
    received = expect;
  });

  ring_producer p(storage.region(), storage.producer_scratch());
  std::uint64_t buf[128];
  spin_then_yield full;
  for (std::uint64_t i = 0; i < total; ++i) {
    const std::uint32_t words = words_of(i, arena);
    for (std::uint32_t w = 0; w < words; ++w) buf[w] = i * (w + 1);
    ring_message m{};
    m.header.correlation_id = i;
    m.payload = buf;
    m.payload_len = words * 8;
    while (p.try_push(m) != ring_status::ok) full();
  }
  consumer.join();
  CHECK(received == total);
  CHECK(order_ok);
  CHECK(payload_ok);
  // Nothing left behind, nothing invented.
  ring_consumer after(storage.region());
  CHECK(after.try_peek() == nullptr);
  CHECK(ring_observer(storage.region()).tail() == total);
}

}  // namespace

TEST_CASE("stress: 10M messages, two threads, exactly once and in order", "[ring][stress]") {
  ring_config cfg;
  cfg.capacity = 1024;
  cfg.slot_size = 128;
  run_stress(cfg, stress_messages(10'000'000), false);
}

TEST_CASE("stress: bulk pops with a small ring (many laps, head batching at the edge)", "[ring][stress]") {
  ring_config cfg;
  cfg.capacity = 8;
  cfg.slot_size = 128;
  cfg.head_batch = 4;
  run_stress(cfg, stress_messages(10'000'000) / 5, true);
}

TEST_CASE("stress: arena payloads interleaved with inline ones", "[ring][stress][arena]") {
  ring_config cfg;
  cfg.capacity = 64;
  cfg.slot_size = 128;
  cfg.arena_bytes = 4096;
  run_stress(cfg, stress_messages(10'000'000) / 5, true);
}
