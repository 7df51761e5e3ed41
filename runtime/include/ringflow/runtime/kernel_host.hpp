// ringflow/runtime/kernel_host.hpp — the `ringflow kernel-host` entry point and the program's
// kernel lookup for kernel hosts. The backend itself (segments, the service-side incarnation, the
// device, the worker's steps) is backends/process: ringflow/process/kernel_host_device.hpp.
// Thread-safety: run_kernel_host() is a process's main; catalog_kernel_lookup() is reentrant.
#pragma once

#include <string>

#include "ringflow/process/kernel_host_device.hpp"
#include "ringflow/process/worker.hpp"

namespace ringflow::ops {

/// The topology catalog's kernels (runtime/catalog.hpp) as a kernel host's lookup.
[[nodiscard]] process::kernel_lookup catalog_kernel_lookup();

/// The worker: (a standby first waits for its activation), maps and validates `segment`, makes its
/// kernel's incarnation, serves until the kernel stops or faults, or the service dies. Returns the
/// process exit code, a process::worker_exit: 0 stopped, 3 a bad segment (`error` says why), 4 the
/// kernel could not start, 5 the kernel faulted, 6 the service went away.
[[nodiscard]] int run_kernel_host(const std::string& segment, std::string& error, bool standby = false);

}  // namespace ringflow::ops
