// tests/gpu_worker_main.cpp — ringflow_test_gpu_worker: a kernel-host worker program (what
// `ringflow kernel-host` is to the service) whose GPU backend is the tests' host emulator, so the
// GPU worker path — the segment registered with a device, the device's persistent kernel serving
// the segment's rings and writing its control block, a trap poisoning the worker's "context", the
// replacement worker — runs in CI without a GPU. The production program never registers the
// emulator (tests/test_kernel_host.cpp checks that it refuses it).
//
// Usage (as kernel_host_device starts it, plus the test's worker_args):
//   ringflow_test_gpu_worker kernel-host --segment NAME [--standby] [--marker PATH] [--report-version N]
//   --marker PATH        the once-kernels' shared marker: the first request with trap_sequence across
//                        every worker of a test traps (trap_once) or hangs (hang_once) — the worker
//                        that creates PATH (O_EXCL) — and later ones are echoed: a transient device
//                        fault, which a fresh worker's replay must get past
//   --report-version N   claim segment protocol version N (the service must refuse the worker)
// Kernels: the catalog's demo kernels (echo, saxpy, score) and trap_once / hang_once (Echo).
// Exit codes: as `ringflow kernel-host` (process::worker_exit); 2 for bad usage.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "ringflow/cpu/cpu_incarnation.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/process/worker.hpp"
#include "support/gpu_emulator.hpp"
#include "support/trap_kernel.hpp"

namespace {

using namespace ringflow;

const char* g_marker = nullptr;

// True for the one request (across the test's workers) that creates the marker.
bool first_fault() {
  if (!g_marker) return true;
  const int fd = ::open(g_marker, O_CREAT | O_EXCL | O_WRONLY, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

struct TrapOnceKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "trap_once";
  static std::uint32_t reply_capacity(const msg_view& in) { return demo_kernels::EchoKernel::reply_capacity(in); }
  static status handle(const msg_view& in, reply_writer& out) {
    if (in.as<msg::Echo>().sequence() == test::trap_sequence && first_fault()) test::trap_now();
    return demo_kernels::EchoKernel::handle(in, out);
  }
};

struct HangOnceKernel {
  using request = msg::Echo;
  using reply = msg::Echo;
  static constexpr const char* name = "hang_once";
  static std::uint32_t reply_capacity(const msg_view& in) { return demo_kernels::EchoKernel::reply_capacity(in); }
  static status handle(const msg_view& in, reply_writer& out) {
    if (in.as<msg::Echo>().sequence() == test::trap_sequence && first_fault())
      for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // a kernel that never returns
    return demo_kernels::EchoKernel::handle(in, out);
  }
};

using worker_table = gpu::table_with_demos<TrapOnceKernel, HangOnceKernel>;
[[maybe_unused]] const bool registered = gpu::register_kernel_table(
    gpu::describe_table<worker_table>("emulated", &gpu::emulator::launch_table<worker_table>));

template <class K>
process::hosted_kernel hosted() {
  return {K::name, K::request::type_id_, K::reply::type_id_,
          [](cpu_incarnation_options co) { return cpu_incarnation_factory<K>(co); }};
}

process::kernel_lookup lookup() {
  process::kernel_lookup l;
  l.find = [](const std::string& n) -> std::optional<process::hosted_kernel> {
    if (n == "echo") return hosted<demo_kernels::EchoKernel>();
    if (n == "saxpy") return hosted<demo_kernels::SaxpyKernel>();
    if (n == "score") return hosted<demo_kernels::ScoreKernel>();
    if (n == "trap_once") return hosted<TrapOnceKernel>();
    if (n == "hang_once") return hosted<HangOnceKernel>();
    return std::nullopt;
  };
  l.names = [] { return std::string("echo, saxpy, score, trap_once, hang_once"); };
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
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--segment" && has_value) segment = argv[++i];
    else if (a == "--standby") standby = true;
    else if (a == "--marker" && has_value) g_marker = argv[++i];
    else if (a == "--report-version" && has_value) report_version = std::strtol(argv[++i], nullptr, 10);
    else return usage("unknown argument");
  }
  if (segment.empty()) return usage("--segment is required");
  using process::worker_exit;
  process::close_inherited_fds(standby);
  if (standby && !process::wait_for_activation()) return static_cast<int>(worker_exit::service_gone);
  std::string error;
  process::worker_segment seg;
  const process::worker_gpu_backends gpus{
      {"emulated", [](gpu::gpu_device_options o) { return gpu::make_emulated_device(std::move(o)); }}};
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
