// ringflow/runtime/program.hpp — the `ringflow` program as a function, for a user's own
// ringflow-compatible program (their kernels compiled in, or more GPU backends linked).
//
//   #include <ringflow/plugin.hpp>
//   #include <ringflow/runtime/program.hpp>
//   #include "my_kernel.hpp"
//   RINGFLOW_KERNEL_PLUGIN(MyKernel)   // a plugin table compiled into the program itself
//   int main(int argc, char** argv) {
//     ringflow::ops::use_linked_gpu_backends();
//     if (!ringflow::ops::add_compiled_in_plugin(ringflow_plugin_v1(), "my-program")) return 3;
//     return ringflow::ops::program_main(argc, argv);
//   }
//
// Contract
//   * program_main() is the whole command line of docs/OPERATIONS.md (run, validate, devices,
//     kernel-host, --help, --version, the exit codes). Kernel-host workers are this same
//     executable (/proc/self/exe), so compiled-in kernels are in every worker too.
//   * add_compiled_in_plugin() puts a plugin table linked into the program (not a file) into the
//     catalog with the same checks as a loaded plugin (versions, duplicates, unknown types); false
//     with the reasons on stderr. Call it before program_main().
// Thread-safety: call from main() before any other thread runs.
#pragma once

#include <string>

#include "ringflow/plugin.hpp"
#include "ringflow/runtime/gpu_backends.hpp"

namespace ringflow::ops {

/// The `ringflow` program's main (see the contract).
int program_main(int argc, char** argv);

/// Adds a plugin table compiled into this program (see the contract); `origin` names it in errors.
bool add_compiled_in_plugin(const plugin_abi::table_v1* table, const std::string& origin);

}  // namespace ringflow::ops
