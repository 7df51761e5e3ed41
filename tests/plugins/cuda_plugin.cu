// The example plugin's kernel as a CUDA device table (RINGFLOW_PLUGIN_GPU_KERNELS), compiled by
// nvcc into a plugin next to examples/plugin_example/plugin.cpp: test_plugins loads it and checks
// the table the host registers. Without a GPU nothing launches it (docs/KERNELS.md says what a GPU
// run must still confirm).
#include "fill_kernel.hpp"
#include "ringflow/gpu/plugin_kernels.cuh"

RINGFLOW_PLUGIN_GPU_KERNELS(FillKernel)
