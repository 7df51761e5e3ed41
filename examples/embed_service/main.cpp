// embed_service — ringflow embedded in a low-latency service: client threads score quotes through
// ring actors with the embedding API (ring_client), no CAF code in the service's own threads.
//
// Usage: ringflow_embed_service [threads] [requests_per_thread] [ring_actors]   (defaults 2 2000 1)
// Prints throughput and p50/p99/p999 latency; exits 1 if any reply is wrong or missing.
#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/ringflow.hpp"

namespace {

ringflow::fb_msg quote(std::uint64_t id) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<ringflow::demo::Feature> f{{static_cast<std::uint32_t>(id % 97), 0.5f}, {3, -0.25f}, {11, 1.0f}};
  auto fo = b.CreateVectorOfStructs(f);
  const ringflow::demo::Quote q(99.5 + static_cast<double>(id % 7), 1 + static_cast<std::uint32_t>(id % 5),
                                static_cast<std::uint8_t>(id % 4));
  ringflow::demo::FinishScoreRequestBuffer(b, ringflow::demo::CreateScoreRequest(b, id, &q, fo));
  return ringflow::fb_msg(b.GetBufferPointer(), b.GetSize());
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int per_thread = argc > 2 ? std::atoi(argv[2]) : 2000;
  const int actors = argc > 3 ? std::max(1, std::atoi(argv[3])) : 1;

  ringflow::runtime rt;  // owns the CAF actor system (2 scheduler threads) and the completion poller
  for (int a = 0; a < actors; ++a) rt.spawn_ring_actor<ringflow::demo_kernels::ScoreKernel>("score" + std::to_string(a));

  std::atomic<std::uint64_t> wrong{0}, failed{0}, retries{0};
  std::vector<std::vector<double>> lat(threads);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      // One client per thread: its own in-flight window, the ring actor's own outbox and replay.
      ringflow::ring_client client = *rt.client("score" + std::to_string(t % actors));
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t id = static_cast<std::uint64_t>(t) * 1000000 + i;
        const auto s = std::chrono::steady_clock::now();
        ringflow::call_result r = client.call(quote(id));
        while (r.code == ringflow::errc::overloaded) {  // back off and retry
          ++retries;
          std::this_thread::yield();
          r = client.call(quote(id));
        }
        lat[t].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - s).count());
        if (!r.ok()) {
          ++failed;
          std::fprintf(stderr, "request %llu: %s: %s\n", static_cast<unsigned long long>(id), ringflow::to_string(r.code),
                       r.detail.c_str());
          continue;
        }
        if (ringflow::demo::GetScoreReply(r.reply.bytes.data())->request_id() != id) ++wrong;
      }
    });
  }
  for (auto& w : workers) w.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()))]; };
  const std::size_t total = static_cast<std::size_t>(threads) * per_thread;
  std::printf("embed_service: %zu requests from %d threads to %d ring actor(s) in %.3f s: %.0f req/s\n", total, threads,
              actors, secs, total / secs);
  std::printf("latency us: p50 %.1f  p99 %.1f  p999 %.1f   (retries after overloaded: %llu)\n", pct(0.50), pct(0.99),
              pct(0.999), static_cast<unsigned long long>(retries.load()));
  std::printf("wrong replies: %llu, failed: %llu\n", static_cast<unsigned long long>(wrong.load()),
              static_cast<unsigned long long>(failed.load()));
  return wrong == 0 && failed == 0 && all.size() == total ? 0 : 1;
}
