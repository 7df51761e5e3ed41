// ringflow/demo_kernels.hpp — ringflow's demo ring kernels (used by examples, tests, benchmarks).
//
//   EchoKernel   Echo -> Echo         the reply is the request, byte for byte
//   SaxpyKernel  SaxpyRequest -> SaxpyReply   y := a*x + y (x, y same length)
//   ScoreKernel  ScoreRequest -> ScoreReply   a small pricing/scoring model (below)
//   VwapKernel   Trade -> VwapReply   stateful: running volume-weighted average price per
//                                     instrument key (vwap_keys of them), integer ticks
//
// Determinism: handlers use only +, -, *, / on floats (each correctly rounded under IEEE 754), so
// with floating-point contraction off (-ffp-contract=off, nvcc --fmad=false) every backend
// produces bit-identical replies. No transcendental functions (their ULP differs per backend).
// Thread-safety: Echo, Saxpy and Score are stateless (handlers may run concurrently on different
// rings); VwapKernel's handler changes its incarnation's state, one request at a time.
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

/// Instruments (keys) VwapKernel tracks: keys >= vwap_keys are answered invalid_argument.
inline constexpr std::uint32_t vwap_keys = 32;

/// Running VWAP per instrument (a stateful kernel, kernel.hpp). Exact: prices are integer ticks,
/// aggregates are integers (notional wraps past 2^63 ticks x lots, as a u64 would), so the state
/// after the same trades is the same bytes on every backend. The reply carries the key's
/// aggregates after the trade. The state is 32 x 24 + 8 = 776 bytes: snapshots need a reply
/// arena (or a reply slot of that size).
struct VwapKernel {
  using request = msg::Trade;
  using reply = msg::VwapReply;
  static constexpr const char* name = "vwap";
  struct state {
    struct key_totals {
      std::uint64_t trades;
      std::uint64_t volume;
      std::int64_t notional;
    };
    key_totals keys[vwap_keys];
    std::uint64_t applied;  // trades applied (all keys)
  };
  RINGFLOW_HD static void init(state& s) {
    for (std::uint32_t i = 0; i < vwap_keys; ++i) s.keys[i] = {0, 0, 0};
    s.applied = 0;
  }
  RINGFLOW_HD static status handle(const msg_view& in, reply_writer& out, state& s) {
    const auto t = in.as<msg::Trade>();
    if (!t.table_.valid()) return out.fail(status::malformed, "vwap: request is not a Trade table");
    const std::uint32_t key = t.key();
    if (key >= vwap_keys) return out.fail(status::invalid_argument, "vwap: key out of range");
    if (t.qty() == 0) return out.fail(status::invalid_argument, "vwap: a trade of zero quantity");
    state::key_totals& k = s.keys[key];
    k.trades += 1;
    k.volume += t.qty();
    k.notional = static_cast<std::int64_t>(static_cast<std::uint64_t>(k.notional) +
                                           static_cast<std::uint64_t>(t.price_ticks()) * t.qty());
    s.applied += 1;
    fb::builder b = out.table<msg::VwapReply>();
    b.add<std::uint32_t>(msg::VwapReply::fields_::key, key);
    b.add<std::uint64_t>(msg::VwapReply::fields_::trades, k.trades);
    b.add<std::uint64_t>(msg::VwapReply::fields_::volume, k.volume);
    b.add<std::int64_t>(msg::VwapReply::fields_::notional, k.notional);
    b.add<std::int64_t>(msg::VwapReply::fields_::vwap_ticks, k.notional / static_cast<std::int64_t>(k.volume));
    b.add<std::uint64_t>(msg::VwapReply::fields_::sequence, t.sequence());
    return out.finish(b);
  }
};

static_assert(ring_kernel<EchoKernel> && ring_kernel<SaxpyKernel> && ring_kernel<ScoreKernel>);
static_assert(ring_kernel<VwapKernel> && stateful_kernel<VwapKernel> && !stateful_kernel<EchoKernel>);

}  // namespace ringflow::demo_kernels
