// ringflow_fuzz_ll_slot: the input as the LL16 units of a protocol v2 slot (ring.hpp), written by
// a peer that may be faulty. ll::read_slot() must never read past the slot's units nor write past
// the image it was given; when it accepts, the image is exactly what the units carry (seq = flag,
// header bytes 8..63, the inline payload it claims, only if within the ring's inline room) and
// every unit it used carries the flag. Then the round trip: the header and payload the input
// encodes, written with ll::write_slot(), read back byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_common.hpp"
#include "ringflow/ring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ringflow;
  if (size < 9 || size > 9 + 64 * 16) return -1;
  // Byte 0: the slot size (256, 512 or 1024) and which flag to look for; then the units.
  const std::uint32_t slot = 256u << (data[0] % 3);
  const std::uint32_t slot_units = slot / 16;
  const std::uint32_t inline_cap = slot / 2 - 56;
  std::uint64_t flag = 0;
  std::memcpy(&flag, data + 1, 8);
  std::vector<ll_unit> units(slot_units, ll_unit{0, 0});
  std::memcpy(units.data(), data + 9, std::min<std::size_t>(size - 9, slot_units * sizeof(ll_unit)));
  if (data[0] & 0x80)  // make most units carry the flag, so that acceptance is reached often
    for (std::uint32_t k = 0; k < slot_units; ++k)
      if ((units[k].data ^ k) & 1) units[k].flag = flag;

  // An exactly-sized image: ASan reports a write past it.
  const std::uint32_t image_bytes = ll::image_bytes(inline_cap);
  std::vector<slot_header> image_store(image_bytes / sizeof(slot_header));
  auto* image = reinterpret_cast<std::uint8_t*>(image_store.data());
  const bool ok = ll::read_slot(units.data(), slot_units, flag, inline_cap, image);
  if (ok) {
    slot_header h;
    std::memcpy(&h, image, sizeof h);
    RF_CHECK(h.seq == flag);
    for (std::uint32_t k = 0; k < ll::header_units; ++k) {
      RF_CHECK(units[k].flag == flag);
      RF_CHECK(std::memcmp(image + 8 + 8 * k, &units[k].data, 8) == 0);
    }
    const bool inl = !(h.flags & slot_flags::arena) && h.payload_len <= inline_cap;
    if (inl) {
      const std::uint32_t n = ll::units_for(h.payload_len);
      RF_CHECK(n <= slot_units);
      for (std::uint32_t k = ll::header_units; k < n; ++k) RF_CHECK(units[k].flag == flag);
      for (std::uint32_t b = 0; b < h.payload_len; ++b)
        RF_CHECK(image[64 + b] == reinterpret_cast<const std::uint8_t*>(&units[ll::header_units + b / 8].data)[b % 8]);
    }
    // What a consumer then checks before it reads a payload: an inline claim beyond the inline
    // room is out of bounds, and so is any arena claim in a ring without an arena (except an empty
    // one at offset 0, which reads nothing).
    ring_config c{4, slot, 0, 0};
    c.protocol = ring_protocol::v2;
    std::vector<ll_unit> region_store(ring_layout{c}.bytes() / sizeof(ll_unit) + 8);
    const ring_region r = ring_region::init(region_store.data(), c);
    const bool want = (h.flags & slot_flags::arena) ? h.arena_offset == 0 && h.payload_len == 0 : inl;
    RF_CHECK(r.payload_in_bounds(h) == want);
  }

  // Round trip: header bytes and payload from the input.
  slot_header h{};
  std::memcpy(reinterpret_cast<std::uint8_t*>(&h) + 8, data + 9, std::min<std::size_t>(size - 9, 56));
  const std::uint8_t* payload = data + 9 + std::min<std::size_t>(size - 9, 56);
  const std::uint32_t avail = static_cast<std::uint32_t>(data + size - payload);
  const std::uint32_t len = std::min(avail, inline_cap);
  h.payload_len = len;
  h.flags = static_cast<std::uint16_t>(h.flags & ~slot_flags::arena);
  std::vector<ll_unit> out(slot_units, ll_unit{0, flag + 1});
  ll::write_slot(out.data(), h, payload, len, flag);
  RF_CHECK(ll::read_slot(out.data(), slot_units, flag, inline_cap, image));
  RF_CHECK(std::memcmp(image + 8, reinterpret_cast<const std::uint8_t*>(&h) + 8, 56) == 0);
  RF_CHECK(len == 0 || std::memcmp(image + 64, payload, len) == 0);
  return 0;
}
