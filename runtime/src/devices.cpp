// Device discovery: see ringflow/runtime/devices.hpp.
#include "ringflow/runtime/devices.hpp"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <thread>

namespace ringflow::ops {
namespace {

void* open_first(std::initializer_list<const char*> names, std::string& why) {
  for (const char* n : names)
    if (void* h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) return h;
  const char* e = dlerror();
  why = std::string(*names.begin()) + " not found" + (e ? std::string(" (") + e + ")" : std::string());
  return nullptr;
}

template <class F>
F sym(void* h, const char* name) {
  return reinterpret_cast<F>(dlsym(h, name));
}

std::string gib(std::uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.1f GiB", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
  return s;
}

void probe_cuda(std::vector<device_info>& out) {
  using CUresult = int;
  using CUdevice = int;
  std::string why;
  void* h = open_first({"libcuda.so.1", "libcuda.so"}, why);
  auto none = [&](const std::string& reason) {
    out.push_back({"cuda", "cuda", "CUDA", false, "no CUDA device: " + reason, 0});
  };
  if (!h) return none(why + "; no NVIDIA driver");
  auto cuInit = sym<CUresult (*)(unsigned)>(h, "cuInit");
  auto cuDeviceGetCount = sym<CUresult (*)(int*)>(h, "cuDeviceGetCount");
  auto cuDeviceGet = sym<CUresult (*)(CUdevice*, int)>(h, "cuDeviceGet");
  auto cuDeviceGetName = sym<CUresult (*)(char*, int, CUdevice)>(h, "cuDeviceGetName");
  auto cuDeviceTotalMem = sym<CUresult (*)(std::size_t*, CUdevice)>(h, "cuDeviceTotalMem_v2");
  auto cuDeviceGetAttribute = sym<CUresult (*)(int*, int, CUdevice)>(h, "cuDeviceGetAttribute");
  auto cuDriverGetVersion = sym<CUresult (*)(int*)>(h, "cuDriverGetVersion");
  auto cuGetErrorName = sym<CUresult (*)(CUresult, const char**)>(h, "cuGetErrorName");
  if (!cuInit || !cuDeviceGetCount || !cuDeviceGet || !cuDeviceGetName)
    return none("libcuda.so.1 lacks the driver API entry points");
  auto err = [&](CUresult r) {
    const char* n = nullptr;
    if (cuGetErrorName) cuGetErrorName(r, &n);
    return std::string(n ? n : "CUDA error") + " (" + std::to_string(r) + ")";
  };
  if (CUresult r = cuInit(0); r != 0) return none("cuInit failed: " + err(r));
  int count = 0;
  if (CUresult r = cuDeviceGetCount(&count); r != 0) return none("cuDeviceGetCount failed: " + err(r));
  if (count == 0) return none("the driver reports 0 devices");
  int driver = 0;
  if (cuDriverGetVersion) cuDriverGetVersion(&driver);
  for (int i = 0; i < count; ++i) {
    CUdevice d = 0;
    device_info info{"cuda:" + std::to_string(i), "cuda", "", false, "", 0};
    if (CUresult r = cuDeviceGet(&d, i); r != 0) {
      info.detail = "cuDeviceGet failed: " + err(r);
      out.push_back(info);
      continue;
    }
    char name[256] = {};
    cuDeviceGetName(name, sizeof name, d);
    info.name = name;
    std::size_t mem = 0;
    if (cuDeviceTotalMem && cuDeviceTotalMem(&mem, d) == 0) info.memory_bytes = mem;
    int major = 0, minor = 0;
    if (cuDeviceGetAttribute) {
      cuDeviceGetAttribute(&major, 75, d);  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
      cuDeviceGetAttribute(&minor, 76, d);  // ..._MINOR
    }
    info.available = true;
    info.detail = "compute capability " + std::to_string(major) + "." + std::to_string(minor) + ", driver " +
                  std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) + ", " + gib(mem) +
                  "; ringflow's CUDA backend is not built yet (ring nodes run on sim/cpu)";
    out.push_back(info);
  }
}

void probe_hip(std::vector<device_info>& out) {
  using hipError_t = int;
  std::string why;
  void* h = open_first({"libamdhip64.so", "libamdhip64.so.5", "libamdhip64.so.6"}, why);
  auto none = [&](const std::string& reason) { out.push_back({"hip", "hip", "HIP", false, "no HIP device: " + reason, 0}); };
  if (!h) return none(why + "; no HIP runtime");
  auto hipGetDeviceCount = sym<hipError_t (*)(int*)>(h, "hipGetDeviceCount");
  auto hipDeviceGetName = sym<hipError_t (*)(char*, int, int)>(h, "hipDeviceGetName");
  auto hipDeviceTotalMem = sym<hipError_t (*)(std::size_t*, int)>(h, "hipDeviceTotalMem");
  auto hipGetErrorName = sym<const char* (*)(hipError_t)>(h, "hipGetErrorName");
  if (!hipGetDeviceCount) return none("libamdhip64 lacks hipGetDeviceCount");
  int count = 0;
  if (hipError_t r = hipGetDeviceCount(&count); r != 0) {
    const char* n = hipGetErrorName ? hipGetErrorName(r) : nullptr;
    return none(std::string("hipGetDeviceCount failed: ") + (n ? n : "HIP error") + " (" + std::to_string(r) + ")");
  }
  if (count == 0) return none("the runtime reports 0 devices");
  for (int i = 0; i < count; ++i) {
    device_info info{"hip:" + std::to_string(i), "hip", "", true, "ringflow's HIP backend is not built yet", 0};
    char name[256] = {};
    if (hipDeviceGetName) hipDeviceGetName(name, sizeof name, i);
    info.name = name;
    std::size_t mem = 0;
    if (hipDeviceTotalMem && hipDeviceTotalMem(&mem, i) == 0) info.memory_bytes = mem;
    out.push_back(info);
  }
}

}  // namespace

std::vector<device_info> discover_devices() {
  std::vector<device_info> d;
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  d.push_back({"cpu:0", "cpu", "host CPU (" + std::to_string(threads) + " hardware threads)", true,
               "CPU backend: one kernel thread per ring actor", 0});
  d.push_back({"sim:0", "sim", "sim (the CPU backend behind the fault injector)", true,
               "for supervised demos and fault tests; one sim device per ring node at run time", 0});
  probe_cuda(d);
  probe_hip(d);
  return d;
}

nlohmann::json to_json(const std::vector<device_info>& devices) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : devices)
    a.push_back({{"id", x.id}, {"backend", x.backend}, {"name", x.name}, {"available", x.available},
                 {"detail", x.detail}, {"memory_bytes", x.memory_bytes}});
  return a;
}

std::string to_table(const std::vector<device_info>& devices) {
  std::size_t wi = 2, wb = 7, wn = 4;
  for (const auto& x : devices) {
    wi = std::max(wi, x.id.size());
    wb = std::max(wb, x.backend.size());
    wn = std::max(wn, x.name.size());
  }
  auto pad = [](std::string s, std::size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  std::string t = pad("ID", wi) + "  " + pad("BACKEND", wb) + "  " + pad("NAME", wn) + "  AVAILABLE  DETAIL\n";
  for (const auto& x : devices)
    t += pad(x.id, wi) + "  " + pad(x.backend, wb) + "  " + pad(x.name, wn) + "  " + pad(x.available ? "yes" : "no", 9) +
         "  " + x.detail + "\n";
  return t;
}

bool backend_available(const std::vector<device_info>& devices, const std::string& backend) {
  for (const auto& x : devices)
    if (x.backend == backend && x.available) return true;
  return false;
}

}  // namespace ringflow::ops
