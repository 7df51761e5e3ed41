// The SPSC slot ring: empty/full, wrap-around, bulk, arena, capacity edges, resume.
#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>
#include <vector>

#include "ringflow/ring.hpp"
#include "ringflow/ring_storage.hpp"

using namespace ringflow;
using ringflow::ring_storage;

namespace {

ring_message make_msg(std::uint64_t id, const void* payload, std::uint32_t len) {
  ring_message m{};
  m.header.correlation_id = id;
  m.header.type_id = 0x51;
  m.payload = payload;
  m.payload_len = len;
  return m;
}

bool push_u64(ring_producer& p, std::uint64_t v) {
  const auto m = make_msg(v, &v, sizeof v);
  return p.try_push(m) == ring_status::ok;
}

bool pop_u64(ring_consumer& c, std::uint64_t& v) {
  slot_header h{};
  std::uint32_t len = 0;
  if (c.try_pop(h, &v, sizeof v, len) != ring_status::ok) return false;
  REQUIRE(len == sizeof v);
  REQUIRE(h.correlation_id == v);
  return true;
}

ring_config cfg(std::uint32_t capacity, std::uint32_t arena = 0, std::uint32_t batch = 0, std::uint32_t slot = 128) {
  ring_config c;
  c.capacity = capacity;
  c.slot_size = slot;
  c.arena_bytes = arena;
  c.head_batch = batch;
  return c;
}

}  // namespace

TEST_CASE("slot header layout is fixed", "[ring]") {
  CHECK(sizeof(slot_header) == 64);
  CHECK(ring_layout::slots_offset % 128 == 0);
  CHECK(offsetof(ring_shared, tail) - offsetof(ring_shared, head) >= 128);  // separate lines
}

TEST_CASE("an empty ring pops nothing", "[ring]") {
  ring_storage s(cfg(8));
  ring_consumer c(s.region());
  std::uint64_t v = 0;
  CHECK(c.try_peek() == nullptr);
  CHECK_FALSE(pop_u64(c, v));
  CHECK(c.peek_bulk(8) == 0);
  CHECK(ring_observer(s.region()).depth() == 0);
}

TEST_CASE("a full ring refuses pushes until the consumer publishes its head", "[ring]") {
  ring_storage s(cfg(8, 0, 4));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  for (std::uint64_t i = 0; i < 8; ++i) REQUIRE(push_u64(p, i));
  CHECK(ring_observer(s.region()).depth() == 8);
  std::uint64_t v = 99;
  CHECK(p.try_push(make_msg(v, &v, 8)) == ring_status::full);
  CHECK(ring_observer(s.region()).full_events() == 1);
  // One pop is below the head batch (4): the producer still sees a full ring.
  REQUIRE(pop_u64(c, v));
  CHECK(v == 0);
  CHECK_FALSE(push_u64(p, 100));
  // Reaching the batch publishes head: room for 4.
  for (std::uint64_t i = 1; i < 4; ++i) {
    REQUIRE(pop_u64(c, v));
    CHECK(v == i);
  }
  for (std::uint64_t i = 8; i < 12; ++i) CHECK(push_u64(p, i));
  CHECK_FALSE(push_u64(p, 12));
  // Draining to empty publishes head regardless of the batch.
  for (std::uint64_t i = 4; i < 12; ++i) {
    REQUIRE(pop_u64(c, v));
    CHECK(v == i);
  }
  CHECK_FALSE(pop_u64(c, v));
  CHECK(p.free_slots() == 8);
}

TEST_CASE("messages survive wrap-around many times, in order", "[ring]") {
  const std::uint32_t capacity = GENERATE(2u, 4u, 16u);
  ring_storage s(cfg(capacity));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  std::uint64_t next_push = 0, next_pop = 0;
  std::uint64_t v = 0;
  // Interleave pushes and pops in varying amounts: 100k positions = thousands of laps.
  while (next_pop < 100000) {
    const std::uint64_t burst = 1 + (next_push * 7) % capacity;
    for (std::uint64_t k = 0; k < burst && push_u64(p, next_push); ++k) ++next_push;
    const std::uint64_t take = 1 + (next_pop * 5) % capacity;
    for (std::uint64_t k = 0; k < take && pop_u64(c, v); ++k) {
      REQUIRE(v == next_pop);
      ++next_pop;
    }
  }
  CHECK(p.position() >= 100000);
  CHECK(c.position() == next_pop);
}

TEST_CASE("bulk push and bulk pop", "[ring]") {
  ring_storage s(cfg(16));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  std::vector<std::uint64_t> vals(40);
  std::iota(vals.begin(), vals.end(), 1000);
  std::vector<ring_message> msgs;
  for (auto& v : vals) msgs.push_back(make_msg(v, &v, sizeof v));
  ring_status why{};
  const auto pushed = p.try_push_bulk(msgs.data(), 40, &why);
  CHECK(pushed == 16);
  CHECK(why == ring_status::full);
  const auto ready = c.peek_bulk(64);
  REQUIRE(ready == 16);
  for (std::uint32_t i = 0; i < ready; ++i) {
    const slot_header* h = c.at(i);
    std::uint64_t v = 0;
    std::memcpy(&v, c.payload(h), 8);
    CHECK(v == 1000 + i);
    CHECK(h->correlation_id == 1000 + i);
  }
  c.release_bulk(ready);
  c.publish();
  CHECK(p.try_push_bulk(msgs.data() + 16, 24) == 16);
  CHECK(c.peek_bulk(5) == 5);
  c.release_bulk(5);
  CHECK(c.peek_bulk(64) == 11);
}

TEST_CASE("payloads larger than a slot go to the arena, larger than the arena are oversize", "[ring][arena]") {
  ring_storage s(cfg(8, 1024));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  CHECK(p.inline_capacity() == 64);
  CHECK(p.max_payload() == 1024);
  std::vector<std::uint8_t> big(500);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 31);
  REQUIRE(p.try_push(make_msg(1, big.data(), 500)) == ring_status::ok);
  std::vector<std::uint8_t> huge(1025);
  CHECK(p.try_push(make_msg(2, huge.data(), 1025)) == ring_status::oversize);
  // Second 500 fits (512 + 512 = 1024), a third does not until the first is consumed.
  REQUIRE(p.try_push(make_msg(3, big.data(), 500)) == ring_status::ok);
  CHECK(p.try_push(make_msg(4, big.data(), 500)) == ring_status::full);
  const slot_header* h = c.try_peek();
  REQUIRE(h);
  CHECK((h->flags & slot_flags::arena) != 0);
  CHECK(h->payload_len == 500);
  CHECK(std::memcmp(c.payload(h), big.data(), 500) == 0);
  c.release();
  c.publish();
  CHECK(p.try_push(make_msg(4, big.data(), 500)) == ring_status::ok);
}

TEST_CASE("arena allocations wrap without splitting a payload", "[ring][arena]") {
  ring_storage s(cfg(16, 4096, 1));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  std::uint64_t pushed = 0, popped = 0;
  std::vector<std::uint8_t> buf(3000);
  auto size_of = [](std::uint64_t i) { return static_cast<std::uint32_t>(65 + (i * 977) % 1500); };
  while (popped < 20000) {
    for (int k = 0; k < 3; ++k) {
      const std::uint32_t n = size_of(pushed);
      for (std::uint32_t j = 0; j < n; ++j) buf[j] = static_cast<std::uint8_t>(pushed + j);
      if (p.try_push(make_msg(pushed, buf.data(), n)) != ring_status::ok) break;
      ++pushed;
    }
    if (const slot_header* h = c.try_peek()) {
      REQUIRE(h->correlation_id == popped);
      const std::uint32_t n = size_of(popped);
      REQUIRE(h->payload_len == n);
      const std::uint8_t* d = c.payload(h);
      if (h->flags & slot_flags::arena) REQUIRE(h->arena_offset + n <= 4096);
      for (std::uint32_t j = 0; j < n; ++j) REQUIRE(d[j] == static_cast<std::uint8_t>(popped + j));
      c.release();
      ++popped;
    }
  }
}

TEST_CASE("claim/commit writes in place and returns unused arena room", "[ring][arena]") {
  ring_storage s(cfg(8, 1024, 1));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  ring_claim cl;
  REQUIRE(p.try_claim(900, cl) == ring_status::ok);  // reserves 960 of 1024
  CHECK(cl.capacity == 900);
  std::memset(cl.payload, 7, 100);
  cl.header->correlation_id = 5;
  p.commit(cl, 100);  // only 128 stay reserved
  ring_claim cl2;
  REQUIRE(p.try_claim(800, cl2) == ring_status::ok);  // would not fit without the shrink
  p.commit(cl2, 800);
  const slot_header* h = c.try_peek();
  REQUIRE(h);
  CHECK(h->payload_len == 100);
  CHECK(c.payload(h)[99] == 7);
}

TEST_CASE("invalid ring configurations are rejected with a reason", "[ring]") {
  CHECK_THROWS_WITH(ring_storage(cfg(3)), Catch::Contains("power of two"));
  CHECK_THROWS_WITH(ring_storage(cfg(1)), Catch::Contains("capacity"));
  CHECK_THROWS_WITH(ring_storage(cfg(8, 0, 0, 100)), Catch::Contains("slot_size"));
  CHECK_THROWS_WITH(ring_storage(cfg(8, 100)), Catch::Contains("arena_bytes"));
  CHECK_THROWS_WITH(ring_storage(cfg(8, 0, 5)), Catch::Contains("head_batch"));
  CHECK_NOTHROW(ring_storage(cfg(2)));
}

TEST_CASE("new endpoints resume where the previous ones published", "[ring]") {
  ring_storage s(cfg(8, 512));
  std::vector<std::uint8_t> big(300, 9);
  {
    ring_producer p(s.region(), s.producer_scratch());
    ring_consumer c(s.region());
    for (std::uint64_t i = 0; i < 5; ++i) REQUIRE(push_u64(p, i));
    REQUIRE(p.try_push(make_msg(5, big.data(), 300)) == ring_status::ok);
    std::uint64_t v;
    REQUIRE(pop_u64(c, v));
    REQUIRE(pop_u64(c, v));
    c.publish();
  }
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  CHECK(p.position() == 6);
  CHECK(c.position() == 2);
  REQUIRE(push_u64(p, 6));
  std::uint64_t v = 0;
  for (std::uint64_t i = 2; i < 5; ++i) {
    REQUIRE(pop_u64(c, v));
    CHECK(v == i);
  }
  const slot_header* h = c.try_peek();
  REQUIRE(h);
  CHECK(h->payload_len == 300);
  c.release();
  REQUIRE(pop_u64(c, v));
  CHECK(v == 6);
}

TEST_CASE("try_pop does not consume a message larger than the caller's buffer", "[ring]") {
  ring_storage s(cfg(4));
  ring_producer p(s.region(), s.producer_scratch());
  ring_consumer c(s.region());
  std::uint8_t data[40] = {};
  REQUIRE(p.try_push(make_msg(1, data, 40)) == ring_status::ok);
  slot_header h{};
  std::uint8_t small[8];
  std::uint32_t len = 0;
  CHECK(c.try_pop(h, small, sizeof small, len) == ring_status::oversize);
  std::uint8_t enough[64];
  CHECK(c.try_pop(h, enough, sizeof enough, len) == ring_status::ok);
  CHECK(len == 40);
}
