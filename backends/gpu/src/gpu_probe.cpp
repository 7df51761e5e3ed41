// Discovery for one GPU backend: what devices the driver reports and whether ringflow can use them
// (compiled once per backend, like gpu_device.cpp). See ringflow/gpu/gpu_device.hpp (gpu_probe).
#include "gpu_api.hpp"

namespace ringflow::gpu::RINGFLOW_GPU_NS {

using api::describe_error;

#if defined(RINGFLOW_GPU_API_CUDA)
namespace {
// Eager module loading before main: before any CUDA call and before any thread (gpu_device.hpp).
// This object file is linked into every program that uses the CUDA backend (probe and open need it).
[[maybe_unused]] const bool g_eager_loading = (prepare_process(), true);
}  // namespace
#endif

gpu_probe probe() noexcept {
  gpu_probe p;
  p.backend = api::backend;
  try {
    int n = 0;
    if (const api::error e = api::device_count(n); e != api::success) {
      p.detail = std::string("no ") + api::backend + " device: " + describe_error(e);
      return p;
    }
    int driver = 0, runtime = 0;
    api::versions(driver, runtime);
    const std::string versions = "driver " + std::to_string(driver) + ", runtime " + std::to_string(runtime);
    if (n == 0) {
      p.detail = std::string("no ") + api::backend + " device: the driver reports 0 devices (" + versions + ")";
      return p;
    }
    std::string why;
    for (int i = 0; i < n; ++i) {
      gpu_info info;
      if (const api::error e = api::describe(i, info); e != api::success) {
        why += (why.empty() ? "" : "; ") + std::string("device ") + std::to_string(i) + ": " + describe_error(e);
        continue;
      }
      if (!info.can_map_host_memory) why += (why.empty() ? "" : "; ") + info.name + " cannot map host memory";
      p.usable = p.usable || info.can_map_host_memory;
      p.devices.push_back(std::move(info));
    }
    if (const std::string m = api::module_loading_note(); !m.empty()) why += (why.empty() ? "" : "; ") + m;
    p.detail = versions + (why.empty() ? "" : "; " + why);
  } catch (const std::exception& e) {
    p.detail = std::string("probe failed: ") + e.what();
  }
  return p;
}

}  // namespace ringflow::gpu::RINGFLOW_GPU_NS

namespace ringflow::gpu {
bool RINGFLOW_GPU_WARM_FN(int ordinal) noexcept {
  try {
    return RINGFLOW_GPU_NS::api::init_context(ordinal) == RINGFLOW_GPU_NS::api::success;
  } catch (...) {
    return false;
  }
}
}  // namespace ringflow::gpu
