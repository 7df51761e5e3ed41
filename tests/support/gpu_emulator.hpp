// tests/support/gpu_emulator.hpp — the GPU device's host logic (backends/gpu/src/gpu_device.cpp)
// built against a host emulator of the runtime, so CI (no GPU) tests binding, the ring table,
// stop/drain, restart, kernel death and the monitor's fault marking — under TSan too.
//
// What is emulated: "device" and "pinned" memory are host memory; a launch runs the persistent
// kernel's workers (persistent_worker<Table>, the very code the GPU runs) on std::threads; a
// worker that throws kills the grid like a trap kills a GPU grid: the stream reports
// error_illegal_instruction, sticky for the whole emulated process, and the other workers are made
// to leave (the emulator sets the kernel's stop flag and every entry's abandon bit — only the
// emulator does this; on a GPU nothing runs after a trap, and only the host's stream query tells).
// It proves the host logic and the ring-table protocol, never device code or PCIe behaviour:
// tests/gpu runs the same tests on a real device (label gpu).
#pragma once

#include <functional>
#include <memory>

#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/gpu/kernel_registry.hpp"

namespace ringflow::gpu {

gpu_probe probe_emulated();
std::shared_ptr<gpu_device> make_emulated_device(gpu_device_options opts = {});
bool warm_up_emulated(int ordinal = 0) noexcept;
kernel_table_info builtin_emulated_table();

namespace emulator {
inline constexpr int error_memory = 2;
inline constexpr int error_not_ready = 600;
inline constexpr int error_launch_out_of_resources = 701;  // transient
inline constexpr int error_illegal_instruction = 715;      // sticky
inline constexpr int error_unknown = 999;                  // classify(): not sticky (cudaErrorUnknown's case)

/// Devices the emulated runtime reports (default 1; 0 = "no device").
void set_devices(int n);
/// A trap poisons the emulated *process* as a sticky error poisons a CUDA context: every later
/// allocation, stream creation and launch fails with it. reset_process() stands for a new process
/// (ctest runs each test case in its own; the test fixture calls it at the start of each case).
void reset_process();
/// Traps from now on (until reset_process) are reported by the stream as `error` instead of
/// error_illegal_instruction — still poisoning the process, as an unclassified code can on a GPU.
void report_traps_as(int error);
/// The running grid, when its workers next leave without a trap, is reported by its stream as
/// `error` (a kernel that died of a non-sticky error; the process is not poisoned).
void report_grid_end_as(int error);
/// The next launch fails with `error` (the kernel does not start).
void fail_next_launch(int error);
/// Runs body(worker) for workers 0..workers-1 on threads as one grid on `stream`.
int launch(void* stream, unsigned workers, const persistent_args& args, std::function<void(unsigned)> body);

template <class Table>
int launch_table(unsigned blocks, unsigned threads, void* stream, const persistent_args& args) {
  (void)blocks, (void)threads;  // the grid's workers are the ones the host sized (as on a device)
  return launch(stream, args.workers, args, [args](unsigned w) { persistent_worker<Table>(args, w, args.workers); });
}
}  // namespace emulator

}  // namespace ringflow::gpu
