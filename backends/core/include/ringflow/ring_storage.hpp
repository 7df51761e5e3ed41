// ringflow/ring_storage.hpp — the memory a ring lives in, and where a ring pair is placed (backends/core).
//
// Contract
//   * ring_storage: one ring region. Its own (the default constructor form) allocates ring_layout{cfg}.bytes()
//   128-byte-aligned bytes, formats them as an empty
// ring (ring_region::init) and owns the producer's private arena bookkeeping. Throws
// std::invalid_argument naming the bad field when the configuration is invalid. Or memory someone
//     else owns (a kernel host's shared segment, a GPU's pinned pool): formatted there, or attached
//     to as already formatted. Every backend validates ring configs with ring_storage::validate.
//   * ring_placement: where an incarnation's ring pair (request + response ring), its control block
//     and its wake bell live when they are not in its own memory — what a backend asks of the
//     backend it runs on (a kernel host places them in its segment; the sim decorator passes it on).
// Thread-safety: immutable after construction; the region is shared by one producer and one
// consumer as ring.hpp describes.
#pragma once

#include <cstdint>
#include <memory>
#include <new>

#include "ringflow/control_block.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/ring.hpp"

namespace ringflow {

class ring_storage {
 public:
  explicit ring_storage(const ring_config& cfg);
  /// A ring in memory someone else owns (a shared-memory segment): `memory` holds
  /// ring_layout{cfg}.bytes(), 128-byte aligned, and outlives this object. `format`: format it as
  /// an empty ring; otherwise attach to the ring already formatted there — throws
  /// std::invalid_argument unless its magic and config are exactly `cfg`. Either way the region's
  /// geometry is pinned to `cfg` (ring_region(base, cfg)); the producer bookkeeping is ours.
  ring_storage(const ring_config& cfg, void* memory, bool format);
  /// The placement a backend asks for: its own memory when `memory` is null, else `memory`
  /// (attached to when `attach`, formatted otherwise).
  [[nodiscard]] static ring_storage placed(const ring_config& cfg, void* memory, bool attach) {
    return memory ? ring_storage(cfg, memory, !attach) : ring_storage(cfg);
  }
  ring_storage(ring_storage&&) noexcept = default;
  ring_storage& operator=(ring_storage&&) noexcept = default;

  /// Formats the ring again as empty and clears the producer bookkeeping. Only while neither
  /// side uses it (between incarnations).
  void reset();
  /// True when the memory is someone else's (the external constructor).
  [[nodiscard]] bool external() const noexcept { return !memory_; }

  [[nodiscard]] ring_region region() const noexcept { return region_; }
  /// Producer-private arena bookkeeping (nullptr when the ring has no arena).
  [[nodiscard]] std::uint64_t* producer_scratch() const noexcept { return scratch_.get(); }
  [[nodiscard]] const ring_config& config() const noexcept { return region_.config(); }

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

/// Where an incarnation's own rings, control block and wake bell live when they are not in its
/// own memory: a kernel host places them in the shared segment its service created (the rings
/// already formatted there: `attach`). Empty (request_memory null): the incarnation's own.
struct ring_placement {
  void* request_memory = nullptr;
  void* reply_memory = nullptr;
  bool attach = true;
  control_block* control = nullptr;
  doorbell* kernel_bell = nullptr;  // process-shared; rung by the requests' producer
  [[nodiscard]] bool empty() const noexcept { return request_memory == nullptr; }
};

}  // namespace ringflow
