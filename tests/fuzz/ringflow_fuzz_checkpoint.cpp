// ringflow_fuzz_checkpoint: the input as a checkpoint file (runtime/checkpoint.hpp) — a file on disk
// that a crash, a full disk or another program may have left torn or damaged. decode_checkpoint()
// must never read past the bytes; what it accepts must be exactly one checkpoint: encoding it again
// gives the input byte for byte, and any one byte flipped in it is refused.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "ringflow/runtime/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow::ops;
  if (size > 65536) return -1;
  const ringflow::fuzz::owned_copy in(data, size);
  std::string why;
  const std::optional<checkpoint> c = decode_checkpoint(in.data(), in.size, why);
  if (!c) {
    RF_CHECK(!why.empty());
    return 0;
  }
  RF_CHECK(c->state.size() == c->state_bytes);
  const std::vector<std::uint8_t> again = encode_checkpoint(*c);
  RF_CHECK(again.size() == size && std::memcmp(again.data(), in.data(), size) == 0);
  std::vector<std::uint8_t> flipped = again;
  flipped[(c->sequence ^ c->requests_covered) % flipped.size()] ^= 0x01;
  RF_CHECK(!decode_checkpoint(flipped.data(), flipped.size(), why));
  return 0;
}
