// custom_kernel — write your own ring kernel and serve it as a ring actor.
//
// A ring kernel is a struct with two message descriptors, a name and a handler (see
// docs/KERNELS.md). The same struct runs on the CPU backend here and is device-portable
// (RINGFLOW_HD) for the GPU backends. This one clamps every y[i] of a SaxpyRequest into [-|a|, |a|]
// and answers a SaxpyReply.
#include <flatbuffers/flatbuffers.h>

#include <caf/all.hpp>

#include <cstdio>

#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/ringflow.hpp"

namespace example {

using namespace ringflow;

struct ClampKernel {
  using request = msg::SaxpyRequest;  // the input type: checked by the ring actor and the kernel
  using reply = msg::SaxpyReply;      // the output type: what graph edges are checked against
  static constexpr const char* name = "clamp";

  // Room the reply needs (the kernel claims it in the response ring before writing).
  RINGFLOW_HD static std::uint32_t reply_capacity(const msg_view& in) {
    return 64u + 4u * in.as<msg::SaxpyRequest>().y().size();
  }
  // Reads the request in place (no copy), writes the reply FlatBuffer in place.
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    const auto req = in.as<msg::SaxpyRequest>();
    if (!req.table.valid()) return out.fail(status::malformed, "clamp: not a SaxpyRequest");
    const float bound = req.a() < 0 ? -req.a() : req.a();
    const auto y = req.y();
    fb::builder b = out.table<msg::SaxpyReply>();
    auto dst = b.add_vector<float>(msg::SaxpyReply::field::y, y.size());
    if (!dst) return out.finish(b);  // reports reply_too_large
    for (std::uint32_t i = 0; i < y.size(); ++i) {
      const float v = y[i];
      dst.set(i, v > bound ? bound : (v < -bound ? -bound : v));  // written in place, in the ring
    }
    return out.finish(b);
  }
};
static_assert(ring_kernel<ClampKernel>);

}  // namespace example

int main() {
  ringflow::runtime rt;
  caf::actor clamp = rt.spawn_ring_actor<example::ClampKernel>("clamp");

  flatbuffers::FlatBufferBuilder b;
  const std::vector<float> x{0, 0, 0, 0}, y{-5.0f, -0.5f, 0.5f, 5.0f};
  ringflow::demo::FinishSaxpyRequestBuffer(b, ringflow::demo::CreateSaxpyRequest(b, 2.0f, b.CreateVector(x), b.CreateVector(y)));
  ringflow::fb_msg request(b.GetBufferPointer(), b.GetSize());

  int failures = 0;
  auto check = [&](const char* via, const ringflow::fb_msg& reply) {
    const auto* r = ringflow::demo::GetSaxpyReply(reply.bytes.data());
    const float want[] = {-2.0f, -0.5f, 0.5f, 2.0f};
    std::printf("%s: y =", via);
    for (std::uint32_t i = 0; i < r->y()->size(); ++i) {
      std::printf(" %g", r->y()->Get(i));
      failures += r->y()->Get(i) != want[i];
    }
    std::printf("\n");
  };

  // 1. From an actor (here a scoped_actor; event-based actors use request(...).then(...)).
  caf::scoped_actor self{rt.system()};
  self->request(clamp, std::chrono::seconds(5), request)
      .receive([&](ringflow::fb_msg& reply) { check("actor request", reply); },
               [&](caf::error& e) {
                 std::printf("error: %s\n", rt.system().render(e).c_str());
                 ++failures;
               });
  // 2. From any thread through the embedding API.
  ringflow::call_result r = rt.client("clamp")->call(request);
  if (r.ok()) check("ring_client", r.reply);
  else ++failures;
  // 3. The wrong message type is refused with a typed error, before it reaches the kernel.
  ringflow::fb_msg wrong = request;
  wrong.bytes[4] = 'X';
  ringflow::call_result w = rt.client("clamp")->call(wrong);
  std::printf("wrong type: %s (%s)\n", ringflow::to_string(w.code), w.detail.c_str());
  failures += w.code != ringflow::errc::wrong_type;
  return failures == 0 ? 0 : 1;
}
