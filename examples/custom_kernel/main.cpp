// custom_kernel — write your own ring kernel and serve it as a ring actor.
//
// Steps (each one is marked below):
//   1. Define the kernel: a plain struct with a request and a reply message descriptor, a name and
//      a handler that reads the request in place and writes the reply in place. This one reuses the
//      demo SaxpyRequest/SaxpyReply schemas: it clamps every x[i] into [-a, a].
//   2. Try the handler directly, without any runtime (how you unit-test a kernel).
//   3. Spawn it as a ring actor: a persistent kernel thread (CPU backend) behind a CAF actor.
//   4. Call it from an actor: request(...).then(...), errors arrive as caf::error.
//   5. Call it from any thread through the embedding API: ring_client::call.
//   6. See the typed errors: the kernel's own (invalid_argument) and the ring actor's (wrong_type).
// Kernel-author rules (no allocation, determinism, literal details): docs/KERNELS.md.
//
// Usage: ringflow_custom_kernel   (no arguments). Exit code 0 when every result is as expected.
#include <flatbuffers/flatbuffers.h>

#include <caf/all.hpp>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/ringflow.hpp"

// ---- 1. The kernel: examples/custom_kernel/clamp_kernel.hpp ----------------------------------------
#include "clamp_kernel.hpp"

// ---- helpers: requests built with the flatc-generated code, replies read with it ---------------
namespace {

ringflow::fb_msg clamp_request(float bound, const std::vector<float>& values) {
  flatbuffers::FlatBufferBuilder b;
  auto x = b.CreateVector(values);
  ringflow::demo::FinishSaxpyRequestBuffer(b, ringflow::demo::CreateSaxpyRequest(b, bound, x));
  return ringflow::fb_msg(b.GetBufferPointer(), b.GetSize());
}

std::vector<float> reply_values(const std::uint8_t* data, std::size_t size) {
  flatbuffers::Verifier v(data, size);
  if (!ringflow::demo::VerifySaxpyReplyBuffer(v)) return {};
  const auto* y = ringflow::demo::GetSaxpyReply(data)->y();
  return y ? std::vector<float>(y->begin(), y->end()) : std::vector<float>{};
}

std::string show(const std::vector<float>& v) {
  std::string s = "[";
  char num[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(num, sizeof num, "%s%g", i ? ", " : "", static_cast<double>(v[i]));
    s += num;
  }
  return s + "]";
}

int failures = 0;
void expect(bool ok, const char* what) {
  std::printf("  %s %s\n", ok ? "ok  " : "FAIL", what);
  failures += ok ? 0 : 1;
}

}  // namespace

int main() {
  const std::vector<float> values{-5.0f, -0.5f, 0.5f, 5.0f};
  const std::vector<float> clamped{-2.0f, -0.5f, 0.5f, 2.0f};  // into [-2, 2]
  const ringflow::fb_msg request = clamp_request(2.0f, values);

  // ---- 2. The handler on its own: a msg_view over the request, a reply_writer over a buffer ----
  {
    const ringflow::msg_view in{.type = request.type(), .payload = request.view()};
    std::vector<std::uint8_t> buf(example::ClampKernel::reply_capacity(in));
    ringflow::reply_writer out(buf.data(), static_cast<std::uint32_t>(buf.size()));
    const ringflow::status s = example::ClampKernel::handle(in, out);
    const std::vector<float> y = reply_values(out.data(), out.size());  // flatc reads what the writer wrote
    std::printf("2. handler called directly: %s -> %s\n", show(values).c_str(), show(y).c_str());
    expect(s == ringflow::status::ok && y == clamped, "direct call clamps into [-2, 2]");
  }

  // ---- 3. Spawn it as a ring actor, registered under "clamp" -------------------------------------
  ringflow::runtime rt;  // CAF actor system (2 scheduler threads) + completion poller
  caf::actor clamp = rt.spawn_ring_actor<example::ClampKernel>("clamp");

  // ---- 4. From an actor ---------------------------------------------------------------------------
  // An event-based actor sends the request and handles the reply (or a caf::error) asynchronously;
  // the promise only carries the outcome back to main(). (Spawn function actors with at least one
  // argument: CAF 0.17.6 trips UBSan on argument-less ones.)
  struct actor_outcome {
    ringflow::errc code = ringflow::errc::ok;
    std::vector<float> y;
  };
  using outcome_promise = std::shared_ptr<std::promise<actor_outcome>>;
  auto ask_from_actor = [&](ringflow::fb_msg msg) {
    auto done = std::make_shared<std::promise<actor_outcome>>();
    rt.spawn(
        [](caf::event_based_actor* self, caf::actor target, ringflow::fb_msg msg, outcome_promise done) {
          self->request(target, std::chrono::seconds(5), std::move(msg))
              .then(
                  [done](ringflow::fb_msg& reply) {
                    done->set_value({ringflow::errc::ok, reply_values(reply.bytes.data(), reply.bytes.size())});
                  },
                  [done](caf::error& e) {
                    done->set_value({ringflow::code_of(e), {}});
                  });
        },
        clamp, std::move(msg), done);
    return done->get_future().get();
  };
  const actor_outcome from_actor = ask_from_actor(request);
  std::printf("4. from an actor: %s -> %s\n", show(values).c_str(), show(from_actor.y).c_str());
  expect(from_actor.code == ringflow::errc::ok && from_actor.y == clamped, "actor request clamps into [-2, 2]");

  // ---- 5. From any thread: the embedding API --------------------------------------------------------
  ringflow::ring_client client = *rt.client("clamp");  // by name, through the registry
  const ringflow::call_result r = client.call(clamp_request(0.25f, values));
  const std::vector<float> y = r.ok() ? reply_values(r.reply.bytes.data(), r.reply.bytes.size()) : std::vector<float>{};
  std::printf("5. from a ring_client: %s, a = 0.25 -> %s\n", show(values).c_str(), show(y).c_str());
  expect(r.ok() && y == std::vector<float>{-0.25f, -0.25f, 0.25f, 0.25f}, "ring_client call clamps into [-0.25, 0.25]");

  // ---- 6. Typed errors ------------------------------------------------------------------------------
  // The kernel's own error: a negative bound. The kernel answers with an error reply; the caller
  // gets errc::invalid_argument with the kernel's detail, and the kernel keeps serving.
  const ringflow::call_result bad_bound = client.call(clamp_request(-1.0f, values));
  std::printf("6. a = -1: %s (%s)\n", ringflow::to_string(bad_bound.code), bad_bound.detail.c_str());
  expect(bad_bound.code == ringflow::errc::invalid_argument, "negative bound -> invalid_argument");

  // A request of another type never reaches the kernel: the ring actor refuses it (here an Echo
  // message sent from an actor, so the error arrives as a caf::error of category "ringflow").
  flatbuffers::FlatBufferBuilder eb;
  ringflow::demo::FinishEchoBuffer(eb, ringflow::demo::CreateEcho(eb, 7));
  const actor_outcome wrong = ask_from_actor(ringflow::fb_msg(eb.GetBufferPointer(), eb.GetSize()));
  std::printf("   an Echo message: %s\n", ringflow::to_string(wrong.code));
  expect(wrong.code == ringflow::errc::wrong_type, "another message type -> wrong_type");

  // The kernel served on after its error reply.
  expect(client.call(request).ok(), "the kernel still serves after an error reply");

  std::printf("%s\n", failures == 0 ? "custom_kernel: OK" : "custom_kernel: FAILED");
  return failures == 0 ? 0 : 1;
}
