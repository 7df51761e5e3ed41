// Ring protocol v2 (ring.hpp, docs/ARCHITECTURE.md "Ring protocol v2") on the host: the LL16 slot
// codec against adversarial writers (units in any order, a unit written in halves), wrap-around at
// every ring size, batches that straddle the end of the ring, the credit rule (no request slot is
// reused before its reply was consumed), arena payloads, version checks, and the three-thread
// exactly-once stress (host producer -> "device" worker serving with serve_one -> host consumer).
// Labels: protocol (and tsan for the threaded cases). Message count of the stress:
// RINGFLOW_STRESS_MESSAGES (default 10,000,000; 1,000,000 in a ThreadSanitizer build).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/kernel.hpp"
#include "ringflow/ring.hpp"
#include "ringflow/ring_storage.hpp"

using namespace ringflow;

namespace {

std::uint64_t stress_messages(std::uint64_t fallback) {
  const char* env = std::getenv("RINGFLOW_STRESS_MESSAGES");
  return env ? std::strtoull(env, nullptr, 10) : fallback;
}

ring_config v2_config(std::uint32_t capacity, std::uint32_t slot = 512, std::uint32_t arena = 0) {
  ring_config c{capacity, slot, arena, 0};
  c.protocol = ring_protocol::v2;
  return c;
}

/// 64-byte aligned scratch of at least n bytes (what images and claim buffers need).
struct aligned_buf {
  std::vector<slot_header> u;
  explicit aligned_buf(std::size_t n) : u((n + 63) / 64 + 1) {}
  std::uint8_t* data() { return reinterpret_cast<std::uint8_t*>(u.data()); }
  std::uint32_t size() const { return static_cast<std::uint32_t>(u.size() * sizeof(slot_header)); }
};

slot_header header_for(std::uint64_t corr, type_id type = msg::Echo::type_id_) {
  slot_header h{};
  h.correlation_id = corr;
  h.type_id = type;
  h.deadline_ns = 0xdead0000ull + corr;
  for (int i = 0; i < 16; ++i) h.trace_id[i] = static_cast<std::uint8_t>(corr * 3 + i);
  for (int i = 0; i < 8; ++i) h.span_id[i] = static_cast<std::uint8_t>(corr * 5 + i);
  return h;
}

std::vector<std::uint8_t> payload_for(std::uint64_t i, std::uint32_t len) {
  std::vector<std::uint8_t> p(len);
  for (std::uint32_t k = 0; k < len; ++k) p[k] = static_cast<std::uint8_t>(i * 31 + k * 7 + 1);
  return p;
}

/// The host side of a v2 ring pair as ring_core drives it (credit from the replies, decoded image).
struct host_side {
  ring_producer requests;
  ring_consumer replies;
  aligned_buf image;
  host_side(ring_storage& rq, ring_storage& rp)
      : requests(rq.region(), rq.producer_scratch()),
        replies(rp.region()),
        image(ll::image_bytes(rp.region().config().inline_capacity())) {
    requests.use_credit_from(rp.region());
    REQUIRE(replies.set_image_buffer(image.data(), image.size()));
  }
};

/// The device side as the persistent worker binds it (lazy head, implied credit, staging).
struct device_side {
  ring_consumer requests;
  ring_producer replies;
  aligned_buf req_stage, rep_stage;
  serve_staging staging;
  bool ok = false;
  device_side(ring_storage& rq, ring_storage& rp, std::uint32_t stage_bytes = 4096)
      : requests(rq.region(), true),
        replies(rp.region(), rp.producer_scratch()),
        req_stage(stage_bytes),
        rep_stage(stage_bytes) {
    staging = {req_stage.data(), stage_bytes, rep_stage.data(), stage_bytes};
    ok = requests.set_image_buffer(staging.request, staging.request_bytes);  // (checked by the caller's thread)
    ok = ok && replies.set_claim_buffer(staging.reply, staging.reply_bytes);
    replies.assume_credit();
    replies.set_lazy_tail(true);
  }
  serve_result serve(serve_tally& t) { return serve_one<demo_kernels::EchoKernel>(requests, replies, 0, t, &staging); }
};

/// memcmp that accepts empty ranges (an empty vector's data() may be null: memcmp's UB).
bool same_bytes(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) {
  return n == 0 || std::memcmp(a, b, n) == 0;
}

void require_image(const std::uint8_t* image, const slot_header& want, const std::vector<std::uint8_t>& payload,
                   std::uint64_t flag) {
  slot_header got;
  std::memcpy(&got, image, sizeof got);
  CHECK(got.seq == flag);
  CHECK(std::memcmp(reinterpret_cast<const std::uint8_t*>(&got) + 8, reinterpret_cast<const std::uint8_t*>(&want) + 8,
                    56) == 0);
  CHECK(same_bytes(image + sizeof(slot_header), payload.data(), payload.size()));
}

}  // namespace

TEST_CASE("ring v2: the slot codec carries every header byte and every inline length, flag = pos + 1", "[ring][v2]") {
  for (std::uint32_t slot : {256u, 512u, 1024u}) {
    const ring_config c = v2_config(4, slot);
    REQUIRE(c.valid());
    CHECK(c.inline_capacity() == slot / 2 - 56);
    std::vector<ll_unit> units(slot / 16, ll_unit{0, 0});
    aligned_buf image(ll::image_bytes(c.inline_capacity()));
    for (std::uint32_t len = 0; len <= c.inline_capacity(); ++len) {
      slot_header h = header_for(len + 1);
      h.payload_len = len;
      const std::vector<std::uint8_t> p = payload_for(len, len);
      const std::uint64_t flag = 1000 + len;
      ll::write_slot(units.data(), h, p.data(), len, flag);
      REQUIRE(ll::read_slot(units.data(), slot / 16, flag, c.inline_capacity(), image.data()));
      require_image(image.data(), h, p, flag);
      // The previous lap's flag (and the next one's) never matches.
      CHECK_FALSE(ll::read_slot(units.data(), slot / 16, flag + 4, c.inline_capacity(), image.data()));
      CHECK_FALSE(ll::read_slot(units.data(), slot / 16, flag - 4, c.inline_capacity(), image.data()));
    }
  }
  // An unaligned payload pointer is packed byte by byte (no misaligned 8-byte load).
  std::vector<ll_unit> units(32, ll_unit{0, 0});
  std::vector<std::uint8_t> raw = payload_for(9, 101);
  slot_header h = header_for(9);
  h.payload_len = 100;
  ll::write_slot(units.data(), h, raw.data() + 1, 100, 7);
  aligned_buf image(ll::image_bytes(200));
  REQUIRE(ll::read_slot(units.data(), 32, 7, 200, image.data()));
  CHECK(std::memcmp(image.data() + 64, raw.data() + 1, 100) == 0);
}

TEST_CASE("ring v2: a slot written unit by unit in any order, or a unit in halves (data first), is never taken early",
          "[ring][v2][torn]") {
  // The emulated writer models what a device or the PCIe fabric may do to separate stores: units
  // land in any order, and a unit whose data half lands before its flag half. After every partial
  // step the consumer must either see nothing or — only once every unit is whole — exactly the
  // new message. The slot starts with the previous lap's message (flag - capacity).
  const std::uint32_t slot = 512, cap = 8;
  const std::uint32_t inline_cap = slot / 2 - 56;
  std::mt19937 rng(12345);
  aligned_buf image(ll::image_bytes(inline_cap));
  std::uint64_t taken_early = 0, checked = 0;
  for (int round = 0; round < 400; ++round) {
    std::vector<ll_unit> units(slot / 16);
    const std::uint32_t old_len = rng() % (inline_cap + 1), new_len = rng() % (inline_cap + 1);
    const std::uint64_t flag = 100 + round + cap;
    slot_header old_h = header_for(round), new_h = header_for(round + 5000);
    old_h.payload_len = old_len;
    new_h.payload_len = new_len;
    const auto old_p = payload_for(round, old_len), new_p = payload_for(round + 5000, new_len);
    ll::write_slot(units.data(), old_h, old_p.data(), old_len, flag - cap);
    // The target units, computed by a reference encoder into a scratch slot.
    std::vector<ll_unit> target(slot / 16);
    std::copy(units.begin(), units.end(), target.begin());
    ll::write_slot(target.data(), new_h, new_p.data(), new_len, flag);
    const std::uint32_t n = ll::units_for(new_len);
    // Steps: (unit, half) with half 0 = data, 1 = flag; data before flag within a unit; units shuffled.
    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<std::pair<std::uint32_t, int>> steps;
    for (std::uint32_t u : order) steps.emplace_back(u, 0);
    for (std::uint32_t u : order) steps.emplace_back(u, 1);
    std::shuffle(steps.begin(), steps.end(), rng);
    // Restore "data before flag" per unit: a unit's flag step moves after its data step.
    for (std::uint32_t u = 0; u < n; ++u) {
      auto d = std::find(steps.begin(), steps.end(), std::make_pair(u, 0));
      auto f = std::find(steps.begin(), steps.end(), std::make_pair(u, 1));
      if (f < d) std::iter_swap(d, f);
    }
    for (std::size_t s = 0; s < steps.size(); ++s) {
      const auto [u, half] = steps[s];
      if (half == 0) units[u].data = target[u].data;
      else units[u].flag = target[u].flag;
      const bool got = ll::read_slot(units.data(), slot / 16, flag, inline_cap, image.data());
      ++checked;
      if (s + 1 < steps.size()) {
        if (got) ++taken_early;
      } else {
        REQUIRE(got);
        require_image(image.data(), new_h, new_p, flag);
      }
    }
  }
  CHECK(checked > 10000);
  CHECK(taken_early == 0);
}

TEST_CASE("ring v2: a unit whose flag lands before its data is what the protocol relies on the hardware to exclude",
          "[ring][v2][torn]") {
  // The negative control of the case above: with the flag half first, the consumer accepts a slot
  // holding the previous lap's data — the checker sees it. This is the 16-byte single-copy
  // atomicity that ringflow_test_gpu_ll16 checks on a GPU before v2 may be trusted there.
  const std::uint32_t slot = 512, inline_cap = slot / 2 - 56;
  std::vector<ll_unit> units(slot / 16);
  slot_header old_h = header_for(1), new_h = header_for(2);
  old_h.payload_len = new_h.payload_len = 64;
  const auto old_p = payload_for(1, 64), new_p = payload_for(2, 64);
  ll::write_slot(units.data(), old_h, old_p.data(), 64, 1);
  std::vector<ll_unit> target(units);
  ll::write_slot(target.data(), new_h, new_p.data(), 64, 9);
  for (std::uint32_t u = 0; u < ll::units_for(64); ++u) units[u].flag = target[u].flag;  // flags first
  units[0].data = target[0].data;                                                        // one data half
  aligned_buf image(ll::image_bytes(inline_cap));
  REQUIRE(ll::read_slot(units.data(), slot / 16, 9, inline_cap, image.data()));  // accepted: torn
  CHECK(std::memcmp(image.data() + 64, new_p.data(), 64) != 0);                  // and the checker sees it
}

TEST_CASE("ring v2: wrap-around at every ring size 2..65536 and bulk batches that straddle the end", "[ring][v2]") {
  for (std::uint32_t cap = 2; cap <= 65536; cap *= 2) {
    INFO("capacity " << cap);
    ring_storage rq(v2_config(cap, 256)), rp(v2_config(cap, 256));
    host_side host(rq, rp);
    device_side dev(rq, rp);
    REQUIRE(dev.ok);
    const std::uint64_t total = 3ull * cap + 5;
    std::uint64_t pushed = 0, served = 0, consumed = 0;
    std::mt19937 rng(cap);
    bool order_ok = true, content_ok = true;
    serve_tally t;
    while (consumed < total) {
      // A bulk batch of up to cap + 3 (so batches straddle the end of the ring at every size).
      const std::uint32_t want =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(total - pushed, 1 + rng() % (cap + 3)));
      std::vector<std::vector<std::uint8_t>> payloads;
      std::vector<ring_message> msgs(want);
      for (std::uint32_t k = 0; k < want; ++k) payloads.push_back(payload_for(pushed + k, (pushed + k) % 73));
      for (std::uint32_t k = 0; k < want; ++k)
        msgs[k] = {header_for(pushed + k), payloads[k].data(), static_cast<std::uint32_t>(payloads[k].size())};
      ring_status st = ring_status::ok;
      const std::uint32_t k = host.requests.try_push_bulk(msgs.data(), want, &st);
      pushed += k;
      // The credit rule, checked at every push: never more in flight than the ring holds.
      REQUIRE(pushed - consumed <= cap);
      if (k < want) CHECK(st == ring_status::full);
      // The device serves a random share of what is there.
      for (std::uint32_t s = rng() % (cap + 1) + 1; s > 0; --s) {
        if (dev.serve(t) != serve_result::served) break;
        ++served;
      }
      REQUIRE(served <= pushed);
      for (std::uint32_t c = rng() % (cap + 1) + 1; c > 0; --c) {
        const slot_header* h = host.replies.try_peek();
        if (!h) break;
        order_ok = order_ok && h->correlation_id == consumed && h->status == 0;
        const auto p = payload_for(consumed, consumed % 73);
        content_ok =
            content_ok && h->payload_len == p.size() && same_bytes(host.replies.payload(h), p.data(), p.size());
        host.replies.release();
        ++consumed;
      }
      REQUIRE(consumed <= served);
    }
    CHECK(order_ok);
    CHECK(content_ok);
    CHECK(t.served == total);
    CHECK(host.replies.try_peek() == nullptr);
  }
}

TEST_CASE("ring v2: arena payloads both ways, freed by the replies the host consumed", "[ring][v2]") {
  const std::uint32_t cap = 16;
  ring_storage rq(v2_config(cap, 256, 8192)), rp(v2_config(cap, 256, 8192));
  host_side host(rq, rp);
  device_side dev(rq, rp, 16384);
  REQUIRE(dev.ok);
  serve_tally t;
  std::uint64_t pushed = 0, consumed = 0;
  const std::uint64_t total = 2000;
  std::mt19937 rng(7);
  while (consumed < total) {
    while (pushed < total) {
      const std::uint32_t len = rng() % 3 == 0 ? 100 + rng() % 1800 : rng() % 72;  // inline or arena
      const auto p = payload_for(pushed, len);
      const ring_message m{header_for(pushed), p.data(), len};
      const ring_status st = host.requests.try_push(m);
      if (st != ring_status::ok) {
        REQUIRE(st == ring_status::full);
        break;
      }
      ++pushed;
      REQUIRE(pushed - consumed <= cap);
    }
    while (dev.serve(t) == serve_result::served) {}
    while (const slot_header* h = host.replies.try_peek()) {
      REQUIRE(h->correlation_id == consumed);
      REQUIRE(h->status == 0);
      std::vector<std::uint8_t> got(host.replies.payload(h), host.replies.payload(h) + h->payload_len);
      host.replies.release();
      // The reply is the request's payload (echo), inline or from the reply arena.
      REQUIRE(got.size() < 2000);
      const auto p = payload_for(consumed, static_cast<std::uint32_t>(got.size()));
      CHECK(got == p);
      ++consumed;
    }
    host.replies.publish();
  }
  CHECK(t.served == total);
  CHECK(t.rejected == 0);
}

TEST_CASE("ring v2: a payload larger than the inline room and the arena is oversize, the ring untouched",
          "[ring][v2]") {
  ring_storage rq(v2_config(4, 256)), rp(v2_config(4, 256));
  host_side host(rq, rp);
  const auto p = payload_for(1, 73);  // inline room 72, no arena
  CHECK(host.requests.try_push({header_for(1), p.data(), 73}) == ring_status::oversize);
  CHECK(host.requests.position() == 0);
  const auto q = payload_for(1, 72);
  CHECK(host.requests.try_push({header_for(1), q.data(), 72}) == ring_status::ok);
}

TEST_CASE("ring v2: geometry and version are checked: slot >= 256, protocol 1 or 2, views pin the protocol",
          "[ring][v2]") {
  ring_config c = v2_config(4, 128);
  CHECK_FALSE(c.valid());
  CHECK_THROWS_WITH(ring_storage::validate(c), Catch::Contains("slot_size >= 256"));
  c = ring_config{4, 256, 0, 0};
  c.protocol = 3;
  CHECK_FALSE(c.valid());
  CHECK_THROWS_WITH(ring_storage::validate(c), Catch::Contains("protocol 3"));
  // A pinned v2 view of a region whose config line says v1 (a peer that rewrote it) is not intact.
  ring_storage rq(v2_config(4, 256));
  const ring_region pinned(rq.region().base(), v2_config(4, 256));
  CHECK(pinned.config_intact());
  rq.region().shared()->config.protocol = ring_protocol::v1;
  CHECK_FALSE(pinned.config_intact());
}

TEST_CASE("ring v2: discard_rings restarts all four cursors at the request tail, stale units never match",
          "[ring][v2]") {
  ring_storage rq(v2_config(8, 256)), rp(v2_config(8, 256));
  {
    host_side host(rq, rp);
    device_side dev(rq, rp);
    serve_tally t;
    for (std::uint64_t i = 0; i < 13; ++i) {
      const auto p = payload_for(i, 40);
      REQUIRE(host.requests.try_push({header_for(i), p.data(), 40}) == ring_status::ok);
      if (i < 9) {  // the "kernel" serves 9 and dies (its reply tail is never published)
        REQUIRE(dev.serve(t) == serve_result::served);
      }
      if (i < 5) {
        REQUIRE(host.replies.try_peek());
        host.replies.release();
        host.replies.publish();  // the credit for request i + 8
      }
    }
    host.replies.publish();
  }
  discard_rings(rq.region(), rp.region());
  CHECK(rq.region().shared()->head == 13);
  CHECK(rp.region().shared()->head == 13);
  CHECK(rp.region().shared()->tail == 13);
  host_side host(rq, rp);
  device_side dev(rq, rp);
  CHECK(host.replies.try_peek() == nullptr);  // the 4 unconsumed old replies are gone
  serve_tally t;
  CHECK(dev.serve(t) == serve_result::idle);  // the 4 unserved old requests are gone
  const auto p = payload_for(100, 10);
  REQUIRE(host.requests.try_push({header_for(100), p.data(), 10}) == ring_status::ok);
  REQUIRE(dev.serve(t) == serve_result::served);
  const slot_header* h = host.replies.try_peek();
  REQUIRE(h);
  CHECK(h->correlation_id == 100);
}

TEST_CASE("ring v2 stress: 10M messages host -> device worker -> host, each exactly once, in order, intact",
          "[ring][v2][stress]") {
#if defined(RINGFLOW_TSAN_BUILD)
  const std::uint64_t total = stress_messages(1'000'000);  // TSan: ~20x slower per message
#else
  const std::uint64_t total = stress_messages(10'000'000);
#endif
  const std::uint32_t cap = 256;
  ring_storage rq(v2_config(cap, 256, 16384)), rp(v2_config(cap, 256, 16384));
  std::atomic<bool> failed{false};
  std::uint64_t replies_seen = 0, bad_order = 0, bad_payload = 0, in_flight_violations = 0;
  std::atomic<std::uint64_t> consumed_shared{0};

  auto len_of = [](std::uint64_t i) -> std::uint32_t {
    return i % 97 == 0 ? 200 + static_cast<std::uint32_t>(i % 500) : static_cast<std::uint32_t>(i % 72);
  };
  auto spin = [](std::uint32_t& n) {
    if (++n < 64) {
      cpu_relax();
    } else {
      n = 0;
      std::this_thread::yield();
    }
  };
  host_side host(rq, rp);  // the producer and the consumer below are different threads, as in ring_core

  std::thread device([&] {
    device_side dev(rq, rp);
    if (!dev.ok) failed = true;
    serve_tally t;
    std::uint32_t idle = 0;
    while (t.served < total && !failed.load(std::memory_order_relaxed)) {
      if (dev.serve(t) == serve_result::served) idle = 0;
      else spin(idle);
    }
  });
  std::thread consumer([&] {
    std::uint32_t idle = 0;
    while (replies_seen < total && !failed.load(std::memory_order_relaxed)) {
      const slot_header* h = host.replies.try_peek();
      if (!h) {
        spin(idle);
        continue;
      }
      idle = 0;
      if (h->correlation_id != replies_seen) ++bad_order;
      const std::uint32_t len = len_of(replies_seen);
      const std::uint8_t* p = host.replies.payload(h);
      bool ok = h->payload_len == len && h->status == 0;
      for (std::uint32_t k = 0; ok && k < len; ++k)
        ok = p[k] == static_cast<std::uint8_t>(replies_seen * 31 + k * 7 + 1);
      if (!ok) ++bad_payload;
      // Counted before release() can publish the head the producer's credit comes from, so a
      // producer that saw that head sees this count too.
      consumed_shared.store(replies_seen + 1, std::memory_order_relaxed);
      host.replies.release();
      ++replies_seen;
      if (bad_order + bad_payload > 10) failed = true;
    }
    host.replies.publish();
  });
  std::vector<std::uint8_t> buf(1024);
  std::uint32_t idle = 0;
  for (std::uint64_t i = 0; i < total && !failed.load(std::memory_order_relaxed);) {
    const std::uint32_t len = len_of(i);
    for (std::uint32_t k = 0; k < len; ++k) buf[k] = static_cast<std::uint8_t>(i * 31 + k * 7 + 1);
    const ring_status st = host.requests.try_push({header_for(i), buf.data(), len});
    if (st == ring_status::ok) {
      ++i;
      // Credit: what the producer has in flight never exceeds the ring (consumed lags, so >=).
      if (i - consumed_shared.load(std::memory_order_relaxed) > cap) ++in_flight_violations;
      idle = 0;
    } else {
      REQUIRE(st == ring_status::full);
      spin(idle);
    }
  }
  device.join();
  consumer.join();
  CHECK_FALSE(failed.load());
  CHECK(replies_seen == total);
  CHECK(bad_order == 0);
  CHECK(bad_payload == 0);
  CHECK(in_flight_violations == 0);
}
