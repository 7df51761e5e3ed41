// clamp_kernel.hpp — the example's ring kernel (step 1 of custom_kernel/main.cpp), in a header of
// its own so that the same source serves the CPU backend (custom_kernel) and, through
// RINGFLOW_CUDA_KERNELS, the GPU backends (examples/gpu_kernel).
#pragma once

#include <cstdint>

#include "ringflow/kernel.hpp"

namespace example {

struct ClampKernel {
  // The message types, as descriptors from ringflow/messages.hpp (type id = the schema's
  // file_identifier). The ring actor refuses any other request type with errc::wrong_type before
  // it reaches the ring; a graph checks its edges against these types.
  using request = ringflow::msg::SaxpyRequest;  // a = the bound, x = the values (y is not used)
  using reply = ringflow::msg::SaxpyReply;      // y = x clamped into [-a, a]
  static constexpr const char* name = "clamp";

  // Optional: the bytes the reply may need. The kernel reserves them in the response ring before
  // the handler writes (the default is the ring's inline slot room, 192 B for 256-B slots).
  RINGFLOW_HD static std::uint32_t reply_capacity(const ringflow::msg_view& in) {
    return 64u + 4u * in.as<request>().x().size();  // header + vtable + table, then n floats
  }

  // The handler. RINGFLOW_HD: the same source compiles for the GPU backends, so no allocation, no
  // locks, no printf, no exceptions; only the view (reads) and the writer (writes).
  RINGFLOW_HD static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out) {
    const auto req = in.as<request>();  // a typed view over the request bytes in the ring: no copy
    if (!req.table_.valid()) return out.fail(ringflow::status::malformed, "clamp: not a SaxpyRequest");
    const float bound = req.a();  // absent field -> the schema default (1.0), like generated code
    // Errors are replies: the caller gets the status and this (literal) detail; the kernel goes on.
    if (!(bound >= 0.0f)) return out.fail(ringflow::status::invalid_argument, "clamp: a must be >= 0");
    const auto x = req.x();
    ringflow::fb::builder b = out.table<reply>();  // the reply is written in place, in the ring
    auto y = b.add_vector<float>(reply::fields_::y, x.size());
    if (!y) return out.finish(b);  // did not fit: finish() reports reply_too_large
    for (std::uint32_t i = 0; i < x.size(); ++i) {
      const float v = x[i];
      y.set(i, v > bound ? bound : (v < -bound ? -bound : v));
    }
    return out.finish(b);
  }
};
static_assert(ringflow::ring_kernel<ClampKernel>);  // the concept ring actors require

}  // namespace example
