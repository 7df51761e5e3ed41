// The GPU tests' own kernel table: the demo kernels + TrapKernel and VwapTrapKernel, registered with the same
// RINGFLOW_CUDA_KERNELS line a program uses (compiled by nvcc for the CUDA test, by hipcc for the
// HIP test).
#include "ringflow/gpu/persistent_kernel.cuh"
#include "support/trap_kernel.hpp"

RINGFLOW_CUDA_KERNELS(ringflow::test::TrapKernel, ringflow::test::VwapTrapKernel)
