// ringflow/runtime/kernel_host.hpp — the `ringflow kernel-host` entry point and the program's
// kernel lookup for kernel hosts. The backend itself (segments, the service-side incarnation, the
// device, the worker's steps) is backends/process: ringflow/process/kernel_host_device.hpp.
// Thread-safety: run_kernel_host() is a process's main; catalog_kernel_lookup() is reentrant.
#pragma once

#include <string>
#include <vector>

#include "ringflow/process/kernel_host_device.hpp"
#include "ringflow/process/worker.hpp"

namespace ringflow::ops {

/// The topology catalog's kernels (runtime/catalog.hpp) as a kernel host's lookup.
[[nodiscard]] process::kernel_lookup catalog_kernel_lookup();

/// The worker: loads the service's plugins (`plugins`, each checked against its `plugin_sha256`),
/// (a standby then waits for its activation), maps and validates `segment`, makes its kernel's
/// incarnation, serves until the kernel stops or faults, or the service dies. Returns the process
/// exit code, a process::worker_exit: 0 stopped, 3 a bad segment (`error` says why), 4 the kernel
/// could not start, 5 the kernel faulted, 6 the service went away, 7 a plugin could not be loaded
/// or its content hash is not the service's.
/// A worker whose segment names a GPU backend (cuda, hip) runs its kernel on a device of its own
/// when this program registered that backend (gpu_backends.hpp); the tests' emulator is never one.
[[nodiscard]] int run_kernel_host(const std::string& segment, std::string& error, bool standby = false,
                                  const std::vector<std::string>& plugins = {},
                                  const std::vector<std::string>& plugin_sha256 = {});

/// The GPU backends this program registered, as a worker's (cuda and hip only).
[[nodiscard]] process::worker_gpu_backends linked_worker_gpu_backends();

}  // namespace ringflow::ops
