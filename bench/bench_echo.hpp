// bench/bench_echo.hpp — the Echo request the actor-layer benchmarks send (as tests/test_support.hpp's
// echo_request(1, 32): a 32-byte body 1, 2, ..., 32), so their rows compare the same message.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <vector>

#include "ringflow/actors/fb_msg.hpp"
#include "ringflow/generated/echo_generated.h"

namespace ringflow::bench {

inline fb_msg echo_request() {
  flatbuffers::FlatBufferBuilder b;
  std::vector<std::uint8_t> body(32);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(1 + i);
  const auto bo = b.CreateVector(body);
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, 1, bo));
  return fb_msg(b.GetBufferPointer(), b.GetSize());
}

}  // namespace ringflow::bench
