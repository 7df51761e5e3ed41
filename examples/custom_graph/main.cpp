// custom_graph — a dataflow pipeline written with ringflow's graph builder, as documentation.
//
//   source (CPU) --ScoreRequest--> score (ring kernel) --ScoreReply--> aggregate (CPU) --ScoreReply--> sink (CPU)
//
// * `source` validates and enriches each quote request on a CPU actor (drops empty quotes).
// * `score` is a ring actor: the ScoreKernel runs as a persistent ring kernel (CPU backend here;
//   the same kernel runs GPU-resident where a GPU backend is available).
// * `aggregate` keeps running statistics (a CPU node is one actor: its state needs no locks).
// * `sink` is the terminal node: what it returns is what the pusher gets back.
// Edges are type-checked when the graph starts: connecting `score` to a node that expects, say,
// SaxpyRequest fails with errc::graph_invalid naming both nodes and both types.
//
// Usage: ringflow_custom_graph [messages]   (default 1000). Exit code 0 when every message was
// answered correctly.
#include <flatbuffers/flatbuffers.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <vector>

#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"
#include "ringflow/ringflow.hpp"

using namespace ringflow;

namespace {

fb_msg make_request(std::uint64_t id) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<demo::Feature> features;
  for (std::uint32_t f = 0; f < 8; ++f) features.emplace_back(f * 7 + static_cast<std::uint32_t>(id % 13), 0.1f * f);
  auto fo = b.CreateVectorOfStructs(features);
  const demo::Quote quote(100.0 + static_cast<double>(id % 50), 1 + static_cast<std::uint32_t>(id % 10),
                          static_cast<std::uint8_t>(id % 4));
  demo::FinishScoreRequestBuffer(b, demo::CreateScoreRequest(b, id, &quote, fo));
  return fb_msg(b.GetBufferPointer(), b.GetSize());
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t messages = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000;

  runtime rt;  // CAF with 2 scheduler threads, one completion poller

  struct stats {
    std::uint64_t seen = 0, approved = 0;
    double score_sum = 0;
  };
  auto totals = std::make_shared<stats>();  // touched only by the `aggregate` actor

  graph g(rt, "quotes");
  g.cpu_node<msg::ScoreRequest, msg::ScoreRequest>("source",
                                                   [](const fb_msg& in) -> std::optional<fb_msg> {
                                                     const auto* req = demo::GetScoreRequest(in.bytes.data());
                                                     if (!req->quote() || req->quote()->quantity() == 0)
                                                       return std::nullopt;  // ends here
                                                     return in;  // unchanged (a real source might enrich it)
                                                   })
      .ring_node<demo_kernels::ScoreKernel>("score")
      .cpu_node<msg::ScoreReply, msg::ScoreReply>("aggregate",
                                                  [totals](const fb_msg& in) -> std::optional<fb_msg> {
                                                    const auto* r = demo::GetScoreReply(in.bytes.data());
                                                    ++totals->seen;
                                                    totals->approved += r->approved();
                                                    totals->score_sum += r->score();
                                                    return in;
                                                  })
      .cpu_node<msg::ScoreReply, msg::ScoreReply>("sink", [](const fb_msg& in) -> std::optional<fb_msg> { return in; })
      .connect("source", "score")
      .connect("score", "aggregate")
      .connect("aggregate", "sink");

  auto running = g.start();
  if (!running) {
    std::fprintf(stderr, "graph did not start: %s\n", rt.system().render(running.error()).c_str());
    return 3;
  }

  // Push from this (non-actor) thread, keeping a bounded number in flight: the graph answers
  // errc::overloaded rather than queueing without bound, so a pusher keeps its own window.
  std::uint64_t ok = 0, wrong = 0, errors = 0;
  std::vector<std::pair<std::uint64_t, std::future<graph_result>>> window;
  auto settle = [&](std::pair<std::uint64_t, std::future<graph_result>>& p) {
    graph_result r = p.second.get();
    if (!r.ok() || r.outputs.size() != 1) {
      ++errors;
      std::fprintf(stderr, "message %llu: %s %s\n", static_cast<unsigned long long>(p.first), to_string(r.code),
                   r.detail.c_str());
      return;
    }
    const auto* reply = demo::GetScoreReply(r.outputs[0].bytes.data());
    (reply->request_id() == p.first ? ok : wrong)++;
  };
  for (std::uint64_t id = 0; id < messages; ++id) {
    window.emplace_back(id, (*running)->push("source", make_request(id)));
    if (window.size() == 64) {
      for (auto& p : window) settle(p);
      window.clear();
    }
  }
  for (auto& p : window) settle(p);
  (*running)->stop();

  std::printf("custom_graph: %llu messages, %llu answered correctly, %llu wrong, %llu errors\n",
              static_cast<unsigned long long>(messages), static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(wrong), static_cast<unsigned long long>(errors));
  std::printf("aggregate: %llu scored, %llu approved, mean score %.4f\n", static_cast<unsigned long long>(totals->seen),
              static_cast<unsigned long long>(totals->approved),
              totals->seen ? totals->score_sum / static_cast<double>(totals->seen) : 0.0);
  return ok == messages && wrong == 0 && errors == 0 ? 0 : 1;
}
