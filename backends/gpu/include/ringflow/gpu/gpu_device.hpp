// ringflow/gpu/gpu_device.hpp — a GPU (CUDA or HIP) as a ringflow::device: one persistent kernel
// per device hosting many logical ring actors. Plain C++: no CUDA/HIP header is included here.
//
// Contract
//   * make_cuda_device() / make_hip_device() (ringflow_backend_cuda / ringflow_backend_hip) open a
//     device, allocate every pool up front — the ring table, per-ring control blocks and the rings
//     in one pinned, mapped host allocation (cudaHostAlloc Mapped / hipHostMalloc Mapped|Coherent),
//     the workers' private state and staging in device memory — and launch ONE persistent kernel
//     on the device's own non-blocking stream (persistent.hpp: a worker per warp, many rings per
//     worker). Nothing is allocated or freed while it runs; no call that would wait for it
//     (cudaFree, cudaFreeHost, the legacy default stream) is made until it has stopped.
//     They throw gpu_unavailable (with the driver's reason) when no device is usable: no driver,
//     "insufficient driver", zero devices, a device that cannot map host memory; and
//     std::logic_error when that device is already open in the process — one gpu_device per
//     device, shared by all its ring actors (a second one's cudaFree could wait for the first
//     one's kernel forever). The same holds for a program's own CUDA calls while it runs: no
//     cudaFree / cudaFreeHost / cudaDeviceSynchronize / legacy-default-stream work, and no
//     allocation or limit changes (cudaMalloc, cudaHostAlloc, cudaDeviceSetLimit may wait for
//     running kernels) on that device — allocate before opening it.
//   * Module loading: with lazy loading (the CUDA >= 12.2 default) the first launch of another
//     kernel while the persistent one runs could wait for it forever. The driver reads
//     CUDA_MODULE_LOADING once, at its initialisation (the process's first CUDA call), so it must
//     be set before any CUDA call and before other threads run (setenv is not thread-safe).
//     ringflow_backend_cuda does it in a static initializer (before main; unless the environment
//     already chose): a program that links it needs nothing more. prepare_process() does the same
//     for a program that loads the backend later (dlopen) — call it first thing in main.
//     probe_cuda()'s detail says "module loading <value>" when it is not EAGER.
//   * The kernel is launched cooperatively (cudaLaunchCooperativeKernel), so the launch fails
//     unless all its blocks can be resident at once; a worker per warp of the device's warp size.
//   * factory(kernel, rings) gives incarnations of a kernel of the device's kernel table (the
//     demo kernels, plus a user's kernels registered with RINGFLOW_CUDA_KERNELS, see
//     ringflow/gpu/persistent_kernel.cuh): each incarnation is one entry of the ring table with its
//     own rings and control block, bound to the running kernel (no launch per actor).
//     It throws std::invalid_argument for a kernel outside the table or rings the device cannot
//     hold, and std::runtime_error when the device cannot take the ring now (poisoned, table or
//     pinned pool full).
//   * One kernel hosts all rings, so a kernel-level fault hits all of them: when the kernel dies
//     (a trap, an illegal address, a launch failure) the device's monitor marks every bound ring's
//     control block faulted — with kernel_error_flags::sticky when the error poisons the context —
//     and each ring actor's fault ladder takes its own step. restart() of an incarnation relaunches
//     the kernel if it is down (once, for all rings) and rebinds its ring; so **restarting the
//     kernel restarts all its rings**, and each ring actor's outbox replay covers its own.
//     reinitialize() after a sticky error reports `unsupported`: a poisoned context is only cleared
//     by a new process, so in-process the ladder reroutes to the CPU.
//   * Replies: the device cannot ring a futex, so the device's monitor thread watches the response
//     rings of the rings notify() marked active, while they have requests outstanding (spin, then
//     yield; parked on a doorbell that notify() rings when nothing is outstanding; all bound rings
//     once per millisecond), and rings each incarnation's completion bell.
//   * Stop of one incarnation: the ring drains on the device and reports `stopped`; past the
//     timeout the host abandons it (`faulted` / reply_stuck) — unless the whole kernel hangs:
//     then stop() returns false with finished() false, and the ring's memory is never reused. Destroying the device
//     stops every ring, sets the kernel's stop flag and polls the stream until the kernel ended or the stop timeout
//     passed — then it is a hang, reported by kernel_hung(), and the pools are left allocated on purpose (freeing
//     memory a running kernel uses would wait for it forever).
// Thread-safety: factory(), the incarnations' start/stop and reinitialize() from controlling
// threads (internally serialised); observers from any thread.
#pragma once

#include <cstdlib>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ringflow/incarnation.hpp"
#include "ringflow/kernel.hpp"

namespace ringflow::gpu {

/// No usable device: the reason as the driver / runtime gave it.
class gpu_unavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What discovery knows about one device.
struct gpu_info {
  int ordinal = 0;
  std::string name;
  std::string arch;         // "sm_90" (CUDA compute capability) / "gfx90a" (HIP)
  int multiprocessors = 0;  // SMs / CUs
  int warp_size = 32;       // threads per warp / wavefront (32; 64 on CDNA, 32 on RDNA)
  bool can_map_host_memory = false;
  std::uint64_t memory_bytes = 0;
};

/// Discovery result of one backend: devices, or why there are none.
struct gpu_probe {
  std::string backend;  // "cuda" / "hip"
  bool usable = false;  // at least one device that can map host memory
  std::string detail;   // driver/runtime versions, or why not usable
  std::vector<gpu_info> devices;
};

struct gpu_device_options {
  int ordinal = 0;
  std::string id;                                  // default "<backend>:<ordinal>"
  std::uint32_t max_rings = 1024;                  // ring table entries (logical ring actors at once)
  std::uint64_t ring_pool_bytes = 64ull << 20;     // pinned mapped memory for all rings
  std::uint32_t max_reply_capacity = 4096;         // largest response ring (slots) the device pools cover
  std::uint32_t blocks = 0;                        // 0: one block per multiprocessor
  std::uint32_t warps_per_block = 4;               // workers per block
  std::uint32_t staging_bytes = 16384;             // per worker per direction (multiple of 16): slot + arena payload
  std::uint32_t poll_period = 32;                  // worker passes between control checks / heartbeats
  std::uint32_t backoff_max_ns = 2048;             // idle back-off ceiling of a worker with running rings
  std::uint32_t unbound_backoff_max_ns = 65536;    // ... of a worker without (watching for bindings)
  std::chrono::microseconds monitor_linger{200};   // monitor spins this long after the last reply before parking
  std::chrono::microseconds monitor_period{1000};  // monitor: stream query + sweep of all bound rings
  std::chrono::milliseconds stop_timeout{2000};    // kernel stop: then it is a hang
  /// Slot format of the rings factory() makes (ring.hpp, docs/ARCHITECTURE.md "Ring protocol v2"):
  /// 1 (default) or 2 (LL16 units: one PCIe read per request, no device head publish). Protocol
  /// 2 doubles each ring's slot_size (the inline room stays what was asked, +8 bytes) and gives
  /// the response ring the request ring's capacity. It relies on 16-byte single-copy atomicity
  /// of device <-> host accesses, which the PTX model does not promise (ringflow_test_gpu_ll16
  /// checks it on the GPU), so it is opt-in until that check has passed on a device.
  /// 0 (default): RINGFLOW_GPU_RING_PROTOCOL=1|2 from the environment, else 1 (another value of
  /// the variable: open() throws std::invalid_argument).
  std::uint32_t ring_protocol = 0;
  /// Protocol v2 rings: lanes of a worker's warp that serve consecutive requests of a ring
  /// together (CUDA, sm_70+: one lane per request, up to 32; HIP: lane 0 alone takes a batch's
  /// requests in turn). 0 or 1: one request at a time. At most 32 (else open() throws
  /// std::invalid_argument); a batch is also bounded by staging_bytes / the decoded slot size.
  std::uint32_t batch_lanes = 32;
  /// Host memory the caller owns (e.g. a kernel host's POSIX shared-memory segment) registered with
  /// the device as mapped memory (cudaHostRegister Mapped|Portable / hipHostRegister Mapped) before
  /// the kernel launches, unregistered after it stopped: factory_at() binds rings that live there.
  /// Page-aligned ranges; they must stay mapped until the device is destroyed.
  struct host_region {
    void* base = nullptr;
    std::size_t bytes = 0;
  };
  std::vector<host_region> registered;
};

/// Rings (formatted by their owner) and a control block the caller placed in a registered
/// host_region: what factory_at() binds instead of rings from the device's own pool.
struct gpu_external_rings {
  void* request_memory = nullptr;  // ring_region of `requests`, formatted
  void* reply_memory = nullptr;    // ring_region of `replies`, formatted
  control_block* control = nullptr;
  ring_config requests{}, replies{};
  std::uint32_t max_batch = 32;
};

/// Per-incarnation options (the rings; cpu::ring_options' placement fields are not used).
struct gpu_ring_options {
  ring_config requests{256, 256, 0, 0};
  ring_config replies{256, 256, 0, 0};
  std::uint32_t max_batch = 32;
};

/// The rings a device with `protocol` (gpu_device_options::ring_protocol) makes for `asked`:
/// unchanged for protocol 1 or rings already marked v2; protocol 2 marks both rings v2, doubles
/// their slot_size (the v2 inline room, slot_size / 2 - 56, stays >= what v1 gave) and gives the
/// replies the requests' capacity (v2 pairs request i with reply slot i).
inline gpu_ring_options ring_geometry(const gpu_ring_options& asked, std::uint32_t protocol) {
  gpu_ring_options r = asked;
  if (protocol != ring_protocol::v2 || asked.requests.is_v2()) return r;
  for (ring_config* c : {&r.requests, &r.replies}) {
    c->protocol = ring_protocol::v2;
    c->slot_size *= 2;
  }
  r.replies.capacity = r.requests.capacity;
  return r;
}

class gpu_device : public device {
 public:
  /// Incarnations of the kernel named `kernel` (see the contract). Validates now.
  virtual incarnation_factory factory(const std::string& kernel, const gpu_ring_options& rings = {}) = 0;
  template <ring_kernel K>
  incarnation_factory factory(const gpu_ring_options& rings = {}) {
    return factory(K::name, rings);
  }
  /// Incarnations of `kernel` on rings someone else owns (a kernel-host worker's segment): every
  /// pointer must lie in a gpu_device_options::registered region (std::invalid_argument otherwise,
  /// and for a kernel outside the table or a ring the device's pools cannot serve). The rings are
  /// used as they are (not formatted); the control block is reset at each bind. restart() rebinds
  /// the same memory (its rings emptied). One incarnation per gpu_external_rings at a time.
  virtual incarnation_factory factory_at(const std::string& kernel, const gpu_external_rings& rings) = 0;

  /// Shutdown: stops every bound ring (drained; abandoned past half of the stop timeout) and the
  /// kernel, polling its stream. False when the kernel ignored the stop past the stop timeout: a
  /// hang (kernel_hung(), last_error()). Afterwards the device takes no new rings and does not
  /// relaunch. The destructor does the same for a kernel still running.
  virtual bool stop_kernel() = 0;
  virtual const gpu_info& info() const noexcept = 0;
  /// The kernel table's kernel names, by index.
  virtual std::vector<std::string> kernels() const = 0;
  /// The persistent kernel's control block (state, heartbeat = worker 0's passes).
  virtual control_block& kernel_control() noexcept = 0;
  virtual std::uint32_t workers() const noexcept = 0;
  virtual std::size_t bound_rings() const = 0;
  virtual std::uint64_t kernel_launches() const noexcept = 0;
  /// The context is poisoned by a sticky error (only a new process clears it).
  virtual bool poisoned() const noexcept = 0;
  /// The kernel ignored a stop past the stop timeout.
  virtual bool kernel_hung() const noexcept = 0;
  /// The last kernel-level error the monitor saw ("" = none).
  virtual std::string last_error() const = 0;
};

/// Sets CUDA_MODULE_LOADING=EAGER unless the environment already set it (see the contract). Call
/// before any CUDA call and before starting threads; idempotent. ringflow_backend_cuda calls it
/// from a static initializer.
inline void prepare_process() noexcept { ::setenv("CUDA_MODULE_LOADING", "EAGER", 0); }

/// Backend availability and devices; never throws (every failure becomes `detail`).
gpu_probe probe_cuda();
gpu_probe probe_hip();
/// Creates device `ordinal`'s context now (a standby kernel-host worker does, so that taking over
/// costs no context creation); false when the runtime refused. Never throws.
bool warm_up_cuda(int ordinal = 0) noexcept;
bool warm_up_hip(int ordinal = 0) noexcept;
/// Opens device `opts.ordinal` and launches its persistent kernel; throws gpu_unavailable.
std::shared_ptr<gpu_device> make_cuda_device(gpu_device_options opts = {});
std::shared_ptr<gpu_device> make_hip_device(gpu_device_options opts = {});

}  // namespace ringflow::gpu
