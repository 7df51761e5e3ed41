// ringflow/gpu/plugin_kernels.cuh — a kernel plugin's device kernel table. Include from ONE .cu file
// of the plugin (nvcc or hipcc), after ringflow/plugin.hpp's RINGFLOW_KERNEL_PLUGIN source:
//
//   #include <ringflow/gpu/plugin_kernels.cuh>
//   #include "quote_kernel.hpp"
//   RINGFLOW_PLUGIN_GPU_KERNELS(QuoteKernel)
//
// Contract: the table is echo, saxpy, score, vwap, then the listed kernels (as RINGFLOW_CUDA_KERNELS),
// with the persistent kernel instantiated in the plugin; the plugin's table carries it
// (plugin_abi::gpu_table_v1) and the host registers it when it loads the plugin, as if the program
// had compiled it in. One device table per backend per process: a second one (another plugin's,
// or the program's own RINGFLOW_CUDA_KERNELS) makes opening a device of that backend fail with
// both named (docs/KERNELS.md). The plugin links the GPU runtime shared (cudart / amdhip64), the
// same one the host uses, so the host's stream is the plugin's.
#pragma once

#include "ringflow/gpu/persistent_kernel.cuh"
#include "ringflow/plugin.hpp"

#define RINGFLOW_PLUGIN_GPU_KERNELS(...)                                              \
  namespace {                                                                         \
  using ringflow_plugin_gpu_table_t = ::ringflow::gpu::table_with_demos<__VA_ARGS__>; \
  }                                                                                   \
  RINGFLOW_PLUGIN_GPU_TABLE(RINGFLOW_GPU_BACKEND_NAME, ringflow_plugin_gpu_table_t,   \
                            &::ringflow::gpu::launch_persistent<ringflow_plugin_gpu_table_t>)
