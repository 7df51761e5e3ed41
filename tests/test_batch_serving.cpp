// Protocol v2 batches (persistent.hpp: serve_batch, serve_ring): a worker's lanes serve
// consecutive requests of a ring together. Checked on the host, with the very code a GPU runs:
// batched serving gives the replies one-at-a-time serving gives, byte for byte and in order, at
// every batch width, across the ring's end, with arena payloads and large error replies falling
// back to the serial path in order; a batch serves exactly the ready prefix; handler errors and
// rejections are counted; the width starts at one lane and doubles; an empty ring costs one
// lane's burst. Threaded lanes (tests/support/threaded_lanes.hpp: one std::thread per lane, as
// in a warp) run the cooperative worker under concurrency: every request answered exactly
// once, in order. Labels: protocol, tsan.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/persistent.hpp"
#include "ringflow/ring_storage.hpp"
#include "support/threaded_lanes.hpp"

using namespace ringflow;
using namespace std::chrono_literals;

namespace {

/// Echo, but a request whose first byte is 0xEE makes the handler fail (an error reply).
struct FlakyEcho {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "flaky_echo";
  RINGFLOW_HD static std::uint32_t reply_capacity(const msg_view& in) { return in.payload.size; }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    if (in.payload.size > 0 && in.payload.data[0] == 0xEE) return out.fail(status::invalid_argument, "flaky: asked to");
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

using table = kernel_table<demo_kernels::EchoKernel, FlakyEcho>;
constexpr std::uint32_t echo = 0, flaky = 1;

struct aligned_buf {
  std::vector<slot_header> v;  // slot_header is alignas(64)
  explicit aligned_buf(std::size_t bytes) : v((bytes + sizeof(slot_header) - 1) / sizeof(slot_header)) {}
  std::uint8_t* data() { return reinterpret_cast<std::uint8_t*>(v.data()); }
  std::uint32_t size() const { return static_cast<std::uint32_t>(v.size() * sizeof(slot_header)); }
};

ring_config v2_config(std::uint32_t capacity, std::uint32_t slot, std::uint32_t arena) {
  ring_config c{capacity, slot, arena, 0};
  c.protocol = ring_protocol::v2;
  return c;
}

/// A request to send: its type, payload and the reply it must get.
struct request {
  type_id type = msg::Echo::type_id_;
  std::vector<std::uint8_t> payload;
};

/// What a reply carried: header bytes 8..63 (all but the flag), the payload.
struct reply {
  std::vector<std::uint8_t> header, payload;
  std::uint64_t correlation = 0;
  std::uint16_t status = 0;
  bool operator==(const reply& o) const { return header == o.header && payload == o.payload; }
};

/// Requests for kernel `k`: inline echoes of every size, wrong types (rejected), flaky failures
/// (handler errors) and, with an arena, payloads larger than the inline room (the serial path).
std::vector<request> make_requests(std::uint32_t n, const ring_config& c, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<request> out(n);
  const std::uint32_t room = c.inline_capacity();
  for (auto& r : out) {
    const std::uint32_t kind = rng() % 10;
    std::uint32_t len = rng() % (room + 1);
    if (kind == 9 && c.arena_bytes) len = room + 1 + rng() % (2 * room);
    r.payload.resize(len);
    for (auto& b : r.payload) b = static_cast<std::uint8_t>(rng() % 200);
    if (kind == 7) r.type = msg::SaxpyRequest::type_id_;
    if (kind == 8 && len > 0) r.payload[0] = 0xEE;
  }
  return out;
}

/// One v2 ring pair: the host's ends and the worker's endpoint, bound as the worker binds it.
struct rig {
  ring_config cfg;
  ring_storage rq, rp;
  control_block ctl{};
  persistent_ring entry{};
  persistent_endpoint ep{};
  aligned_buf req_stage, rep_stage;
  serve_staging staging;
  ring_producer host_req;
  ring_consumer host_rep;
  aligned_buf image;
  std::uint64_t sent = 0;

  rig(const ring_config& c, std::uint32_t kernel, std::uint32_t stage_bytes = 16384)
      : cfg(c),
        rq(c),
        rp(c),
        req_stage(stage_bytes),
        rep_stage(stage_bytes),
        host_req(rq.region(), rq.producer_scratch()),
        host_rep(rp.region()),
        image(ll::image_bytes(c.inline_capacity())) {
    ctl.reset(1);
    staging = {req_stage.data(), stage_bytes, rep_stage.data(), stage_bytes};
    entry.kernel_index = kernel;
    entry.max_batch = 64;
    entry.requests = rq.region().base();
    entry.replies = rp.region().base();
    entry.control = &ctl;
    entry.reply_scratch = rp.producer_scratch();
    entry.request_config = entry.reply_config = c;
    host_req.use_credit_from(rp.region());
    REQUIRE(host_rep.set_image_buffer(image.data(), image.size()));
    REQUIRE(detail::bind_entry<table>(entry, ep, &staging));
  }
  bool push(const request& r) {
    slot_header h{};
    h.correlation_id = ++sent;
    h.type_id = r.type;
    h.deadline_ns = 1000 + sent;
    h.trace_id[0] = static_cast<std::uint8_t>(sent);
    h.span_id[1] = static_cast<std::uint8_t>(sent >> 8);
    if (host_req.try_push({h, r.payload.data(), static_cast<std::uint32_t>(r.payload.size())}) == ring_status::ok)
      return true;
    --sent;
    return false;
  }
  /// Every reply there, in order.
  void drain(std::vector<reply>& out) {
    while (const slot_header* h = host_rep.try_peek()) {
      reply r;
      const auto* b = reinterpret_cast<const std::uint8_t*>(h);
      r.header.assign(b + 8, b + sizeof(slot_header));
      const fb::bytes_view p = host_rep.payload_view(h);
      r.payload.assign(p.data, p.data + p.size);
      r.correlation = h->correlation_id;
      r.status = h->status;
      out.push_back(std::move(r));
      host_rep.release();
    }
  }
  /// One serve_ring() call as the worker makes it.
  template <class Lanes>
  serve_result serve(Lanes& lanes, std::uint32_t limit, std::uint32_t& served, std::uint64_t& lines) {
    return detail::serve_ring<table>(ep, limit, served, &staging, lanes, lines);
  }
};

/// Sends `reqs` through a rig in bursts (sizes from `seed`), serving with `width` sequential
/// lanes (1: one request at a time) in calls of varying limits; returns the replies in order.
std::vector<reply> serve_all(const ring_config& c, std::uint32_t kernel, const std::vector<request>& reqs,
                             std::uint32_t width, std::uint32_t seed, std::uint64_t start_pos = 0) {
  rig g(c, kernel);
  // Start the rings at `start_pos` (batches then straddle the ring's end where the test wants).
  std::vector<reply> warmup;
  sequential_lanes one;
  one.width = 1;
  for (std::uint64_t i = 0; i < start_pos; ++i) {
    REQUIRE(g.push(request{}));
    std::uint32_t served = 0;
    std::uint64_t lines = 0;
    (void)g.serve(one, 1, served, lines);
    REQUIRE(served == 1);
    g.drain(warmup);
  }
  sequential_lanes lanes;
  lanes.width = width;
  std::mt19937 rng(seed);
  std::vector<reply> out;
  std::size_t next = 0;
  std::uint32_t idle = 0;
  while (out.size() < reqs.size()) {
    const std::uint32_t burst = 1 + rng() % c.capacity;
    for (std::uint32_t i = 0; i < burst && next < reqs.size(); ++i) {
      if (!g.push(reqs[next])) break;
      ++next;
    }
    std::uint32_t served = 0;
    std::uint64_t lines = 0;
    (void)g.serve(lanes, 1 + rng() % 40, served, lines);
    const std::size_t before = out.size();
    g.drain(out);
    REQUIRE(out.size() - before == served);
    idle = served ? 0 : idle + 1;
    REQUIRE(idle < 100);  // requests there and nothing served: a lost or stuck request
  }
  return out;
}

/// The replies `reqs` must get: correlation ids 1.., statuses by kind, echoed payloads.
void check_replies(const std::vector<request>& reqs, const std::vector<reply>& got, std::uint64_t first_corr = 1) {
  REQUIRE(got.size() == reqs.size());
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    INFO("request " << i);
    REQUIRE(got[i].correlation == first_corr + i);
    const request& r = reqs[i];
    if (r.type != msg::Echo::type_id_) {
      REQUIRE(got[i].status == static_cast<std::uint16_t>(status::wrong_type));
    } else if (!r.payload.empty() && r.payload[0] == 0xEE) {
      REQUIRE(got[i].status == static_cast<std::uint16_t>(status::invalid_argument));
    } else {
      REQUIRE(got[i].status == static_cast<std::uint16_t>(status::ok));
      REQUIRE(got[i].payload == r.payload);
    }
  }
}

}  // namespace

TEST_CASE("batches: replies are byte-identical to one-at-a-time serving at every width, across the ring's end",
          "[batch][protocol]") {
  struct shape {
    std::uint32_t capacity, slot, arena;
  };
  for (const shape s : {shape{4, 256, 0}, shape{8, 256, 4096}, shape{32, 512, 0}, shape{64, 256, 8192}}) {
    const ring_config c = v2_config(s.capacity, s.slot, s.arena);
    REQUIRE(c.valid());
    const std::vector<request> reqs = make_requests(600, c, s.capacity + s.slot);
    for (std::uint64_t start : {std::uint64_t{0}, std::uint64_t{s.capacity - 1}, std::uint64_t{s.capacity / 2 + 1}}) {
      INFO("capacity " << s.capacity << " slot " << s.slot << " arena " << s.arena << " start " << start);
      const std::vector<reply> serial = serve_all(c, flaky, reqs, 1, 7, start);
      check_replies(reqs, serial, start + 1);
      for (std::uint32_t width : {2u, 3u, 7u, 16u, 32u}) {
        INFO("width " << width);
        const std::vector<reply> batched = serve_all(c, flaky, reqs, width, 7 + width, start);
        REQUIRE(batched.size() == serial.size());
        for (std::size_t i = 0; i < serial.size(); ++i) {
          INFO("reply " << i);
          REQUIRE(batched[i] == serial[i]);
        }
      }
    }
  }
}

TEST_CASE("batches: the echo kernel's sized replies match too", "[batch][protocol]") {
  const ring_config c = v2_config(16, 256, 4096);
  const std::vector<request> reqs = make_requests(400, c, 99);
  const std::vector<reply> serial = serve_all(c, echo, reqs, 1, 3);
  const std::vector<reply> batched = serve_all(c, echo, reqs, 32, 4);
  REQUIRE(batched.size() == serial.size());
  for (std::size_t i = 0; i < serial.size(); ++i) REQUIRE(batched[i] == serial[i]);
}

TEST_CASE("batches: a batch serves the ready prefix, a slot not (completely) written stops it", "[batch][protocol]") {
  const ring_config c = v2_config(16, 256, 0);
  rig g(c, flaky);
  sequential_lanes lanes;
  lanes.width = 32;
  for (std::uint32_t i = 0; i < 6; ++i) REQUIRE(g.push(request{msg::Echo::type_id_, {std::uint8_t(i), 1, 2}}));
  // Slot 3 is not there yet: its last unit still carries the previous lap's flag.
  std::uint8_t* slot3 = reinterpret_cast<std::uint8_t*>(g.rq.region().units(3));
  std::vector<std::uint8_t> saved(slot3, slot3 + c.slot_size);
  std::memset(slot3 + 16, 0, 16);  // the second unit (header bytes) torn
  std::uint32_t served = 0;
  std::uint64_t lines = 0;
  // Width slow start: 1, 2, then 4 lanes of which 3 and later see nothing complete at slot 3.
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);
  CHECK(served == 3);
  std::vector<reply> out;
  g.drain(out);
  REQUIRE(out.size() == 3);
  for (std::uint32_t i = 0; i < 3; ++i) CHECK(out[i].correlation == i + 1);
  // Nothing more while it is torn.
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);
  CHECK(served == 0);
  std::memcpy(slot3, saved.data(), saved.size());
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);  // 1 + 2, then a batch that found none
  CHECK(served == 3);
  g.drain(out);
  REQUIRE(out.size() == 6);
  for (std::uint32_t i = 0; i < 6; ++i) {
    CHECK(out[i].correlation == i + 1);
    CHECK(out[i].payload == std::vector<std::uint8_t>{std::uint8_t(i), 1, 2});
  }
}

TEST_CASE("batches: arena requests and large error replies take the serial path in order, counters add up",
          "[batch][protocol]") {
  const ring_config c = v2_config(32, 256, 8192);  // inline room 72 < the 192-byte error room
  rig g(c, flaky);
  sequential_lanes lanes;
  lanes.width = 32;
  std::vector<request> reqs;
  for (std::uint32_t i = 0; i < 24; ++i) {
    request r;
    r.payload.assign(i % 5 == 2 ? 150 : 10, std::uint8_t(i));  // every fifth from 2: an arena payload
    if (i % 7 == 3) r.type = msg::SaxpyRequest::type_id_;      // rejected: a 192-byte error reply (arena)
    if (i % 6 == 5) r.payload[0] = 0xEE;                       // handler error inside the inline claim
    reqs.push_back(r);
  }
  for (const request& r : reqs) REQUIRE(g.push(r));
  std::vector<reply> out;
  std::uint32_t served = 0;
  std::uint64_t lines = 0;
  for (int i = 0; i < 64 && out.size() < reqs.size(); ++i) {
    (void)g.serve(lanes, 64, served, lines);
    g.drain(out);
  }
  check_replies(reqs, out);
  std::uint64_t rejected = 0, errors = 0;
  for (const request& r : reqs) {
    rejected += r.type != msg::Echo::type_id_;
    errors += r.type == msg::Echo::type_id_ && r.payload[0] == 0xEE;
  }
  CHECK(g.ep.processed == reqs.size());
  CHECK(g.ep.rejected == rejected);
  CHECK(g.ep.handler_errors == errors);
  CHECK(rejected > 0);
  CHECK(errors > 0);
}

TEST_CASE("batches: the width starts at one lane and doubles, an empty ring costs one lane's burst",
          "[batch][protocol]") {
  const ring_config c = v2_config(64, 256, 0);
  rig g(c, flaky);
  sequential_lanes lanes;
  lanes.width = 32;
  std::uint32_t served = 0;
  std::uint64_t lines = 0;
  // Empty: one lane polls (2 lines).
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);
  CHECK(served == 0);
  CHECK(lines == 2);
  CHECK(lines == detail::poll_lines(g.ep, 0, serve_result::idle));
  // 40 requests: batches of 1, 2, 4, 8, 16, then 9 of a 32-lane batch: 63 lanes polled.
  for (std::uint32_t i = 0; i < 40; ++i) REQUIRE(g.push(request{msg::Echo::type_id_, {1}}));
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);
  CHECK(served == 40);
  CHECK(lines == 2 * (1 + 2 + 4 + 8 + 16 + 32));
  CHECK(g.ep.batch_hint == 9);
  // The next poll of the (now empty) ring: 18 lanes; then one again.
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);
  CHECK(lines == 2 * 18);
  REQUIRE(g.serve(lanes, 64, served, lines) == serve_result::idle);
  CHECK(lines == 2);
  // The limit bounds a batch: 10 requests, limit 5.
  for (std::uint32_t i = 0; i < 10; ++i) REQUIRE(g.push(request{msg::Echo::type_id_, {2}}));
  REQUIRE(g.serve(lanes, 5, served, lines) == serve_result::served);
  CHECK(served == 5);
  std::vector<reply> out;
  g.drain(out);
  CHECK(out.size() == 45);
}

TEST_CASE("batches: no batches without v2, without staging room or with one lane", "[batch][protocol]") {
  const ring_config c = v2_config(16, 256, 0);
  rig g(c, flaky);
  std::uint32_t is = 0, cs = 0;
  sequential_lanes lanes;
  lanes.width = 32;
  CHECK(detail::batch_width(g.ep, &g.staging, lanes, is, cs) == 16);  // the ring's capacity
  lanes.width = 1;
  CHECK(detail::batch_width(g.ep, &g.staging, lanes, is, cs) == 0);
  lanes.width = 32;
  CHECK(detail::batch_width(g.ep, nullptr, lanes, is, cs) == 0);
  serve_staging small = g.staging;
  small.request_bytes = 3 * ll::image_bytes(c.inline_capacity());
  CHECK(detail::batch_width(g.ep, &small, lanes, is, cs) == 3);
  small.request_bytes = ll::image_bytes(c.inline_capacity());
  CHECK(detail::batch_width(g.ep, &small, lanes, is, cs) == 0);
}

namespace {

/// A one-ring persistent kernel whose single worker runs as `width` threaded lanes.
struct threaded_kernel {
  ring_config cfg;
  std::unique_ptr<rig> g;
  control_block kernel_ctl{};
  persistent_endpoint endpoint{};
  persistent_args args;
  aligned_buf stage;
  test::warp_shared warp;
  std::thread worker;
  threaded_kernel(const ring_config& c, std::uint32_t width) : cfg(c), stage(2 * 16384), warp(width) {
    g = std::make_unique<rig>(c, flaky);
    kernel_ctl.reset(1);
    g->ctl.reset(1);
    args.rings = &g->entry;
    args.endpoints = &endpoint;
    args.kernel_control = &kernel_ctl;
    args.staging = stage.data();
    args.staging_bytes = 16384;
    args.max_rings = 1;
    args.workers = 1;
    args.backoff_max_ns = 2000;
    store_release(g->entry.ctl, std::uint64_t{1} << persistent_ctl::generation_shift);
    worker = std::thread([this] { test::run_threaded_worker<table>(args, 0, 1, warp); });
  }
  ~threaded_kernel() {
    kernel_ctl.request_stop();
    worker.join();
  }
};

}  // namespace

TEST_CASE("batches: threaded lanes answer every request exactly once, in order, while the host keeps sending",
          "[batch][protocol][tsan]") {
  for (std::uint32_t width : {4u, 8u, 32u}) {
    INFO("lanes " << width);
    const ring_config c = v2_config(32, 256, 4096);
    const std::vector<request> reqs = make_requests(width == 32 ? 600 : 2000, c, width);
    threaded_kernel k(c, width);
    std::vector<reply> out;
    std::size_t next = 0;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (out.size() < reqs.size() && std::chrono::steady_clock::now() < deadline) {
      while (next < reqs.size() && k.g->push(reqs[next])) ++next;
      const std::size_t before = out.size();
      k.g->drain(out);
      if (out.size() == before) std::this_thread::sleep_for(50us);
    }
    check_replies(reqs, out);
    // The other lanes served parts of batches (not the leader alone).
    CHECK(k.warp.batches.load() > 0);
    CHECK(k.warp.follower_parts.load() > 0);
  }
}
