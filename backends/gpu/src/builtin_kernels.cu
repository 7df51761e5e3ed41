// The built-in kernel table of a GPU backend library (the demo kernels), compiled by nvcc into
// ringflow_backend_cuda and by hipcc into ringflow_backend_hip.
#include "ringflow/gpu/persistent_kernel.cuh"

namespace ringflow::gpu {

kernel_table_info RINGFLOW_GPU_BUILTIN_TABLE() {
  using table = table_with_demos<>;
  return describe_table<table>(RINGFLOW_GPU_BACKEND_NAME, &launch_persistent<table>);
}

}  // namespace ringflow::gpu
