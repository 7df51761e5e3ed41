// ringflow/runtime/devices.hpp — what `ringflow devices` lists: the devices this machine offers.
//
// Contract
//   * discover_devices() always lists cpu:0 (the CPU backend; memory_bytes = physical host memory)
//     and sim:0 (the sim device: the CPU backend behind the fault injector), both available; then
//     CUDA and HIP devices, found at run time through the vendors' driver libraries opened with
//     dlopen (libcuda.so.1: the CUDA driver API, not libcudart; libamdhip64.so[.5|.6]: HIP), so the
//     program has no link-time GPU dependency and runs on machines without any GPU or driver.
//   * Per vendor, either every entry is a device (cuda:N / hip:N with its name and
//     memory; CUDA adds compute capability and driver version to `detail`), or there is exactly one
//     entry with id "cuda" / "hip", available false and detail "no CUDA device: <why>" /
//     "no HIP device: <why>" — the library is missing, init or the device count failed (e.g.
//     CUDA_ERROR_NO_DEVICE, or hipErrorNoDevice where hipcc is installed without an AMD GPU), or the
//     driver reports 0 devices. Only a device whose own queries fail (name, memory) breaks this
//     shape: it is listed as cuda:N / hip:N with available false and the failing call in `detail`.
//   * Probing never throws and never aborts the process: every driver error becomes a `detail`.
//   * A listed GPU is `available` only when ringflow can use it: this build has its backend
//     (ringflow_backend_cuda / _hip) and that backend's runtime opens it and can map host memory
//     (gpu::probe_cuda / probe_hip). Otherwise available is false and `detail` says why ("ringflow
//     was built without its cuda backend", "the cuda runtime cannot use it: ...", "cannot map host
//     memory"); a vendor without devices gets the backend runtime's own reason appended.
//   * The driver libraries stay loaded (never dlclose'd): unloading GPU drivers while their
//     threads and atexit handlers are live is a known source of crashes at exit, and a GPU backend
//     in the same process needs them again anyway.
// Thread-safety: discover_devices() may be called from any thread, also concurrently (it probes
// anew each time; dlopen and cuInit are thread-safe). The other functions are pure.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ringflow::ops {

struct device_info {
  std::string id;       // "cpu:0", "sim:0", "cuda:0", "hip:0"; "cuda"/"hip" for a vendor with none
  std::string backend;  // "cpu", "sim", "cuda", "hip"
  std::string name;     // e.g. "NVIDIA H100 80GB HBM3", "host CPU (16 threads)"
  bool available = false;
  std::string detail;  // why not available, or extra facts (compute capability, driver version)
  std::uint64_t memory_bytes = 0;
};

std::vector<device_info> discover_devices();
/// [{"id", "backend", "name", "available", "detail", "memory_bytes"}, ...] in the given order.
nlohmann::json to_json(const std::vector<device_info>& devices);
/// Aligned columns (ID, BACKEND, NAME, AVAILABLE, MEMORY, DETAIL) with a header line, for a terminal.
std::string to_table(const std::vector<device_info>& devices);
/// Any available device of `backend`?
bool backend_available(const std::vector<device_info>& devices, const std::string& backend);

}  // namespace ringflow::ops
