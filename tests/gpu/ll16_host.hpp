// tests/gpu/ll16_host.hpp — the host's side of a 16-byte LL unit {data, flag} (ringflow_test_gpu_ll16):
// one aligned 16-byte store and one aligned 16-byte load (SSE movdqa: single-copy atomic on x86
// processors that enumerate AVX, per Intel's SDM and AMD's APM). Compiled by the host compiler
// (ll16_host.cpp), never split into two 8-byte accesses.
#pragma once

#include <cstdint>

namespace ringflow::test {

struct alignas(16) unit16 {
  std::uint64_t data;
  std::uint64_t flag;
};
static_assert(sizeof(unit16) == 16);

void ll16_store(unit16* u, std::uint64_t data, std::uint64_t flag) noexcept;
void ll16_load(const unit16* u, std::uint64_t& data, std::uint64_t& flag) noexcept;

}  // namespace ringflow::test
