// bench/ring_bench.cpp — ringflow's SPSC slot ring against moodycamel::ConcurrentQueue (the design
// baseline), and the CPU backend's request -> reply round trip, in one Google Benchmark binary.
//
// Benchmarks (tools rely on these base names; Google Benchmark appends /arg:value and /real_time):
//   BM_RingPingPong/bytes:N              round trip (RTT) between two threads over two ringflow rings
//   BM_MoodycamelPingPong/bytes:N        the same over two moodycamel::ConcurrentQueue (with tokens)
//   BM_RingBulkThroughput/batch:N        one producer thread, one consumer thread, batches of N
//   BM_MoodycamelBulkThroughput/batch:N/envelope:E  the same with try_enqueue_bulk /
//                                        try_dequeue_bulk; E=64: elements carry the ring's 64-byte
//                                        envelope (same bytes), E=0: a lean 80-byte element
//   BM_CpuKernelRoundTrip/spin:S         host_client::call() -> cpu_kernel (EchoKernel) -> reply;
//                                        S=0: default wait_policy (spin -> yield -> park), S=1:
//                                        park = false on kernel and client (spin, yield, never park)
//   BM_CpuKernelRoundTrip/score/spin:S   the same with ScoreKernel (a small scoring model)
//   BM_V2ServeBatch/lanes:L              protocol v2 serving as the persistent worker does it
//                                        (detail::serve_ring): 32 inline 64-byte echo requests,
//                                        served with L sequential lanes (1: one request at a
//                                        time, serve_one), replies read; one thread, items = requests
// Latency benchmarks report one RTT per iteration (real time) and counters p50_ns / p99_ns from
// per-iteration samples (one steady_clock read per iteration; samples preallocated before the
// loop, percentiles computed after it). Throughput benchmarks report items_per_second.
//
// Threads: every benchmark runs exactly two spinning threads — the benchmark thread and one peer
// (echo thread, producer thread, or the cpu_kernel thread) — pinned to two different CPUs unless
// RINGFLOW_BENCH_NOPIN is set or fewer than two CPUs are allowed. The peer is started and
// stopped (atomic flag + join) within each run of a benchmark function, also on early exit; every
// wait in the benchmark thread has a watchdog, so a broken peer fails the run instead of hanging.
//
// Fairness: the same spin step (ringflow::cpu_relax, PAUSE) and watchdog in every loop; moodycamel
// uses a ProducerToken/ConsumerToken per side and a preallocated capacity equal to the ring's; its
// element carries the same 64-byte envelope and payload a ring slot carries (see mc_msg).
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "concurrentqueue.h"
#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/cpu/host_client.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/persistent.hpp"
#include "ringflow/ring.hpp"
#include "ringflow/ring_storage.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using ringflow::ring_status;
using ringflow::slot_header;

// ------------------------------------------------------------------------------ CPU placement

struct placement {
  bool enabled = false;
  int self_cpu = -1;  // the benchmark thread
  int peer_cpu = -1;  // the echo / producer / kernel thread
};
placement g_place;

void init_placement() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  g_place.enabled = cpus.size() >= 2 && std::getenv("RINGFLOW_BENCH_NOPIN") == nullptr;
  if (g_place.enabled) {
    g_place.self_cpu = cpus[0];
    g_place.peer_cpu = cpus[1];
  }
}

void pin_current_thread(int cpu) {
  if (!g_place.enabled) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
}

// Moves the benchmark thread for one run and restores its affinity afterwards.
class pin_scope {
 public:
  pin_scope() { have_ = pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_) == 0; }
  ~pin_scope() {
    if (have_) pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
  }
  pin_scope(const pin_scope&) = delete;
  pin_scope& operator=(const pin_scope&) = delete;
  void to(int cpu) { pin_current_thread(cpu); }

 private:
  cpu_set_t saved_{};
  bool have_ = false;
};

// ------------------------------------------------------------------------------ the peer thread

// A peer that runs body(stop) on the peer CPU; the body polls `stop` (relaxed is enough: the flag
// orders nothing, join() does). Stopped and joined by stop() or, at the latest, the destructor,
// so an early return from the benchmark cannot leak it. Declare it after everything body uses.
class peer_thread {
 public:
  template <class Body>
  explicit peer_thread(Body body) {
    thread_ = std::thread([this, body = std::move(body)]() mutable {
      pin_current_thread(g_place.peer_cpu);
      ready_.store(true, std::memory_order_release);
      body(stop_);
    });
    while (!ready_.load(std::memory_order_acquire)) std::this_thread::yield();
  }
  ~peer_thread() { stop(); }
  peer_thread(const peer_thread&) = delete;
  peer_thread& operator=(const peer_thread&) = delete;

  void stop() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::thread thread_;
};

inline bool stopping(const std::atomic<bool>& stop) { return stop.load(std::memory_order_relaxed); }

// Spins (PAUSE) until pred() holds. Returns false if it has not after ~`limit`, so a broken peer
// fails the run instead of hanging it. The clock is read only every 64 Ki spins.
template <class Pred>
inline bool spin_until(Pred&& pred, std::chrono::nanoseconds limit = std::chrono::seconds(2)) {
  clock_type::time_point give_up{};
  for (std::uint32_t n = 1;; ++n) {
    if (pred()) return true;
    ringflow::cpu_relax();
    if ((n & 0xFFFFu) == 0) {
      const auto now = clock_type::now();
      if (give_up == clock_type::time_point{}) {
        give_up = now + limit;
      } else if (now > give_up) {
        return false;
      }
    }
  }
}

// ------------------------------------------------------------------------------ latency samples

// Per-iteration durations from one clock read per iteration (lap = time since the previous lap),
// in a vector sized before the timed loop (page-faulted in by value-initialisation).
class latency_samples {
 public:
  static constexpr benchmark::IterationCount max_samples = 8'000'000;  // 32 MB of u32

  explicit latency_samples(benchmark::IterationCount iterations)
      : ns_(static_cast<std::size_t>(std::min(iterations, max_samples))) {}

  void start() { prev_ = clock_type::now(); }
  void lap() {
    const auto now = clock_type::now();
    if (n_ < ns_.size()) {
      const auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(now - prev_).count();
      ns_[n_++] = static_cast<std::uint32_t>(std::min<std::int64_t>(d, std::numeric_limits<std::uint32_t>::max()));
    }
    prev_ = now;
  }
  void report(benchmark::State& state) {
    if (n_ == 0) return;
    state.counters["p50_ns"] = benchmark::Counter(percentile(0.50));
    state.counters["p99_ns"] = benchmark::Counter(percentile(0.99));
  }

 private:
  double percentile(double p) {
    const std::size_t k = std::min(n_ - 1, static_cast<std::size_t>(p * static_cast<double>(n_ - 1) + 0.5));
    std::nth_element(ns_.begin(), ns_.begin() + static_cast<std::ptrdiff_t>(k),
                     ns_.begin() + static_cast<std::ptrdiff_t>(n_));
    return static_cast<double>(ns_[k]);
  }

  std::vector<std::uint32_t> ns_;
  std::size_t n_ = 0;
  clock_type::time_point prev_{};
};

// ------------------------------------------------------------------------------ payloads

constexpr std::uint32_t max_pingpong_bytes = 64;     // the inline room of a 128-byte slot
constexpr std::uint32_t bench_type_id = 0x48434e42;  // "BNCH"

std::array<std::uint8_t, max_pingpong_bytes> make_payload() {
  std::array<std::uint8_t, max_pingpong_bytes> p{};
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return p;
}

// moodycamel's element. By default it carries what a ring slot carries — the same 64-byte envelope
// (the fields of slot_header: id, deadline, type, length, flags, status, trace context) and the
// payload — so both queues move the same bytes per message (128: one slot of slot_size 128).
// mc_lean (id, type, length, payload: 80 bytes) shows what the envelope costs moodycamel.
struct mc_envelope {
  std::uint64_t correlation_id;
  std::uint64_t deadline_ns;
  std::uint32_t type_id;
  std::uint32_t len;
  std::uint32_t arena_offset;
  std::uint16_t flags;
  std::uint16_t status;
  std::uint8_t trace_id[16];
  std::uint8_t span_id[8];
  std::uint64_t reserved;
};
static_assert(sizeof(mc_envelope) == sizeof(slot_header), "same envelope bytes as a ring slot header");

struct mc_msg {
  mc_envelope env;
  std::uint8_t data[max_pingpong_bytes];
  std::uint64_t& id() { return env.correlation_id; }
  std::uint32_t& len() { return env.len; }
  std::uint32_t& type() { return env.type_id; }
};
static_assert(sizeof(mc_msg) == 128);

struct mc_lean {
  std::uint64_t correlation_id;
  std::uint32_t type_id;
  std::uint32_t length;
  std::uint8_t data[max_pingpong_bytes];
  std::uint64_t& id() { return correlation_id; }
  std::uint32_t& len() { return length; }
  std::uint32_t& type() { return type_id; }
};
static_assert(sizeof(mc_lean) == 80);

ringflow::ring_config pingpong_ring() {
  ringflow::ring_config c;
  c.capacity = 64;
  c.slot_size = 128;
  return c;
}
constexpr std::size_t pingpong_capacity = 64;

// ------------------------------------------------------------------------------ ping-pong

// The timed loop of the ring ping-pongs: push one message, spin for its echo, check it.
void pingpong_loop(benchmark::State& state, ringflow::ring_producer& tx, ringflow::ring_consumer& rx,
                   std::uint32_t bytes) {
  const auto payload = make_payload();
  ringflow::ring_message m{};
  m.header.type_id = bench_type_id;
  m.payload = payload.data();
  m.payload_len = bytes;
  std::uint64_t id = 0;
  latency_samples lat(state.max_iterations);
  lat.start();
  for (auto _ : state) {
    m.header.correlation_id = ++id;
    if (!spin_until([&] { return tx.try_push(m) == ring_status::ok; })) {
      state.SkipWithError("ring ping-pong: request ring stayed full");
      break;
    }
    const slot_header* h = nullptr;
    if (!spin_until([&] { return (h = rx.try_peek()) != nullptr; })) {
      state.SkipWithError("ring ping-pong: no echo within 2 s");
      break;
    }
    if (h->correlation_id != id || h->payload_len != bytes) {
      state.SkipWithError("ring ping-pong: echo out of order");
      break;
    }
    rx.release();
    lat.lap();
  }
  lat.report(state);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * bytes * 2);
}

void BM_RingPingPong(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  ringflow::ring_storage to_echo(pingpong_ring());
  ringflow::ring_storage from_echo(pingpong_ring());
  pin_scope pin;
  pin.to(g_place.self_cpu);
  ringflow::ring_producer tx(to_echo.region(), to_echo.producer_scratch());
  ringflow::ring_consumer rx(from_echo.region());

  peer_thread echo([&](const std::atomic<bool>& stop) {
    ringflow::ring_consumer in(to_echo.region());
    ringflow::ring_producer out(from_echo.region(), from_echo.producer_scratch());
    while (!stopping(stop)) {
      const slot_header* h = in.try_peek();
      if (!h) {
        ringflow::cpu_relax();
        continue;
      }
      ringflow::ring_claim c;
      ring_status st;
      while ((st = out.try_claim(h->payload_len, c)) == ring_status::full) {
        if (stopping(stop)) return;
        ringflow::cpu_relax();
      }
      if (st != ring_status::ok) return;  // oversize: cannot happen with these payloads
      c.header->correlation_id = h->correlation_id;
      c.header->deadline_ns = 0;
      c.header->type_id = h->type_id;
      c.header->status = 0;
      std::memcpy(c.payload, in.payload(h), h->payload_len);
      out.commit(c, h->payload_len);
      in.release();
    }
    in.publish();
  });

  pingpong_loop(state, tx, rx, bytes);
  echo.stop();
}

// The same ping-pong over a protocol v2 pair (LL16 units; the host's producer takes its credit
// from the replies it consumed, the echo side is set up as the persistent worker sets up a device
// endpoint): does v2 pay on a cache-coherent host? (docs/ARCHITECTURE.md "Ring protocol v2": the
// CPU ring keeps v1 unless this wins.) Slots of 256 bytes: inline room 72 (v1's 128-byte slot: 64).
void BM_RingV2PingPong(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  ringflow::ring_config cfg = pingpong_ring();
  cfg.slot_size = 256;
  cfg.protocol = ringflow::ring_protocol::v2;
  ringflow::ring_storage to_echo(cfg);
  ringflow::ring_storage from_echo(cfg);
  pin_scope pin;
  pin.to(g_place.self_cpu);
  ringflow::ring_producer tx(to_echo.region(), to_echo.producer_scratch());
  tx.use_credit_from(from_echo.region());
  ringflow::ring_consumer rx(from_echo.region());
  std::vector<slot_header> rx_image(4), echo_image(4), echo_claim(4);  // 64-byte aligned images
  const auto image_bytes = static_cast<std::uint32_t>(4 * sizeof(slot_header));
  (void)rx.set_image_buffer(reinterpret_cast<std::uint8_t*>(rx_image.data()), image_bytes);

  peer_thread echo([&](const std::atomic<bool>& stop) {
    ringflow::ring_consumer in(to_echo.region(), true);
    (void)in.set_image_buffer(reinterpret_cast<std::uint8_t*>(echo_image.data()), image_bytes);
    ringflow::ring_producer out(from_echo.region(), from_echo.producer_scratch());
    out.assume_credit();
    out.set_lazy_tail(true);
    (void)out.set_claim_buffer(reinterpret_cast<std::uint8_t*>(echo_claim.data()), image_bytes);
    while (!stopping(stop)) {
      const slot_header* h = in.try_peek();
      if (!h) {
        ringflow::cpu_relax();
        continue;
      }
      ringflow::ring_claim c;
      if (out.try_claim(h->payload_len, c) != ring_status::ok) return;  // (credit: never full)
      c.header->correlation_id = h->correlation_id;
      c.header->deadline_ns = 0;
      c.header->type_id = h->type_id;
      c.header->status = 0;
      std::memcpy(c.payload, in.payload(h), h->payload_len);
      out.commit(c, h->payload_len);
      in.release();
    }
  });

  pingpong_loop(state, tx, rx, bytes);
  echo.stop();
}

void BM_MoodycamelPingPong(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  moodycamel::ConcurrentQueue<mc_msg> to_echo(pingpong_capacity);
  moodycamel::ConcurrentQueue<mc_msg> from_echo(pingpong_capacity);
  pin_scope pin;
  pin.to(g_place.self_cpu);
  moodycamel::ProducerToken tx(to_echo);
  moodycamel::ConsumerToken rx(from_echo);

  peer_thread echo([&](const std::atomic<bool>& stop) {
    moodycamel::ConsumerToken in(to_echo);
    moodycamel::ProducerToken out(from_echo);
    mc_msg m;
    while (!stopping(stop)) {
      if (!to_echo.try_dequeue(in, m)) {
        ringflow::cpu_relax();
        continue;
      }
      while (!from_echo.enqueue(out, m)) {
        if (stopping(stop)) return;
        ringflow::cpu_relax();
      }
    }
  });

  const auto payload = make_payload();
  mc_msg m{};
  m.type() = bench_type_id;
  m.len() = bytes;
  mc_msg r{};
  std::uint64_t id = 0;
  latency_samples lat(state.max_iterations);
  lat.start();
  for (auto _ : state) {
    m.id() = ++id;
    std::memcpy(m.data, payload.data(), bytes);  // as ring try_push copies the payload
    if (!spin_until([&] { return to_echo.enqueue(tx, m); })) {
      state.SkipWithError("moodycamel ping-pong: enqueue failed");
      break;
    }
    if (!spin_until([&] { return from_echo.try_dequeue(rx, r); })) {
      state.SkipWithError("moodycamel ping-pong: no echo within 2 s");
      break;
    }
    if (r.id() != id || r.len() != bytes) {
      state.SkipWithError("moodycamel ping-pong: echo out of order");
      break;
    }
    lat.lap();
  }
  echo.stop();
  lat.report(state);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * bytes * 2);
}

// ------------------------------------------------------------------------------ bulk throughput

constexpr std::uint32_t bulk_capacity = 1024;
constexpr std::uint32_t bulk_payload_bytes = 32;

// The benchmark thread consumes `batch` items per iteration (zero-copy peek_bulk/release_bulk);
// the peer produces batches with try_push_bulk as fast as the ring lets it.
void BM_RingBulkThroughput(benchmark::State& state) {
  const auto batch = static_cast<std::uint32_t>(state.range(0));
  ringflow::ring_config cfg;
  cfg.capacity = bulk_capacity;
  cfg.slot_size = 128;
  ringflow::ring_storage ring(cfg);
  pin_scope pin;
  pin.to(g_place.self_cpu);
  ringflow::ring_consumer rx(ring.region());
  const auto payload = make_payload();

  peer_thread producer([&](const std::atomic<bool>& stop) {
    ringflow::ring_producer tx(ring.region(), ring.producer_scratch());
    std::vector<ringflow::ring_message> msgs(batch);
    for (auto& m : msgs) {
      m = {};
      m.header.type_id = bench_type_id;
      m.payload = payload.data();
      m.payload_len = bulk_payload_bytes;
    }
    std::uint64_t next = 1;
    while (!stopping(stop)) {
      for (std::uint32_t i = 0; i < batch; ++i) msgs[i].header.correlation_id = next + i;
      std::uint32_t off = 0;
      while (off < batch) {
        const std::uint32_t n = tx.try_push_bulk(msgs.data() + off, batch - off);
        off += n;
        if (n == 0) {
          if (stopping(stop)) return;
          ringflow::cpu_relax();
        }
      }
      next += batch;
    }
  });

  std::uint64_t expect = 1;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    std::uint32_t got = 0;
    bool failed = false;
    while (got < batch) {
      std::uint32_t n = 0;
      if (!spin_until([&] { return (n = rx.peek_bulk(batch - got)) != 0; })) {
        state.SkipWithError("ring bulk: producer stalled");
        failed = true;
        break;
      }
      for (std::uint32_t i = 0; i < n; ++i) {
        const slot_header* h = rx.at(i);
        failed |= h->correlation_id != expect++;
        sum += rx.payload(h)[bulk_payload_bytes - 1];  // touch the payload
      }
      rx.release_bulk(n);
      got += n;
    }
    if (failed) {
      if (!state.error_occurred()) state.SkipWithError("ring bulk: items out of order");
      break;
    }
  }
  rx.publish();
  producer.stop();
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * batch);
}

template <class Msg>
void moodycamel_bulk(benchmark::State& state) {
  const auto batch = static_cast<std::uint32_t>(state.range(0));
  // Preallocated like the ring; try_enqueue_bulk never allocates, so the queue stays bounded.
  moodycamel::ConcurrentQueue<Msg> q(bulk_capacity);
  pin_scope pin;
  pin.to(g_place.self_cpu);
  moodycamel::ConsumerToken rx(q);
  const auto payload = make_payload();

  peer_thread producer([&](const std::atomic<bool>& stop) {
    moodycamel::ProducerToken tx(q);
    std::vector<Msg> msgs(batch);
    for (auto& m : msgs) {
      m = {};
      m.type() = bench_type_id;
      m.len() = bulk_payload_bytes;
      std::memcpy(m.data, payload.data(), bulk_payload_bytes);
    }
    std::uint64_t next = 1;
    while (!stopping(stop)) {
      for (std::uint32_t i = 0; i < batch; ++i) msgs[i].id() = next + i;
      while (!q.try_enqueue_bulk(tx, msgs.begin(), batch)) {  // all or nothing
        if (stopping(stop)) return;
        ringflow::cpu_relax();
      }
      next += batch;
    }
  });

  std::vector<Msg> buf(batch);
  std::uint64_t expect = 1;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    std::uint32_t got = 0;
    bool failed = false;
    while (got < batch) {
      std::size_t n = 0;
      if (!spin_until([&] { return (n = q.try_dequeue_bulk(rx, buf.begin(), batch - got)) != 0; })) {
        state.SkipWithError("moodycamel bulk: producer stalled");
        failed = true;
        break;
      }
      for (std::size_t i = 0; i < n; ++i) {
        failed |= buf[i].id() != expect++;
        sum += buf[i].data[bulk_payload_bytes - 1];
      }
      got += static_cast<std::uint32_t>(n);
    }
    if (failed) {
      if (!state.error_occurred()) state.SkipWithError("moodycamel bulk: items out of order");
      break;
    }
  }
  producer.stop();
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * batch);
}

// range(1): envelope bytes per element: 64 = the ring's slot header (same bytes as the ring),
// 0 = a lean element (id, type, length, payload).
void BM_MoodycamelBulkThroughput(benchmark::State& state) {
  if (state.range(1) == 0) {
    moodycamel_bulk<mc_lean>(state);
  } else {
    moodycamel_bulk<mc_msg>(state);
  }
}

// ------------------------------------------------------------------------------ CPU ring kernel

std::vector<std::uint8_t> echo_request() {
  flatbuffers::FlatBufferBuilder fbb(256);
  std::array<std::uint8_t, 16> body{};
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(i);
  const auto b = fbb.CreateVector(body.data(), body.size());
  const auto note = fbb.CreateString("bench");
  ringflow::demo::FinishEchoBuffer(fbb, ringflow::demo::CreateEcho(fbb, 42, b, note));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

std::vector<std::uint8_t> score_request() {
  flatbuffers::FlatBufferBuilder fbb(256);
  const ringflow::demo::Quote quote(101.25, 3, 2);
  const std::vector<ringflow::demo::Feature> features{{1, 0.5f},     {7, -0.25f}, {42, 1.0f}, {99, 0.75f},
                                                      {1234, -0.5f}, {5, 0.125f}, {77, 0.3f}, {300, -0.9f}};
  const auto fv = fbb.CreateVectorOfStructs(features);
  const auto symbol = fbb.CreateString("RFLW");
  ringflow::demo::FinishScoreRequestBuffer(fbb, ringflow::demo::CreateScoreRequest(fbb, 7, &quote, fv, 0.2f, symbol));
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

// One cpu_kernel (one ring of kernel K, default ring options) and one host_client on the
// benchmark thread; each iteration is one call() reusing one reply. range(0): 1 = no parking
// (wait_policy::park = false on both sides: spin, then sched_yield), 0 = the default policy
// (spin -> yield -> park).
template <class K>
void cpu_kernel_round_trip(benchmark::State& state, const std::vector<std::uint8_t>& request, bool echo) {
  const bool spin = state.range(0) != 0;
  ringflow::cpu::kernel_config kc;
  kc.name = "bench";
  kc.wait.park = !spin;
  ringflow::cpu::cpu_kernel kernel(kc);
  ringflow::cpu::channel& ch = kernel.add_ring<K>();
  pin_scope pin;
  pin.to(g_place.peer_cpu);  // the kernel thread inherits the peer CPU ...
  kernel.start();
  pin.to(g_place.self_cpu);  // ... and the client runs on the other one
  {
    ringflow::cpu::host_client client(kernel, ch, kc.wait);
    ringflow::cpu::reply r;
    r.payload.reserve(512);
    latency_samples lat(state.max_iterations);
    lat.start();
    for (auto _ : state) {
      client.call(K::request::type_id_, request, std::chrono::seconds(1), r);
      if (!r.ok()) {
        state.SkipWithError(ringflow::to_string(r.st));
        break;
      }
      lat.lap();
    }
    lat.report(state);
    if (!state.error_occurred() && echo && r.payload != request) state.SkipWithError("echo reply differs");
  }
  const auto ks = kernel.stats();
  if (kernel.stop() != ringflow::cpu::stop_outcome::stopped && !state.error_occurred())
    state.SkipWithError("cpu_kernel did not stop cleanly");
  state.counters["kernel_parks"] = benchmark::Counter(static_cast<double>(ks.parks));
}

void BM_CpuKernelRoundTrip(benchmark::State& state) {
  static const std::vector<std::uint8_t> request = echo_request();
  cpu_kernel_round_trip<ringflow::demo_kernels::EchoKernel>(state, request, true);
}

void BM_CpuKernelRoundTripScore(benchmark::State& state) {
  static const std::vector<std::uint8_t> request = score_request();
  cpu_kernel_round_trip<ringflow::demo_kernels::ScoreKernel>(state, request, false);
}

// The device side of a v2 ring pair on one host thread: the cost of batched serving's code (the
// plan, ballots, prefix and commit_ahead phases a warp runs) against one-at-a-time serve_one, with
// no PCIe in the way. On a GPU the batch's point is parallel reads across PCIe; here it must at
// least not cost more per request.
void BM_V2ServeBatch(benchmark::State& state) {
  using table = ringflow::kernel_table<ringflow::demo_kernels::EchoKernel>;
  constexpr std::uint32_t burst = 32;
  ringflow::ring_config cfg{64, 256, 0, 0};
  cfg.protocol = ringflow::ring_protocol::v2;
  ringflow::ring_storage rq(cfg), rp(cfg);
  ringflow::control_block ctl{};
  ctl.reset(1);
  std::vector<slot_header> stage(2 * 16384 / sizeof(slot_header)), image(4);
  auto* base = reinterpret_cast<std::uint8_t*>(stage.data());
  const ringflow::serve_staging staging{base, 16384, base + 16384, 16384};
  ringflow::persistent_ring entry{};
  entry.kernel_index = 0;
  entry.max_batch = burst;
  entry.requests = rq.region().base();
  entry.replies = rp.region().base();
  entry.control = &ctl;
  entry.request_config = entry.reply_config = cfg;
  ringflow::persistent_endpoint ep{};
  if (!ringflow::detail::bind_entry<table>(entry, ep, &staging)) {
    state.SkipWithError("bind_entry refused the rings");
    return;
  }
  ringflow::ring_producer tx(rq.region(), rq.producer_scratch());
  tx.use_credit_from(rp.region());
  ringflow::ring_consumer rx(rp.region());
  (void)rx.set_image_buffer(reinterpret_cast<std::uint8_t*>(image.data()),
                            static_cast<std::uint32_t>(image.size() * sizeof(slot_header)));
  ringflow::sequential_lanes lanes;
  lanes.width = static_cast<std::uint32_t>(state.range(0));
  std::array<std::uint8_t, 64> payload{};
  slot_header h{};
  h.type_id = ringflow::msg::Echo::type_id_;
  std::uint64_t corr = 0;
  for (auto _ : state) {
    for (std::uint32_t i = 0; i < burst; ++i) {
      h.correlation_id = ++corr;
      if (tx.try_push({h, payload.data(), 64}) != ring_status::ok) {
        state.SkipWithError("request ring full");
        return;
      }
    }
    std::uint32_t served = 0, total = 0;
    std::uint64_t lines = 0;
    while (total < burst) {
      (void)ringflow::detail::serve_ring<table>(ep, burst - total, served, &staging, lanes, lines);
      total += served;
    }
    for (std::uint32_t i = 0; i < burst; ++i) {
      const slot_header* r = rx.try_peek();
      if (!r || r->correlation_id != corr - burst + 1 + i) {
        state.SkipWithError("reply missing or out of order");
        return;
      }
      benchmark::DoNotOptimize(r->payload_len);
      rx.release();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * burst);
}

}  // namespace

BENCHMARK(BM_V2ServeBatch)->ArgName("lanes")->Arg(1)->Arg(8)->Arg(32)->UseRealTime();
BENCHMARK(BM_RingPingPong)->ArgName("bytes")->Arg(8)->Arg(64)->UseRealTime();
BENCHMARK(BM_RingV2PingPong)->ArgName("bytes")->Arg(8)->Arg(64)->UseRealTime();
BENCHMARK(BM_MoodycamelPingPong)->ArgName("bytes")->Arg(8)->Arg(64)->UseRealTime();
BENCHMARK(BM_RingBulkThroughput)->ArgName("batch")->Arg(32)->UseRealTime();
BENCHMARK(BM_MoodycamelBulkThroughput)->ArgNames({"batch", "envelope"})->Args({32, 64})->Args({32, 0})->UseRealTime();
BENCHMARK(BM_CpuKernelRoundTrip)->ArgName("spin")->Arg(0)->Arg(1)->UseRealTime();

int main(int argc, char** argv) {
  init_placement();  // before any pinning: the process's allowed CPUs
  benchmark::RegisterBenchmark("BM_CpuKernelRoundTrip/score", BM_CpuKernelRoundTripScore)
      ->ArgName("spin")
      ->Arg(0)
      ->Arg(1)
      ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("ringflow_threads",
                              "2 spinning threads per benchmark: benchmark thread + 1 peer (echo/producer/kernel)");
  benchmark::AddCustomContext("ringflow_pinning", g_place.enabled
                                                      ? "benchmark thread -> cpu " + std::to_string(g_place.self_cpu) +
                                                            ", peer -> cpu " + std::to_string(g_place.peer_cpu)
                                                      : std::string("off"));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
