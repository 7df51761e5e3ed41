// QuoteKernel: trial.Order -> trial.Quote. The descriptors (trial::rf::Order, trial::rf::Quote)
// are generated from order.fbs and quote.fbs by ringflow_add_schemas; nothing here is hand-written
// layout. The same handler builds for the CPU backend and, in a .cu, for CUDA and HIP.
#pragma once

#include "ringflow/kernel.hpp"
#include "schema_example/order_ringflow.hpp"
#include "schema_example/quote_ringflow.hpp"

struct QuoteKernel {
  using request = trial::rf::Order;
  using reply = trial::rf::Quote;
  static constexpr const char* name = "quote";

  RINGFLOW_HD static ringflow::status handle(const ringflow::msg_view& in, ringflow::reply_writer& out) {
    const auto order = in.as<request>();
    if (order.qty() == 0) return out.fail(ringflow::status::invalid_argument, "quote: qty must be > 0");
    const double notional = order.price() * static_cast<double>(order.qty());
    const double fee = notional * (static_cast<double>(order.max_fee_bps()) / 10000.0);
    const bool accepted = order.side() == trial::rf::Side::Buy || notional < 1e6;
    ringflow::fb::builder b = out.table<reply>();
    reply::add_id(b, order.id());
    reply::add_notional(b, notional);
    reply::add_fee(b, fee);
    reply::add_accepted(b, accepted);
    if (!accepted) reply::add_reason(b, "sell over limit", 15);
    return out.finish(b);
  }
};
