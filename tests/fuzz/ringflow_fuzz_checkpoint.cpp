// ringflow_fuzz_checkpoint: the input as a checkpoint file and as a journal file
// (runtime/checkpoint.hpp) — files on disk that a crash, a full disk or another program may have
// left torn or damaged. Neither decoder may read past the bytes. What decode_checkpoint() accepts
// must be exactly one checkpoint: encoding it again gives the input byte for byte, and any one byte
// flipped in it is refused. What decode_journal() returns is gap-free from base + 1, and encoding it
// again gives a prefix of the input (the whole input when it stopped at the end, no note).
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
  const journal_contents j = decode_journal(in.data(), in.size);
  for (std::size_t i = 0; i < j.entries.size(); ++i) RF_CHECK(j.entries[i].seq == j.base + 1 + i);
  if (in.size >= 24 && (j.note.empty() || !j.entries.empty())) {
    const std::vector<std::uint8_t> again = encode_journal(j.base, j.entries);
    RF_CHECK(again.size() <= size && std::memcmp(again.data(), in.data(), again.size()) == 0);
    if (j.note.empty()) RF_CHECK(again.size() == size);
  }
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
