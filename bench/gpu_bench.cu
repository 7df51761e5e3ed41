// bench/gpu_bench.cu — ringflow_bench_gpu: the CUDA persistent ring kernel against a conventional
// kernel launch + sync and a CUDA graph replay, its batched throughput, and many ring actors bound to
// one kernel, side by side in one Google Benchmark binary (docs/BENCHMARKS.md, "GPU";
// bench/run-gpu.sh builds and runs it on a GPU machine).
//
// Benchmarks (base names are interfaces: scripts and docs rely on them; Google Benchmark appends
// /real_time):
//   BM_GpuRingRoundTrip/<bytes>   one Echo ring bound to a device's persistent kernel
//                                 (make_cuda_device: rings in pinned mapped host memory); the
//                                 benchmark thread pushes one request, spins on the response ring
//                                 and checks the reply: one round trip per iteration.
//   BM_LaunchSync/<bytes>         what the ring replaces: the same request/response rings in pinned
//                                 mapped memory, served per message by a launch of a one-thread
//                                 kernel running the same serve_one<EchoKernel> with the same
//                                 staging, then cudaStreamSynchronize. Only the dispatch differs.
//   BM_GraphReplay/<bytes>        that launch captured once into a CUDA graph; per message
//                                 cudaGraphLaunch + cudaStreamSynchronize.
//   BM_GpuRingBatchedThroughput/rings:R   R Echo rings (1024 slots, 64-byte payloads) on one
//                                 persistent kernel, kept full by one host thread (try_push_bulk
//                                 into whatever room there is, peek_bulk / release_bulk of the
//                                 replies); items_per_second = replies checked per second.
//   BM_GpuRingActors/<N>          N logical ring actors (N small Echo rings) bound to ONE persistent
//                                 kernel; round trips of 64 bytes round-robin across the rings, at
//                                 most one outstanding per ring and `window` (default 8) at once.
//   BM_GpuRingV2RoundTrip/<bytes>, BM_GpuRingV2BatchedThroughput/rings:R, BM_GpuRingV2Actors/<N>
//                                 the same on ring protocol v2 (gpu_device_options::ring_protocol
//                                 = 2: LL16 units, credit from replies, the scout), in the same run.
//   BM_GpuRingV2SerialThroughput/rings:R  BM_GpuRingV2BatchedThroughput with batch_lanes = 1 (lane
//                                 0 serves one request at a time): the baseline of the warp batches.
// bytes: 64 and 256 travel inline in the slot; 1024 and 4096 in the rings' arenas. Payloads are
// opaque bytes typed Echo (EchoKernel copies them without parsing).
//
// Measurement: latency benchmarks time every round trip with steady_clock (before the push ->
// reply visible) into samples preallocated before the timed loop, and report p50_us / p99_us /
// p999_us (computed after the loop) and items_per_second (round trips per second of real time).
// vs_ring (LaunchSync, GraphReplay) = their p50 / BM_GpuRingRoundTrip's p50 at the same size, from
// the latest run of that benchmark in this process (absent when it did not run, e.g. filtered out);
// other ratios are computed in the docs. Also: rings, window, workers (the persistent kernel's);
// throughput: request_slots (rings x 1024), request_ring_full (the host found a request ring full:
// the device was behind) and reply_ring_full (the device found a response ring full: the host was
// behind), both over the whole run. Every reply is checked — correlation id, status, type, size
// and payload bytes — and a mismatch, or a wait past 5 s, ends the benchmark with SkipWithError.
// Every benchmark warms up (up to 1000 round trips / 50 ms; throughput: the rings filled twice)
// before its timed loop. Nothing is asserted about the numbers: this program measures.
//
// Devices: each ring benchmark opens its own gpu_device and closes it before returning, so a
// failure stays in that benchmark (except a kernel that ignores its stop: its memory cannot be freed
// while it runs, so every later benchmark is skipped); the launch and graph benchmarks open none (no
// persistent kernel runs while they do). Replies are taken by polling the response rings from the benchmark thread;
// incarnation::notify() is called after every push, as the actor layer does: on v1 rings it only
// wakes the device's monitor thread; on protocol v2 rings it also bumps the scout's summary word,
// without which an idle ring is found only by the sweep.
//
// Threads: the benchmark thread (the only producer of every request ring and the only consumer of
// every response ring) spins; each gpu_device adds its monitor thread (spins while any request is
// outstanding, else parks). cudaStreamSynchronize uses the runtime's default schedule (spins when
// cores are plentiful). Nothing is pinned.
//
// Exit 77, with one line on stderr ("no usable CUDA device: <why>"), when probe_cuda() finds no
// usable device (skipped here; gpu-bundle/run.sh counts it a failure on a GPU machine); exit 1 when
// any benchmark run ended with an error (SkipWithError: a reply mismatch, a 5 s wait, a device
// that would not open) — the JSON then holds "error_occurred": true for it; else 0.
// Environment: RINGFLOW_GPU_BENCH_BLOCKS / _WARPS / _BACKOFF_NS — the persistent kernel's geometry
// (defaults: gpu_device_options's: one block per SM, 4 workers per block, 2048 ns back-off ceiling);
// RINGFLOW_GPU_BENCH_WINDOW — BM_GpuRingActors' window (0: one outstanding on every ring).
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/kernel.hpp"
#include "ringflow/ring.hpp"

namespace {

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;
using ringflow::byte;
using ringflow::incarnation;
using ringflow::ring_config;
using ringflow::ring_consumer;
using ringflow::ring_layout;
using ringflow::ring_message;
using ringflow::ring_producer;
using ringflow::ring_status;
using ringflow::slot_header;
using ringflow::demo_kernels::EchoKernel;
namespace gpu = ringflow::gpu;

constexpr auto wait_limit = 5s;  // every wait for the device gives up after this
constexpr std::uint32_t echo_type = ringflow::msg::Echo::type_id_;

// ------------------------------------------------------------------------------ shared state

// BM_GpuRingRoundTrip's latest p50 (us) per payload size, for vs_ring. Benchmark thread only.
std::map<std::uint32_t, double> g_ring_p50_us;
// The ring protocol the next ring_set formats its device's rings with (the BM_GpuRingV2* wrappers
// set 2 for their run; docs/ARCHITECTURE.md "Ring protocol v2").
std::uint32_t g_protocol = 1;
std::uint32_t g_batch_lanes = gpu::gpu_device_options{}.batch_lanes;

// Set when a gpu_device's destruction ran into its stop timeout: its persistent kernel may still
// run and its pools stay allocated, so a later call that waits for the device (cudaFree,
// cudaFreeHost) would wait forever. Every later benchmark is skipped instead. Benchmark thread only.
bool g_kernel_left_running = false;

std::uint32_t env_u32(const char* name, std::uint32_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const unsigned long n = std::strtoul(v, &end, 10);
  return *end == 0 && n <= std::numeric_limits<std::uint32_t>::max() ? static_cast<std::uint32_t>(n) : fallback;
}

void fail(benchmark::State& state, const std::string& why) {
  if (!state.error_occurred()) state.SkipWithError(why.c_str());
}

std::string cuda_failure(const char* what, cudaError_t e) {
  return std::string(what) + " failed: " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
}

// Stores why a step failed; returns false (for `return failed(why, ...);`).
bool failed(std::string& why, std::string detail) {
  why = std::move(detail);
  return false;
}

// ------------------------------------------------------------------------------ latency samples

// One sample per round trip, in a vector sized (and page-faulted in) before the timed loop.
class latency_log {
 public:
  static constexpr benchmark::IterationCount max_samples = 4'000'000;

  explicit latency_log(benchmark::IterationCount iterations)
      : ns_(static_cast<std::size_t>(std::clamp<benchmark::IterationCount>(iterations, 1, max_samples))) {}

  void add(clk::duration d) {
    if (n_ == ns_.size()) return;
    const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    ns_[n_++] = static_cast<std::uint32_t>(std::clamp<std::int64_t>(ns, 0, std::numeric_limits<std::uint32_t>::max()));
  }
  /// Sets p50_us / p99_us / p999_us; returns p50 (0 without samples).
  double report(benchmark::State& state) {
    if (n_ == 0) return 0;
    const double p50 = percentile_us(0.50);
    state.counters["p50_us"] = p50;
    state.counters["p99_us"] = percentile_us(0.99);
    state.counters["p999_us"] = percentile_us(0.999);
    return p50;
  }

 private:
  double percentile_us(double p) {
    const std::size_t k = std::min(n_ - 1, static_cast<std::size_t>(p * static_cast<double>(n_ - 1) + 0.5));
    std::nth_element(ns_.begin(), ns_.begin() + static_cast<std::ptrdiff_t>(k),
                     ns_.begin() + static_cast<std::ptrdiff_t>(n_));
    return static_cast<double>(ns_[k]) / 1e3;
  }

  std::vector<std::uint32_t> ns_;
  std::size_t n_ = 0;
};

// Runs step() until it fails, 1000 times, or 50 ms passed.
template <class Step>
bool warm_up(Step&& step) {
  const auto end = clk::now() + 50ms;
  for (int i = 0; i < 1000 && clk::now() < end; ++i)
    if (!step()) return false;
  return true;
}

// ------------------------------------------------------------------------------ payloads and rings

std::vector<std::uint8_t> make_payload(std::uint32_t bytes) {
  std::vector<std::uint8_t> p(bytes);
  for (std::uint32_t i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(i * 7 + 1);
  return p;
}

constexpr std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }
constexpr std::uint32_t max_inline_bytes = 256;

// An Echo ring for payloads of `bytes`: inline when bytes <= 256 (slot = header + payload rounded
// to 64, at least 128), otherwise 128-byte slots and an arena with room for one payload per slot.
ring_config echo_ring(std::uint32_t bytes, std::uint32_t capacity) {
  ring_config c;
  c.capacity = capacity;
  c.head_batch = 0;
  if (bytes <= max_inline_bytes) {
    c.slot_size = static_cast<std::uint32_t>(std::max<std::uint64_t>(128, round_up(sizeof(slot_header) + bytes, 64)));
    c.arena_bytes = 0;
  } else {
    c.slot_size = 128;
    c.arena_bytes = static_cast<std::uint32_t>(capacity * round_up(bytes, 64));
  }
  return c;
}

gpu::gpu_ring_options echo_rings(std::uint32_t bytes, std::uint32_t capacity) {
  gpu::gpu_ring_options r;
  r.requests = echo_ring(bytes, capacity);
  r.replies = echo_ring(bytes, capacity);
  return r;
}

// A device for `rings` rings of geometry `r`: pools sized for exactly that (plus slack), the
// kernel's geometry from the environment (see the header).
gpu::gpu_device_options device_options(const gpu::gpu_ring_options& asked, std::uint32_t rings) {
  gpu::gpu_device_options o;
  o.ring_protocol = g_protocol;
  o.batch_lanes = g_batch_lanes;
  const gpu::gpu_ring_options r = gpu::ring_geometry(asked, g_protocol);  // what the device will make
  o.max_rings = rings;
  o.ring_pool_bytes =
      rings * (round_up(ring_layout{r.requests}.bytes(), 128) + round_up(ring_layout{r.replies}.bytes(), 128)) +
      (64u << 10);
  o.max_reply_capacity = r.replies.capacity;  // device scratch: max_rings x this u64s
  o.blocks = env_u32("RINGFLOW_GPU_BENCH_BLOCKS", o.blocks);
  o.warps_per_block = env_u32("RINGFLOW_GPU_BENCH_WARPS", o.warps_per_block);
  o.backoff_max_ns = env_u32("RINGFLOW_GPU_BENCH_BACKOFF_NS", o.backoff_max_ns);
  return o;
}

// Why reply `h` (taken from `rx`) is not the echo of request `corr` carrying `payload`; nullptr if
// it is.
const char* echo_mismatch(const ring_consumer& rx, const slot_header& h, std::uint64_t corr,
                          const std::vector<std::uint8_t>& payload) {
  if (h.correlation_id != corr) return "reply to another request (correlation id: lost, duplicated or reordered reply)";
  if (h.status != 0) return "error reply";
  if (h.type_id != echo_type) return "reply type is not Echo";
  if (h.payload_len != payload.size()) return "reply size differs from the request's";
  if (!rx.region().payload_in_bounds(h)) return "reply payload lies outside its ring";
  if (std::memcmp(rx.payload(&h), payload.data(), payload.size()) != 0)
    return "reply payload differs from the request's";
  return nullptr;
}

std::string mismatch_detail(const char* why, const slot_header& h, std::uint64_t corr, std::size_t bytes) {
  return std::string(why) + " (got correlation id " + std::to_string(h.correlation_id) + ", status " +
         ringflow::to_string(static_cast<ringflow::status>(h.status)) + ", " + std::to_string(h.payload_len) +
         " bytes; want " + std::to_string(corr) + ", ok, " + std::to_string(bytes) + " bytes)";
}

// ------------------------------------------------------------------------------ persistent-kernel rings

// One gpu_device with `rings` Echo incarnations and the host ends of their rings. The benchmark
// thread is the only producer of every request ring and the only consumer of every response ring.
// Closed when it goes out of scope: after a failure (state.error_occurred()) the rings are abandoned
// rather than stopped — a stop drains, and a drain blocked on an unread, full response ring would
// hold each ring for the incarnation's 1 s stop timeout.
class ring_set {
 public:
  explicit ring_set(benchmark::State& state) : state_(state) {}
  ring_set(const ring_set&) = delete;
  ring_set& operator=(const ring_set&) = delete;
  ~ring_set() { close(); }

  // Opens the device, binds the rings and waits until every one is served (state running).
  bool open(std::uint32_t rings, const gpu::gpu_ring_options& ro) {
    if (g_kernel_left_running) {
      fail(state_, "skipped: an earlier benchmark's persistent kernel ignored its stop (it may still run)");
      return false;
    }
    const gpu::gpu_device_options opts = device_options(ro, rings);
    try {
      dev_ = gpu::make_cuda_device(opts);
      const ringflow::incarnation_factory make = dev_->factory<EchoKernel>(ro);
      incs_.reserve(rings);
      for (std::uint32_t i = 0; i < rings; ++i) incs_.push_back(make(&bell_));
    } catch (const std::exception& e) {
      fail(state_, std::string("opening the device and its rings failed: ") + e.what());
      return false;
    }
    const auto end = clk::now() + wait_limit;
    for (std::size_t i = 0; i < incs_.size(); ++i) {
      while (incs_[i]->control().current_state() != ringflow::kernel_state::running) {
        if (incs_[i]->finished() || clk::now() > end) {
          fail(state_, "ring " + std::to_string(i) + " was not served within 5 s: " + describe(i));
          return false;
        }
        std::this_thread::yield();
      }
    }
    tx_.reserve(rings);
    rx_.reserve(rings);
    images_.resize(incs_.size());
    for (std::size_t i = 0; i < incs_.size(); ++i) {
      incarnation& inc = *incs_[i];
      tx_.emplace_back(inc.requests(), inc.request_producer_scratch());
      rx_.emplace_back(inc.replies());
      if (inc.requests().config().is_v2()) {  // credit from the replies, replies decoded into an image
        tx_.back().use_credit_from(inc.replies());
        images_[i].resize(ringflow::ll::image_bytes(inc.replies().config().inline_capacity()) / 64);
        (void)rx_.back().set_image_buffer(reinterpret_cast<std::uint8_t*>(images_[i].data()),
                                          static_cast<std::uint32_t>(images_[i].size() * 64));
      }
    }
    return true;
  }

  // Stops (or, after a failure, abandons) every ring, then the device and its kernel.
  void close() noexcept {
    tx_.clear();
    rx_.clear();
    if (state_.error_occurred())
      for (auto& inc : incs_) inc->abandon();  // the device's own stop ends them with the kernel
    incs_.clear();
    if (!dev_) return;
    if (!dev_->stop_kernel()) g_kernel_left_running = true;  // a hang: its memory stays allocated
    dev_.reset();
  }

  std::uint32_t size() const { return static_cast<std::uint32_t>(incs_.size()); }
  ring_producer& tx(std::uint32_t i) { return tx_[i]; }
  ring_consumer& rx(std::uint32_t i) { return rx_[i]; }
  incarnation& inc(std::uint32_t i) { return *incs_[i]; }
  gpu::gpu_device& device() { return *dev_; }

  // Ring i's control block and the device's last error, for failure messages.
  std::string describe(std::size_t i) {
    ringflow::control_block& cb = incs_[i]->control();
    std::string s = std::string("ring state ") + ringflow::to_string(cb.current_state());
    if (const ringflow::kernel_error e = cb.current_error(); e != ringflow::kernel_error::none)
      s += ", error " + std::string(ringflow::to_string(e)) + ": " +
           std::string(cb.error_detail, strnlen(cb.error_detail, ringflow::control_block::detail_bytes));
    s += ", processed " + std::to_string(cb.processed_count());
    if (dev_->poisoned()) s += "; device poisoned";
    if (const std::string last = dev_->last_error(); !last.empty()) s += "; device: " + last;
    return s;
  }

 private:
  benchmark::State& state_;
  // The rings' completion bell (declared before the device, which outlives the incarnations).
  // Nobody waits on it: the benchmark polls the response rings.
  ringflow::doorbell bell_;
  std::shared_ptr<gpu::gpu_device> dev_;
  std::vector<std::unique_ptr<incarnation>> incs_;
  std::vector<ring_producer> tx_;
  std::vector<ring_consumer> rx_;
  std::vector<std::vector<slot_header>> images_;  // protocol v2: each ring's decoded reply (64-byte aligned)
};

// Round trips on a ring_set: at most one request outstanding per ring and `window` at once, the
// next request going to the next idle ring round-robin. Benchmark thread only.
class closed_loop {
 public:
  closed_loop(ring_set& rs, std::uint32_t bytes, std::uint32_t window)
      : rs_(rs),
        payload_(make_payload(bytes)),
        window_(std::clamp<std::uint32_t>(window, 1, rs.size())),
        busy_(rs.size(), 0) {
    inflight_.reserve(window_);
    msg_.header.type_id = echo_type;
    msg_.payload = payload_.data();
    msg_.payload_len = bytes;
  }

  std::uint32_t window() const { return window_; }

  // Tops the window up, then completes the first reply to arrive: checked; `rtt` = push -> visible.
  bool step(clk::duration& rtt, std::string& why) {
    while (inflight_.size() < window_)
      if (!send(why)) return false;
    return complete(rtt, why);
  }

  // Completes every outstanding round trip (before the rings are stopped).
  bool drain(std::string& why) {
    clk::duration ignored{};
    while (!inflight_.empty())
      if (!complete(ignored, why)) return false;
    return true;
  }

 private:
  struct pending {
    std::uint32_t ring;
    std::uint64_t corr;
    clk::time_point sent;
  };

  bool send(std::string& why) {
    const std::uint32_t n = rs_.size();
    std::uint32_t r = next_ring_;
    while (busy_[r]) r = (r + 1) % n;  // ends: fewer than n rings are busy (window <= n, not full)
    next_ring_ = (r + 1) % n;
    msg_.header.correlation_id = ++corr_;
    const clk::time_point t = clk::now();
    if (const ring_status st = rs_.tx(r).try_push(msg_); st != ring_status::ok) {
      why = "request ring " + std::to_string(r) + " refused a push with nothing outstanding (" +
            (st == ring_status::full ? "full" : "oversize") + ")";
      return false;
    }
    rs_.inc(r).notify();  // as the actor layer does (protocol v2: the scout's summary word)
    busy_[r] = 1;
    inflight_.push_back({r, corr_, t});
    return true;
  }

  bool complete(clk::duration& rtt, std::string& why) {
    clk::time_point give_up{};
    for (std::uint32_t spins = 1;; ++spins) {
      if (poll_ >= inflight_.size()) {
        poll_ = 0;
        ringflow::cpu_relax();  // once per sweep over the outstanding rings
      }
      const pending p = inflight_[poll_];
      ring_consumer& rx = rs_.rx(p.ring);
      if (const slot_header* h = rx.try_peek()) {
        const clk::time_point now = clk::now();
        if (const char* bad = echo_mismatch(rx, *h, p.corr, payload_)) {
          why = "ring " + std::to_string(p.ring) + ": " + mismatch_detail(bad, *h, p.corr, payload_.size());
          return false;
        }
        rx.release();
        rtt = now - p.sent;
        busy_[p.ring] = 0;
        inflight_[poll_] = inflight_.back();
        inflight_.pop_back();
        return true;
      }
      ++poll_;
      if ((spins & 0x3FFu) == 0) {
        const clk::time_point now = clk::now();
        if (give_up == clk::time_point{}) {
          give_up = now + wait_limit;
        } else if (now > give_up) {
          why = "no reply within 5 s on ring " + std::to_string(p.ring) + ": " + rs_.describe(p.ring);
          return false;
        }
      }
    }
  }

  ring_set& rs_;
  std::vector<std::uint8_t> payload_;
  std::uint32_t window_;
  std::vector<std::uint8_t> busy_;  // per ring: a request is outstanding
  std::vector<pending> inflight_;
  ring_message msg_{};
  std::uint32_t next_ring_ = 0;
  std::size_t poll_ = 0;
  std::uint64_t corr_ = 0;
};

// Warm-up, the timed loop (one completed round trip per iteration), the drain and the counters.
// Returns the p50 in us (0 on failure).
double ring_round_trips(benchmark::State& state, ring_set& rs, std::uint32_t bytes, std::uint32_t window) {
  closed_loop loop(rs, bytes, window);
  std::string why;
  clk::duration rtt{};
  if (!warm_up([&] { return loop.step(rtt, why); })) {
    fail(state, "warm-up: " + why);
    return 0;
  }
  latency_log lat(state.max_iterations);
  for (auto _ : state) {
    if (!loop.step(rtt, why)) {
      fail(state, why);
      break;
    }
    lat.add(rtt);
  }
  if (!state.error_occurred() && !loop.drain(why)) fail(state, "drain: " + why);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["rings"] = rs.size();
  state.counters["window"] = loop.window();
  state.counters["workers"] = rs.device().workers();
  return state.error_occurred() ? 0 : lat.report(state);
}

void BM_GpuRingRoundTrip(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  ring_set rs(state);
  if (!rs.open(1, echo_rings(bytes, 64))) return;
  if (const double p50 = ring_round_trips(state, rs, bytes, 1); p50 > 0) g_ring_p50_us[bytes] = p50;
}

void BM_GpuRingActors(benchmark::State& state) {
  const auto rings = static_cast<std::uint32_t>(state.range(0));
  const std::uint32_t window = env_u32("RINGFLOW_GPU_BENCH_WINDOW", 8);
  ring_set rs(state);
  if (!rs.open(rings, echo_rings(64, 16))) return;
  ring_round_trips(state, rs, 64, window == 0 ? rings : window);
}

// ------------------------------------------------------------------------------ batched throughput

constexpr std::uint32_t batched_capacity = 1024;  // slots per request / response ring
constexpr std::uint32_t batched_bytes = 64;
constexpr std::uint32_t batched_chunk = 256;           // messages per try_push_bulk / peek_bulk
constexpr std::uint64_t batched_per_iteration = 4096;  // replies per iteration (all rings)

// Keeps every ring of a ring_set full and takes every reply. Ring r's m-th request carries
// correlation id r << 40 | m (m from 1), so a reply from another ring or out of order is caught.
class pipeline {
 public:
  explicit pipeline(ring_set& rs)
      : rs_(rs),
        payload_(make_payload(batched_bytes)),
        sent_(rs.size(), 0),
        received_(rs.size(), 0),
        msgs_(batched_chunk) {
    for (ring_message& m : msgs_) {
      m = {};
      m.header.type_id = echo_type;
      m.payload = payload_.data();
      m.payload_len = batched_bytes;
    }
  }

  // Pumps until `want` more replies were taken (pushing when `push`, else only collecting). Gives
  // up when no reply arrived for 5 s.
  bool pump(std::uint64_t want, bool push, std::uint64_t& taken, std::string& why) {
    taken = 0;
    clk::time_point give_up{};
    for (std::uint32_t idle = 0; taken < want;) {
      std::uint64_t n = 0;
      if (!sweep(push, n, why)) return false;
      taken += n;
      if (n) {
        idle = 0;
        give_up = {};
        continue;
      }
      if ((++idle & 0xFFu) == 0) {
        const clk::time_point now = clk::now();
        if (give_up == clk::time_point{}) {
          give_up = now + wait_limit;
        } else if (now > give_up) {
          why = "no reply for 5 s (ring 0: " + rs_.describe(0) + ")";
          return false;
        }
      }
      ringflow::cpu_relax();
    }
    return true;
  }

  // Times the host found a request ring full (the device was behind).
  std::uint64_t request_ring_full() const { return request_ring_full_; }

  // Stops pushing and takes the replies of everything sent (before the rings are stopped).
  bool settle(std::string& why) {
    std::uint64_t outstanding = 0;
    for (std::uint32_t r = 0; r < rs_.size(); ++r) outstanding += sent_[r] - received_[r];
    std::uint64_t taken = 0;
    return pump(outstanding, false, taken, why);
  }

 private:
  static std::uint64_t corr(std::uint32_t ring, std::uint64_t m) { return static_cast<std::uint64_t>(ring) << 40 | m; }

  // One pass over the rings: top each request ring up, take (and check) what replies are there.
  bool sweep(bool push, std::uint64_t& taken, std::string& why) {
    for (std::uint32_t r = 0; r < rs_.size(); ++r) {
      if (push) {
        ring_producer& tx = rs_.tx(r);
        // free_slots() re-reads head only when its cached copy says the ring is full.
        const auto n = static_cast<std::uint32_t>(std::min<std::uint64_t>(tx.free_slots(), batched_chunk));
        for (std::uint32_t i = 0; i < n; ++i) msgs_[i].header.correlation_id = corr(r, sent_[r] + i + 1);
        if (n) {
          sent_[r] += tx.try_push_bulk(msgs_.data(), n);
          rs_.inc(r).notify();
        } else {
          ++request_ring_full_;
        }
      }
      ring_consumer& rx = rs_.rx(r);
      if (rx.region().config().is_v2()) {  // v2: one decoded reply at a time (no peek_bulk)
        std::uint32_t n = 0;
        while (n < batched_chunk) {
          const slot_header* h = rx.try_peek();
          if (!h) break;
          const std::uint64_t want = corr(r, received_[r] + n + 1);
          if (const char* bad = echo_mismatch(rx, *h, want, payload_)) {
            why = "ring " + std::to_string(r) + ": " + mismatch_detail(bad, *h, want, payload_.size());
            return false;
          }
          rx.release();
          ++n;
        }
        received_[r] += n;
        taken += n;
        continue;
      }
      const std::uint32_t n = rx.peek_bulk(batched_chunk);
      for (std::uint32_t i = 0; i < n; ++i) {
        const slot_header* h = rx.at(i);
        const std::uint64_t want = corr(r, received_[r] + i + 1);
        if (const char* bad = echo_mismatch(rx, *h, want, payload_)) {
          why = "ring " + std::to_string(r) + ": " + mismatch_detail(bad, *h, want, payload_.size());
          return false;
        }
      }
      rx.release_bulk(n);
      received_[r] += n;
      taken += n;
    }
    return true;
  }

  ring_set& rs_;
  std::vector<std::uint8_t> payload_;
  std::vector<std::uint64_t> sent_, received_;  // per ring
  std::vector<ring_message> msgs_;
  std::uint64_t request_ring_full_ = 0;
};

void BM_GpuRingBatchedThroughput(benchmark::State& state) {
  const auto rings = static_cast<std::uint32_t>(state.range(0));
  ring_set rs(state);
  if (!rs.open(rings, echo_rings(batched_bytes, batched_capacity))) return;
  pipeline p(rs);
  std::string why;
  std::uint64_t taken = 0, total = 0;
  if (!p.pump(2ull * batched_capacity * rings, true, taken, why)) {
    fail(state, "warm-up: " + why);
    return;
  }
  for (auto _ : state) {
    if (!p.pump(batched_per_iteration, true, taken, why)) {
      fail(state, why);
      break;
    }
    total += taken;
  }
  if (!state.error_occurred() && !p.settle(why)) fail(state, "settle: " + why);
  state.SetItemsProcessed(static_cast<std::int64_t>(total));
  std::uint64_t reply_full = 0;
  for (std::uint32_t r = 0; r < rings; ++r) reply_full += ringflow::ring_observer(rs.inc(r).replies()).full_events();
  state.counters["rings"] = rings;
  state.counters["workers"] = rs.device().workers();
  state.counters["request_slots"] = static_cast<double>(rings) * batched_capacity;
  // Whole run incl. warm-up: request rings found full by the host (the device was behind) and
  // response rings found full by the device (the host was behind).
  state.counters["request_ring_full"] = static_cast<double>(p.request_ring_full());
  state.counters["reply_ring_full"] = static_cast<double>(reply_full);
}

// ------------------------------------------------------------------------------ launch per message

// The request and response rings of the launch and graph benchmarks: in one pinned mapped host
// allocation, like a gpu_device's; the reply producer's arena bookkeeping and the staging buffers in
// device memory, like a persistent worker's.
struct launch_args {
  byte* requests;  // device addresses of the two ring regions
  byte* replies;
  ring_config request_config;
  ring_config reply_config;
  std::uint64_t* reply_scratch;
  std::uint8_t* staging;  // 2 x staging_bytes: requests, then replies
  std::uint32_t staging_bytes;
};

// Serves at most one request, exactly as a persistent worker serves it (serve_one with staging),
// and publishes the consumed position so that the next launch resumes after it.
__global__ void serve_one_echo(launch_args a) {
  ring_consumer requests(ringflow::ring_region(a.requests, a.request_config));
  ring_producer replies(ringflow::ring_region(a.replies, a.reply_config), a.reply_scratch);
  const ringflow::serve_staging staging{a.staging, a.staging_bytes, a.staging + a.staging_bytes, a.staging_bytes};
  ringflow::serve_tally tally;
  (void)ringflow::serve_one<EchoKernel>(requests, replies, 0, tally, &staging);
  requests.publish();
}

struct pinned_free {
  void operator()(void* p) const noexcept { cudaFreeHost(p); }
};
struct device_free {
  void operator()(void* p) const noexcept { cudaFree(p); }
};

class cuda_stream {
 public:
  cuda_stream() = default;
  cuda_stream(const cuda_stream&) = delete;
  cuda_stream& operator=(const cuda_stream&) = delete;
  ~cuda_stream() {
    if (s_) cudaStreamDestroy(s_);
  }
  cudaError_t create() { return cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking); }
  cudaStream_t get() const { return s_; }

 private:
  cudaStream_t s_ = nullptr;
};

class cuda_graph {
 public:
  cuda_graph() = default;
  cuda_graph(const cuda_graph&) = delete;
  cuda_graph& operator=(const cuda_graph&) = delete;
  ~cuda_graph() {
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
  }
  // Captures `launch` (which enqueues on `s` and returns cudaGetLastError()) and instantiates it.
  template <class Launch>
  bool capture(cudaStream_t s, Launch&& launch, std::string& why) {
    if (const cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal); e != cudaSuccess)
      return failed(why, cuda_failure("cudaStreamBeginCapture", e));
    const cudaError_t launched = launch();
    if (const cudaError_t e = cudaStreamEndCapture(s, &graph_); e != cudaSuccess)
      return failed(why, cuda_failure("cudaStreamEndCapture", e));
    if (launched != cudaSuccess) return failed(why, cuda_failure("kernel launch in capture", launched));
    if (const cudaError_t e = cudaGraphInstantiate(&exec_, graph_, 0); e != cudaSuccess)
      return failed(why, cuda_failure("cudaGraphInstantiate", e));
    if (const cudaError_t e = cudaGraphUpload(exec_, s); e != cudaSuccess)
      return failed(why, cuda_failure("cudaGraphUpload", e));
    return true;
  }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

// One request ring and one response ring for a launch per message, with the host's ends.
class launch_rings {
 public:
  bool open(std::uint32_t bytes, std::string& why) {
    if (g_kernel_left_running) return failed(why, "skipped: an earlier benchmark's persistent kernel ignored its stop");
    const ring_config cfg = echo_ring(bytes, 64);
    const std::uint64_t region = round_up(ring_layout{cfg}.bytes(), 128);
    const std::uint32_t staging_bytes = gpu::gpu_device_options{}.staging_bytes;  // a persistent worker's
    if (const cudaError_t e = cudaSetDevice(0); e != cudaSuccess) return failed(why, cuda_failure("cudaSetDevice", e));
    if (const cudaError_t e = stream_.create(); e != cudaSuccess)
      return failed(why, cuda_failure("cudaStreamCreate", e));
    void* p = nullptr;
    if (const cudaError_t e = cudaHostAlloc(&p, 2 * region, cudaHostAllocMapped | cudaHostAllocPortable);
        e != cudaSuccess)
      return failed(why, cuda_failure("cudaHostAlloc", e));
    pinned_.reset(p);
    void* d = nullptr;
    if (const cudaError_t e = cudaHostGetDevicePointer(&d, p, 0); e != cudaSuccess)
      return failed(why, cuda_failure("cudaHostGetDevicePointer", e));
    const std::uint64_t scratch_bytes =
        std::max<std::uint64_t>(256, round_up(sizeof(std::uint64_t) * ring_layout{cfg}.producer_scratch_words(), 256));
    void* dm = nullptr;
    if (const cudaError_t e = cudaMalloc(&dm, scratch_bytes + 2ull * staging_bytes); e != cudaSuccess)
      return failed(why, cuda_failure("cudaMalloc", e));
    device_.reset(dm);
    if (const cudaError_t e = cudaMemsetAsync(dm, 0, scratch_bytes, stream_.get()); e != cudaSuccess)
      return failed(why, cuda_failure("cudaMemsetAsync", e));
    if (const cudaError_t e = cudaStreamSynchronize(stream_.get()); e != cudaSuccess)
      return failed(why, cuda_failure("cudaStreamSynchronize", e));

    auto* host = static_cast<byte*>(p);
    const ringflow::ring_region rq = ringflow::ring_region::init(host, cfg);
    const ringflow::ring_region rp = ringflow::ring_region::init(host + region, cfg);
    producer_scratch_.assign(ring_layout{cfg}.producer_scratch_words(), 0);
    tx_ = ring_producer(rq, producer_scratch_.empty() ? nullptr : producer_scratch_.data());
    rx_ = ring_consumer(rp);
    args_.requests = static_cast<byte*>(d);
    args_.replies = static_cast<byte*>(d) + region;
    args_.request_config = cfg;
    args_.reply_config = cfg;
    args_.reply_scratch = static_cast<std::uint64_t*>(dm);
    args_.staging = static_cast<std::uint8_t*>(dm) + scratch_bytes;
    args_.staging_bytes = staging_bytes;
    return true;
  }

  // Enqueues one serve_one_echo launch on the stream.
  cudaError_t launch() {
    serve_one_echo<<<1, 1, 0, stream_.get()>>>(args_);
    return cudaGetLastError();
  }
  cudaStream_t stream() const { return stream_.get(); }
  ring_producer& tx() { return tx_; }
  ring_consumer& rx() { return rx_; }

 private:
  // Members below the stream are released first: memory is freed before the stream is destroyed.
  cuda_stream stream_;
  std::unique_ptr<void, pinned_free> pinned_;
  std::unique_ptr<void, device_free> device_;
  std::vector<std::uint64_t> producer_scratch_;
  ring_producer tx_;
  ring_consumer rx_;
  launch_args args_{};
};

// Push one request, dispatch() (enqueue the work), cudaStreamSynchronize, take and check the reply.
template <class Dispatch>
void launch_round_trips(benchmark::State& state, launch_rings& lr, std::uint32_t bytes, Dispatch&& dispatch) {
  const std::vector<std::uint8_t> payload = make_payload(bytes);
  ring_message m{};
  m.header.type_id = echo_type;
  m.payload = payload.data();
  m.payload_len = bytes;
  std::uint64_t corr = 0;
  std::string why;
  clk::duration rtt{};
  auto round_trip = [&]() -> bool {
    m.header.correlation_id = ++corr;
    const clk::time_point t0 = clk::now();
    if (lr.tx().try_push(m) != ring_status::ok)
      return failed(why, "request ring refused a push with nothing outstanding");
    if (const cudaError_t e = dispatch(); e != cudaSuccess) return failed(why, cuda_failure("dispatch", e));
    if (const cudaError_t e = cudaStreamSynchronize(lr.stream()); e != cudaSuccess)
      return failed(why, cuda_failure("cudaStreamSynchronize", e));
    const slot_header* h = lr.rx().try_peek();
    const clk::time_point t1 = clk::now();
    if (!h) return failed(why, "the kernel completed without publishing a reply");
    if (const char* bad = echo_mismatch(lr.rx(), *h, corr, payload))
      return failed(why, mismatch_detail(bad, *h, corr, bytes));
    lr.rx().release();
    rtt = t1 - t0;
    return true;
  };
  if (!warm_up(round_trip)) {
    fail(state, "warm-up: " + why);
    return;
  }
  latency_log lat(state.max_iterations);
  for (auto _ : state) {
    if (!round_trip()) {
      fail(state, why);
      break;
    }
    lat.add(rtt);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.error_occurred()) return;
  const double p50 = lat.report(state);
  if (const auto it = g_ring_p50_us.find(bytes); it != g_ring_p50_us.end() && p50 > 0 && it->second > 0)
    state.counters["vs_ring"] = p50 / it->second;
}

void BM_LaunchSync(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  launch_rings lr;
  if (std::string why; !lr.open(bytes, why)) return fail(state, why);
  launch_round_trips(state, lr, bytes, [&] { return lr.launch(); });
}

void BM_GraphReplay(benchmark::State& state) {
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  launch_rings lr;
  if (std::string why; !lr.open(bytes, why)) return fail(state, why);
  cuda_graph graph;  // destroyed before lr (declared after it)
  if (std::string why; !graph.capture(
          lr.stream(), [&] { return lr.launch(); }, why))
    return fail(state, why);
  launch_round_trips(state, lr, bytes, [&] { return cudaGraphLaunch(graph.exec(), lr.stream()); });
}

// Protocol v2 (LL16 units, credit from replies, scout): the same benchmarks on v2 rings, side by
// side with v1 in the same run.
struct protocol_scope {
  explicit protocol_scope(std::uint32_t p) { g_protocol = p; }
  ~protocol_scope() { g_protocol = 1; }
};
void BM_GpuRingV2RoundTrip(benchmark::State& state) {
  const protocol_scope v2(2);
  const auto bytes = static_cast<std::uint32_t>(state.range(0));
  ring_set rs(state);
  if (!rs.open(1, echo_rings(bytes, 64))) return;
  (void)ring_round_trips(state, rs, bytes, 1);
}
void BM_GpuRingV2Actors(benchmark::State& state) {
  const protocol_scope v2(2);
  BM_GpuRingActors(state);
}
void BM_GpuRingV2BatchedThroughput(benchmark::State& state) {
  const protocol_scope v2(2);
  BM_GpuRingBatchedThroughput(state);
}
void BM_GpuRingV2SerialThroughput(benchmark::State& state) {
  const protocol_scope v2(2);
  const std::uint32_t lanes = g_batch_lanes;
  g_batch_lanes = 1;
  BM_GpuRingBatchedThroughput(state);
  g_batch_lanes = lanes;
}

// rings:1, 8, 64, real time in microseconds (the batched throughput benchmarks).
void ring_counts(benchmark::internal::Benchmark* b) {
  b->ArgName("rings")->Arg(1)->Arg(8)->Arg(64)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

// Side by side: ring round trip, launch + sync, graph replay per size; then throughput and scaling.
BENCHMARK(BM_GpuRingRoundTrip)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GpuRingV2RoundTrip)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LaunchSync)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GraphReplay)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GpuRingBatchedThroughput)->Apply(ring_counts);
BENCHMARK(BM_GpuRingActors)->Arg(1)->Arg(8)->Arg(64)->Arg(1024)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_GpuRingV2BatchedThroughput)->Apply(ring_counts);
BENCHMARK(BM_GpuRingV2SerialThroughput)->Apply(ring_counts);
BENCHMARK(BM_GpuRingV2Actors)->Arg(1)->Arg(8)->Arg(64)->Arg(1024)->UseRealTime()->Unit(benchmark::kMicrosecond);

/// The console reporter, counting the runs that ended with an error (Google Benchmark 1.7:
/// Run::error_occurred).
class error_counting_reporter final : public benchmark::ConsoleReporter {
 public:
  using ConsoleReporter::ConsoleReporter;
  int errors = 0;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs)
      if (r.error_occurred) ++errors;
    ConsoleReporter::ReportRuns(runs);
  }
};

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const gpu::gpu_probe probe = gpu::probe_cuda();
  if (!probe.usable) {
    std::fprintf(stderr, "ringflow_bench_gpu: no usable CUDA device: %s\n", probe.detail.c_str());
    return 77;
  }
  const auto dev =
      std::find_if(probe.devices.begin(), probe.devices.end(), [](const gpu::gpu_info& d) { return d.ordinal == 0; });
  if (dev != probe.devices.end())
    benchmark::AddCustomContext("ringflow_gpu", "cuda:0 " + dev->name + " (" + dev->arch + ", " +
                                                    std::to_string(dev->multiprocessors) + " SMs, " +
                                                    std::to_string(dev->memory_bytes >> 20) + " MiB)");
  benchmark::AddCustomContext("ringflow_cuda", probe.detail);
  const gpu::gpu_device_options o = device_options(echo_rings(64, 16), 1);
  benchmark::AddCustomContext("ringflow_persistent_kernel",
                              "blocks " + (o.blocks ? std::to_string(o.blocks) : std::string("one per SM")) + ", " +
                                  std::to_string(o.warps_per_block) + " workers per block, backoff_max_ns " +
                                  std::to_string(o.backoff_max_ns) + ", poll_period " + std::to_string(o.poll_period) +
                                  ", staging_bytes " + std::to_string(o.staging_bytes) + ", max_batch " +
                                  std::to_string(gpu::gpu_ring_options{}.max_batch));
  benchmark::AddCustomContext("ringflow_actors_window", std::to_string(env_u32("RINGFLOW_GPU_BENCH_WINDOW", 8)) +
                                                            " (0: one outstanding on every ring)");
  benchmark::AddCustomContext("ringflow_threads",
                              "1 spinning benchmark thread + the gpu_device's monitor thread (spins while requests "
                              "are outstanding); cudaStreamSynchronize: default schedule; nothing pinned");
  // A benchmark that ends with SkipWithError (a reply mismatch, a 5 s wait, a device that would not
  // open) is a failure of the run: counted here, and the exit status says so.
  error_counting_reporter reporter(::isatty(STDOUT_FILENO) ? benchmark::ConsoleReporter::OO_ColorTabular
                                                           : benchmark::ConsoleReporter::OO_Tabular);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  if (reporter.errors) {
    std::fprintf(stderr, "ringflow_bench_gpu: %d benchmark run(s) ended with an error (see error_message)\n",
                 reporter.errors);
    return 1;
  }
  return 0;
}
