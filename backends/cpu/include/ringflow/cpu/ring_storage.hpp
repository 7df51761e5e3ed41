// ringflow/cpu/ring_storage.hpp — RAII host memory for one ring region (CPU backend placement).
//
// Contract: allocates ring_layout{cfg}.bytes() 128-byte-aligned bytes, formats them as an empty
// ring (ring_region::init) and owns the producer's private arena bookkeeping. Throws
// std::invalid_argument naming the bad field when the configuration is invalid.
// Thread-safety: immutable after construction; the region is shared by one producer and one
// consumer as ring.hpp describes.
#pragma once

#include <cstdint>
#include <memory>
#include <new>

#include "ringflow/ring.hpp"

namespace ringflow::cpu {

class ring_storage {
 public:
  explicit ring_storage(const ring_config& cfg);
  /// A ring in memory someone else owns (a shared-memory segment): `memory` holds
  /// ring_layout{cfg}.bytes(), 128-byte aligned, and outlives this object. `format`: format it as
  /// an empty ring; otherwise attach to the ring already formatted there — throws
  /// std::invalid_argument unless its magic and config are exactly `cfg`. Either way the region's
  /// geometry is pinned to `cfg` (ring_region(base, cfg)); the producer bookkeeping is ours.
  ring_storage(const ring_config& cfg, void* memory, bool format);

  /// Formats the ring again as empty and clears the producer bookkeeping. Only while neither
  /// side uses it (between incarnations).
  void reset();
  /// True when the memory is someone else's (the external constructor).
  bool external() const noexcept { return !memory_; }

  ring_region region() const noexcept { return region_; }
  /// Producer-private arena bookkeeping (nullptr when the ring has no arena).
  std::uint64_t* producer_scratch() const noexcept { return scratch_.get(); }
  const ring_config& config() const noexcept { return region_.config(); }

  /// Throws std::invalid_argument with a message naming the offending field.
  static void validate(const ring_config& cfg);

 private:
  // Page-aligned anonymous memory, populated at once (MAP_POPULATE): one system call instead of a
  // page fault per 4 KiB on first touch — on small VMs the faults made a new incarnation's rings
  // cost ~1 ms each, which is on the fault ladder's recovery path.
  struct mapping_delete {
    std::size_t bytes;
    void operator()(byte* p) const noexcept;
  };
  std::unique_ptr<byte[], mapping_delete> memory_;
  std::unique_ptr<std::uint64_t[]> scratch_;
  ring_region region_;
};

}  // namespace ringflow::cpu
