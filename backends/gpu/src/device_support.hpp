// What the GPU device logic builds on (internal; included by gpu_device.cpp only, once per
// backend): the per-process claim of a device ordinal, the first-fit allocator of the pinned ring
// pool, the host's records of a ring table entry (its binding, and what the monitor watches), and
// the incarnation a device hands out for one entry.
// Thread-safety: ordinal_claim is safe from any thread (a global mutex); pool_allocator, binding and
// watch are guarded by the device's own lock (gpu_device.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "gpu_api.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/ring.hpp"

namespace ringflow::gpu::RINGFLOW_GPU_NS {

/// The devices this backend's driver reports (gpu_probe.cpp).
gpu_probe probe() noexcept;

// One open device per ordinal and process: a second one's allocations and frees (cudaFree can
// synchronize the whole device) would wait for the first one's persistent kernel forever. Inline
// variables (one per backend namespace and program, whichever files include this header).
inline std::mutex g_open_mu;
inline std::vector<int> g_open_ordinals;  // (g_open_mu)
namespace {

constexpr std::uint64_t round128(std::uint64_t n) { return (n + 127) / 128 * 128; }

struct ordinal_claim {
  int ordinal = -1;
  explicit ordinal_claim(int o) {
    std::lock_guard lock(g_open_mu);
    if (std::find(g_open_ordinals.begin(), g_open_ordinals.end(), o) != g_open_ordinals.end())
      throw std::logic_error(
          std::string(api::backend) + ":" + std::to_string(o) +
          " is already open in this process: share its gpu_device (one persistent kernel per device)");
    g_open_ordinals.push_back(o);
    ordinal = o;
  }
  ~ordinal_claim() {
    if (ordinal < 0) return;  // kept (a hung kernel): the device stays claimed for good
    std::lock_guard lock(g_open_mu);
    g_open_ordinals.erase(std::find(g_open_ordinals.begin(), g_open_ordinals.end(), ordinal));
  }
  void keep() noexcept { ordinal = -1; }
  ordinal_claim(const ordinal_claim&) = delete;
  ordinal_claim& operator=(const ordinal_claim&) = delete;
};

/// First-fit allocator of 128-byte-aligned ranges of the pinned ring pool, coalescing on release.
class pool_allocator {
 public:
  explicit pool_allocator(std::uint64_t bytes) {
    if (bytes) free_[0] = bytes;
  }
  std::optional<std::uint64_t> allocate(std::uint64_t n) {
    n = round128(n);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < n) continue;
      const std::uint64_t at = it->first, rest = it->second - n;
      free_.erase(it);
      if (rest) free_[at + n] = rest;
      return at;
    }
    return std::nullopt;
  }
  void release(std::uint64_t at, std::uint64_t n) {
    n = round128(n);
    auto it = free_.emplace(at, n).first;
    if (auto next = std::next(it); next != free_.end() && at + n == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }

 private:
  std::map<std::uint64_t, std::uint64_t> free_;  // offset -> bytes
};

/// One bound ring table entry, as the host keeps it.
struct binding {
  std::uint32_t kernel_index = 0;
  gpu_ring_options rings{};
  std::uint64_t request_offset = 0, reply_offset = 0;  // in the ring pool (pool bindings)
  std::uint64_t request_bytes = 0, reply_bytes = 0;
  // Host addresses of the rings and the control block: in the pool and the pinned control array,
  // or (external: factory_at) in a registered region the caller owns.
  std::uint8_t* request_host = nullptr;
  std::uint8_t* reply_host = nullptr;
  control_block* control_host = nullptr;
  bool external = false;
  doorbell* bell = nullptr;
  std::uint64_t serial = 0;  // which create() bound it
  bool in_use = false;
  bool leaked = false;  // its kernel hung: never reused
};

/// What the monitor watches per ring table entry (a snapshot, refreshed when bindings change).
struct watch {
  bool bound = false;
  std::uint64_t serial = 0;  // the binding (a new incarnation on a reused entry is a new one)
  ring_region requests, replies;
  doorbell* bell = nullptr;
  control_block* control = nullptr;
  std::uint64_t last_head = ~0ull, last_tail = ~0ull;
};

/// A ring actor's incarnation on the device: one ring table entry (defined in gpu_device.cpp).
class device_impl;

class gpu_incarnation final : public incarnation {
 public:
  gpu_incarnation(std::shared_ptr<device_impl> dev, std::uint32_t entry, ring_region rq, ring_region rp);
  ~gpu_incarnation() override;

  const char* backend() const noexcept override { return api::backend; }
  const char* kernel_name() const noexcept override;
  type_id request_type() const noexcept override;
  type_id reply_type() const noexcept override;
  std::uint32_t state_bytes() const noexcept override;
  ring_region requests() noexcept override { return requests_; }
  std::uint64_t* request_producer_scratch() noexcept override { return scratch_.get(); }
  ring_region replies() noexcept override { return replies_; }
  void notify() noexcept override;
  bool finished() noexcept override { return control().finished(); }
  control_block& control() noexcept override;
  bool stop(std::chrono::milliseconds timeout) override;
  void abandon() noexcept override;
  bool restart() override;

 private:
  std::shared_ptr<device_impl> dev_;
  std::uint32_t entry_;
  ring_region requests_, replies_;
  std::unique_ptr<std::uint64_t[]> scratch_;
  bool abandoned_ = false;
};

}  // namespace
}  // namespace ringflow::gpu::RINGFLOW_GPU_NS
