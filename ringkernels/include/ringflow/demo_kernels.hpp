// ringflow/demo_kernels.hpp — ringflow's demo ring kernels (used by examples, tests, benchmarks).
//
//   EchoKernel   Echo -> Echo         the reply is the request, byte for byte
//   SaxpyKernel  SaxpyRequest -> SaxpyReply   y := a*x + y (x, y same length)
//   ScoreKernel  ScoreRequest -> ScoreReply   a small pricing/scoring model (below)
//
// Determinism: handlers use only +, -, *, / on floats (each correctly rounded under IEEE 754), so
// with floating-point contraction off (-ffp-contract=off, nvcc --fmad=false) every backend
// produces bit-identical replies. No transcendental functions (their ULP differs per backend).
// Thread-safety: stateless; handlers may run concurrently on different rings.
#pragma once

#include <cstdint>

#include "ringflow/kernel.hpp"

namespace ringflow::demo_kernels {

struct EchoKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "echo";
  RINGFLOW_HD static std::uint32_t reply_capacity(const msg_view& in) { return in.payload.size; }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    return out.copy(msg::Echo::type_id_, in.payload.data, in.payload.size);
  }
};

struct SaxpyKernel {
  using request = msg::SaxpyRequest;
  using reply = msg::SaxpyReply;
  static constexpr const char* name = "saxpy";
  RINGFLOW_HD static std::uint32_t reply_capacity(const msg_view& in) {
    // header + vtable + table (< 64 bytes) + u32 count + n floats
    return 64u + 4u * in.as<msg::SaxpyRequest>().x().size();
  }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    const auto req = in.as<msg::SaxpyRequest>();
    if (!req.table_.valid()) return out.fail(status::malformed, "saxpy: request is not a SaxpyRequest table");
    const auto x = req.x();
    const auto y = req.y();
    if (x.size() != y.size()) return out.fail(status::invalid_argument, "saxpy: x and y differ in length");
    const float a = req.a();
    fb::builder b = out.table<msg::SaxpyReply>();
    auto yo = b.add_vector<float>(msg::SaxpyReply::fields_::y, x.size());
    if (!yo) return out.finish(b);  // reply_too_large
    for (std::uint32_t i = 0; i < x.size(); ++i) yo.set(i, a * x[i] + y[i]);
    return out.finish(b);
  }
};

/// The scoring model: a sparse linear score squashed into [0,1] without transcendentals,
/// a tier- and score-dependent discount capped by max_discount, approval above a threshold.
struct ScoreKernel {
  using request = msg::ScoreRequest;
  using reply = msg::ScoreReply;
  static constexpr const char* name = "score";
  static constexpr float approve_threshold = 0.35f;

  /// Deterministic weight in [-1, 1) for a feature id (integer hash; no tables in device memory).
  RINGFLOW_HD static float weight(std::uint32_t id) {
    const std::uint32_t h = id * 2654435761u;
    return static_cast<float>(h >> 24) / 128.0f - 1.0f;
  }
  RINGFLOW_HD static float squash(float s) {
    const float mag = s < 0.0f ? -s : s;
    return 0.5f + 0.5f * (s / (1.0f + mag));
  }

  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out) {
    const auto req = in.as<msg::ScoreRequest>();
    if (!req.table_.valid()) return out.fail(status::malformed, "score: request is not a ScoreRequest table");
    msg::Quote q{};
    const bool has_quote = req.quote(q);
    const auto features = req.features();
    float s = -0.25f;  // bias
    for (std::uint32_t i = 0; i < features.size(); ++i) {
      const msg::Feature f = features[i];
      const float term = weight(f.id) * f.value;
      s = s + term;
    }
    const float score = squash(s);
    const std::uint32_t tier = q.tier > 3 ? 3u : q.tier;
    double discount = 0.02 * static_cast<double>(tier) + 0.1 * static_cast<double>(score);
    const double cap = static_cast<double>(req.max_discount());
    if (discount > cap) discount = cap;
    if (discount < 0.0) discount = 0.0;
    const double gross = q.base_price * static_cast<double>(q.quantity);
    const double price = gross * (1.0 - discount);
    const bool empty_quote = !has_quote || q.quantity == 0;
    const bool approved = !empty_quote && score >= approve_threshold;
    const std::uint16_t reason = empty_quote ? 2 : (approved ? 0 : 1);

    fb::builder b = out.table<msg::ScoreReply>();
    b.add<std::uint64_t>(msg::ScoreReply::fields_::request_id, req.request_id());
    b.add<float>(msg::ScoreReply::fields_::score, score);
    b.add<double>(msg::ScoreReply::fields_::price, empty_quote ? 0.0 : price);
    b.add<bool>(msg::ScoreReply::fields_::approved, approved);
    b.add<std::uint16_t>(msg::ScoreReply::fields_::reason, reason);
    return out.finish(b);
  }
};

static_assert(ring_kernel<EchoKernel> && ring_kernel<SaxpyKernel> && ring_kernel<ScoreKernel>);

}  // namespace ringflow::demo_kernels
