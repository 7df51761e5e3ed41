// tests/gpu_worker_main.cpp — ringflow_test_gpu_worker: a kernel-host worker program (what
// `ringflow kernel-host` is to the service) for the GPU worker tests. Two builds of this source:
//   * ringflow_test_gpu_worker (CI): its GPU backend is the tests' host emulator ("emulated"), so
//     the GPU worker path — the segment registered with a device, the device's persistent kernel
//     serving the segment's rings and writing its control block, a trap poisoning the worker's
//     "context", the replacement worker — runs without a GPU. The production program never
//     registers the emulator (tests/test_kernel_host.cpp checks that it refuses it).
//   * ringflow_test_gpu_worker_cuda (RINGFLOW_GPU_WORKER_CUDA; built with the CUDA backend, run by
//     the GPU tests on a device): backend "cuda", the once-kernels compiled for the device
//     (tests/gpu/once_kernels.cu).
//
// Usage (as kernel_host_device starts it, plus the test's worker_args):
//   ringflow_test_gpu_worker kernel-host --segment NAME [--standby] [--fault-file PATH] [--report-version N]
//   --fault-file PATH    read when this worker becomes active: the decimal sequence its trap_once /
//                        hang_once kernels fault on (support/once_kernels.hpp); absent/unreadable: none
//   --report-version N   claim segment protocol version N (the service must refuse the worker)
// Kernels: the demo kernels (echo, saxpy, score, vwap) and trap_once / hang_once (Echo).
// Exit codes: as `ringflow kernel-host` (process::worker_exit); 2 for bad usage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/process/worker.hpp"
#include "support/once_kernels.hpp"

#if !defined(RINGFLOW_GPU_WORKER_CUDA)
#include "support/gpu_emulator.hpp"
#endif

namespace ringflow::test {
#if !defined(RINGFLOW_GPU_WORKER_CUDA)
void arm_fault_sequence(std::uint64_t seq) { g_armed_fault_host.store(seq, std::memory_order_relaxed); }
#endif
}  // namespace ringflow::test

namespace {

using namespace ringflow;
using test::HangOnceKernel;
using test::TrapOnceKernel;

#if !defined(RINGFLOW_GPU_WORKER_CUDA)
using worker_table = gpu::table_with_demos<TrapOnceKernel, HangOnceKernel>;
[[maybe_unused]] const bool registered = gpu::register_kernel_table(
    gpu::describe_table<worker_table>("emulated", &gpu::emulator::launch_table<worker_table>));
#endif

std::uint64_t read_fault_file(const char* path) {
  if (!path) return 0;
  std::ifstream in(path);
  std::uint64_t v = 0;
  return (in >> v) ? v : 0;
}

template <class K>
process::hosted_kernel hosted() {
  return {K::name, K::request::type_id_, K::reply::type_id_,
          [](cpu_incarnation_options co) { return cpu_incarnation_factory<K>(with_state_room<K>(std::move(co))); },
          state_bytes_of<K>};
}

process::kernel_lookup lookup() {
  process::kernel_lookup l;
  l.find = [](const std::string& n) -> std::optional<process::hosted_kernel> {
    if (n == "echo") return hosted<demo_kernels::EchoKernel>();
    if (n == "saxpy") return hosted<demo_kernels::SaxpyKernel>();
    if (n == "score") return hosted<demo_kernels::ScoreKernel>();
    if (n == "trap_once") return hosted<TrapOnceKernel>();
    if (n == "hang_once") return hosted<HangOnceKernel>();
    if (n == "vwap") return hosted<demo_kernels::VwapKernel>();
    return std::nullopt;
  };
  l.names = [] { return std::string("echo, saxpy, score, vwap, trap_once, hang_once"); };
  return l;
}

int usage(const char* why) {
  std::fprintf(stderr, "ringflow_test_gpu_worker: %s\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string_view(argv[1]) != "kernel-host") return usage("usage: kernel-host --segment NAME ...");
  std::string segment;
  bool standby = false;
  long report_version = -1;
  const char* fault_file = nullptr;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--segment" && has_value) segment = argv[++i];
    else if (a == "--standby") standby = true;
    else if (a == "--fault-file" && has_value) fault_file = argv[++i];
    else if (a == "--report-version" && has_value) report_version = std::strtol(argv[++i], nullptr, 10);
    else return usage("unknown argument");
  }
  if (segment.empty()) return usage("--segment is required");
  using process::worker_exit;
  process::close_inherited_fds(standby);
#if defined(RINGFLOW_GPU_WORKER_CUDA)
  const process::worker_gpu_backends gpus{
      {"cuda", [](gpu::gpu_device_options o) { return gpu::make_cuda_device(std::move(o)); },
       [] { return gpu::warm_up_cuda(); }}};
#else
  const process::worker_gpu_backends gpus{
      {"emulated", [](gpu::gpu_device_options o) { return gpu::make_emulated_device(std::move(o)); },
       [] { return gpu::warm_up_emulated(); }}};
#endif
  if (standby) process::warm_up_standby(segment, gpus);
  if (standby && !process::wait_for_activation()) return static_cast<int>(worker_exit::service_gone);
  test::arm_fault_sequence(read_fault_file(fault_file));  // active now: before the device opens
  std::string error;
  process::worker_segment seg;
  if (auto e = process::map_segment(segment, lookup(), seg, error, gpus)) {
    std::fprintf(stderr, "ringflow_test_gpu_worker: %s\n", error.c_str());
    return static_cast<int>(*e);
  }
  if (report_version >= 0) store_relaxed(seg.shared()->worker_version, static_cast<std::uint32_t>(report_version));
  process::worker_incarnation w;
  if (auto e = process::make_worker_incarnation(seg, w, error)) {
    std::fprintf(stderr, "ringflow_test_gpu_worker: %s\n", error.c_str());
    return static_cast<int>(*e);
  }
  const worker_exit code = process::serve_until_done(seg, w, error);
  if (code == worker_exit::service_gone) std::_Exit(static_cast<int>(code));
  return process::finish_worker(w, code);
}
