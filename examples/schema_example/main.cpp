// schema_example: embeds a runtime, serves QuoteKernel on the CPU backend and calls it through a
// typed client from 4 threads, then shows the typed errors for bad input. Prints "OK: ..." and
// exits 0 when every reply was right; exits 1 otherwise.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "quote_kernel.hpp"
#include "ringflow/ringflow.hpp"
#include "schema_example/order_generated.h"

using namespace std::chrono_literals;

int main() {
  ringflow::runtime_config cfg;
  cfg.scheduler_threads = 2;
  ringflow::runtime rt{cfg};
  rt.spawn_ring_actor<QuoteKernel>("quotes");
  auto quotes = rt.client_for<QuoteKernel>("quotes");
  if (!quotes) {
    std::fprintf(stderr, "no client: %s\n", rt.system().render(quotes.error()).c_str());
    return 1;
  }

  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  constexpr int per_thread = 500;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      ringflow::typed_client<QuoteKernel> q = *quotes;  // a client per thread is the usual pattern
      for (int i = 0; i < per_thread; ++i) {
        const std::uint64_t id = static_cast<std::uint64_t>(t) * per_thread + i;
        const std::uint32_t qty = 1 + static_cast<std::uint32_t>(i % 9);
        auto r = q.call(
            [&](flatbuffers::FlatBufferBuilder& b) {
              return trial::CreateOrderDirect(b, id, "acme", "XYZ", trial::Side::Buy, 12.5, qty);
            },
            2s);
        if (!r || r.reply().id() != id || r.reply().notional() != 12.5 * qty || !r.reply().accepted()) ++wrong;
      }
    });
  for (auto& th : threads) th.join();

  // Typed errors for bad input: nothing throws, every answer says why.
  ringflow::typed_client<QuoteKernel> q = *quotes;
  const auto zero = q.call([](ringflow::fb::builder& b) {  // the portable writer, same descriptor
    trial::rf::Order::add_id(b, 1);
    trial::rf::Order::add_qty(b, 0);
  });
  const auto not_an_order = q.call(std::vector<std::uint8_t>(16, 0));
  ringflow::fb_msg late;
  {
    flatbuffers::FlatBufferBuilder b;
    trial::FinishOrderBuffer(b, trial::CreateOrderDirect(b, 2, "acme", "XYZ", trial::Side::Sell, 1.0, 1));
    late = ringflow::fb_msg(b.GetBufferPointer(), b.GetSize());
    late.deadline_ns = ringflow::steady_now() - 1;  // already past
  }
  const auto expired = q.call(late);
  std::printf("qty 0: %s (%s)\nnot an order: %s (%s)\nexpired: %s (%s)\n", ringflow::to_string(zero.code),
              zero.detail.c_str(), ringflow::to_string(not_an_order.code), not_an_order.detail.c_str(),
              ringflow::to_string(expired.code), expired.detail.c_str());
  const bool errors_ok = zero.code == ringflow::errc::invalid_argument &&
                         not_an_order.code == ringflow::errc::wrong_type && expired.code == ringflow::errc::timeout;
  if (wrong.load() != 0 || !errors_ok) {
    std::printf("FAILED: %d wrong replies, typed errors %s\n", wrong.load(), errors_ok ? "as expected" : "WRONG");
    return 1;
  }
  std::printf(
      "OK: %d quotes through typed_client<QuoteKernel> from 4 threads, all correct; typed errors for bad input\n",
      4 * per_thread);
  return 0;
}
