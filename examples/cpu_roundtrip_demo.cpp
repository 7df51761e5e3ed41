// ringflow demo: a stream of FlatBuffer requests through lock-free rings into persistent ring
// kernels on a CPU thread, and their replies back; prints throughput and latency percentiles.
//
// Path of every request: envelope bytes (as a client outside the process would send them)
//   -> ingress validation (flatbuffers::Verifier, typed errors) -> request ring -> ring kernel
//   (Score / Saxpy / Echo handlers) -> response ring -> the demo, which checks each reply.
// A few deliberately bad requests show the typed error path (they are counted, not lost).
// This example is what `make demo` runs until the supervised topology (runtime/) replaces it.
#include <flatbuffers/flatbuffers.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/cpu/host_client.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/ingress.hpp"

using namespace ringflow;
using clock_type = std::chrono::steady_clock;

namespace {

struct stream_result {
  std::string kernel;
  std::uint64_t sent = 0, ok = 0, expected_errors = 0, unexpected = 0, ingress_rejected = 0;
  double seconds = 0;
  std::vector<double> latency_us;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::vector<std::uint8_t> bytes_of(flatbuffers::FlatBufferBuilder& b) {
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

// Request i of a stream, as an envelope; every 500th is deliberately bad (handler or type error).
struct request_maker {
  std::mt19937 rng{42};
  std::vector<std::uint8_t> payload(const std::string& kernel, std::uint64_t i, type_id& type, bool& bad) {
    flatbuffers::FlatBufferBuilder b;
    bad = kernel != "echo" && i % 500 == 499;
    if (kernel == "score") {
      std::vector<demo::Feature> f;
      for (int k = 0; k < 8; ++k) f.emplace_back(rng() % 1000, std::uniform_real_distribution<float>(-2, 2)(rng));
      auto fo = b.CreateVectorOfStructs(f);
      const demo::Quote q(10.0 + static_cast<double>(i % 90), 1 + static_cast<std::uint32_t>(i % 20),
                          static_cast<std::uint8_t>(i % 4));
      demo::FinishScoreRequestBuffer(b, demo::CreateScoreRequest(b, i, &q, fo));
      // A bad one claims the wrong type: ingress catches it (type_mismatch) before any ring.
      type = bad ? demo_kernels::SaxpyKernel::request::type_id_ : demo_kernels::ScoreKernel::request::type_id_;
    } else if (kernel == "saxpy") {
      std::vector<float> x(32), y(bad ? 31 : 32);  // mismatched lengths -> invalid_argument
      for (std::size_t k = 0; k < x.size(); ++k) x[k] = static_cast<float>(k + i % 7);
      for (std::size_t k = 0; k < y.size(); ++k) y[k] = 1.0f;
      auto xo = b.CreateVector(x);
      auto yo = b.CreateVector(y);
      demo::FinishSaxpyRequestBuffer(b, demo::CreateSaxpyRequest(b, 2.0f, xo, yo));
      type = demo_kernels::SaxpyKernel::request::type_id_;
    } else {
      std::vector<std::uint8_t> body(64, static_cast<std::uint8_t>(i));
      auto bo = b.CreateVector(body);
      demo::FinishEchoBuffer(b, demo::CreateEcho(b, i, bo));
      type = demo_kernels::EchoKernel::request::type_id_;
    }
    return bytes_of(b);
  }
};

bool reply_is_right(const std::string& kernel, const cpu::reply& r, std::uint64_t i) {
  flatbuffers::Verifier v(r.payload.data(), r.payload.size());
  if (kernel == "score") {
    if (!demo::VerifyScoreReplyBuffer(v)) return false;
    const auto* s = demo::GetScoreReply(r.payload.data());
    return s->request_id() == i && s->score() >= 0.0f && s->score() <= 1.0f && s->price() > 0.0;
  }
  if (kernel == "saxpy") {
    if (!demo::VerifySaxpyReplyBuffer(v)) return false;
    const auto* y = demo::GetSaxpyReply(r.payload.data())->y();
    return y && y->size() == 32 && y->Get(3) == 2.0f * static_cast<float>(3 + i % 7) + 1.0f;
  }
  return demo::VerifyEchoBuffer(v) && demo::GetEcho(r.payload.data())->sequence() == i;
}

stream_result run_stream(cpu::cpu_kernel& kernel, cpu::channel& ch, std::uint64_t count, std::uint32_t window) {
  stream_result res;
  res.kernel = ch.kernel_name();
  res.latency_us.reserve(count);
  cpu::host_client client(kernel, ch);
  request_maker maker;
  struct in_flight {
    std::uint64_t id, index;
    bool bad;
    clock_type::time_point sent;
  };
  std::deque<in_flight> flight;
  cpu::reply r;
  const auto start = clock_type::now();
  auto complete_one = [&] {
    const in_flight f = flight.front();
    flight.pop_front();
    client.await(f.id, std::chrono::seconds(10), r);
    res.latency_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - f.sent).count());
    if (r.ok() && !f.bad && reply_is_right(res.kernel, r, f.index)) ++res.ok;
    else if (!r.ok() && f.bad) ++res.expected_errors;
    else ++res.unexpected;
  };
  for (std::uint64_t i = 0; i < count; ++i) {
    type_id type = 0;
    bool bad = false;
    const auto payload = maker.payload(res.kernel, i, type, bad);
    // The process edge: wrap in an envelope and validate as untrusted bytes would be.
    envelope_fields f;
    f.type = type;
    f.correlation_id = i;
    f.payload = payload;
    const auto wire_bytes = encode_envelope(f);
    const auto in = validate_ingress(wire_bytes, payload_registry::demo(), {}, unix_now_ns());
    ++res.sent;
    if (!in) {
      if (bad) ++res.ingress_rejected;
      else ++res.unexpected;
      continue;
    }
    const auto t0 = clock_type::now();
    const auto s = client.submit(in.message.type, {in.message.payload.data, in.message.payload.size});
    if (!s.ok()) {
      ++res.unexpected;
      continue;
    }
    flight.push_back({s.correlation_id, i, bad, t0});
    if (flight.size() >= window) complete_one();
  }
  while (!flight.empty()) complete_one();
  res.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringflow demo: FlatBuffer requests through lock-free rings into CPU ring kernels"};
  std::uint64_t count = 200000;
  std::uint32_t window = 32;
  bool spin = false;
  app.add_option("-n,--requests", count, "requests per kernel")->check(CLI::Range(1, 100000000));
  app.add_option("-w,--window", window, "requests in flight per stream")->check(CLI::Range(1, 1024));
  app.add_flag("--spin", spin, "kernel and client never park (lowest latency, burns the cores)");
  CLI11_PARSE(app, argc, argv);

  cpu::kernel_config cfg;
  cfg.name = "demo-kernel";
  cfg.wait.park = !spin;
  cpu::cpu_kernel kernel(cfg);
  cpu::ring_options opts;
  opts.requests.capacity = opts.replies.capacity = 256;
  opts.requests.arena_bytes = opts.replies.arena_bytes = 64 * 1024;  // saxpy payloads exceed a slot
  auto& score = kernel.add_ring<demo_kernels::ScoreKernel>(opts);
  auto& saxpy = kernel.add_ring<demo_kernels::SaxpyKernel>(opts);
  auto& echo = kernel.add_ring<demo_kernels::EchoKernel>(opts);
  kernel.start();
  std::printf(
      "ringflow demo: backend cpu (1 kernel thread hosting 3 rings: score, saxpy, echo), "
      "%llu requests per ring, window %u, %s\n",
      static_cast<unsigned long long>(count), window, spin ? "spinning" : "spin->yield->park");
  std::printf("  (GPU ring kernels arrive with the GPU backends; this build runs the CPU backend)\n\n");

  std::vector<stream_result> results;
  for (auto* ch : {&score, &saxpy, &echo}) results.push_back(run_stream(kernel, *ch, count, window));
  const auto outcome = kernel.stop();

  std::printf("%-7s %9s %9s %9s %9s %10s %11s %8s %8s %9s\n", "kernel", "sent", "ok", "ingress", "kernel", "unexpected",
              "req/s", "p50 us", "p99 us", "p99.9 us");
  std::printf("%-7s %9s %9s %9s %9s\n", "", "", "", "rejected", "errors");
  bool healthy = outcome == cpu::stop_outcome::stopped;
  for (auto& r : results) {
    std::printf("%-7s %9llu %9llu %9llu %9llu %10llu %11.0f %8.2f %8.2f %9.2f\n", r.kernel.c_str(),
                static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.ok),
                static_cast<unsigned long long>(r.ingress_rejected), static_cast<unsigned long long>(r.expected_errors),
                static_cast<unsigned long long>(r.unexpected), static_cast<double>(r.sent) / r.seconds,
                percentile(r.latency_us, 0.50), percentile(r.latency_us, 0.99), percentile(r.latency_us, 0.999));
    healthy = healthy && r.unexpected == 0 && r.ok + r.expected_errors + r.ingress_rejected == r.sent;
  }
  const auto& cb = kernel.control();
  const auto st = kernel.stats();
  std::printf("\nkernel: state %s, processed %llu, handler errors %llu, rejected %llu, parks %llu, wakeups %llu\n",
              to_string(const_cast<control_block&>(cb).current_state()),
              static_cast<unsigned long long>(const_cast<control_block&>(cb).processed_count()),
              static_cast<unsigned long long>(const_cast<control_block&>(cb).handler_error_count()),
              static_cast<unsigned long long>(const_cast<control_block&>(cb).rejected_count()),
              static_cast<unsigned long long>(st.parks), static_cast<unsigned long long>(st.wakeups));
  std::printf("every request got exactly one reply: %s\n", healthy ? "yes" : "NO");
  return healthy ? 0 : 4;
}
