// ringflow/process/worker.hpp — the worker's side of a kernel host (`ringflow kernel-host`), in three
// steps the program's entry point calls in order (backends/process).
//
// Contract
//   1. map_segment(): maps the segment the service named, copies its set-up line once and validates
//      the copy (magic, version, size, ring configs, layout, rule count, batch, kernel known to the
//      lookup, backend cpu|sim, this process the service's child). What was validated is what is
//      used: nothing of the set-up line is read from shared memory again.
//      A GPU backend (cuda, hip; tests: emulated) is accepted only when the caller passes it in
//      `gpus`: the `ringflow` program passes the backends it links, never the emulator.
//   2. make_worker_incarnation(): the kernel on the segment's rings in place — a CPU incarnation, or
//      (backend sim) the sim decorator owning them over a CPU kernel, armed with the standing rules,
//      or (a GPU backend) a gpu_device of its own (one block, one worker warp) with the whole
//      segment registered as mapped memory, its persistent kernel serving the segment's rings and
//      writing the segment's control block (gpu_device::factory_at). A kernel that cannot start
//      (no usable device, a kernel outside the device's table) faults the shared control block
//      (launch_failed).
//   3. serve_until_done(): beats liveness every interval, watches the parent (the service), feeds
//      injected rules to a sim worker, until the kernel stops or faults, or the service goes away.
//      A GPU worker also relays the service's kernel bell to its device (notify) and the service's
//      stop request (the shared control block's flag) to its ring (a drain, then `stopped`).
//   4. finish_worker(): ends the process's kernel after step 3 and returns the exit code. A GPU
//      worker whose kernel faulted (its context may be poisoned) or hung exits at once with
//      _Exit: the driver reclaims the context of an ended process, while an orderly teardown of a
//      poisoned or busy context is undefined.
//   A standby first waits in wait_for_activation() (fd 3, a pipe only the service writes).
//   Exit codes are worker_exit (documented in docs/OPERATIONS.md): a service reads them only as
//   diagnostics (it trusts nothing a worker says).
// Thread-safety: one worker process, one thread calling these.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/incarnation.hpp"
#include "ringflow/process/kernel_host_device.hpp"
#include "ringflow/process/segment.hpp"
#include "ringflow/sim/sim_device.hpp"

namespace ringflow::process {

/// The exit codes of `ringflow kernel-host`.
enum class [[nodiscard]] worker_exit : int{
    stopped = 0,         // the kernel stopped (the service asked)
    bad_segment = 3,     // the segment could not be opened, mapped or validated
    start_failed = 4,    // the kernel could not start
    kernel_faulted = 5,  // the kernel faulted (the control block says how)
    service_gone = 6,    // the service went away (or let this standby go)
    bad_plugin = 7,      // a plugin the service named could not be loaded, or is not the service's file
};

/// A GPU backend a worker may run its kernel on: how to open a device of it.
struct worker_gpu_backend {
  std::string name;  // the segment's `backend`: cuda | hip (tests: emulated)
  std::function<std::shared_ptr<gpu::gpu_device>(gpu::gpu_device_options)> open;
  std::function<bool()> warm_up;  // creates the device context now (a standby, before it waits)
};
using worker_gpu_backends = std::vector<worker_gpu_backend>;

/// A mapped segment and the worker's validated private copy of its set-up line.
struct worker_segment {
  shm_mapping mapping;
  host_segment_header setup{};  // the copy that was validated
  segment_layout layout;
  hosted_kernel kernel;
  std::string backend;                    // cpu | sim | a GPU backend's name
  std::optional<worker_gpu_backend> gpu;  // the GPU backend, when `backend` names one
  [[nodiscard]] host_segment_header* shared() const noexcept {
    return reinterpret_cast<host_segment_header*>(mapping.base());
  }
  [[nodiscard]] control_block* control() const noexcept {
    return reinterpret_cast<control_block*>(mapping.base() + layout.control);
  }
};

/// The worker's kernel (and, backend sim, the device whose injector wraps it).
struct worker_incarnation {
  std::shared_ptr<sim::sim_device> sim;
  std::shared_ptr<gpu::gpu_device> gpu;  // a GPU worker's own device (declared before `kernel`: outlives it)
  std::unique_ptr<incarnation> kernel;
};

/// Closes every inherited file descriptor but stdio (and a standby's activation pipe, fd 3, and
/// its heartbeat pipe, fd 4).
void close_inherited_fds(bool standby) noexcept;
/// A standby, before it waits: when the segment names one of `gpus`, creates that device's context
/// now, so that taking over costs no context creation (hundreds of ms on a large GPU). The
/// segment's backend is only peeked at here (it decides a warm-up, nothing else); map_segment()
/// validates it after the activation.
void warm_up_standby(const std::string& segment, const worker_gpu_backends& gpus) noexcept;
/// A standby: waits until the service hands over the segment (a byte: true) or lets this process
/// go (end of file: false), beating on fd 4 every 10 ms (worker_processes::standby_beat) meanwhile.
[[nodiscard]] bool wait_for_activation() noexcept;
/// Step 1. nullopt on success; else worker_exit::bad_segment with `error` saying why.
[[nodiscard]] std::optional<worker_exit> map_segment(const std::string& name, const kernel_lookup& kernels,
                                                     worker_segment& out, std::string& error,
                                                     const worker_gpu_backends& gpus = {});
/// Step 2. nullopt on success; else worker_exit::start_failed (the shared control block faulted).
[[nodiscard]] std::optional<worker_exit> make_worker_incarnation(const worker_segment& seg, worker_incarnation& out,
                                                                 std::string& error);
/// Step 3. stopped, kernel_faulted, or service_gone (the kernel abandoned; the caller should exit
/// at once without waiting for its threads).
worker_exit serve_until_done(const worker_segment& seg, worker_incarnation& w, std::string& error);
/// Step 4: the process's exit code for `code`; may not return (_Exit) — see the contract.
[[nodiscard]] int finish_worker(worker_incarnation& w, worker_exit code);

}  // namespace ringflow::process
