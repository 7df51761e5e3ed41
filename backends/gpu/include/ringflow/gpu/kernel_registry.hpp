// ringflow/gpu/kernel_registry.hpp — the kernel table a GPU device's persistent kernel serves.
//
// Contract
//   * A kernel table is compiled for a device by a device compiler: kernel_table<K...>
//     (persistent.hpp) + the persistent kernel template (persistent_kernel.cuh) instantiated for
//     it. Host code sees it only through kernel_table_info: the kernels' names and message types
//     by index, and a launch function.
//   * Each GPU backend library carries a built-in table (ringflow's demo kernels: echo, saxpy,
//     score, and the stateful vwap). A program adds its own kernels with RINGFLOW_CUDA_KERNELS(K1, K2, ...) in one of
//     its own .cu files: that instantiates a table of the demo kernels followed by K1, K2, ... and registers it at
//     static initialisation; devices opened afterwards serve that table.
//   * A kernel plugin with device code brings its table the same way (the host registers it when
//     it loads the plugin, with the plugin's file as its origin).
//   * At most one user table per backend: a second registration (another RINGFLOW_CUDA_KERNELS,
//     another plugin's, or one of each), or a table whose kernel names repeat, is recorded as an
//     error that opening a device of that backend reports (std::invalid_argument naming both
//     origins), never a silent choice. One persistent kernel per device serves one table: to put
//     kernels of several libraries on one device, list them in one table (one plugin).
// Thread-safety: register_kernel_table() runs during static initialisation (or any time before
// devices are opened); lookups from any thread (a mutex guards the registry).
#pragma once

#include <cstdint>
#include <string>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/persistent.hpp"

namespace ringflow::gpu {

/// Launches the persistent kernel: `blocks` x `threads` on `stream` (cudaStream_t / hipStream_t /
/// the emulator's stream). Returns the runtime's error code (0 = success).
using launch_fn = int (*)(unsigned blocks, unsigned threads, void* stream, const persistent_args& args);

struct kernel_table_info {
  const char* backend = nullptr;  // "cuda", "hip", "emulated"
  std::uint32_t size = 0;
  const char* (*name)(std::uint32_t) = nullptr;
  type_id (*request_type)(std::uint32_t) = nullptr;
  type_id (*reply_type)(std::uint32_t) = nullptr;
  launch_fn launch = nullptr;
  /// Bytes of the state of the kernel at an index (0: stateless; kernel.hpp "stateful"). Null: no
  /// kernel of the table keeps state (a plugin's table: plugin ABI v1 carries no state).
  std::uint32_t (*state_bytes)(std::uint32_t) = nullptr;
  /// Where the table came from, for errors: nullptr = the program's own RINGFLOW_CUDA_KERNELS;
  /// a kernel plugin's table names its file ("plugin /path/libx.so").
  const char* origin = nullptr;
};

/// The table of a program: the demo kernels first, then its own.
template <class... Ks>
using table_with_demos = kernel_table<demo_kernels::EchoKernel, demo_kernels::SaxpyKernel, demo_kernels::ScoreKernel,
                                      demo_kernels::VwapKernel, Ks...>;

/// Host-side: Table::state_bytes (a plain function for kernel_table_info).
template <class Table>
std::uint32_t table_state_bytes(std::uint32_t index) {
  return index < Table::size ? Table::state_bytes(index) : 0;
}

template <class Table>
kernel_table_info describe_table(const char* backend, launch_fn launch) {
  kernel_table_info t;
  t.backend = backend;
  t.size = Table::size;
  t.name = &Table::name;
  t.request_type = &Table::request_type;
  t.reply_type = &Table::reply_type;
  t.launch = launch;
  if constexpr (Table::max_state_bytes != 0) t.state_bytes = &table_state_bytes<Table>;
  return t;
}

/// Registers a program's own table for its backend (RINGFLOW_CUDA_KERNELS does this). Returns
/// true; conflicts are reported when a device opens (see the contract).
bool register_kernel_table(const kernel_table_info& table) noexcept;

/// The table devices of `backend` serve: the registered one, else `builtin`. Throws
/// std::invalid_argument for a registration conflict or repeated kernel names.
kernel_table_info select_kernel_table(const char* backend, const kernel_table_info& builtin);

/// Index of `kernel` in `table`, or table.size when absent.
std::uint32_t kernel_index(const kernel_table_info& table, const std::string& kernel);

}  // namespace ringflow::gpu
