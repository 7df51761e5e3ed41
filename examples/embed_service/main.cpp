// embed_service — ringflow embedded in a low-latency, in-process scoring service.
//
// The service's own threads (here: N "client" threads standing in for request handlers) score
// quotes through ring actors with the embedding API, ringflow::ring_client: no CAF code, no
// scoped_actor, no mailbox on the service's side. Each thread owns one ring_client, i.e. one caller
// with its own in-flight window. Over that window (or the ring actor's) a request is refused at
// once with errc::overloaded; the service backs off and retries — nothing is queued without bound
// and nothing is dropped silently.
//
//   --threads N   client threads (default 2)
//   --requests N  requests per client thread (default 20000)
//   --actors N    ScoreKernel ring actors; client thread t uses actor t % N (default 1)
//   --depth N     requests each thread keeps in flight: 1 = blocking call() (lowest latency),
//                 more = submit() futures, pipelined (default 1)
//   --window N    each client's in-flight window (default 64; the ring actor also caps each caller
//                 at its per_caller_window, 64); a depth over it exercises overloaded
//
// Prints throughput and p50/p99/p999 latency (µs, from the first submit of a request to its reply,
// retries included). Exit code 0 only if every request got exactly one correct reply (a ScoreReply
// that verifies and carries the request's id); 1 otherwise; 2 on bad arguments.
//
// Builds in ringflow's tree and, unchanged, against an installed ringflow (see CMakeLists.txt):
// the out-of-tree build needs nothing but ringflow's CMake package, so argv is parsed by hand.
#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/ringflow.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  int threads = 2;
  int requests = 20000;  // per thread
  int actors = 1;
  int depth = 1;
  int window = 64;
};

void usage(const char* prog) {
  std::fprintf(stderr, "usage: %s [--threads N] [--requests N per thread] [--actors N] [--depth N] [--window N]\n",
               prog);
}

// Accepts "--name N" and "--name=N"; every value must be a positive integer.
bool parse(int argc, char** argv, options& o) {
  struct flag {
    const char* name;
    int* value;
  };
  const flag flags[] = {{"--threads", &o.threads},
                        {"--requests", &o.requests},
                        {"--actors", &o.actors},
                        {"--depth", &o.depth},
                        {"--window", &o.window}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") return false;
    const flag* match = nullptr;
    std::string value;
    for (const flag& f : flags) {
      const std::size_t n = std::strlen(f.name);
      if (arg == f.name && i + 1 < argc) {
        match = &f;
        value = argv[++i];
      } else if (arg.compare(0, n, f.name) == 0 && arg.size() > n && arg[n] == '=') {
        match = &f;
        value = arg.substr(n + 1);
      }
      if (match) break;
    }
    if (!match) {
      std::fprintf(stderr, "unknown or incomplete option '%s'\n", arg.c_str());
      return false;
    }
    char* end = nullptr;
    const long v = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || v < 1 || v > 100'000'000) {
      std::fprintf(stderr, "%s needs a positive integer, got '%s'\n", match->name, value.c_str());
      return false;
    }
    *match->value = static_cast<int>(v);
  }
  return true;
}

// A quote to score, built with the flatc-generated code (file identifier "SCRQ": the ring actor
// checks it against the kernel's request type before the request enters the ring).
ringflow::fb_msg make_quote(std::uint64_t id) {
  flatbuffers::FlatBufferBuilder b(256);
  const std::vector<ringflow::demo::Feature> features{
      {static_cast<std::uint32_t>(id % 97), 0.5f}, {3, -0.25f}, {11, 1.0f}};
  auto fo = b.CreateVectorOfStructs(features);
  const ringflow::demo::Quote q(99.5 + static_cast<double>(id % 7), 1 + static_cast<std::uint32_t>(id % 5),
                                static_cast<std::uint8_t>(id % 4));
  ringflow::demo::FinishScoreRequestBuffer(b, ringflow::demo::CreateScoreRequest(b, id, &q, fo));
  return ringflow::fb_msg(b.GetBufferPointer(), b.GetSize());
}

// What each client thread counts; merged after the threads join.
struct thread_stats {
  std::vector<double> latency_us;
  std::uint64_t answered = 0;  // requests that got their final answer (reply or error)
  std::uint64_t wrong = 0;     // a reply that is not a valid ScoreReply for this request
  std::uint64_t failed = 0;    // answered with an error other than overloaded
  std::uint64_t retries = 0;   // overloaded answers that were retried
};

// The service's check of one answer: a ScoreReply that verifies, for this request.
void account(thread_stats& st, std::uint64_t id, clock_type::time_point first_submit, ringflow::call_result& r) {
  ++st.answered;
  st.latency_us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - first_submit).count());
  if (!r.ok()) {
    ++st.failed;
    if (st.failed <= 5)
      std::fprintf(stderr, "request %llu: %s: %s\n", static_cast<unsigned long long>(id), ringflow::to_string(r.code),
                   r.detail.c_str());
    return;
  }
  const auto& bytes = r.reply.bytes;
  flatbuffers::Verifier verifier(bytes.data(), bytes.size());
  const bool valid = ringflow::demo::VerifyScoreReplyBuffer(verifier);
  const auto* reply = valid ? ringflow::demo::GetScoreReply(bytes.data()) : nullptr;
  if (!reply || reply->request_id() != id || !(reply->score() >= 0.0f && reply->score() <= 1.0f)) {
    ++st.wrong;
    if (st.wrong <= 5)
      std::fprintf(stderr, "request %llu: wrong reply (%s)\n", static_cast<unsigned long long>(id),
                   reply ? "id or score" : "not a ScoreReply");
  }
}

// depth 1: one request at a time with the blocking call() — the lowest-latency way in.
void run_blocking(ringflow::ring_client& client, std::uint64_t first_id, int n, thread_stats& st) {
  for (int i = 0; i < n; ++i) {
    const std::uint64_t id = first_id + static_cast<std::uint64_t>(i);
    const auto t0 = clock_type::now();
    ringflow::call_result r = client.call(make_quote(id));
    while (r.code == ringflow::errc::overloaded) {  // a window is full: back off, then retry
      ++st.retries;
      std::this_thread::yield();
      r = client.call(make_quote(id));
    }
    account(st, id, t0, r);
  }
}

// depth > 1: keep up to `depth` requests outstanding with submit() futures, completed oldest first.
void run_pipelined(ringflow::ring_client& client, std::uint64_t first_id, int n, int depth, thread_stats& st) {
  struct pending {
    std::uint64_t id;
    clock_type::time_point first_submit;  // latency counts from here, retries included
    std::future<ringflow::call_result> answer;
  };
  std::deque<pending> in_flight;  // submitted, answer not yet taken
  std::deque<pending> refused;    // answered overloaded (never entered the ring): to resubmit
  int sent = 0;
  int freed = 0;  // replies taken since the last resubmission: each freed a place in the window
  while (sent < n || !in_flight.empty() || !refused.empty()) {
    if (in_flight.empty() && !refused.empty()) {
      // Nothing of ours is in flight, so the ring actor's window (shared with the other callers)
      // was full: yield, then try again.
      std::this_thread::yield();
      freed = 1;
    }
    // Back off: resubmit a refused request only once a reply has freed a place in the window.
    for (; freed > 0 && !refused.empty(); --freed) {
      pending p = std::move(refused.front());
      refused.pop_front();
      p.answer = client.submit(make_quote(p.id));
      in_flight.push_back(std::move(p));
    }
    freed = 0;
    while (sent < n && in_flight.size() + refused.size() < static_cast<std::size_t>(depth)) {
      const std::uint64_t id = first_id + static_cast<std::uint64_t>(sent++);
      in_flight.push_back({id, clock_type::now(), client.submit(make_quote(id))});
    }
    if (in_flight.empty()) continue;
    pending p = std::move(in_flight.front());
    in_flight.pop_front();
    ringflow::call_result r = p.answer.get();
    if (r.code == ringflow::errc::overloaded) {
      ++st.retries;
      refused.push_back(std::move(p));
      continue;
    }
    ++freed;
    account(st, p.id, p.first_submit, r);
  }
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  const auto rank = static_cast<std::size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank)];
}

}  // namespace

int main(int argc, char** argv) {
  options opt;
  if (!parse(argc, argv, opt)) {
    usage(argv[0]);
    return 2;
  }

  // 1. The runtime: the CAF actor system (2 scheduler threads), the completion poller thread.
  ringflow::runtime rt;

  // 2. The ring actors: each serves ScoreKernel from its own persistent kernel thread (CPU backend).
  std::vector<std::string> names;
  for (int a = 0; a < opt.actors; ++a) {
    names.push_back("score" + std::to_string(a));
    rt.spawn_ring_actor<ringflow::demo_kernels::ScoreKernel>(names.back());
  }

  // 3. The service's threads: one ring_client each (its own window), looked up by name.
  std::vector<thread_stats> stats(static_cast<std::size_t>(opt.threads));
  std::atomic<int> setup_errors{0};
  const auto t0 = clock_type::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < opt.threads; ++t) {
    workers.emplace_back([&, t] {
      thread_stats& st = stats[static_cast<std::size_t>(t)];
      st.latency_us.reserve(static_cast<std::size_t>(opt.requests));
      caf::expected<ringflow::ring_client> client =
          rt.client(names[static_cast<std::size_t>(t % opt.actors)],
                    ringflow::client_options{.window = static_cast<std::uint32_t>(opt.window)});
      if (!client) {
        std::fprintf(stderr, "client: %s\n", rt.system().render(client.error()).c_str());
        ++setup_errors;
        return;
      }
      const std::uint64_t first_id = static_cast<std::uint64_t>(t) << 32;  // ids unique across threads
      if (opt.depth == 1) run_blocking(*client, first_id, opt.requests, st);
      else run_pipelined(*client, first_id, opt.requests, opt.depth, st);
    });
  }
  for (auto& w : workers) w.join();
  const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();

  // 4. Report: throughput, latency percentiles, and whether every request got exactly one
  //    correct answer.
  thread_stats all;
  for (auto& st : stats) {
    all.latency_us.insert(all.latency_us.end(), st.latency_us.begin(), st.latency_us.end());
    all.answered += st.answered;
    all.wrong += st.wrong;
    all.failed += st.failed;
    all.retries += st.retries;
  }
  std::sort(all.latency_us.begin(), all.latency_us.end());
  const std::uint64_t total = static_cast<std::uint64_t>(opt.threads) * static_cast<std::uint64_t>(opt.requests);
  const std::uint64_t lost = total - all.answered;
  std::printf(
      "embed_service: %llu requests, %d client thread(s), depth %d, %d ScoreKernel ring actor(s): "
      "%.3f s, %.0f req/s\n",
      static_cast<unsigned long long>(total), opt.threads, opt.depth, opt.actors, secs,
      static_cast<double>(all.answered) / secs);
  std::printf("latency (us): p50 %.1f  p99 %.1f  p999 %.1f  max %.1f\n", percentile(all.latency_us, 0.50),
              percentile(all.latency_us, 0.99), percentile(all.latency_us, 0.999),
              all.latency_us.empty() ? 0.0 : all.latency_us.back());
  std::printf("retries after overloaded: %llu; wrong replies: %llu; errors: %llu; lost: %llu\n",
              static_cast<unsigned long long>(all.retries), static_cast<unsigned long long>(all.wrong),
              static_cast<unsigned long long>(all.failed), static_cast<unsigned long long>(lost));
  const bool ok = setup_errors == 0 && all.wrong == 0 && all.failed == 0 && lost == 0;
  std::printf("%s\n", ok ? "OK: every request got exactly one correct reply" : "FAILED");
  return ok ? 0 : 1;
}
