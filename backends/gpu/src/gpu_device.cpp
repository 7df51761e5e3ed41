// A GPU device hosting many ring actors in one persistent kernel: see ringflow/gpu/gpu_device.hpp.
// Compiled once per backend (CUDA, HIP, and the host emulator of CI's tests) with gpu_api.hpp
// translating the runtime calls; the logic below exists once.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "device_support.hpp"
#include "gpu_api.hpp"
#include "ringflow/doorbell.hpp"
#include "ringflow/ring_storage.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::gpu {
kernel_table_info RINGFLOW_GPU_BUILTIN_TABLE();
}

namespace ringflow::gpu::RINGFLOW_GPU_NS {
namespace {

using api::describe_error;

class device_impl final : public gpu_device, public std::enable_shared_from_this<device_impl> {
 public:
  device_impl(gpu_device_options opts, kernel_table_info table, gpu_info info)
      : claim_(opts.ordinal),
        opts_(std::move(opts)),
        table_(table),
        info_(std::move(info)),
        bindings_(opts_.max_rings),
        pool_(opts_.ring_pool_bytes) {
    if (opts_.id.empty()) opts_.id = std::string(api::backend) + ":" + std::to_string(opts_.ordinal);
    if (opts_.max_rings == 0) throw std::invalid_argument("gpu device: max_rings must be > 0");
    if (opts_.staging_bytes % 16) throw std::invalid_argument("gpu device: staging_bytes must be a multiple of 16");
    if (opts_.ring_protocol == 0) {
      const char* env = std::getenv("RINGFLOW_GPU_RING_PROTOCOL");
      const std::string v = env ? env : "";
      if (v.empty() || v == "1") opts_.ring_protocol = ring_protocol::v1;
      else if (v == "2") opts_.ring_protocol = ring_protocol::v2;
      else throw std::invalid_argument("RINGFLOW_GPU_RING_PROTOCOL='" + v + "': use 1 or 2");
    }
    if (opts_.ring_protocol != ring_protocol::v1 && opts_.ring_protocol != ring_protocol::v2)
      throw std::invalid_argument("gpu device: ring_protocol must be 0, 1 or 2");
    if (opts_.batch_lanes > max_batch_lanes)
      throw std::invalid_argument("gpu device: batch_lanes must be at most " + std::to_string(max_batch_lanes));
    if (opts_.ring_protocol == ring_protocol::v2 && opts_.staging_bytes % 64)
      throw std::invalid_argument("gpu device: ring protocol 2 needs staging_bytes to be a multiple of 64");
    blocks_ = opts_.blocks ? opts_.blocks : static_cast<std::uint32_t>(std::max(1, info_.multiprocessors));
    // At most one block per multiprocessor (every block resident at once); capped by the entries.
    blocks_ = std::min<std::uint32_t>(blocks_, static_cast<std::uint32_t>(std::max(1, info_.multiprocessors)));
    const std::uint32_t warps = std::max<std::uint32_t>(1, opts_.warps_per_block);
    // The device's own warp size (HIP: 64 on CDNA, 32 on RDNA): one worker per warp, and the
    // kernel gets the count (persistent_args::workers) so it never runs more than staging covers.
    threads_ = warps * static_cast<std::uint32_t>(info_.warp_size > 0 ? info_.warp_size : 32);
    workers_ = blocks_ * warps;
    allocate();
    register_regions();  // (throws after releasing what allocate() took)
    try {
      active_words_ = (opts_.max_rings + 63) / 64;
      active_ = std::make_unique<std::atomic<std::uint64_t>[]>(active_words_);
      for (std::uint32_t i = opts_.max_rings; i > 0; --i) free_entries_.push_back(i - 1);
      monitor_ = std::thread([this] {
        name_this_thread("rf-gpu-mon");
        monitor_loop();
      });  // (no kernel yet: it only waits)
      std::lock_guard lock(mu_);
      std::string why;
      if (!launch_locked(why)) throw gpu_unavailable(opts_.id + ": the persistent kernel did not launch: " + why);
      // Nothing may throw after a successful launch.
    } catch (...) {
      quit_.store(true, std::memory_order_release);
      monitor_bell_.ring();
      if (monitor_.joinable()) monitor_.join();
      release_memory();
      throw;
    }
  }

  ~device_impl() override {
    quit_.store(true, std::memory_order_release);
    monitor_bell_.ring();
    if (monitor_.joinable()) monitor_.join();
    if (!stop_kernel()) {  // hung: the pools stay allocated, the device stays claimed (the contract)
      claim_.keep();
      return;
    }
    std::lock_guard lock(mu_);
    release_memory();
  }

  // ---- ringflow::device
  const std::string& id() const noexcept override { return opts_.id; }
  const char* backend() const noexcept override { return api::backend; }
  reinit_outcome reinitialize(std::string& detail) override {
    std::lock_guard lock(mu_);
    if (poisoned_) {
      detail = "the " + std::string(api::backend) + " context is poisoned by a sticky error (" + last_error_ +
               "); only a new process clears it";
      return reinit_outcome::unsupported;
    }
    if (kernel_running_) return reinit_outcome::ok;
    if (closed_) {
      detail = opts_.id + ": its kernel was stopped (shutdown)";
      return reinit_outcome::failed;
    }
    return launch_locked(detail) ? reinit_outcome::ok : reinit_outcome::failed;
  }

  // ---- gpu_device
  incarnation_factory factory(const std::string& kernel, const gpu_ring_options& asked) override {
    const gpu_ring_options rings = ring_geometry(asked, opts_.ring_protocol);
    const std::uint32_t k = kernel_index(table_, kernel);
    if (k >= table_.size) {
      std::string names;
      for (const std::string& n : kernels()) names += (names.empty() ? "" : ", ") + n;
      throw std::invalid_argument("kernel '" + kernel + "' is not in the " + api::backend + " kernel table (" + names +
                                  "); add it with RINGFLOW_CUDA_KERNELS in one of the program's .cu files");
    }
    ring_storage::validate(rings.requests);
    ring_storage::validate(rings.replies);
    if (rings.requests.is_v2() != rings.replies.is_v2() ||
        (rings.requests.is_v2() && rings.requests.capacity != rings.replies.capacity))
      throw std::invalid_argument("gpu device: protocol v2 rings must pair up (both v2, equal capacities)");
    if (rings.requests.is_v2() && opts_.staging_bytes < ll::image_bytes(std::max(rings.requests.inline_capacity(),
                                                                                 rings.replies.inline_capacity())))
      throw std::invalid_argument("gpu device: protocol v2 rings need staging_bytes of at least one decoded slot");
    if (rings.replies.arena_bytes && rings.replies.capacity > opts_.max_reply_capacity)
      throw std::invalid_argument("gpu device: a response ring with an arena may have at most max_reply_capacity (" +
                                  std::to_string(opts_.max_reply_capacity) + ") slots");
    const std::uint64_t need =
        round128(ring_layout{rings.requests}.bytes()) + round128(ring_layout{rings.replies}.bytes());
    if (need > opts_.ring_pool_bytes)
      throw std::invalid_argument("gpu device: one ring pair needs " + std::to_string(need) +
                                  " bytes, more than the whole ring pool (" + std::to_string(opts_.ring_pool_bytes) +
                                  ")");
    std::weak_ptr<device_impl> self = weak_from_this();
    return [self, k, rings](doorbell* bell) -> std::unique_ptr<incarnation> {
      auto dev = self.lock();
      if (!dev) throw std::runtime_error("gpu device is gone");
      return dev->create(k, rings, bell);
    };
  }
  incarnation_factory factory_at(const std::string& kernel, const gpu_external_rings& ext) override {
    const std::uint32_t k = kernel_index(table_, kernel);
    if (k >= table_.size)
      throw std::invalid_argument("kernel '" + kernel + "' is not in the " + api::backend + " kernel table");
    ring_storage::validate(ext.requests);
    ring_storage::validate(ext.replies);
    if (ext.replies.arena_bytes && ext.replies.capacity > opts_.max_reply_capacity)
      throw std::invalid_argument("gpu device: a response ring with an arena may have at most max_reply_capacity (" +
                                  std::to_string(opts_.max_reply_capacity) + ") slots");
    if (ext.max_batch == 0) throw std::invalid_argument("gpu device: max_batch must be > 0");
    const auto inside = [&](const void* p, std::uint64_t n) { return registered_address(p, n) != nullptr; };
    if (!inside(ext.request_memory, ring_layout{ext.requests}.bytes()) ||
        !inside(ext.reply_memory, ring_layout{ext.replies}.bytes()) || !inside(ext.control, sizeof(control_block)))
      throw std::invalid_argument(
          "gpu device: external rings and their control block must lie in a registered "
          "host region (gpu_device_options::registered)");
    std::weak_ptr<device_impl> self = weak_from_this();
    return [self, k, ext](doorbell* bell) -> std::unique_ptr<incarnation> {
      auto dev = self.lock();
      if (!dev) throw std::runtime_error("gpu device is gone");
      return dev->create_external(k, ext, bell);
    };
  }
  const gpu_info& info() const noexcept override { return info_; }
  std::vector<std::string> kernels() const override {
    std::vector<std::string> v;
    for (std::uint32_t i = 0; i < table_.size; ++i) v.emplace_back(table_.name(i));
    return v;
  }
  control_block& kernel_control() noexcept override { return *kernel_control_; }
  std::uint32_t workers() const noexcept override { return workers_; }
  std::size_t bound_rings() const override {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(
        std::count_if(bindings_.begin(), bindings_.end(), [](const binding& b) { return b.in_use; }));
  }
  std::uint64_t kernel_launches() const noexcept override { return launches_.load(std::memory_order_relaxed); }
  bool poisoned() const noexcept override { return poisoned_flag_.load(std::memory_order_acquire); }
  bool kernel_hung() const noexcept override { return hung_.load(std::memory_order_acquire); }
  std::string last_error() const override {
    std::lock_guard lock(mu_);
    return last_error_;
  }

  // ---- for gpu_incarnation
  const kernel_table_info& table() const noexcept { return table_; }
  /// The state of the table's kernel `k` (its incarnations keep it in the entry's state room).
  std::uint32_t state_bytes_of(std::uint32_t k) const noexcept {
    return table_.state_bytes ? table_.state_bytes(k) : 0;
  }
  std::uint32_t kernel_of(std::uint32_t entry) const noexcept { return bindings_[entry].kernel_index; }
  control_block& ring_control(std::uint32_t entry) noexcept { return *bindings_[entry].control_host; }
  /// notify() of entry's incarnation: marks the ring active (the monitor sweeps only active rings,
  /// plus all of them once per millisecond) and wakes the monitor if it parked.
  void wake_monitor(std::uint32_t entry) noexcept {
    // Protocol v2: the scout's group word (the device reads it; nothing else orders by it: each
    // request's units validate themselves).
    if (summary_)
      std::atomic_ref<std::uint64_t>(summary_[1 + (entry >> group_shift_)]).fetch_add(1, std::memory_order_release);
    active_[entry / 64].fetch_or(std::uint64_t{1} << (entry % 64), std::memory_order_release);
    monitor_bell_.ring();
  }

  // A new binding needs a device that is open, not poisoned, with its kernel running (launched
  // now if it is down) and a free ring table entry; throws std::runtime_error otherwise (mu_ held).
  void ready_for_binding_locked() {
    if (closed_) throw std::runtime_error(opts_.id + ": its kernel was stopped (shutdown)");
    if (poisoned_) throw std::runtime_error(opts_.id + " is poisoned by a sticky error (" + last_error_ + ")");
    std::string why;
    if (!kernel_running_ && !launch_locked(why))
      throw std::runtime_error(opts_.id + ": cannot launch its kernel: " + why);
    if (free_entries_.empty()) reclaim_leaked_locked();
    if (free_entries_.empty())
      throw std::runtime_error(opts_.id + ": ring table full (" + std::to_string(opts_.max_rings) + " rings)");
  }

  std::unique_ptr<incarnation> create(std::uint32_t k, const gpu_ring_options& rings, doorbell* bell) {
    std::lock_guard lock(mu_);
    ready_for_binding_locked();
    binding b;
    b.kernel_index = k;
    b.rings = rings;
    b.bell = bell;
    b.serial = ++serial_;
    b.request_bytes = ring_layout{rings.requests}.bytes();
    b.reply_bytes = ring_layout{rings.replies}.bytes();
    const auto rq = pool_.allocate(b.request_bytes);
    const auto rp = rq ? pool_.allocate(b.reply_bytes) : std::nullopt;
    if (!rq || !rp) {
      if (rq) pool_.release(*rq, b.request_bytes);
      throw std::runtime_error(opts_.id + ": pinned ring pool exhausted (" + std::to_string(opts_.ring_pool_bytes) +
                               " bytes; gpu_device_options::ring_pool_bytes)");
    }
    b.request_offset = *rq;
    b.reply_offset = *rp;
    b.request_host = ring_pool_ + b.request_offset;
    b.reply_host = ring_pool_ + b.reply_offset;
    b.in_use = true;
    const std::uint32_t entry = free_entries_.back();
    free_entries_.pop_back();
    b.control_host = &ring_controls_[entry];
    bindings_[entry] = b;
    const ring_region req = ring_region::init(b.request_host, rings.requests);
    const ring_region rep = ring_region::init(b.reply_host, rings.replies);
    bind_locked(entry);
    auto inc = std::make_unique<gpu_incarnation>(shared_from_this(), entry, req, rep);
    publish_watch_locked();
    return inc;
  }

  /// An incarnation on rings the caller owns (factory_at): no pool memory, the rings as they are.
  std::unique_ptr<incarnation> create_external(std::uint32_t k, const gpu_external_rings& ext, doorbell* bell) {
    std::lock_guard lock(mu_);
    ready_for_binding_locked();
    const ring_region req(ext.request_memory, ext.requests), rep(ext.reply_memory, ext.replies);
    if (!req.valid() || !rep.valid())
      throw std::invalid_argument("gpu device: external rings are not formatted as their configs say");
    binding b;
    b.kernel_index = k;
    b.rings.requests = ext.requests;
    b.rings.replies = ext.replies;
    b.rings.max_batch = ext.max_batch;
    b.bell = bell;
    b.serial = ++serial_;
    b.request_host = static_cast<std::uint8_t*>(ext.request_memory);
    b.reply_host = static_cast<std::uint8_t*>(ext.reply_memory);
    b.control_host = ext.control;
    b.external = true;
    b.in_use = true;
    const std::uint32_t entry = free_entries_.back();
    free_entries_.pop_back();
    bindings_[entry] = b;
    bind_locked(entry);
    auto inc = std::make_unique<gpu_incarnation>(shared_from_this(), entry, req, rep);
    publish_watch_locked();
    return inc;
  }

  /// Rebinds a finished entry (its rings emptied) as a new incarnation; relaunches the kernel
  /// first when it is down. False when the device cannot (poisoned, launch failed).
  bool rebind(std::uint32_t entry) {
    std::lock_guard lock(mu_);
    if (closed_ || poisoned_ || !ring_control(entry).finished()) return false;
    std::string why;
    if (!kernel_running_ && !launch_locked(why)) return false;
    const binding& b = bindings_[entry];
    discard_rings(ring_region(b.request_host, b.rings.requests), ring_region(b.reply_host, b.rings.replies));
    bind_locked(entry);
    publish_watch_locked();
    return true;
  }

  bool stop_ring(std::uint32_t entry, std::chrono::milliseconds timeout) {
    control_block& cb = ring_control(entry);
    set_ctl_bits(entry, persistent_ctl::stop);
    if (!wait_finished(cb, std::chrono::steady_clock::now() + timeout)) {
      // Abandoned: a live worker ends it within a poll period (reply_stuck); one that does not
      // within the stop timeout belongs to a hung kernel — then finished() stays false, and the
      // incarnation's rings are never reused (release_ring).
      set_ctl_bits(entry, persistent_ctl::abandon);
      wait_finished(cb, std::chrono::steady_clock::now() + opts_.stop_timeout);
      return false;
    }
    return cb.current_state() == kernel_state::stopped;
  }
  void abandon_ring(std::uint32_t entry) noexcept {
    set_ctl_bits(entry, persistent_ctl::stop | persistent_ctl::abandon);
  }

  void release_ring(std::uint32_t entry) noexcept {
    std::lock_guard lock(mu_);
    binding& b = bindings_[entry];
    if (kernel_running_ && !ring_control(entry).finished()) {
      b.leaked = true;  // a worker may still use these rings: reclaimed once it is done (monitor)
    } else {
      free_entry_locked(entry);
    }
    b.in_use = false;
    b.bell = nullptr;
    publish_watch_locked();
  }

 private:
  // The device address of host memory in the pinned allocation or a registered region.
  std::uint8_t* dev_address(void* host) const noexcept {
    auto* h = static_cast<std::uint8_t*>(host);
    if (h >= pinned_ && h < pinned_ + pinned_bytes_) return pinned_dev_ + (h - pinned_);
    return registered_address(host, 1);
  }
  // The device address of [p, p + n) when it lies inside one registered region, else nullptr.
  std::uint8_t* registered_address(const void* p, std::uint64_t n) const noexcept {
    const auto* h = static_cast<const std::uint8_t*>(p);
    for (const registration& r : registered_)
      if (h >= r.host && n <= r.bytes && h + n <= r.host + r.bytes) return r.dev + (h - r.host);
    return nullptr;
  }

  // gpu_device_options::registered: pinned and mapped before the kernel launches (registration
  // could wait for a running kernel). On failure, everything taken so far is released.
  void register_regions() {
    for (const gpu_device_options::host_region& r : opts_.registered) {
      std::string why;
      if (!r.base || !r.bytes) why = "an empty region";
      if (why.empty())
        if (const api::error e = api::host_register(r.base, r.bytes); e != api::success)
          why = "registration of " + std::to_string(r.bytes) + " bytes failed: " + describe_error(e);
      void* d = nullptr;
      if (why.empty()) {
        if (const api::error e = api::device_pointer(&d, r.base); e != api::success) {
          api::host_unregister(r.base);
          why = "no device address for a registered region: " + describe_error(e);
        }
      }
      if (!why.empty()) {
        release_memory();
        throw gpu_unavailable(opts_.id + ": host memory registration: " + why);
      }
      registered_.push_back({static_cast<std::uint8_t*>(r.base), static_cast<std::uint8_t*>(d), r.bytes});
    }
  }

  void allocate() {
    api::use_device(opts_.ordinal);
    const std::uint64_t table_bytes = round128(sizeof(persistent_ring) * opts_.max_rings);
    const std::uint64_t controls_bytes = round128(sizeof(control_block) * (opts_.max_rings + 1));
    // Protocol v2: the scout's summary words (pinned, host-written) and its marks (device memory).
    const bool scout = opts_.ring_protocol == ring_protocol::v2;
    group_shift_ = summary_group_shift(opts_.max_rings);
    const std::uint32_t summary_words_n = summary_words(opts_.max_rings, group_shift_);
    const std::uint64_t summary_bytes = scout ? round128(sizeof(std::uint64_t) * summary_words_n) : 0;
    const std::uint64_t pinned_bytes = table_bytes + controls_bytes + summary_bytes + round128(opts_.ring_pool_bytes);
    void* p = nullptr;
    if (const api::error e = api::host_alloc_mapped(&p, pinned_bytes); e != api::success)
      throw gpu_unavailable(opts_.id + ": pinned mapped allocation of " + std::to_string(pinned_bytes) +
                            " bytes failed: " + describe_error(e));
    pinned_ = static_cast<std::uint8_t*>(p);
    pinned_bytes_ = pinned_bytes;
    std::memset(pinned_, 0, table_bytes + controls_bytes + summary_bytes);
    void* d = nullptr;
    if (const api::error e = api::device_pointer(&d, p); e != api::success) {
      release_memory();
      throw gpu_unavailable(opts_.id + ": no device address for mapped memory: " + describe_error(e));
    }
    pinned_dev_ = static_cast<std::uint8_t*>(d);
    table_entries_ = reinterpret_cast<persistent_ring*>(pinned_);
    kernel_control_ = reinterpret_cast<control_block*>(pinned_ + table_bytes);
    ring_controls_ = kernel_control_ + 1;
    summary_ = scout ? reinterpret_cast<std::uint64_t*>(pinned_ + table_bytes + controls_bytes) : nullptr;
    ring_pool_ = pinned_ + table_bytes + controls_bytes + summary_bytes;

    const std::uint64_t endpoints = sizeof(persistent_endpoint) * opts_.max_rings;
    const std::uint64_t staging = static_cast<std::uint64_t>(workers_) * 2 * opts_.staging_bytes;
    const std::uint64_t scratch = sizeof(std::uint64_t) * opts_.max_rings * opts_.max_reply_capacity;
    marks_bytes_ = summary_bytes;
    // Stateful kernels: one state room per entry, as large as the table's largest state (64-byte
    // multiples; persistent.hpp "Kernel state"); none when no kernel of the table keeps state.
    std::uint32_t largest = 0;
    for (std::uint32_t k = 0; k < table_.size; ++k) largest = std::max(largest, state_bytes_of(k));
    state_stride_ = (largest + 63) / 64 * 64;
    const std::uint64_t states = static_cast<std::uint64_t>(state_stride_) * opts_.max_rings;
    const std::uint64_t device_bytes =
        round128(endpoints) + round128(staging) + round128(scratch) + round128(marks_bytes_) + states;
    if (const api::error e = api::device_alloc(&d, device_bytes); e != api::success) {
      release_memory();
      throw gpu_unavailable(opts_.id + ": device allocation of " + std::to_string(device_bytes) +
                            " bytes failed: " + describe_error(e));
    }
    device_mem_ = static_cast<std::uint8_t*>(d);
    endpoints_dev_ = reinterpret_cast<persistent_endpoint*>(device_mem_);
    staging_dev_ = device_mem_ + round128(endpoints);
    scratch_dev_ = reinterpret_cast<std::uint64_t*>(device_mem_ + round128(endpoints) + round128(staging));
    marks_dev_ = scout ? reinterpret_cast<std::uint64_t*>(device_mem_ + round128(endpoints) + round128(staging) +
                                                          round128(scratch))
                       : nullptr;
    states_dev_ =
        states ? device_mem_ + round128(endpoints) + round128(staging) + round128(scratch) + round128(marks_bytes_)
               : nullptr;
    api::stream s = nullptr;
    if (const api::error e = api::stream_create(s); e != api::success) {
      release_memory();
      throw gpu_unavailable(opts_.id + ": stream creation failed: " + describe_error(e));
    }
    stream_ = s;
  }

  void release_memory() noexcept {
    for (const registration& r : registered_) api::host_unregister(r.host);
    registered_.clear();
    if (stream_) api::stream_destroy(stream_);
    if (device_mem_) api::free_device(device_mem_);
    if (pinned_) api::free_host(pinned_);
    stream_ = nullptr;
    device_mem_ = nullptr;
    pinned_ = nullptr;
  }

  // Launches the persistent kernel (mu_ held, kernel not running). Every entry is unbound first
  // (ctl = 0): the rings of the previous kernel are faulted and wait for their own restart.
  bool launch_locked(std::string& why) {
    api::use_device(opts_.ordinal);
    api::last_error();  // a previous launch's non-sticky error must not fail this one
    for (std::uint32_t i = 0; i < opts_.max_rings; ++i) store_release(table_entries_[i].ctl, std::uint64_t{0});
    kernel_control_->reset(++kernel_epoch_);
    if (const api::error e =
            api::memset_async(endpoints_dev_, 0, sizeof(persistent_endpoint) * opts_.max_rings, stream_);
        e != api::success) {
      why = "clearing the workers' state failed: " + describe_error(e);
      note_error_locked(e, why);
      return false;
    }
    if (marks_dev_) {
      if (const api::error e = api::memset_async(marks_dev_, 0, marks_bytes_, stream_); e != api::success) {
        why = "clearing the scout's marks failed: " + describe_error(e);
        note_error_locked(e, why);
        return false;
      }
    }
    persistent_args a;
    a.rings = reinterpret_cast<persistent_ring*>(dev_address(table_entries_));
    a.endpoints = endpoints_dev_;
    a.kernel_control = reinterpret_cast<control_block*>(dev_address(kernel_control_));
    a.staging = opts_.staging_bytes ? staging_dev_ : nullptr;
    a.staging_bytes = opts_.staging_bytes;
    a.batch_lanes = opts_.batch_lanes;
    a.max_rings = opts_.max_rings;
    a.workers = workers_;
    a.poll_period = opts_.poll_period;
    a.backoff_max_ns = opts_.backoff_max_ns;
    a.unbound_backoff_max_ns = std::max(opts_.backoff_max_ns, opts_.unbound_backoff_max_ns);
    a.states = states_dev_;  // each bind init()s its entry's state: nothing to clear here
    a.state_stride = state_stride_;
    if (summary_) {
      a.summary = reinterpret_cast<std::uint64_t*>(dev_address(summary_));
      a.scout_marks = marks_dev_;
      a.group_shift = group_shift_;
    }
    if (const api::error e = table_.launch(blocks_, threads_, stream_, a); e != api::success) {
      why = "launch of " + std::to_string(blocks_) + "x" + std::to_string(threads_) + " failed: " + describe_error(e);
      note_error_locked(e, why);
      kernel_control_->fault(kernel_error::launch_failed, poisoned_ ? kernel_error_flags::sticky : 0u, why.c_str());
      return false;
    }
    kernel_running_ = true;
    launches_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // An error the table does not call sticky (cudaErrorUnknown, a code newer than this build) may
  // still have poisoned the context: a relaunch on a poisoned context fails or, worse, hangs. So the
  // context is asked once more — a small memset on the kernel's stream, then a sync (the stream is
  // idle: its kernel ended). Success: the error was transient, the kernel may be relaunched. Any
  // error: the context is unusable, and the fault is sticky (mu_ held).
  api::fault_kind follow_up_locked(api::fault_kind f, std::string& detail) {
    api::use_device(opts_.ordinal);
    api::last_error();  // a non-sticky error is cleared by reading it; a sticky one stays
    api::error probe = api::memset_async(endpoints_dev_, 0, sizeof(persistent_endpoint), stream_);
    if (probe == api::success) probe = api::stream_synchronize(stream_);
    if (probe == api::success) return f;
    detail += "; a follow-up query failed too (" + describe_error(probe) + "): the context is poisoned";
    poisoned_ = true;
    poisoned_flag_.store(true, std::memory_order_release);
    return {kernel_error::device_fault, true};
  }

  void note_error_locked(api::error e, const std::string& what) {
    last_error_ = what;
    if (api::classify(e).sticky) {
      poisoned_ = true;
      poisoned_flag_.store(true, std::memory_order_release);
    }
  }

  // Binds entry `entry` (mu_ held; the entry finished or fresh, its rings formatted or emptied).
  void bind_locked(std::uint32_t entry) {
    const binding& b = bindings_[entry];
    persistent_ring& r = table_entries_[entry];
    r.kernel_index = b.kernel_index;
    r.max_batch = b.rings.max_batch;
    r.requests = dev_address(b.request_host);
    r.replies = dev_address(b.reply_host);
    r.control = reinterpret_cast<control_block*>(dev_address(b.control_host));
    r.reply_scratch = b.rings.replies.arena_bytes
                          ? scratch_dev_ + static_cast<std::uint64_t>(entry) * opts_.max_reply_capacity
                          : nullptr;
    r.request_config = b.rings.requests;
    r.reply_config = b.rings.replies;
    b.control_host->reset(++ring_epoch_);
    // Release: the entry, the control block's reset and the rings' formatting are visible to the
    // worker that acquires the new generation.
    store_release(r.ctl, (++generation_) << persistent_ctl::generation_shift);
    bump_control_locked();
  }
  // After every ctl write and the kernel stop request (mu_ held): the scout's control generation,
  // so workers read their ctl words (protocol v2 devices; a no-op otherwise).
  void bump_control_locked() noexcept {
    if (summary_) std::atomic_ref<std::uint64_t>(summary_[0]).fetch_add(1, std::memory_order_release);
  }

  void set_ctl_bits(std::uint32_t entry, std::uint64_t bits) noexcept {
    std::lock_guard lock(mu_);
    or_ctl_locked(entry, bits);
  }
  // Sets bits of a bound entry's control word (mu_ held). Release (the RMW is on host memory, by
  // the host: the device only reads ctl; the tests' emulator also sets bits when its grid "traps",
  // hence an RMW rather than load + store).
  void or_ctl_locked(std::uint32_t entry, std::uint64_t bits) noexcept {
    persistent_ring& r = table_entries_[entry];
    if (load_relaxed(r.ctl) != 0) std::atomic_ref<std::uint64_t>(r.ctl).fetch_or(bits, std::memory_order_acq_rel);
    bump_control_locked();
  }

  static bool wait_finished(control_block& cb, std::chrono::steady_clock::time_point deadline) {
    for (std::uint32_t i = 0; !cb.finished(); ++i) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (i < 64) std::this_thread::yield();
      else std::this_thread::sleep_for(std::chrono::microseconds(50));  // a drain takes microseconds to ms
    }
    return true;
  }

  // Shutdown (see gpu_device::stop_kernel). The stream is polled without mu_, so the monitor
  // keeps sweeping (ringing completion bells for the draining rings) and abandon() stays immediate.
  bool stop_kernel() override {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      if (hung_.load(std::memory_order_acquire)) return false;  // already found hung: no second wait
      if (!kernel_running_) return true;
      api::use_device(opts_.ordinal);
      set_all_ctl_bits_locked(persistent_ctl::stop);
      kernel_control_->request_stop();
      bump_control_locked();
    }
    api::use_device(opts_.ordinal);
    const auto start = std::chrono::steady_clock::now();
    bool abandoned = false;
    for (;;) {
      const api::error e = api::stream_query(stream_);
      if (!api::not_ready(e)) {
        std::lock_guard lock(mu_);
        if (kernel_running_) kernel_ended_locked(e);  // (the monitor may have seen it first)
        return true;
      }
      const auto waited = std::chrono::steady_clock::now() - start;
      if (!abandoned && waited > opts_.stop_timeout / 2) {
        std::lock_guard lock(mu_);
        set_all_ctl_bits_locked(persistent_ctl::abandon);  // blocked drains end as reply_stuck
        abandoned = true;
      }
      if (waited > opts_.stop_timeout) {
        std::lock_guard lock(mu_);
        hung_.store(true, std::memory_order_release);
        // Only the host's own record: worker 0 may still be writing the kernel's control block.
        last_error_ = "the persistent kernel ignored its stop flag for " + std::to_string(opts_.stop_timeout.count()) +
                      " ms: a hang (its memory stays allocated)";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));  // polling a stream: no blocking call
    }
  }

  void set_all_ctl_bits_locked(std::uint64_t bits) noexcept {
    for (std::uint32_t i = 0; i < opts_.max_rings; ++i) or_ctl_locked(i, bits);
  }

  // The kernel ended (mu_ held): record why and fault every bound ring that was not stopped.
  void kernel_ended_locked(api::error e) {
    kernel_running_ = false;
    std::string detail;
    api::fault_kind f{kernel_error::crashed, false};
    if (e == api::success) {
      if (closed_) {  // stop_kernel() asked for it
        kernel_control_->set_state(kernel_state::stopped);
        return;
      }
      detail = std::string(api::backend) + " persistent kernel ended without a stop request";
    } else {
      f = api::classify(e);
      detail = std::string(api::backend) + " persistent kernel: " + describe_error(e);
      note_error_locked(e, detail);
      if (!f.sticky) f = follow_up_locked(f, detail);
    }
    last_error_ = detail;
    const std::uint32_t flags = f.sticky ? kernel_error_flags::sticky : 0u;
    kernel_control_->fault(f.code, flags, detail.c_str());
    for (std::uint32_t i = 0; i < opts_.max_rings; ++i) {
      if (!bindings_[i].in_use) continue;
      // Nothing runs on the device any more: the host is the only writer of these blocks now.
      // Only a ring the host itself stopped is left as it is; any other is no longer served.
      const bool stopped_on_request = (load_relaxed(table_entries_[i].ctl) & persistent_ctl::stop) != 0 &&
                                      ring_control(i).current_state() == kernel_state::stopped;
      if (!stopped_on_request) ring_control(i).fault(f.code, flags, detail.c_str());
      if (bindings_[i].bell) bindings_[i].bell->ring();
    }
  }

  void publish_watch_locked() {
    auto w = std::make_shared<std::vector<watch>>(opts_.max_rings);
    for (std::uint32_t i = 0; i < opts_.max_rings; ++i) {
      const binding& b = bindings_[i];
      if (!b.in_use) continue;
      (*w)[i] = {true,
                 b.serial,
                 ring_region(b.request_host, b.rings.requests),
                 ring_region(b.reply_host, b.rings.replies),
                 b.bell,
                 b.control_host};
    }
    std::lock_guard wl(watch_mu_);
    watch_ = std::move(w);
    watch_version_.fetch_add(1, std::memory_order_relaxed);
  }

  // The monitor: rings completion bells when a response ring moved (the device cannot), and checks
  // every millisecond whether the kernel is still running. It sweeps the rings marked active by
  // notify() (a ring stays active while it has requests outstanding), and every millisecond all
  // bound rings (a safety net: nothing waits longer than that for its bell).
  void monitor_loop() {
    api::use_device(opts_.ordinal);
    std::vector<watch> rings(opts_.max_rings);
    std::uint64_t version = ~0ull;
    auto last_check = std::chrono::steady_clock::now();
    std::uint32_t idle = 0;
    // Sweeps hold watch_mu_: once publish_watch_locked() returns, no sweep uses an old snapshot,
    // so a released incarnation's completion bell is never rung after its release.
    auto locked_sweep = [&](bool all) {
      std::lock_guard wl(watch_mu_);
      if (const std::uint64_t v = watch_version_.load(std::memory_order_relaxed); v != version) {
        version = v;
        std::vector<watch> next = watch_ ? *watch_ : std::vector<watch>(opts_.max_rings);
        for (std::size_t i = 0; i < next.size(); ++i)  // keep what was seen of rings still bound
          if (next[i].bound && rings[i].bound && rings[i].serial == next[i].serial)
            next[i].last_head = rings[i].last_head, next[i].last_tail = rings[i].last_tail;
        rings = std::move(next);
        all = true;
      }
      return sweep(rings, all);
    };
    // While requests are outstanding, and for monitor_linger after the last one (so a caller
    // sending one request at a time does not pay a futex wake-up per request), it spins (then
    // yields); after that it parks until notify() or 1 ms (the kernel check's period).
    auto last_busy = std::chrono::steady_clock::now();
    while (!quit_.load(std::memory_order_acquire)) {
      const auto now = std::chrono::steady_clock::now();
      const bool tick = now - last_check >= opts_.monitor_period;
      const bool outstanding = locked_sweep(tick);
      if (tick) {
        last_check = now;
        check_kernel();
      }
      if (outstanding) last_busy = now;
      if (outstanding || now - last_busy < opts_.monitor_linger) {
        if (++idle < 2000) cpu_relax();
        else std::this_thread::yield();
        continue;
      }
      idle = 0;
      const doorbell::token t = monitor_bell_.prepare_wait();
      if (quit_.load(std::memory_order_acquire) || locked_sweep(false)) {
        monitor_bell_.cancel_wait();
        continue;
      }
      monitor_bell_.wait(t, opts_.monitor_period);  // also the kernel check's period
    }
  }

  // One pass over the active rings (all bound ones when `all`): rings a bell when a ring's consumed
  // position (head, acquire: the replies written before it are visible) or its replies' tail
  // moved. A ring with a request waiting or being served stays active. True if any has.
  bool sweep(std::vector<watch>& rings, bool all) {
    bool outstanding = false;
    for (std::size_t word = 0; word < active_words_; ++word) {
      // Taking the bits before looking: a notify() after this sets its bit again (no lost wake-up).
      std::uint64_t bits = active_[word].exchange(0, std::memory_order_acq_rel);
      if (all) bits = ~std::uint64_t{0};
      while (bits) {
        const unsigned b = static_cast<unsigned>(__builtin_ctzll(bits));
        bits &= bits - 1;
        const std::size_t e = word * 64 + b;
        if (e >= rings.size() || !rings[e].bound) continue;
        watch& w = rings[e];
        const std::uint64_t head = load_acquire(w.requests.shared()->head);
        const std::uint64_t tail = ring_observer(w.replies).tail();
        if (head != w.last_head || tail != w.last_tail) {
          w.last_head = head;
          w.last_tail = tail;
          if (w.bell) w.bell->ring();
        }
        // A finished ring (stopped, faulted: no kernel serves it now) is not waited for.
        if (ring_observer(w.requests).tail() != head && !w.control->finished()) {
          outstanding = true;
          active_[word].fetch_or(std::uint64_t{1} << b, std::memory_order_relaxed);
        }
      }
    }
    return outstanding;
  }

  // Returns an entry's rings to the pool and the entry to the free list (mu_ held).
  void free_entry_locked(std::uint32_t i) {
    if (!bindings_[i].external) {
      pool_.release(bindings_[i].request_offset, bindings_[i].request_bytes);
      pool_.release(bindings_[i].reply_offset, bindings_[i].reply_bytes);
    }
    free_entries_.push_back(i);
  }

  // Entries released before their ring finished (abandoned, then destroyed) come back once no
  // worker uses them: their ring finished, or no kernel runs (mu_ held).
  void reclaim_leaked_locked() {
    for (std::uint32_t i = 0; i < opts_.max_rings; ++i) {
      binding& b = bindings_[i];
      if (!b.leaked || (kernel_running_ && !ring_control(i).finished())) continue;
      free_entry_locked(i);
      b.leaked = false;
    }
  }

  void check_kernel() {
    std::lock_guard lock(mu_);
    reclaim_leaked_locked();
    if (!kernel_running_) return;
    const api::error e = api::stream_query(stream_);
    if (api::not_ready(e)) return;
    kernel_ended_locked(e);
  }

  ordinal_claim claim_;  // first member: released last
  gpu_device_options opts_;
  kernel_table_info table_;
  gpu_info info_;
  std::uint32_t blocks_ = 1, threads_ = 32, workers_ = 1;

  std::uint8_t* pinned_ = nullptr;
  std::uint64_t pinned_bytes_ = 0;
  std::uint8_t* pinned_dev_ = nullptr;
  struct registration {
    std::uint8_t* host;
    std::uint8_t* dev;
    std::uint64_t bytes;
  };
  std::vector<registration> registered_;  // gpu_device_options::registered, once registered
  persistent_ring* table_entries_ = nullptr;
  control_block* kernel_control_ = nullptr;
  std::uint64_t* summary_ = nullptr;    // protocol v2: the scout's words (pinned host memory)
  std::uint64_t* marks_dev_ = nullptr;  // ... and its marks (device memory)
  std::uint64_t marks_bytes_ = 0;
  std::uint32_t group_shift_ = 6;
  control_block* ring_controls_ = nullptr;
  std::uint8_t* ring_pool_ = nullptr;
  std::uint8_t* device_mem_ = nullptr;
  persistent_endpoint* endpoints_dev_ = nullptr;
  std::uint8_t* staging_dev_ = nullptr;
  std::uint64_t* scratch_dev_ = nullptr;
  std::uint8_t* states_dev_ = nullptr;  // stateful kernels' state rooms (device memory), or null
  std::uint32_t state_stride_ = 0;
  api::stream stream_ = nullptr;

  mutable std::mutex mu_;  // everything below, and the ring table's host lines
  std::vector<binding> bindings_;
  std::vector<std::uint32_t> free_entries_;
  pool_allocator pool_;
  bool kernel_running_ = false;
  bool closed_ = false;  // stop_kernel(): no new rings, no relaunch
  bool poisoned_ = false;
  std::string last_error_;
  std::uint64_t generation_ = 0, kernel_epoch_ = 0, ring_epoch_ = 0, serial_ = 0;

  std::atomic<bool> poisoned_flag_{false};
  std::atomic<bool> hung_{false};
  std::atomic<std::uint64_t> launches_{0};
  std::atomic<bool> quit_{false};
  doorbell monitor_bell_;
  std::mutex watch_mu_;
  std::shared_ptr<const std::vector<watch>> watch_;       // by entry
  std::size_t active_words_ = 0;                          // (max_rings + 63) / 64
  std::unique_ptr<std::atomic<std::uint64_t>[]> active_;  // notify()'d entries, one bit each
  std::atomic<std::uint64_t> watch_version_{0};
  std::thread monitor_;
};

gpu_incarnation::gpu_incarnation(std::shared_ptr<device_impl> dev, std::uint32_t entry, ring_region rq, ring_region rp)
    : dev_(std::move(dev)), entry_(entry), requests_(rq), replies_(rp) {
  const std::uint64_t words = ring_layout{rq.config()}.producer_scratch_words();
  if (words) scratch_ = std::make_unique<std::uint64_t[]>(words);
}

gpu_incarnation::~gpu_incarnation() {
  if (!finished() && !abandoned_) dev_->stop_ring(entry_, std::chrono::milliseconds(1000));
  dev_->release_ring(entry_);
}

const char* gpu_incarnation::kernel_name() const noexcept { return dev_->table().name(dev_->kernel_of(entry_)); }
type_id gpu_incarnation::request_type() const noexcept { return dev_->table().request_type(dev_->kernel_of(entry_)); }
type_id gpu_incarnation::reply_type() const noexcept { return dev_->table().reply_type(dev_->kernel_of(entry_)); }
std::uint32_t gpu_incarnation::state_bytes() const noexcept { return dev_->state_bytes_of(dev_->kernel_of(entry_)); }
void gpu_incarnation::notify() noexcept { dev_->wake_monitor(entry_); }
control_block& gpu_incarnation::control() noexcept { return dev_->ring_control(entry_); }
bool gpu_incarnation::stop(std::chrono::milliseconds timeout) {
  if (finished()) return control().current_state() == kernel_state::stopped;
  return dev_->stop_ring(entry_, timeout);
}
void gpu_incarnation::abandon() noexcept {
  abandoned_ = true;
  dev_->abandon_ring(entry_);
}
bool gpu_incarnation::restart() {
  if (abandoned_) return false;
  if (!dev_->rebind(entry_)) return false;
  if (scratch_) std::fill_n(scratch_.get(), ring_layout{requests_.config()}.producer_scratch_words(), 0);
  return true;
}

}  // namespace

std::shared_ptr<gpu_device> open(gpu_device_options opts) {
  const gpu_probe p = probe();
  const auto it =
      std::find_if(p.devices.begin(), p.devices.end(), [&](const gpu_info& i) { return i.ordinal == opts.ordinal; });
  if (it == p.devices.end())
    throw gpu_unavailable(std::string(api::backend) + ":" + std::to_string(opts.ordinal) +
                          " is not usable: " + (p.detail.empty() ? "no such device" : p.detail));
  if (!it->can_map_host_memory)
    throw gpu_unavailable(std::string(api::backend) + ":" + std::to_string(opts.ordinal) + " (" + it->name +
                          ") cannot map host memory: ring kernels need it");
  const kernel_table_info table = select_kernel_table(api::backend, RINGFLOW_GPU_BUILTIN_TABLE());
  return std::make_shared<device_impl>(std::move(opts), table, *it);
}

}  // namespace ringflow::gpu::RINGFLOW_GPU_NS

namespace ringflow::gpu {
gpu_probe RINGFLOW_GPU_PROBE_FN() { return RINGFLOW_GPU_NS::probe(); }
std::shared_ptr<gpu_device> RINGFLOW_GPU_MAKE_FN(gpu_device_options opts) {
  return RINGFLOW_GPU_NS::open(std::move(opts));
}
}  // namespace ringflow::gpu
