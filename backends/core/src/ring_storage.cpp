#include "ringflow/ring_storage.hpp"

#include <sys/mman.h>

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

namespace ringflow {

void ring_storage::validate(const ring_config& cfg) {
  auto bad = [](const std::string& what) { throw std::invalid_argument("ring_config: " + what); };
  if (cfg.capacity < 2 || (cfg.capacity & (cfg.capacity - 1)) != 0)
    bad("capacity " + std::to_string(cfg.capacity) + " must be a power of two >= 2");
  if (cfg.slot_size < 128 || cfg.slot_size % 64 != 0)
    bad("slot_size " + std::to_string(cfg.slot_size) + " must be a multiple of 64 and >= 128");
  if (cfg.arena_bytes % 64 != 0) bad("arena_bytes " + std::to_string(cfg.arena_bytes) + " must be a multiple of 64");
  if (cfg.head_batch > cfg.capacity / 2)
    bad("head_batch " + std::to_string(cfg.head_batch) + " must be <= capacity / 2");
  if (cfg.protocol != ring_protocol::v1 && cfg.protocol != ring_protocol::v2)
    bad("protocol " + std::to_string(cfg.protocol) + " must be 1 or 2");
  if (cfg.is_v2() && cfg.slot_size < 256)
    bad("protocol 2 needs slot_size >= 256, not " + std::to_string(cfg.slot_size));
}

ring_storage::ring_storage(const ring_config& cfg) : memory_(nullptr, mapping_delete{0}) {
  validate(cfg);
  const ring_layout layout{cfg};
  const std::size_t bytes = layout.bytes();
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  memory_ = std::unique_ptr<byte[], mapping_delete>(static_cast<byte*>(p), mapping_delete{bytes});
  if (const auto words = layout.producer_scratch_words()) {
    scratch_ = std::make_unique<std::uint64_t[]>(words);  // value-initialised (zero)
  }
  region_ = ring_region::init(memory_.get(), cfg);
}

ring_storage::ring_storage(const ring_config& cfg, void* memory, bool format) : memory_(nullptr, mapping_delete{0}) {
  validate(cfg);
  if (!memory || reinterpret_cast<std::uintptr_t>(memory) % 128 != 0)
    throw std::invalid_argument("ring_storage: external memory must be non-null and 128-byte aligned");
  const ring_layout layout{cfg};
  if (const auto words = layout.producer_scratch_words()) scratch_ = std::make_unique<std::uint64_t[]>(words);
  if (format) {
    region_ = ring_region::init(memory, cfg);
    return;
  }
  region_ = ring_region(memory, cfg);
  if (!region_.config_intact())
    throw std::invalid_argument(
        "ring_storage: the memory does not hold a ring of this configuration (bad magic or config)");
}

void ring_storage::reset() {
  const ring_config cfg = region_.config();
  region_ = ring_region::init(region_.base(), cfg);
  if (const auto words = ring_layout{cfg}.producer_scratch_words())
    for (std::uint64_t i = 0; i < words; ++i) scratch_[i] = 0;
}

void ring_storage::mapping_delete::operator()(byte* p) const noexcept { ::munmap(p, bytes); }

}  // namespace ringflow
