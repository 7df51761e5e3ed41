// Stateful ring kernels (kernel.hpp: stateful_kernel, state_snapshot_type, state_restore_type):
// serve_one() on a kernel's state, the snapshot and restore requests (exact bytes, init on an
// empty restore, a wrong size refused and the state untouched), stateless kernels refusing them,
// a stateful kernel served without state answering a clear error, and the CPU backend keeping
// one state per channel (VwapKernel, demo_kernels.hpp). Label: unit.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <vector>

#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/cpu/host_client.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/trade_generated.h"
#include "ringflow/generated/vwap_reply_generated.h"
#include "ringflow/ring_storage.hpp"

using namespace ringflow;
using namespace ringflow::cpu;
using namespace std::chrono_literals;
using demo_kernels::VwapKernel;
using vwap_state = VwapKernel::state;

namespace {

std::vector<std::uint8_t> trade(std::uint32_t key, std::int64_t price, std::uint32_t qty, std::uint64_t seq) {
  flatbuffers::FlatBufferBuilder b;
  demo::FinishTradeBuffer(b, demo::CreateTrade(b, key, price, qty, seq));
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

/// Host rings (v1, reply arena for snapshots) and serve_one() on a state, one request at a time.
struct host_rings {
  ring_config req_cfg{16, 256, 8192, 0}, rep_cfg{16, 256, 8192, 0};  // arenas: 776-byte states
  ring_storage rq{req_cfg}, rp{rep_cfg};
  ring_producer tx{rq.region(), rq.producer_scratch()};
  ring_consumer rx{rp.region()};
  ring_consumer krq{rq.region()};
  ring_producer krp{rp.region(), rp.producer_scratch()};
  std::uint64_t next = 1;

  struct answer {
    status st;
    type_id type;
    std::vector<std::uint8_t> payload;
  };
  /// Sends one request, serves it with K on `state`, returns the reply.
  template <class K>
  answer call(type_id type, const std::vector<std::uint8_t>& payload, void* state) {
    slot_header h{};
    h.correlation_id = next++;
    h.type_id = type;
    REQUIRE(tx.try_push({h, payload.data(), static_cast<std::uint32_t>(payload.size())}) == ring_status::ok);
    serve_tally t;
    REQUIRE(serve_one<K>(krq, krp, 0, t, nullptr, state) == serve_result::served);
    const slot_header* r = rx.try_peek();
    REQUIRE(r);
    REQUIRE(r->correlation_id == h.correlation_id);
    const fb::bytes_view p = rx.payload_view(r);
    answer a{static_cast<status>(r->status), r->type_id, {p.data, p.data + p.size}};
    rx.release();
    return a;
  }
};

std::vector<std::uint8_t> bytes_of(const vwap_state& s) {
  const auto* b = reinterpret_cast<const std::uint8_t*>(&s);
  return {b, b + sizeof s};
}

}  // namespace

TEST_CASE("state: a stateful kernel's handler changes its state, replies carry the aggregates", "[state]") {
  host_rings h;
  vwap_state s;
  VwapKernel::init(s);
  auto a = h.call<VwapKernel>(msg::Trade::type_id_, trade(3, 100, 10, 1), &s);
  REQUIRE(a.st == status::ok);
  a = h.call<VwapKernel>(msg::Trade::type_id_, trade(3, 130, 20, 2), &s);
  REQUIRE(a.st == status::ok);
  REQUIRE(a.type == msg::VwapReply::type_id_);
  const demo::VwapReply* r = flatbuffers::GetRoot<demo::VwapReply>(a.payload.data());
  CHECK(r->key() == 3);
  CHECK(r->trades() == 2);
  CHECK(r->volume() == 30);
  CHECK(r->notional() == 100 * 10 + 130 * 20);
  CHECK(r->vwap_ticks() == (100 * 10 + 130 * 20) / 30);
  CHECK(r->sequence() == 2);
  CHECK(s.applied == 2);
  CHECK(s.keys[3].volume == 30);
  // Bad trades are error replies and leave the state alone.
  const std::vector<std::uint8_t> before = bytes_of(s);
  CHECK(h.call<VwapKernel>(msg::Trade::type_id_, trade(demo_kernels::vwap_keys, 1, 1, 3), &s).st ==
        status::invalid_argument);
  CHECK(h.call<VwapKernel>(msg::Trade::type_id_, trade(1, 1, 0, 4), &s).st == status::invalid_argument);
  CHECK(h.call<VwapKernel>(msg::Echo::type_id_, trade(1, 1, 1, 5), &s).st == status::wrong_type);
  CHECK(bytes_of(s) == before);
}

TEST_CASE("state: snapshot returns the state's bytes, restore puts them back, an empty restore is init", "[state]") {
  host_rings h;
  vwap_state s;
  VwapKernel::init(s);
  for (std::uint64_t i = 0; i < 40; ++i)
    REQUIRE(h.call<VwapKernel>(msg::Trade::type_id_, trade(i % 7, 90 + i, 1 + i % 5, i), &s).st == status::ok);
  const auto snap = h.call<VwapKernel>(state_snapshot_type, {}, &s);
  REQUIRE(snap.st == status::ok);
  CHECK(snap.type == state_snapshot_type);
  // 776 bytes and their checksum: through the reply arena.
  REQUIRE(snap.payload.size() == sizeof(vwap_state) + state_checksum_bytes);
  CHECK(std::vector<std::uint8_t>(snap.payload.begin(), snap.payload.begin() + sizeof(vwap_state)) == bytes_of(s));
  CHECK(state_intact(snap.payload.data(), static_cast<std::uint32_t>(snap.payload.size())));

  vwap_state other;
  std::memset(&other, 0xA5, sizeof other);
  const auto ack = h.call<VwapKernel>(state_restore_type, snap.payload, &other);
  CHECK(ack.st == status::ok);
  CHECK(ack.type == state_restore_type);
  CHECK(ack.payload.empty());
  CHECK(bytes_of(other) == bytes_of(s));
  // The restored state goes on exactly as the original.
  const auto a1 = h.call<VwapKernel>(msg::Trade::type_id_, trade(2, 77, 3, 99), &s);
  const auto a2 = h.call<VwapKernel>(msg::Trade::type_id_, trade(2, 77, 3, 99), &other);
  CHECK(a1.payload == a2.payload);
  CHECK(bytes_of(other) == bytes_of(s));

  // A restore of the wrong size or checksum is malformed and changes nothing; an empty one is init().
  const std::vector<std::uint8_t> kept = bytes_of(other);
  const auto bad = h.call<VwapKernel>(state_restore_type, std::vector<std::uint8_t>(sizeof(vwap_state) - 8, 1), &other);
  CHECK(bad.st == status::malformed);
  CHECK(bytes_of(other) == kept);
  std::vector<std::uint8_t> torn = snap.payload;
  torn[100] ^= 0x40;
  const auto bad_sum = h.call<VwapKernel>(state_restore_type, torn, &other);
  CHECK(bad_sum.st == status::malformed);
  CHECK(bytes_of(other) == kept);
  CHECK(h.call<VwapKernel>(state_restore_type, {}, &other).st == status::ok);
  vwap_state fresh;
  VwapKernel::init(fresh);
  CHECK(bytes_of(other) == bytes_of(fresh));
}

TEST_CASE("state: stateless kernels refuse state requests, a stateful one served without state says so", "[state]") {
  host_rings h;
  CHECK(h.call<demo_kernels::EchoKernel>(state_snapshot_type, {}, nullptr).st == status::wrong_type);
  CHECK(h.call<demo_kernels::EchoKernel>(state_restore_type, {}, nullptr).st == status::wrong_type);
  // E.g. a backend that keeps no state (the GPU persistent kernel, for now).
  const auto a = h.call<VwapKernel>(msg::Trade::type_id_, trade(1, 1, 1, 1), nullptr);
  CHECK(a.st == status::internal);
  // A snapshot that cannot fit the response ring is refused before the state is read.
  ring_config small_rep{16, 256, 0, 0};
  host_rings tiny;
  tiny.rp = ring_storage(small_rep);
  tiny.rx = ring_consumer(tiny.rp.region());
  tiny.krp = ring_producer(tiny.rp.region(), tiny.rp.producer_scratch());
  vwap_state s;
  VwapKernel::init(s);
  CHECK(tiny.call<VwapKernel>(state_snapshot_type, {}, &s).st == status::reply_too_large);
}

TEST_CASE("state: the CPU backend keeps one state per channel, initialized, changed only by its requests",
          "[state][cpu]") {
  cpu_kernel k;
  const ring_options opts{.requests = {.capacity = 64}, .replies = {.capacity = 64, .arena_bytes = 64 << 10}};
  channel& a = k.add_ring<VwapKernel>(opts);
  channel& b = k.add_ring<VwapKernel>(opts);
  REQUIRE(a.state_bytes() == sizeof(vwap_state));
  vwap_state fresh;
  VwapKernel::init(fresh);
  CHECK(std::memcmp(a.state(), &fresh, sizeof fresh) == 0);
  k.start();
  host_client ca(k, a), cb(k, b);
  reply r;
  for (std::uint64_t i = 0; i < 100; ++i) {
    ca.call(msg::Trade::type_id_, trade(i % 4, 100, 2, i), 5s, r);
    REQUIRE(r.ok());
  }
  cb.call(msg::Trade::type_id_, trade(9, 50, 1, 0), 5s, r);
  REQUIRE(r.ok());
  ca.call(state_snapshot_type, {}, 5s, r);
  REQUIRE(r.ok());
  REQUIRE(r.payload.size() == sizeof(vwap_state) + state_checksum_bytes);
  vwap_state got;
  std::memcpy(&got, r.payload.data(), sizeof got);
  CHECK(got.applied == 100);
  CHECK(got.keys[0].volume == 50);
  CHECK(got.keys[9].trades == 0);  // b's trade is b's
  CHECK(k.stop() == stop_outcome::stopped);
  // Stopped: the state may be read in place.
  CHECK(std::memcmp(a.state(), &got, sizeof got) == 0);
  CHECK(static_cast<const vwap_state*>(b.state())->keys[9].trades == 1);
  // A binding that is neither stateless nor complete is refused.
  kernel_binding broken = bind_kernel<VwapKernel>();
  broken.init_state = nullptr;
  CHECK_THROWS_AS(k.add_ring(broken), std::invalid_argument);
}
