// ringflow/ring.hpp — the single-producer/single-consumer fixed-slot ring, host and device portable.
//
// Contract
//   * One producer and one consumer, each a single thread (host thread, or one device thread per
//     ring), possibly on opposite sides of PCIe. Nothing here allocates; the backend places one
//     contiguous region (ring_layout::bytes()) in memory both sides can reach and calls
//     ring_region::init() once before either side starts.
//   * Fixed-size slots (power-of-two count, size a multiple of 64). Each slot starts with a 64-byte
//     slot_header; the payload (a FlatBuffer) follows inline, or — when larger than the inline
//     room — lives in the ring's arena, the slot carrying offset + length (slot_flags::arena).
//     A payload larger than the whole arena is `oversize`, an error that retrying cannot fix.
//   * FIFO: the consumer sees messages in the order the producer committed them, each exactly once.
//
// Protocol (positions are monotonically increasing u64; slot = pos & (capacity - 1))
//   producer at pos: waits until pos - head < capacity (head cached; re-read only when the ring
//   looks full), writes header + payload with plain stores, then store-RELEASES slot.seq = pos + 1.
//   consumer at pos: load-ACQUIREs slot.seq; == pos + 1 means the message is there — one read of
//   the slot itself, which across PCIe is one transaction instead of index + slot. After reading,
//   it advances pos and store-RELEASES `head` every `head_batch` messages and whenever it finds
//   the ring empty (so a producer waiting for room always progresses).
//   Every shared word has exactly one writer (no read-modify-write crosses PCIe: host-mapped
//   atomics are not atomic against the host on most systems). `head` and the producer's
//   observable `tail` live on separate 128-byte lines; slots start on 128-byte boundaries.
//
// Arena: a circular byte buffer allocated by the producer in commit order; the consumer frees it
// implicitly by advancing `head` (the producer remembers, per slot, where the arena stood after
// it, in producer-private memory). An allocation never wraps: if it does not fit before the
// arena's end, the producer skips to the start.
//
// Restart: endpoints keep their cursors privately. A new endpoint attached to an initialized
// region resumes from the shared state (consumer: `head`; producer: `tail`), which is exact once
// the previous endpoint on that side has called publish() / stopped.
//
// Protocol v2 (ring_config::protocol == 2; device-polled rings, docs/ARCHITECTURE.md "Ring protocol v2")
//   A slot is slot_size / 16 LL16 units {u64 data; u64 flag} (portable.hpp: ll_unit, one 16-byte
//   store / load each). The message's bytes — slot_header bytes 8..63, then the inline payload —
//   are carried 8 per unit, and every unit's flag is pos + 1. The consumer accepts a slot only
//   when every unit it needs carries that flag, so the poll that finds a request is the read of
//   it: no seq word, no release/acquire pair, no fence (arena payloads excepted: the producer
//   fences between the arena bytes and the units, the consumer after it saw them). The consumer
//   decodes the units into an image (a slot_header, seq = flag, then the payload) in its own
//   memory; try_peek() returns that image.
//   Credit instead of head: requests and replies pair up (equal capacities; one reply per
//   request, in order), so the request producer counts free slots from the *reply* ring's head
//   (use_credit_from(): host memory the host's own reply consumer writes), the device's reply
//   producer writes reply i into slot i mod capacity without any room check (assume_credit()),
//   and the device's request consumer publishes its head only for observers (lazy_head). Inline
//   room is slot_size / 2 - 56 bytes (v1: slot_size - 64). Arena allocation keeps v1's rule,
//   freed by the head of the ring the producer takes its credit from.
//
// Thread-safety: ring_producer is used by one thread, ring_consumer by one (other) thread.
// ring_observer may be used by any thread (relaxed reads; approximate by up to head_batch).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ringflow/fb_view.hpp"
#include "ringflow/portable.hpp"

namespace ringflow {

using byte = std::uint8_t;

/// Bits of slot_header::flags.
namespace slot_flags {
inline constexpr std::uint16_t arena = 1u << 0;        // payload lives in the arena at arena_offset
inline constexpr std::uint16_t error_reply = 1u << 1;  // reply: payload is a ringflow.wire.ErrorReply
inline constexpr std::uint16_t replayed = 1u << 2;     // request: a replay after a fault (ring_core sets it when it
                                                       // re-publishes an outbox entry; its hop trace reports it)
}  // namespace slot_flags

/// The fixed 64-byte header at the start of every slot: the in-process form of the envelope.
struct alignas(64) slot_header {
  std::uint64_t seq;             // 0  sequence word: pos + 1 once the slot is published (see above)
  std::uint64_t correlation_id;  // 8  request <-> reply matching
  std::uint64_t deadline_ns;     // 16 absolute steady-clock ns of the host process; 0 = none
  std::uint32_t type_id;         // 24 payload type (file identifier as u32)
  std::uint32_t payload_len;     // 28 payload bytes
  std::uint32_t arena_offset;    // 32 byte offset into the arena when flags & slot_flags::arena
  std::uint16_t flags;           // 36 slot_flags
  std::uint16_t status;          // 38 reply: ringflow::status (0 = ok); request: 0
  std::uint8_t trace_id[16];     // 40 W3C trace id (all zero = untraced)
  std::uint8_t span_id[8];       // 56 W3C parent/span id
};
static_assert(sizeof(slot_header) == 64, "slot_header is one 64-byte block");
static_assert(offsetof(slot_header, seq) == 0 && offsetof(slot_header, trace_id) == 40);

enum class [[nodiscard]] ring_status : std::uint8_t{
    ok = 0,
    full,      // no free slot or arena room now: retry after the consumer advances
    empty,     // nothing to pop
    oversize,  // payload larger than inline room and arena: retrying cannot succeed
};

/// Slot formats (ring_config::protocol): see the protocol notes above.
namespace ring_protocol {
inline constexpr std::uint32_t v1 = 1;  // seq word + release/acquire (CPU rings; the default)
inline constexpr std::uint32_t v2 = 2;  // LL16 units, credit from replies (device-polled rings)
}  // namespace ring_protocol

/// Geometry of a ring region; immutable after init.
struct ring_config {
  std::uint32_t capacity = 1024;               // slots, power of two, >= 2
  std::uint32_t slot_size = 256;               // bytes per slot incl. the 64-byte header; multiple of 64
  std::uint32_t arena_bytes = 0;               // oversize payloads; 0 = none (larger payloads are oversize)
  std::uint32_t head_batch = 0;                // consumer publishes head every N pops; 0 = min(capacity/4, 32)
  std::uint32_t protocol = ring_protocol::v1;  // slot format; v2 needs slot_size >= 256

  RINGFLOW_HD bool valid() const {
    return capacity >= 2 && (capacity & (capacity - 1)) == 0 && slot_size >= 128 && slot_size % 64 == 0 &&
           arena_bytes % 64 == 0 && head_batch <= capacity / 2 &&
           (protocol == ring_protocol::v1 || (protocol == ring_protocol::v2 && slot_size >= 256));
  }
  RINGFLOW_HD bool is_v2() const { return protocol == ring_protocol::v2; }
  RINGFLOW_HD std::uint32_t inline_capacity() const {
    // v2: half of the slot is flags, and the header's seq word is not carried (it is the flag).
    return is_v2() ? slot_size / 2 - 56 : slot_size - static_cast<std::uint32_t>(sizeof(slot_header));
  }
  RINGFLOW_HD std::uint32_t effective_head_batch() const {
    if (head_batch) return head_batch;
    const std::uint32_t q = capacity / 4;
    return q == 0 ? 1 : (q > 32 ? 32 : q);
  }
};

/// The shared control words at the start of a ring region.
struct ring_shared {
  // -- consumer line: written only by the consumer --------------------------------------------
  alignas(128) std::uint64_t head;  // next position the consumer will read (published in batches)
  // -- producer line: written only by the producer --------------------------------------------
  alignas(128) std::uint64_t tail;  // one past the last committed position (observers only)
  std::uint64_t full_events;        // times a push found the ring full (relaxed)
  // -- config line: written once by init() before the region is shared ------------------------
  alignas(128) ring_config config;
  std::uint64_t magic;
};
// Each writer's words on a 128-byte line of its own (two 64-byte lines: no false sharing between the
// consumer's head and the producer's tail, including across PCIe where a line is the unit of transfer).
static_assert(alignof(ring_shared) == 128);
static_assert(offsetof(ring_shared, head) == 0, "consumer line first");
static_assert(offsetof(ring_shared, tail) == 128, "producer line on its own 128 bytes");
static_assert(offsetof(ring_shared, full_events) < 256, "full_events on the producer line");
static_assert(offsetof(ring_shared, config) == 256, "config line on its own 128 bytes");
static_assert(sizeof(ring_shared) == 384, "three 128-byte lines");

/// Byte offsets of the parts of a ring region.
struct ring_layout {
  ring_config config;
  static constexpr std::uint64_t slots_offset = (sizeof(ring_shared) + 127) / 128 * 128;
  RINGFLOW_HD std::uint64_t arena_offset() const {
    return slots_offset + static_cast<std::uint64_t>(config.capacity) * config.slot_size;
  }
  /// Total bytes of the region (allocate 128-byte aligned).
  RINGFLOW_HD std::uint64_t bytes() const { return arena_offset() + config.arena_bytes; }
  /// Producer-private bookkeeping (one u64 per slot) when the ring has an arena.
  RINGFLOW_HD std::uint64_t producer_scratch_words() const { return config.arena_bytes ? config.capacity : 0; }
};

inline constexpr std::uint64_t ring_magic = 0x52494e47464c4f57ull;  // "RINGFLOW"

/// A view of an initialized ring region.
class ring_region {
 public:
  ring_region() = default;  // implicitly __host__ __device__
  /// A view that reads the geometry from the region's config line on every use.
  RINGFLOW_HD explicit ring_region(void* base) : base_(static_cast<byte*>(base)) {}
  /// A view with the geometry pinned to `cfg` (what init() returns): slot and arena addresses are
  /// computed from this copy, never from the shared config line, so a peer that overwrites that
  /// line (a faulty out-of-process kernel host) cannot move this side's accesses out of the region.
  RINGFLOW_HD ring_region(void* base, const ring_config& cfg) : base_(static_cast<byte*>(base)), pinned_(cfg) {}

  /// Formats `base` (ring_layout{cfg}.bytes(), 128-byte aligned) as an empty ring. Call before
  /// any endpoint exists; publication to the other side is the backend's business (thread start,
  /// kernel launch, or a release store it documents).
  RINGFLOW_HD static ring_region init(void* base, const ring_config& cfg) {
    auto* b = static_cast<byte*>(base);
    const ring_layout layout{cfg};
    for (std::uint64_t i = 0; i < layout.arena_offset(); ++i) b[i] = 0;  // header + slot headers
    auto* s = reinterpret_cast<ring_shared*>(b);
    s->config = cfg;
    s->magic = ring_magic;
    return ring_region(base, cfg);
  }

  RINGFLOW_HD bool valid() const { return base_ && shared()->magic == ring_magic && config().valid(); }
  /// True when the region's shared config line still says what this view pinned (always true
  /// for an unpinned view).
  RINGFLOW_HD bool config_intact() const {
    if (pinned_.capacity == 0) return true;
    const ring_config& c = shared()->config;
    return shared()->magic == ring_magic && c.capacity == pinned_.capacity && c.slot_size == pinned_.slot_size &&
           c.arena_bytes == pinned_.arena_bytes && c.head_batch == pinned_.head_batch && c.protocol == pinned_.protocol;
  }
  RINGFLOW_HD ring_shared* shared() const { return reinterpret_cast<ring_shared*>(base_); }
  RINGFLOW_HD const ring_config& config() const { return pinned_.capacity ? pinned_ : shared()->config; }
  /// True when a slot's payload (as its header describes it) lies inside this region: inline
  /// within the slot, or within the arena at a 64-byte-aligned offset (as producers place it;
  /// device readers copy it in 16-byte chunks, and a misaligned access is a sticky GPU fault). A consumer whose
  /// producer is not trusted checks this (on its own copy of the header) before it reads the payload.
  RINGFLOW_HD bool payload_in_bounds(const slot_header& h) const {
    const ring_config& c = config();
    if (h.flags & slot_flags::arena)  // producers place arena payloads 64-byte aligned; readers rely on it
      return (h.arena_offset & 63u) == 0 && static_cast<std::uint64_t>(h.arena_offset) + h.payload_len <= c.arena_bytes;
    return h.payload_len <= c.inline_capacity();
  }
  RINGFLOW_HD slot_header* slot(std::uint64_t pos) const {
    const ring_config& c = config();
    return reinterpret_cast<slot_header*>(base_ + ring_layout::slots_offset +
                                          (pos & (c.capacity - 1)) * static_cast<std::uint64_t>(c.slot_size));
  }
  RINGFLOW_HD byte* arena() const { return base_ + ring_layout{config()}.arena_offset(); }
  /// The LL16 units of a v2 slot.
  RINGFLOW_HD ll_unit* units(std::uint64_t pos) const { return reinterpret_cast<ll_unit*>(slot(pos)); }
  /// Payload bytes of a slot (inline or in the arena).
  RINGFLOW_HD byte* payload(const slot_header* h) const {
    return (h->flags & slot_flags::arena) ? arena() + h->arena_offset
                                          : reinterpret_cast<byte*>(const_cast<slot_header*>(h)) + sizeof(slot_header);
  }
  RINGFLOW_HD byte* base() const { return base_; }

 private:
  byte* base_ = nullptr;
  ring_config pinned_{0, 0, 0, 0};  // capacity 0: not pinned
};

/// Protocol v2's slot codec (see the protocol notes above): the bytes of a message spread over
/// LL16 units, 8 per unit, every unit flagged with pos + 1.
namespace ll {
inline constexpr std::uint32_t header_units = 7;  // slot_header bytes 8..63 (bytes 0..7, seq, are the flag)
inline constexpr std::uint32_t burst_units = 16;  // units loaded before any is checked (256 bytes)

/// Units a message with `inline_len` inline payload bytes occupies.
RINGFLOW_HD constexpr std::uint32_t units_for(std::uint32_t inline_len) { return header_units + (inline_len + 7) / 8; }
/// Bytes an image (what a v2 consumer decodes a slot into, a slot_header and the payload: 64-byte
/// aligned, as slot_header is) needs for a ring with `inline_cap`; a multiple of 64.
RINGFLOW_HD constexpr std::uint32_t image_bytes(std::uint32_t inline_cap) {
  return static_cast<std::uint32_t>(sizeof(slot_header)) + (inline_cap + 63) / 64 * 64;
}
/// True when `p` may hold a slot_header (64-byte aligned).
RINGFLOW_HD inline bool header_aligned(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 63u) == 0; }

RINGFLOW_HD inline std::uint64_t pack8(const byte* p, std::uint32_t n) {
  std::uint64_t v = 0;
  for (std::uint32_t i = 0; i < n && i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

/// Writes a message into a slot's units (header bytes 8..63 from `h`, then `inline_len` payload
/// bytes), every unit flagged `flag`. No fence: each unit validates itself.
RINGFLOW_HD inline void write_slot(ll_unit* u, const slot_header& h, const byte* payload, std::uint32_t inline_len,
                                   std::uint64_t flag) {
  const auto* hw = reinterpret_cast<const std::uint64_t*>(&h);
  for (std::uint32_t k = 0; k < header_units; ++k) ll_store(u + k, hw[k + 1], flag);
  for (std::uint32_t i = 0, k = header_units; i < inline_len; i += 8, ++k) {
    const std::uint32_t n = inline_len - i < 8 ? inline_len - i : 8;
    const bool word = n == 8 && (reinterpret_cast<std::uintptr_t>(payload + i) & 7u) == 0;
    ll_store(u + k, word ? *reinterpret_cast<const std::uint64_t*>(payload + i) : pack8(payload + i, n), flag);
  }
}

/// Reads the message flagged `flag` from a slot's units (`slot_units` of them) into `image` (a
/// slot_header with seq = flag, then the inline payload; ll::image_bytes() of room, 64-byte
/// aligned). True when every unit the message needs carries `flag`; false when the message is not
/// (completely) there yet — the image is then unspecified. Loads go out in bursts of 16 units
/// before any flag is checked, so a message of up to 72 inline bytes costs one round trip. A
/// header claiming more inline bytes than the ring has is decoded as the header alone: the
/// caller's payload_in_bounds() check rejects it.
RINGFLOW_HD inline bool read_slot(const ll_unit* u, std::uint32_t slot_units, std::uint64_t flag,
                                  std::uint32_t inline_cap, byte* image) {
  auto* w = reinterpret_cast<std::uint64_t*>(image);
  std::uint32_t need = header_units;  // known once the header units are in
  for (std::uint32_t base = 0; base < need; base += burst_units) {
    std::uint64_t d[burst_units], f[burst_units];
    RINGFLOW_UNROLL
    for (std::uint32_t k = 0; k < burst_units; ++k) {
      if (base + k < slot_units) ll_load(u + base + k, d[k], f[k]);
      else d[k] = f[k] = 0;
    }
    if (base == 0) {
      for (std::uint32_t k = 0; k < header_units; ++k)
        if (f[k] != flag) return false;
      const auto len = static_cast<std::uint32_t>(d[2] >> 32);                // header bytes 28..31
      const auto flags = static_cast<std::uint16_t>((d[3] >> 32) & 0xffffu);  // header bytes 36..37
      const std::uint32_t inl = (flags & slot_flags::arena) || len > inline_cap ? 0 : len;
      need = units_for(inl);
    }
    RINGFLOW_UNROLL
    for (std::uint32_t k = 0; k < burst_units; ++k) {
      const std::uint32_t at = base + k;
      if (at >= need) break;
      if (f[k] != flag) return false;
      w[at + 1] = d[k];
    }
  }
  w[0] = flag;
  return true;
}
}  // namespace ll

/// A slot claimed by the producer: fill `header` fields (not seq) and up to `capacity` payload
/// bytes at `payload`, then commit().
struct ring_claim {
  slot_header* header = nullptr;
  byte* payload = nullptr;
  std::uint32_t capacity = 0;
  std::uint16_t flags = 0;         // the slot_flags the claim set in the header (arena or 0) and its arena
  std::uint32_t arena_offset = 0;  // offset: kept here so the producer never reads its own slot back
                                   // (a PCIe read on a device)
  bool local = false;              // v2: header and (inline) payload are in the producer's claim
                                   // buffer, encoded into the slot's units by commit()
};

/// A message to push by copy (try_push / try_push_bulk).
struct ring_message {
  slot_header header;  // seq, payload_len, arena_offset and the arena flag are set by the ring
  const void* payload;
  std::uint32_t payload_len;
};

class ring_producer {
 public:
  ring_producer() = default;  // implicitly __host__ __device__
  /// `arena_scratch`: producer-private memory of ring_layout::producer_scratch_words() u64s
  /// (nullptr allowed when the ring has no arena).
  RINGFLOW_HD ring_producer(ring_region r, std::uint64_t* arena_scratch) : r_(r), arena_ends_(arena_scratch) {
    const ring_config& c = r_.config();
    mask_ = c.capacity - 1;
    inline_cap_ = c.inline_capacity();
    arena_bytes_ = arena_ends_ ? c.arena_bytes : 0;
    // Resume where the previous producer stopped. Relaxed: the region was handed to us by the
    // backend with its own synchronisation (thread start / join, kernel launch).
    pos_ = load_relaxed(r_.shared()->tail);
    credit_ = &r_.shared()->head;
    v2_ = c.is_v2();
    // Acquire: pairs with the consumer's release of head (see refresh_head()).
    cached_head_ = load_acquire(*credit_);
    arena_tail_ = 0;
    if (arena_bytes_ && pos_ != 0) arena_tail_ = arena_ends_[(pos_ - 1) & mask_];
  }

  RINGFLOW_HD bool valid() const { return r_.base() != nullptr; }
  RINGFLOW_HD ring_region region() const { return r_; }
  RINGFLOW_HD std::uint64_t position() const { return pos_; }

  /// v2 request producer: free slots (and arena bytes) are counted from the head of `replies`,
  /// the paired response ring, which this side's own reply consumer publishes (host memory: no
  /// PCIe read). Reply i consumed means request i was read and answered, so its slot is free.
  RINGFLOW_HD void use_credit_from(ring_region replies) {
    credit_ = &replies.shared()->head;
    cached_head_ = load_acquire(*credit_);
  }
  /// v2 reply producer on the device: the host pushes request i only after it consumed reply
  /// i - capacity, so reply slot i mod capacity is always free — no room check, no read of host
  /// memory (the arena, when used, still checks its own ring's head).
  RINGFLOW_HD void assume_credit() { implied_ = true; }
  /// Device-side producer: `tail` (for observers only) is stored by publish_tail(), not per message.
  RINGFLOW_HD void set_lazy_tail(bool lazy) { lazy_tail_ = lazy; }
  /// v2 zero-copy claims (try_claim / commit): the header and inline payload are composed in
  /// `buf` (64-byte aligned, >= ll::image_bytes(inline_capacity()) bytes) and encoded into the
  /// slot's units by commit(). False (no buffer set) when it is too small or misaligned.
  RINGFLOW_HD bool set_claim_buffer(byte* buf, std::uint32_t bytes) {
    claim_buf_ = bytes >= ll::image_bytes(inline_cap_) && ll::header_aligned(buf) ? buf : nullptr;
    return claim_buf_ != nullptr;
  }
  /// Stores `tail` (relaxed: for observers) — a lazy-tail producer calls it now and then.
  RINGFLOW_HD void publish_tail() { store_relaxed(r_.shared()->tail, pos_); }
  /// Inline payload room per slot; larger payloads go to the arena.
  RINGFLOW_HD std::uint32_t inline_capacity() const { return inline_cap_; }
  /// Largest payload this ring can ever carry.
  RINGFLOW_HD std::uint32_t max_payload() const { return arena_bytes_ > inline_cap_ ? arena_bytes_ : inline_cap_; }

  /// Claims the next slot with room for `max_len` payload bytes (zero-copy). At most one claim
  /// may be open at a time.
  RINGFLOW_HD ring_status try_claim(std::uint32_t max_len, ring_claim& out) {
    if (max_len > max_payload()) return ring_status::oversize;
    if (!has_room(1)) return note_full();
    // v1: the slot itself; v2: the claim buffer (commit() encodes it into the slot's units).
    if (v2_ && !claim_buf_) return ring_status::oversize;  // no claim buffer: only try_push works (documented)
    slot_header* h = v2_ ? reinterpret_cast<slot_header*>(claim_buf_) : r_.slot(pos_);
    if (max_len <= inline_cap_) {
      h->flags = 0;
      h->arena_offset = 0;
      out = {h, reinterpret_cast<byte*>(h) + sizeof(slot_header), inline_cap_, 0, 0, v2_};
      claim_arena_start_ = arena_tail_;
      return ring_status::ok;
    }
    std::uint64_t at = 0;
    if (!arena_alloc(max_len, at)) return note_full();
    const auto offset = static_cast<std::uint32_t>(at % arena_bytes_);
    h->flags = slot_flags::arena;
    h->arena_offset = offset;
    out = {h, r_.arena() + offset, max_len, slot_flags::arena, offset, v2_};
    return ring_status::ok;
  }

  /// Publishes a claimed slot holding `len` (<= claim capacity) payload bytes. Unused arena
  /// room of the claim is returned.
  RINGFLOW_HD void commit(ring_claim& c, std::uint32_t len) {
    record(c, len);
    if (v2_) {
      if (c.flags & slot_flags::arena) ll_release_fence();  // the arena bytes before the units
      const std::uint32_t inl = (c.flags & slot_flags::arena) ? 0 : len;
      ll::write_slot(r_.units(pos_ - 1), *c.header, c.payload, inl, pos_);
      if (!lazy_tail_) publish_tail();
    } else {
      publish_staged(pos_ - 1);
    }
    c = {};
  }

  /// v2 batches on the device (a reply producer with assume_credit()): writes an inline reply
  /// (`h` and `len` <= inline_capacity() payload bytes, the lane's own memory) into the slot
  /// `ahead` positions past the next one, without advancing; const, so lanes may call it at once.
  /// Each unit publishes itself (no fence). advance() then moves past the batch.
  RINGFLOW_HD void commit_ahead(std::uint32_t ahead, const slot_header& h, const byte* payload,
                                std::uint32_t len) const {
    const std::uint64_t p = pos_ + ahead;
    ll::write_slot(r_.units(p), h, payload, len, p + 1);
  }
  /// Moves past `n` slots written by commit_ahead() (inline replies: the arena cursor stays).
  RINGFLOW_HD void advance(std::uint32_t n) {
    for (std::uint32_t i = 0; i < n; ++i) {
      if (arena_bytes_) arena_ends_[pos_ & mask_] = arena_tail_;
      ++pos_;
    }
    if (!lazy_tail_) publish_tail();
  }

  /// Copies one message into the ring.
  RINGFLOW_HD ring_status try_push(const ring_message& m) {
    const ring_status st = stage(m);
    if (st == ring_status::ok) publish_staged(pos_ - 1);
    return st;
  }

  /// Copies up to n messages; returns how many were pushed (stops at the first that does not
  /// fit; `last` says why). One head refresh covers the batch, and the batch's seq words are
  /// released only after every slot is written: a consumer that keeps up does not poll the very
  /// line the producer is filling for each message (which halves bulk throughput). FIFO order and
  /// the per-slot protocol are unchanged: seqs are released in position order.
  RINGFLOW_HD std::uint32_t try_push_bulk(const ring_message* msgs, std::uint32_t n, ring_status* last = nullptr) {
    const std::uint64_t first = pos_;
    ring_status st = ring_status::ok;
    has_room(n);  // one refresh of the cached head for the whole batch
    std::uint32_t done = 0;
    for (; done < n; ++done) {
      st = stage(msgs[done]);
      if (st != ring_status::ok) break;
    }
    if (done) publish_staged(first);
    if (last) *last = st;
    return done;
  }

  /// Free slots as the producer currently knows them (refreshes head when the cache says none).
  RINGFLOW_HD std::uint64_t free_slots() {
    if (implied_) return mask_ + 1;
    has_room(1);
    return (mask_ + 1) - (pos_ - cached_head_);
  }

 private:
  RINGFLOW_HD ring_status note_full() {
    ring_shared* s = r_.shared();
    // Relaxed: a statistic with a single writer (this producer).
    store_relaxed(s->full_events, load_relaxed(s->full_events) + 1);
    return ring_status::full;
  }

  // True if n slots are free; re-reads head only when the cached value says they are not.
  RINGFLOW_HD bool has_room(std::uint64_t n) {
    if (implied_) return true;
    if (pos_ + n - cached_head_ <= mask_ + 1) return true;
    refresh_head();
    return pos_ + n - cached_head_ <= mask_ + 1;
  }
  RINGFLOW_HD void refresh_head() {
    // Acquire: pairs with the consumer's release store of head; the consumer's reads of every
    // slot (and arena bytes) below head happen-before our overwriting them.
    cached_head_ = load_acquire(*credit_);
  }

  // v2 copy path: the message goes straight into the slot's units (inline) or the arena.
  RINGFLOW_HD ring_status stage_v2(const ring_message& m) {
    if (m.payload_len > max_payload()) return ring_status::oversize;
    if (!has_room(1)) return note_full();
    slot_header h = m.header;
    h.payload_len = m.payload_len;
    h.flags = static_cast<std::uint16_t>(h.flags & ~slot_flags::arena);
    h.arena_offset = 0;
    ring_claim c{&h, nullptr, 0, 0, 0, true};
    const auto* payload = static_cast<const byte*>(m.payload);
    if (m.payload_len <= inline_cap_) {
      claim_arena_start_ = arena_tail_;
      record(c, m.payload_len);
      ll::write_slot(r_.units(pos_ - 1), h, payload, m.payload_len, pos_);
      return ring_status::ok;
    }
    std::uint64_t at = 0;
    if (!arena_alloc(m.payload_len, at)) return note_full();
    const auto offset = static_cast<std::uint32_t>(at % arena_bytes_);
    copy_bytes(r_.arena() + offset, payload, m.payload_len);
    h.flags = static_cast<std::uint16_t>(h.flags | slot_flags::arena);
    h.arena_offset = offset;
    c.flags = slot_flags::arena;
    record(c, m.payload_len);
    ll_release_fence();  // the arena bytes before the units (x86: compiler-only)
    ll::write_slot(r_.units(pos_ - 1), h, nullptr, 0, pos_);
    return ring_status::ok;
  }

  // Circular arena allocation in commit order; never wraps an allocation.
  RINGFLOW_HD bool arena_alloc(std::uint32_t len, std::uint64_t& at) {
    const std::uint64_t size = (static_cast<std::uint64_t>(len) + 63) & ~63ull;  // keep 64-byte alignment
    auto fits = [&](std::uint64_t head_pos) {
      std::uint64_t start = arena_tail_;
      const std::uint64_t off = start % arena_bytes_;
      if (off + size > arena_bytes_) start += arena_bytes_ - off;  // skip the end fragment
      const std::uint64_t freed = head_pos == 0 ? 0 : arena_ends_[(head_pos - 1) & mask_];
      if (start + size - freed > arena_bytes_) return false;
      at = start;
      return true;
    };
    if (!fits(cached_head_)) {
      refresh_head();
      if (!fits(cached_head_)) return false;
    }
    claim_arena_start_ = at;
    arena_tail_ = at + size;
    return true;
  }

  // Claims and fills one slot without publishing it (advances pos_).
  RINGFLOW_HD ring_status stage(const ring_message& m) {
    if (v2_) return stage_v2(m);
    ring_claim c;
    const ring_status st = try_claim(m.payload_len, c);
    if (st != ring_status::ok) return st;
    copy_header(*c.header, m.header);
    copy_bytes(c.payload, m.payload, m.payload_len);
    record(c, m.payload_len);
    return ring_status::ok;
  }

  // Completes a claimed slot's bookkeeping (length, arena) and advances pos_; not yet visible.
  RINGFLOW_HD void record(ring_claim& c, std::uint32_t len) {
    slot_header* h = c.header;
    h->payload_len = len;
    if (arena_bytes_) {
      if (c.flags & slot_flags::arena) arena_tail_ = claim_arena_start_ + len;  // shrink to what was used
      // Round the arena cursor to 64 bytes so the next allocation starts aligned.
      arena_tail_ = (arena_tail_ + 63) & ~63ull;
      arena_ends_[pos_ & mask_] = arena_tail_;
    }
    ++pos_;
  }

  // Makes positions [first, pos_) visible to the consumer, in order.
  RINGFLOW_HD void publish_staged(std::uint64_t first) {
    if (v2_) {  // the units published themselves as they were written
      if (!lazy_tail_) publish_tail();
      return;
    }
    for (std::uint64_t p = first; p < pos_; ++p) {
      // Release: the header fields and payload written for position p become visible to the
      // consumer's acquire load of seq before it can observe p + 1.
      store_release(r_.slot(p)->seq, p + 1);
    }
    // Relaxed: `tail` is for observers (queue depth); nothing is ordered by it.
    store_relaxed(r_.shared()->tail, pos_);
  }

  RINGFLOW_HD static void copy_header(slot_header& dst, const slot_header& src) {
    dst.correlation_id = src.correlation_id;
    dst.deadline_ns = src.deadline_ns;
    dst.type_id = src.type_id;
    dst.flags = static_cast<std::uint16_t>((dst.flags & slot_flags::arena) | (src.flags & ~slot_flags::arena));
    dst.status = src.status;
    for (int i = 0; i < 16; ++i) dst.trace_id[i] = src.trace_id[i];
    for (int i = 0; i < 8; ++i) dst.span_id[i] = src.span_id[i];
  }
  RINGFLOW_HD static void copy_bytes(byte* dst, const void* src, std::uint32_t n) {
    const auto* s = static_cast<const byte*>(src);
    for (std::uint32_t i = 0; i < n; ++i) dst[i] = s[i];
  }

  ring_region r_{};
  std::uint64_t* arena_ends_ = nullptr;
  std::uint64_t* credit_ = nullptr;  // the head word free slots are counted from (own ring's; v2: the replies')
  byte* claim_buf_ = nullptr;        // v2 zero-copy claims
  bool v2_ = false;
  bool implied_ = false;    // v2 reply producer: room is implied by the request producer's credit
  bool lazy_tail_ = false;  // device side: tail only by publish_tail()
  std::uint64_t pos_ = 0;
  std::uint64_t cached_head_ = 0;
  std::uint64_t arena_tail_ = 0;
  std::uint64_t claim_arena_start_ = 0;
  std::uint64_t mask_ = 0;
  std::uint32_t inline_cap_ = 0;
  std::uint32_t arena_bytes_ = 0;
};

class ring_consumer {
 public:
  ring_consumer() = default;  // implicitly __host__ __device__
  /// `lazy_head` (v2 request consumer on a device): head is published only by publish(), never
  /// when the ring looks empty or every head_batch messages (the producer counts credit from the
  /// replies; head is for observers).
  RINGFLOW_HD explicit ring_consumer(ring_region r, bool lazy_head = false) : r_(r), lazy_(lazy_head) {
    const ring_config& c = r_.config();
    mask_ = c.capacity - 1;
    batch_ = c.effective_head_batch();
    v2_ = c.is_v2();
    slot_units_ = c.slot_size / 16;
    inline_cap_ = c.inline_capacity();
    // Relaxed: only this side writes head; a previous consumer's last publish() was ordered
    // before us by the backend (thread join / kernel completion).
    pos_ = load_relaxed(r_.shared()->head);
    published_ = pos_;
  }

  RINGFLOW_HD bool valid() const { return r_.base() != nullptr; }
  RINGFLOW_HD ring_region region() const { return r_; }
  RINGFLOW_HD std::uint64_t position() const { return pos_; }

  /// v2: where try_peek() decodes a slot (64-byte aligned, ll::image_bytes(inline capacity) bytes;
  /// false when too small or misaligned). Without one, a v2 consumer sees nothing.
  RINGFLOW_HD bool set_image_buffer(byte* buf, std::uint32_t bytes) {
    image_ = bytes >= ll::image_bytes(inline_cap_) && ll::header_aligned(buf) ? buf : nullptr;
    return image_ != nullptr;
  }

  /// The next message, or nullptr when none is ready. Publishes head when the ring is empty.
  /// v2: the message decoded into the image buffer (the consumer's own memory).
  RINGFLOW_HD const slot_header* try_peek() {
    if (v2_) {
      if (!image_ || !ll::read_slot(r_.units(pos_), slot_units_, pos_ + 1, inline_cap_, image_)) {
        if (!lazy_) publish();
        return nullptr;
      }
      const auto* h = reinterpret_cast<const slot_header*>(image_);
      if (h->flags & slot_flags::arena) ll_acquire_fence();  // pairs with the producer's fence before the units
      return h;
    }
    slot_header* h = r_.slot(pos_);
    // Acquire (on a hit): pairs with the producer's release store of seq; header and payload are
    // visible.
    if (!poll_acquire(h->seq, pos_ + 1)) {
      publish();
      return nullptr;
    }
    return h;
  }

  /// v2 batches (a warp's lanes, persistent.hpp): the message `ahead` positions past the current
  /// one decoded into `image` (the lane's own: ll::image_bytes(inline capacity), 64-byte aligned),
  /// or nullptr when it is not (completely) there. Consumes nothing; const, so lanes may call it
  /// at once. release_bulk() consumes a batch's ready prefix.
  RINGFLOW_HD const slot_header* peek_ahead(std::uint32_t ahead, byte* image) const {
    if (!v2_ || ahead > mask_) return nullptr;
    const std::uint64_t p = pos_ + ahead;
    if (!ll::read_slot(r_.units(p), slot_units_, p + 1, inline_cap_, image)) return nullptr;
    const auto* h = reinterpret_cast<const slot_header*>(image);
    if (h->flags & slot_flags::arena) ll_acquire_fence();  // pairs with the producer's fence before the units
    return h;
  }
  /// A cheap look: true when the next message seems to be there (v1: its seq word; v2: the flag
  /// of its first unit). One 16-byte read at most; try_peek() still decides.
  RINGFLOW_HD bool probe() const {
    if (v2_) {
      std::uint64_t d = 0, f = 0;
      ll_load(r_.units(pos_), d, f);
      return f == pos_ + 1;
    }
    return load_relaxed(r_.slot(pos_)->seq) == pos_ + 1;
  }

  /// Counts consecutive ready messages starting at the current position, up to max.
  RINGFLOW_HD std::uint32_t peek_bulk(std::uint32_t max) {
    if (v2_) return 0;  // v1 only: a v2 slot is read through its decoded image (try_peek)
    std::uint32_t n = 0;
    // Acquire on each seq, as in try_peek().
    while (n < max && poll_acquire(r_.slot(pos_ + n)->seq, pos_ + n + 1)) ++n;
    if (n == 0) publish();
    return n;
  }
  /// The i-th ready message after peek_bulk() (i < its result).
  RINGFLOW_HD const slot_header* at(std::uint32_t i) const { return r_.slot(pos_ + i); }
  RINGFLOW_HD const byte* payload(const slot_header* h) const { return r_.payload(h); }
  RINGFLOW_HD fb::bytes_view payload_view(const slot_header* h) const { return {r_.payload(h), h->payload_len}; }

  /// Consumes the peeked message (its slot and arena bytes may be reused once head is published).
  RINGFLOW_HD void release() { release_bulk(1); }
  RINGFLOW_HD void release_bulk(std::uint32_t n) {
    pos_ += n;
    if (!lazy_ && pos_ - published_ >= batch_) publish();
  }

  /// Publishes head now (batched otherwise). Call when idle or before handing the ring over.
  RINGFLOW_HD void publish() {
    if (published_ == pos_) return;
    // Release: our reads of all slots below pos_ happen-before the producer (acquire of head)
    // reuses them.
    store_release(r_.shared()->head, pos_);
    published_ = pos_;
  }

  /// Copies the next message out; `len` receives the payload size. ring_status::oversize (and
  /// nothing consumed) if it does not fit `cap`.
  RINGFLOW_HD ring_status try_pop(slot_header& header, void* buf, std::uint32_t cap, std::uint32_t& len) {
    const slot_header* h = try_peek();
    if (!h) return ring_status::empty;
    if (h->payload_len > cap) return ring_status::oversize;
    header = *h;
    const byte* src = r_.payload(h);
    auto* dst = static_cast<byte*>(buf);
    for (std::uint32_t i = 0; i < h->payload_len; ++i) dst[i] = src[i];
    len = h->payload_len;
    release();
    return ring_status::ok;
  }

 private:
  ring_region r_{};
  byte* image_ = nullptr;  // v2: the decoded slot
  bool lazy_ = false;
  bool v2_ = false;
  std::uint64_t pos_ = 0;
  std::uint64_t published_ = 0;
  std::uint64_t mask_ = 0;
  std::uint32_t batch_ = 1;
  std::uint32_t slot_units_ = 0;
  std::uint32_t inline_cap_ = 0;
};

/// Read-only observation from any thread (metrics, watchdog). Values may lag by head_batch.
class ring_observer {
 public:
  RINGFLOW_HD explicit ring_observer(ring_region r) : r_(r) {}
  // Relaxed loads: statistics; the watchdog tolerates staleness of one batch.
  RINGFLOW_HD std::uint64_t head() const { return load_relaxed(r_.shared()->head); }
  RINGFLOW_HD std::uint64_t tail() const { return load_relaxed(r_.shared()->tail); }
  RINGFLOW_HD std::uint64_t depth() const {
    const std::uint64_t t = tail(), h = head();
    const std::uint64_t d = t > h ? t - h : 0;
    const std::uint64_t cap = r_.config().capacity;
    return d > cap ? cap : d;  // a corrupt index (an untrusted peer) cannot report more than the ring holds
  }
  RINGFLOW_HD std::uint64_t full_events() const { return load_relaxed(r_.shared()->full_events); }

 private:
  ring_region r_;
};

}  // namespace ringflow
