// kernels.cu — the program's own GPU kernel table: the demo kernels + ClampKernel. This one line
// instantiates the persistent ring kernel for that table and registers it before main(); every
// CUDA device the program opens then serves "clamp" next to "echo", "saxpy" and "score".
// Build with --fmad=false so float replies are bit-identical to the CPU backend's.
#include "../custom_kernel/clamp_kernel.hpp"
#include "ringflow/gpu/persistent_kernel.cuh"

RINGFLOW_CUDA_KERNELS(example::ClampKernel)
