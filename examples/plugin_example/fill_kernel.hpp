// FillKernel: desk.Trade -> desk.Fill, with the load generator's hooks, so a topology can put load
// on it and count every answer (lost, wrong). The descriptors (desk::rf::Trade, desk::rf::Fill)
// are generated from trade.fbs and fill.fbs by ringflow_add_schemas.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "plugin_example/fill_generated.h"
#include "plugin_example/fill_ringflow.hpp"
#include "plugin_example/trade_generated.h"
#include "plugin_example/trade_ringflow.hpp"
#include "ringflow/kernel.hpp"

struct FillKernel {
  using request = desk::rf::Trade;
  using reply = desk::rf::Fill;
  static constexpr const char* name = "fill";
  static constexpr std::uint32_t lot = 64;  // at most one lot is filled per trade

  RINGFLOW_HD static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out) {
    const auto t = in.as<request>();
    if (t.quantity() == 0) return out.fail(ringflow::status::invalid_argument, "fill: quantity must be > 0");
    const std::uint32_t filled = t.quantity() < lot ? t.quantity() : lot;
    const bool accepted = t.limit() == 0 || t.price() <= t.limit();
    ringflow::fb::builder b = out.table<reply>();
    reply::add_trade_id(b, t.id());
    reply::add_filled(b, accepted ? filled : 0);
    reply::add_notional(b, accepted ? static_cast<double>(filled) * t.price() : 0.0);
    reply::add_accepted(b, accepted);
    if (!accepted) reply::add_reason(b, "over limit", 10);
    return out.finish(b);
  }

  // ---- the load generator's hooks (host code; ringflow/plugin.hpp) ----
  static double price_of(std::uint64_t seq) { return 100.0 + static_cast<double>(seq % 50); }
  static std::uint32_t quantity_of(std::uint64_t seq) { return 1 + static_cast<std::uint32_t>(seq % 100); }

  /// A trade for sequence `seq`, its tags about `payload_bytes` long.
  static flatbuffers::DetachedBuffer load_request(std::uint64_t seq, std::uint32_t payload_bytes) {
    flatbuffers::FlatBufferBuilder b(256 + payload_bytes);
    std::vector<std::uint8_t> tags(payload_bytes);
    for (std::uint32_t i = 0; i < payload_bytes; ++i) tags[i] = static_cast<std::uint8_t>(seq + i);
    const std::string account = "acct-" + std::to_string(seq % 7);
    desk::FinishTradeBuffer(b, desk::CreateTradeDirect(b, seq, "RFX", seq % 2 ? desk::Side::Sell : desk::Side::Buy,
                                                       quantity_of(seq), price_of(seq), 0.0, account.c_str(),
                                                       static_cast<std::uint32_t>(seq & 0xff), &tags, "load"));
    return b.Release();
  }
  /// The sequence a fill carries.
  static std::optional<std::uint64_t> load_sequence(std::span<const std::uint8_t> reply) {
    return desk::GetFill(reply.data())->trade_id();
  }
  /// Is a fill right for the trade load_request made? (recomputed from its sequence)
  static bool check_reply(std::span<const std::uint8_t> reply) {
    const desk::Fill* f = desk::GetFill(reply.data());
    const std::uint32_t filled = std::min(quantity_of(f->trade_id()), lot);
    return f->accepted() && f->filled() == filled &&
           f->notional() == static_cast<double>(filled) * price_of(f->trade_id());
  }
};
