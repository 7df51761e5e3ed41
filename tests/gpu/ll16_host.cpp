// The host's 16-byte unit accesses of ringflow_test_gpu_ll16: see ll16_host.hpp.
#include "ll16_host.hpp"

#include <emmintrin.h>

namespace ringflow::test {

void ll16_store(unit16* u, std::uint64_t data, std::uint64_t flag) noexcept {
  const __m128i v = _mm_set_epi64x(static_cast<long long>(flag), static_cast<long long>(data));
  _mm_store_si128(reinterpret_cast<__m128i*>(u), v);  // one movdqa
}

void ll16_load(const unit16* u, std::uint64_t& data, std::uint64_t& flag) noexcept {
  const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(u));  // one movdqa
  data = static_cast<std::uint64_t>(_mm_cvtsi128_si64(v));
  flag = static_cast<std::uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(v, v)));
}

}  // namespace ringflow::test
