// gpu_api.hpp (private) — the thin portability layer under the GPU device: the handful of runtime
// calls gpu_device.cpp makes, for CUDA (cuda_runtime_api.h), HIP (hip_runtime_api.h), or the
// host emulator used by CI's tests (emulated_api.cpp: "device" memory is host memory, the
// persistent kernel's workers are std::threads). Exactly one of RINGFLOW_GPU_API_CUDA,
// RINGFLOW_GPU_API_HIP, RINGFLOW_GPU_API_EMULATED is defined by the build; RINGFLOW_GPU_NS names
// the namespace the device implementation lives in (cuda / hip / emulated) so that the CUDA and
// HIP libraries can be linked into one program. No logic here beyond translating calls and codes.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>

#include "ringflow/control_block.hpp"
#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/gpu/kernel_registry.hpp"

#if defined(RINGFLOW_GPU_API_CUDA)
#include <cuda_runtime_api.h>
#elif defined(RINGFLOW_GPU_API_HIP)
#ifndef __HIP_PLATFORM_AMD__
#define __HIP_PLATFORM_AMD__ 1
#endif
#include <hip/hip_runtime_api.h>
#elif !defined(RINGFLOW_GPU_API_EMULATED)
#error "define one of RINGFLOW_GPU_API_CUDA / _HIP / _EMULATED"
#endif

namespace ringflow::gpu::RINGFLOW_GPU_NS::api {

using error = int;
inline constexpr error success = 0;
using stream = void*;

/// What a kernel-level runtime error means for the ring actors (see classify()).
struct fault_kind {
  kernel_error code = kernel_error::internal;
  bool sticky = false;  // the context is poisoned: only a new process clears it
};

#if defined(RINGFLOW_GPU_API_CUDA) || defined(RINGFLOW_GPU_API_HIP)
#if defined(RINGFLOW_GPU_API_CUDA)
#define RINGFLOW_RT(name) cuda##name
using rt_error = cudaError_t;
inline constexpr const char* backend = "cuda";
#else
#define RINGFLOW_RT(name) hip##name
using rt_error = hipError_t;
inline constexpr const char* backend = "hip";
#endif
inline rt_error rt(error e) { return static_cast<rt_error>(e); }

/// The module loading mode the driver was (or will be) initialised with: "" when eager (what
/// ringflow needs, see gpu_device.hpp), else the environment's value. CUDA only; HIP: "".
inline std::string module_loading_note() {
#if defined(RINGFLOW_GPU_API_CUDA)
  const char* v = std::getenv("CUDA_MODULE_LOADING");
  if (v && std::string(v) == "EAGER") return {};
  return std::string("module loading ") + (v ? v : "unset (lazy by default)") +
         ": another kernel's first launch may wait for the persistent kernel";
#else
  return {};
#endif
}
inline const char* error_name(error e) { return RINGFLOW_RT(GetErrorName)(rt(e)); }
inline const char* error_string(error e) { return RINGFLOW_RT(GetErrorString)(rt(e)); }
inline error device_count(int& n) { return RINGFLOW_RT(GetDeviceCount)(&n); }
inline error set_device(int ordinal) { return RINGFLOW_RT(SetDevice)(ordinal); }
/// The current device is per thread: every thread that calls the runtime selects it first.
inline void use_device(int ordinal) { set_device(ordinal); }
inline error versions(int& driver, int& runtime) {
  const error e = RINGFLOW_RT(DriverGetVersion)(&driver);
  return e != success ? e : RINGFLOW_RT(RuntimeGetVersion)(&runtime);
}
inline error describe(int ordinal, gpu_info& out) {
  out.ordinal = ordinal;
  int v = 0;
#if defined(RINGFLOW_GPU_API_CUDA)
  char name[256] = {};
  if (const error e = cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, ordinal); e != success) return e;
  int minor = 0;
  if (const error e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, ordinal); e != success)
    return e;
  out.arch = "sm_" + std::to_string(v * 10 + minor);
  cudaDeviceProp p{};
  if (const error e = cudaGetDeviceProperties(&p, ordinal); e != success) return e;
  for (std::size_t i = 0; i + 1 < sizeof name && p.name[i]; ++i) name[i] = p.name[i];
  out.name = name;
  out.memory_bytes = p.totalGlobalMem;
  if (const error e = cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, ordinal); e != success) return e;
  out.multiprocessors = v;
  if (const error e = cudaDeviceGetAttribute(&v, cudaDevAttrWarpSize, ordinal); e != success) return e;
  out.warp_size = v;
  if (const error e = cudaDeviceGetAttribute(&v, cudaDevAttrCanMapHostMemory, ordinal); e != success) return e;
  out.can_map_host_memory = v != 0;
#else
  hipDeviceProp_t p{};
  if (const error e = hipGetDeviceProperties(&p, ordinal); e != success) return e;
  out.name = p.name;
  out.arch = p.gcnArchName;
  out.memory_bytes = p.totalGlobalMem;
  out.multiprocessors = p.multiProcessorCount;
  out.warp_size = p.warpSize;
  if (const error e = hipDeviceGetAttribute(&v, hipDeviceAttributeCanMapHostMemory, ordinal); e != success) return e;
  out.can_map_host_memory = v != 0;
#endif
  return success;
}
inline error host_alloc_mapped(void** p, std::size_t n) {
#if defined(RINGFLOW_GPU_API_CUDA)
  return cudaHostAlloc(p, n, cudaHostAllocMapped | cudaHostAllocPortable);
#else
  return hipHostMalloc(p, n, hipHostMallocMapped | hipHostMallocCoherent | hipHostMallocPortable);
#endif
}
inline error device_pointer(void** dev, void* host) { return RINGFLOW_RT(HostGetDevicePointer)(dev, host, 0); }
/// Pins and maps memory the caller allocated (a shared-memory segment) for the device.
inline error host_register(void* p, std::size_t n) {
#if defined(RINGFLOW_GPU_API_CUDA)
  return cudaHostRegister(p, n, cudaHostRegisterMapped | cudaHostRegisterPortable);
#else
  return hipHostRegister(p, n, hipHostRegisterMapped | hipHostRegisterPortable);
#endif
}
inline error host_unregister(void* p) { return RINGFLOW_RT(HostUnregister)(p); }
inline error device_alloc(void** p, std::size_t n) { return RINGFLOW_RT(Malloc)(p, n); }
inline error free_host(void* p) {
#if defined(RINGFLOW_GPU_API_CUDA)
  return cudaFreeHost(p);
#else
  return hipHostFree(p);
#endif
}
inline error free_device(void* p) { return RINGFLOW_RT(Free)(p); }
/// Creates the device's primary context now (what the first real call would otherwise pay).
inline error init_context(int ordinal) {
  if (const error e = set_device(ordinal); e != success) return e;
  return RINGFLOW_RT(Free)(nullptr);
}
inline error stream_create(stream& s) {
  RINGFLOW_RT(Stream_t) st = nullptr;
  const error e = RINGFLOW_RT(StreamCreateWithFlags)(&st, RINGFLOW_RT(StreamNonBlocking));
  s = st;
  return e;
}
inline error stream_destroy(stream s) { return RINGFLOW_RT(StreamDestroy)(static_cast<RINGFLOW_RT(Stream_t)>(s)); }
inline error memset_async(void* p, int v, std::size_t n, stream s) {
  return RINGFLOW_RT(MemsetAsync)(p, v, n, static_cast<RINGFLOW_RT(Stream_t)>(s));
}
inline error stream_query(stream s) { return RINGFLOW_RT(StreamQuery)(static_cast<RINGFLOW_RT(Stream_t)>(s)); }
inline bool not_ready(error e) { return e == RINGFLOW_RT(ErrorNotReady); }
inline error stream_synchronize(stream s) {
  return RINGFLOW_RT(StreamSynchronize)(static_cast<RINGFLOW_RT(Stream_t)>(s));
}
/// Clears a non-sticky error state of the calling thread.
inline error last_error() { return RINGFLOW_RT(GetLastError)(); }
inline error device_reset() { return RINGFLOW_RT(DeviceReset)(); }
/// Errors that poison the context (the CUDA programming guide's "sticky" errors: the process
/// must be restarted), errors that mean the device is gone, and the rest (transient).
inline fault_kind classify(error e) {
  switch (rt(e)) {
    case RINGFLOW_RT(ErrorIllegalAddress):
    case RINGFLOW_RT(ErrorLaunchFailure):
    case RINGFLOW_RT(ErrorAssert):
#if defined(RINGFLOW_GPU_API_CUDA)
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
#else
    case hipErrorIllegalState:
    case hipErrorLaunchTimeOut:
    case hipErrorECCNotCorrectable:
#endif
      return {kernel_error::device_fault, true};
    case RINGFLOW_RT(ErrorMemoryAllocation): return {kernel_error::out_of_memory, false};
    case RINGFLOW_RT(ErrorNoDevice):
#if defined(RINGFLOW_GPU_API_CUDA)
    case cudaErrorDevicesUnavailable:
#endif
      return {kernel_error::device_lost, true};
    default: return {kernel_error::internal, false};
  }
}
#undef RINGFLOW_RT

#else  // RINGFLOW_GPU_API_EMULATED: emulated_api.cpp
inline constexpr const char* backend = "emulated";
inline std::string module_loading_note() { return {}; }
const char* error_name(error e);
const char* error_string(error e);
error device_count(int& n);
error set_device(int ordinal);
inline void use_device(int ordinal) { set_device(ordinal); }
error versions(int& driver, int& runtime);
error describe(int ordinal, gpu_info& out);
error host_alloc_mapped(void** p, std::size_t n);
error device_pointer(void** dev, void* host);
error host_register(void* p, std::size_t n);
error host_unregister(void* p);
error device_alloc(void** p, std::size_t n);
error free_host(void* p);
error free_device(void* p);
error init_context(int ordinal);
error stream_create(stream& s);
error stream_destroy(stream s);
error memset_async(void* p, int v, std::size_t n, stream s);
error stream_query(stream s);
bool not_ready(error e);
error stream_synchronize(stream s);
error last_error();
error device_reset();
fault_kind classify(error e);
#endif

/// "<name>: <description>" of a runtime error, for messages.
inline std::string describe_error(error e) { return std::string(error_name(e)) + ": " + error_string(e); }

}  // namespace ringflow::gpu::RINGFLOW_GPU_NS::api
