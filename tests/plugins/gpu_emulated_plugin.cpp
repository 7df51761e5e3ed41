// A plugin with a device kernel table for the tests' emulated GPU runtime (support/gpu_emulator):
// the same table a .cu plugin's RINGFLOW_PLUGIN_GPU_KERNELS makes for CUDA, launched by the
// emulator instead (its launch function is the test program's: this plugin is built with
// ALLOW_UNDEFINED and the test exports its symbols). SECOND: another plugin with its own table
// (kernel fill2), which the one-table-per-backend rule refuses when a device opens.
#include "fill_kernel.hpp"
#include "ringflow/plugin.hpp"
#include "support/gpu_emulator.hpp"

#if defined(SECOND)
struct Fill2Kernel : FillKernel {
  static constexpr const char* name = "fill2";
};
RINGFLOW_KERNEL_PLUGIN(Fill2Kernel)
namespace {
using emulated_table = ringflow::gpu::table_with_demos<Fill2Kernel>;
}
#else
RINGFLOW_KERNEL_PLUGIN(FillKernel)
namespace {
using emulated_table = ringflow::gpu::table_with_demos<FillKernel>;
}
#endif
RINGFLOW_PLUGIN_GPU_TABLE("emulated", emulated_table, &ringflow::gpu::emulator::launch_table<emulated_table>)
