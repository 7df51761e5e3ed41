// Helpers shared by ringflow's tests: building demo requests with flatc-generated code.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <chrono>
#include <thread>
#include <vector>

#include "ringflow/generated/echo_generated.h"
#include "ringflow/generated/saxpy_reply_generated.h"
#include "ringflow/generated/saxpy_request_generated.h"
#include "ringflow/generated/score_reply_generated.h"
#include "ringflow/generated/score_request_generated.h"

namespace ringflow::test {

inline std::vector<std::uint8_t> bytes_of(flatbuffers::FlatBufferBuilder& b) {
  return {b.GetBufferPointer(), b.GetBufferPointer() + b.GetSize()};
}

inline std::vector<std::uint8_t> saxpy_request(float a, const std::vector<float>& x, const std::vector<float>& y) {
  flatbuffers::FlatBufferBuilder b;
  auto xo = b.CreateVector(x);
  auto yo = b.CreateVector(y);
  demo::FinishSaxpyRequestBuffer(b, demo::CreateSaxpyRequest(b, a, xo, yo));
  return bytes_of(b);
}

inline std::vector<std::uint8_t> echo_request(std::uint64_t seq, std::size_t body_bytes) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<std::uint8_t> body(body_bytes);
  for (std::size_t i = 0; i < body_bytes; ++i) body[i] = static_cast<std::uint8_t>(seq + i);
  auto bo = b.CreateVector(body);
  demo::FinishEchoBuffer(b, demo::CreateEcho(b, seq, bo));
  return bytes_of(b);
}

inline std::vector<std::uint8_t> score_request(std::uint64_t id, double price, std::uint32_t qty, std::uint8_t tier,
                                               const std::vector<demo::Feature>& features) {
  flatbuffers::FlatBufferBuilder b;
  auto fo = b.CreateVectorOfStructs(features);
  const demo::Quote q(price, qty, tier);
  demo::FinishScoreRequestBuffer(b, demo::CreateScoreRequest(b, id, &q, fo));
  return bytes_of(b);
}

template <class Root>
bool verify(const std::vector<std::uint8_t>& buf) {
  flatbuffers::Verifier v(buf.data(), buf.size());
  return v.VerifyBuffer<Root>(nullptr);
}

/// Waits (bounded, polling every 100 us) until `f()` holds; returns its last value.
template <class F>
bool eventually(F&& f, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return f();
}

}  // namespace ringflow::test
