// Device discovery: see ringflow/runtime/devices.hpp. The GPU vendors' libraries are opened with
// dlopen and only the few entry points needed are declared here, so ringflow builds and runs
// without any GPU toolkit or driver (this machine and CI have none).
#include "ringflow/runtime/devices.hpp"
#include "ringflow/runtime/gpu_backends.hpp"

#include "ringflow/gpu/gpu_device.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <optional>
#include <string_view>
#include <thread>

namespace ringflow::ops {
namespace {

// Opens the first library of `names` that loads. Otherwise returns nullptr and says why, in terms
// of the first (preferred) name: "not found (<absent_means>)" when it is absent, else the loader's own
// error (a library that exists but cannot load, e.g. a missing dependency, is worth seeing verbatim).
void* open_first(std::initializer_list<const char*> names, const char* absent_means, std::string& why) {
  std::string first_error;
  for (const char* n : names) {
    if (void* h = dlopen(n, RTLD_NOW | RTLD_LOCAL)) return h;
    const char* e = dlerror();
    if (first_error.empty()) first_error = e ? e : "";
  }
  const std::string first = *names.begin();
  if (first_error.empty() || first_error.find("No such file") != std::string::npos)
    why = first + " not found (" + absent_means + ")";
  else why = first + " could not be loaded: " + first_error;
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

std::string host_cpu_name() {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  return "host CPU (" + std::to_string(threads) + " threads)";
}

std::uint64_t host_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) : 0;
}

// The CUDA driver API (cuda.h), declared by hand: CUresult and CUdevice are ints, 0 is CUDA_SUCCESS.
void probe_cuda(std::vector<device_info>& out) {
  using CUresult = int;
  using CUdevice = int;
  constexpr int attr_cc_major = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
  constexpr int attr_cc_minor = 76;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
  auto none = [&](const std::string& reason) {
    out.push_back({"cuda", "cuda", "CUDA", false, "no CUDA device: " + reason, 0});
  };
  // Only the driver's soname: the unversioned libcuda.so is the toolkit's link stub, which loads
  // on driverless machines and fails every call with CUDA_ERROR_STUB_LIBRARY.
  std::string why;
  void* h = open_first({"libcuda.so.1"}, "no NVIDIA driver", why);
  if (!h) return none(why);
  const auto cuInit = sym<CUresult (*)(unsigned)>(h, "cuInit");
  const auto cuDeviceGetCount = sym<CUresult (*)(int*)>(h, "cuDeviceGetCount");
  const auto cuDeviceGet = sym<CUresult (*)(CUdevice*, int)>(h, "cuDeviceGet");
  const auto cuDeviceGetName = sym<CUresult (*)(char*, int, CUdevice)>(h, "cuDeviceGetName");
  const auto cuDeviceTotalMem = sym<CUresult (*)(std::size_t*, CUdevice)>(h, "cuDeviceTotalMem_v2");
  const auto cuDeviceGetAttribute = sym<CUresult (*)(int*, int, CUdevice)>(h, "cuDeviceGetAttribute");
  const auto cuDriverGetVersion = sym<CUresult (*)(int*)>(h, "cuDriverGetVersion");
  const auto cuGetErrorName = sym<CUresult (*)(CUresult, const char**)>(h, "cuGetErrorName");
  const auto cuGetErrorString = sym<CUresult (*)(CUresult, const char**)>(h, "cuGetErrorString");
  if (!cuInit || !cuDeviceGetCount || !cuDeviceGet || !cuDeviceGetName || !cuDeviceTotalMem)
    return none("libcuda.so.1 lacks the driver API entry points (cuInit, cuDeviceGet*, cuDeviceTotalMem_v2)");
  // "CUDA_ERROR_NO_DEVICE (100): no CUDA-capable device is detected"
  auto err = [&](CUresult r) {
    const char* n = nullptr;
    const char* s = nullptr;
    if (cuGetErrorName && cuGetErrorName(r, &n) != 0) n = nullptr;
    if (cuGetErrorString && cuGetErrorString(r, &s) != 0) s = nullptr;
    return std::string(n ? n : "CUDA error") + " (" + std::to_string(r) + ")" + (s ? std::string(": ") + s : "");
  };
  if (const CUresult r = cuInit(0); r != 0) return none("cuInit failed: " + err(r));
  int count = 0;
  if (const CUresult r = cuDeviceGetCount(&count); r != 0) return none("cuDeviceGetCount failed: " + err(r));
  if (count <= 0) return none("the driver reports 0 devices");
  int driver = 0;
  if (!cuDriverGetVersion || cuDriverGetVersion(&driver) != 0) driver = 0;
  const std::string driver_text =
      driver > 0 ? std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) : std::string("unknown");
  for (int i = 0; i < count; ++i) {
    device_info info{"cuda:" + std::to_string(i), "cuda", "", false, "", 0};
    CUdevice d = 0;
    char name[256] = {};
    std::size_t mem = 0;
    if (const CUresult r = cuDeviceGet(&d, i); r != 0) {
      info.detail = "cuDeviceGet failed: " + err(r);
    } else if (const CUresult r = cuDeviceGetName(name, static_cast<int>(sizeof name) - 1, d); r != 0) {
      info.detail = "cuDeviceGetName failed: " + err(r);
    } else if (const CUresult r = cuDeviceTotalMem(&mem, d); r != 0) {
      info.name = name;
      info.detail = "cuDeviceTotalMem_v2 failed: " + err(r);
    } else {
      int major = 0, minor = 0;
      if (!cuDeviceGetAttribute || cuDeviceGetAttribute(&major, attr_cc_major, d) != 0 ||
          cuDeviceGetAttribute(&minor, attr_cc_minor, d) != 0)
        major = minor = 0;
      info.name = name;
      info.memory_bytes = mem;
      info.available = true;
      const std::string cc = major > 0 ? std::to_string(major) + "." + std::to_string(minor) : "unknown";
      info.detail = "compute capability " + cc + ", driver " + driver_text;
    }
    out.push_back(std::move(info));
  }
}

// The HIP runtime (hip_runtime_api.h), declared by hand: hipError_t is an int, 0 is hipSuccess, and
// hipDevice_t is the device ordinal.
void probe_hip(std::vector<device_info>& out) {
  using hipError_t = int;
  auto none = [&](const std::string& reason) {
    out.push_back({"hip", "hip", "HIP", false, "no HIP device: " + reason, 0});
  };
  std::string why;
  void* h = open_first({"libamdhip64.so", "libamdhip64.so.5", "libamdhip64.so.6"}, "no HIP runtime", why);
  if (!h) return none(why);
  const auto hipGetDeviceCount = sym<hipError_t (*)(int*)>(h, "hipGetDeviceCount");
  const auto hipDeviceGetName = sym<hipError_t (*)(char*, int, int)>(h, "hipDeviceGetName");
  const auto hipDeviceTotalMem = sym<hipError_t (*)(std::size_t*, int)>(h, "hipDeviceTotalMem");
  const auto hipGetErrorName = sym<const char* (*)(hipError_t)>(h, "hipGetErrorName");
  if (!hipGetDeviceCount || !hipDeviceGetName || !hipDeviceTotalMem)
    return none("libamdhip64 lacks hipGetDeviceCount/hipDeviceGetName/hipDeviceTotalMem");
  auto err = [&](hipError_t r) {
    const char* n = hipGetErrorName ? hipGetErrorName(r) : nullptr;
    return std::string(n ? n : "HIP error") + " (" + std::to_string(r) + ")";
  };
  // With hipcc installed but no AMD GPU (this machine) this fails with hipErrorNoDevice (100).
  int count = 0;
  if (const hipError_t r = hipGetDeviceCount(&count); r != 0) return none("hipGetDeviceCount failed: " + err(r));
  if (count <= 0) return none("the runtime reports 0 devices");
  for (int i = 0; i < count; ++i) {
    device_info info{"hip:" + std::to_string(i), "hip", "", false, "", 0};
    char name[256] = {};
    std::size_t mem = 0;
    if (const hipError_t r = hipDeviceGetName(name, static_cast<int>(sizeof name) - 1, i); r != 0) {
      info.detail = "hipDeviceGetName failed: " + err(r);
    } else if (const hipError_t r = hipDeviceTotalMem(&mem, i); r != 0) {
      info.name = name;
      info.detail = "hipDeviceTotalMem failed: " + err(r);
    } else {
      info.name = name;
      info.memory_bytes = mem;
      info.available = true;
      info.detail = "";
    }
    out.push_back(std::move(info));
  }
}

void append(std::string& detail, const std::string& more) { detail += (detail.empty() ? "" : "; ") + more; }

// Marks the driver's devices of `backend` with what ringflow's backend (when built) says of them.
void annotate_backend(std::vector<device_info>& d, const std::string& backend, const std::optional<gpu::gpu_probe>& p) {
  for (device_info& x : d) {
    if (x.backend != backend) continue;
    if (!p) {
      x.available = false;
      append(x.detail, "ringflow was built without its " + backend + " backend (no " +
                           (backend == "cuda" ? "nvcc" : "hipcc") + " at build time)");
      continue;
    }
    if (x.id == backend) {  // the driver found none: add the backend runtime's own words
      append(x.detail, "backend runtime: " + p->detail);
      continue;
    }
    const int ordinal = std::atoi(x.id.substr(backend.size() + 1).c_str());
    const auto it = std::find_if(p->devices.begin(), p->devices.end(),
                                 [&](const gpu::gpu_info& i) { return i.ordinal == ordinal; });
    if (it == p->devices.end()) {
      x.available = false;
      append(x.detail, "the " + backend + " runtime cannot use it: " + p->detail);
    } else if (!it->can_map_host_memory) {
      x.available = false;
      append(x.detail, "cannot map host memory (ring kernels need it)");
    } else {
      append(x.detail, it->arch + ", " + std::to_string(it->multiprocessors) + " multiprocessors, maps host memory; " +
                           backend + " backend: one persistent kernel hosting the ring actors");
    }
  }
}

}  // namespace

std::vector<device_info> discover_devices() {
  std::vector<device_info> d;
  d.push_back(
      {"cpu:0", "cpu", host_cpu_name(), true, "CPU backend: one kernel thread per ring actor", host_memory_bytes()});
  // memory_bytes 0: the sim device shares the host memory already counted for cpu:0.
  d.push_back({"sim:0", "sim", "sim (CPU backend behind a fault injector)", true,
               "for supervised demos and fault tests; one sim device per ring node at run time", 0});
  probe_cuda(d);
  probe_hip(d);
  // What ringflow itself can use: a listed device is available only when this build has its
  // backend and that backend's runtime can open it (and map host memory, which rings need).
  for (const char* backend : {"cuda", "hip"}) {
    std::optional<gpu::gpu_probe> p;
    if (std::optional<gpu_backend> b = find_gpu_backend(backend); b && b->probe) p = b->probe();
    annotate_backend(d, backend, p);
  }
  return d;
}

nlohmann::json to_json(const std::vector<device_info>& devices) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& x : devices)
    a.push_back({{"id", x.id},
                 {"backend", x.backend},
                 {"name", x.name},
                 {"available", x.available},
                 {"detail", x.detail},
                 {"memory_bytes", x.memory_bytes}});
  return a;
}

std::string to_table(const std::vector<device_info>& devices) {
  struct row {
    std::string id, backend, name, available, memory, detail;
  };
  std::vector<row> rows{{"ID", "BACKEND", "NAME", "AVAILABLE", "MEMORY", "DETAIL"}};
  for (const auto& x : devices)
    rows.push_back(
        {x.id, x.backend, x.name, x.available ? "yes" : "no", x.memory_bytes ? gib(x.memory_bytes) : "-", x.detail});
  std::size_t w[5] = {};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.id.size());
    w[1] = std::max(w[1], r.backend.size());
    w[2] = std::max(w[2], r.name.size());
    w[3] = std::max(w[3], r.available.size());
    w[4] = std::max(w[4], r.memory.size());
  }
  auto cell = [](std::string& t, std::string_view s, std::size_t width) {
    t += s;
    t.append(width - s.size() + 2, ' ');
  };
  std::string t;
  for (const auto& r : rows) {
    cell(t, r.id, w[0]);
    cell(t, r.backend, w[1]);
    cell(t, r.name, w[2]);
    cell(t, r.available, w[3]);
    cell(t, r.memory, w[4]);
    t += r.detail;
    t += '\n';
  }
  return t;
}

bool backend_available(const std::vector<device_info>& devices, const std::string& backend) {
  return std::any_of(devices.begin(), devices.end(),
                     [&](const device_info& x) { return x.backend == backend && x.available; });
}

}  // namespace ringflow::ops
