// ringflow/runtime/gpu_backends.hpp — the GPU backends the program may place ring nodes on.
//
// Contract
//   * The operations library (ringflow::ops) links no GPU backend: a program registers the ones it
//     links. use_linked_gpu_backends() (inline, compiled in the program's own translation unit)
//     registers ringflow::backend_cuda / ringflow::backend_hip when the program links them — their
//     usage requirements define RINGFLOW_HAVE_CUDA_BACKEND / RINGFLOW_HAVE_HIP_BACKEND. The
//     `ringflow` program calls it first thing; so does a user's own ringflow-compatible program.
//     So an install of ringflow::ops needs no CUDA or ROCm on a CPU-only consumer's machine.
//   * A backend that is not registered is reported as "this program was built without the <x>
//     backend" by `ringflow devices` and by placement (backend: cuda on a node).
// Thread-safety: register before the program places anything; lookups take a lock.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ringflow/gpu/gpu_device.hpp"

namespace ringflow::ops {

struct gpu_backend {
  std::string name;  // "cuda" | "hip"
  std::function<std::shared_ptr<gpu::gpu_device>()> open;
  std::function<gpu::gpu_probe()> probe;
  /// Opens a device with these options (a kernel-host worker's own device; ringflow/process/worker.hpp).
  std::function<std::shared_ptr<gpu::gpu_device>(gpu::gpu_device_options)> open_with;
  std::function<bool()> warm_up;  // creates device 0's context now (a standby worker)
};

/// Registers (or replaces) a backend by name.
void register_gpu_backend(gpu_backend b);
/// The registered backend `name`, if any.
std::optional<gpu_backend> find_gpu_backend(const std::string& name);

/// Registers the GPU backends the calling program links (see the contract).
inline void use_linked_gpu_backends() {
#if defined(RINGFLOW_HAVE_CUDA_BACKEND)
  register_gpu_backend({"cuda", [] { return gpu::make_cuda_device(); }, [] { return gpu::probe_cuda(); },
                        [](gpu::gpu_device_options o) { return gpu::make_cuda_device(std::move(o)); },
                        [] { return gpu::warm_up_cuda(); }});
#endif
#if defined(RINGFLOW_HAVE_HIP_BACKEND)
  register_gpu_backend({"hip", [] { return gpu::make_hip_device(); }, [] { return gpu::probe_hip(); },
                        [](gpu::gpu_device_options o) { return gpu::make_hip_device(std::move(o)); },
                        [] { return gpu::warm_up_hip(); }});
#endif
}

}  // namespace ringflow::ops
