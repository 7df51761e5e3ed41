// ringflow/runtime/devices.hpp — what `ringflow devices` lists: the devices this machine offers.
//
// Contract
//   * discover_devices() always lists cpu:0 (the CPU backend) and sim:0 (the sim device: the CPU
//     backend behind the fault injector), both available; then CUDA and HIP devices, found at run
//     time through the vendors' driver libraries opened with dlopen (libcuda.so.1: the CUDA driver
//     API; libamdhip64.so: HIP), so the program has no link-time GPU dependency and runs on
//     machines without any. Each GPU found is one entry (cuda:N, hip:N) with its name, memory and
//     compute capability; when none can be used, one entry per vendor says why (available false,
//     detail "no CUDA device: ..." / "no HIP device: ..."), e.g. no driver installed or cuInit
//     failing with CUDA_ERROR_NO_DEVICE.
//   * Listing a device does not mean ringflow has a backend for it yet: `detail` says when the
//     backend is not built (the GPU backends are their own issue).
//   * The driver libraries stay loaded (never dlclose'd): unloading GPU drivers at exit is a known
//     source of crashes, and the process needs them again for a GPU backend anyway.
// Thread-safety: discover_devices() may be called from any thread (it probes each time).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ringflow::ops {

struct device_info {
  std::string id;       // "cpu:0", "sim:0", "cuda:0", "hip:0"; "cuda"/"hip" for a vendor with none
  std::string backend;  // "cpu", "sim", "cuda", "hip"
  std::string name;
  bool available = false;
  std::string detail;
  std::uint64_t memory_bytes = 0;
};

std::vector<device_info> discover_devices();
nlohmann::json to_json(const std::vector<device_info>& devices);
std::string to_table(const std::vector<device_info>& devices);
/// Any available device of `backend`?
bool backend_available(const std::vector<device_info>& devices, const std::string& backend);

}  // namespace ringflow::ops
