// ringflow/runtime/catalog_names.hpp — the names a topology file may use, as plain data.
//
// The topology parser (and its fuzz target, built without CAF) needs only names and types; the
// catalog (catalog.hpp) adds what makes them run. tests/test_topology.cpp checks that both list
// exactly the same kernels, message types and functions.
#pragma once

namespace ringflow::ops::names {

struct kernel_types {
  const char* name;
  const char* request;
  const char* reply;
  bool stateful = false;  // keeps state (kernel.hpp): a node of it takes `state:` and has one replica
};

inline constexpr kernel_types kernels[] = {
    {"echo", "Echo", "Echo"},
    {"saxpy", "SaxpyRequest", "SaxpyReply"},
    {"score", "ScoreRequest", "ScoreReply"},
    {"vwap", "Trade", "VwapReply", true},
};
inline constexpr const char* messages[] = {"Echo",       "SaxpyRequest", "SaxpyReply", "ScoreRequest",
                                           "ScoreReply", "Trade",        "VwapReply"};
inline constexpr const char* functions[] = {"passthrough", "validate", "sink"};

}  // namespace ringflow::ops::names
