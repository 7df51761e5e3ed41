// ringflow/messages.hpp — the descriptors of ringflow's wire and demo schemas (ringflow::msg).
//
// Generated at build time by ringflow_schemagen from messages/schemas (ringflow_add_schemas,
// NAMESPACE ringflow::msg): per table the type id, field ids, defaults, inline bytes, typed
// RINGFLOW_HD accessors and writers; Quote and Feature as layout-checked struct mirrors.
// tests/test_fb_cross.cpp checks them against flatc's generated code.
#pragma once

#include "ringflow/generated/echo_ringflow.hpp"
#include "ringflow/generated/envelope_ringflow.hpp"
#include "ringflow/generated/error_ringflow.hpp"
#include "ringflow/generated/saxpy_reply_ringflow.hpp"
#include "ringflow/generated/saxpy_request_ringflow.hpp"
#include "ringflow/generated/score_reply_ringflow.hpp"
#include "ringflow/generated/score_request_ringflow.hpp"
#include "ringflow/generated/trade_ringflow.hpp"
#include "ringflow/generated/vwap_reply_ringflow.hpp"
