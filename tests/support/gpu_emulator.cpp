// The host emulator of the GPU runtime: see gpu_emulator.hpp.
#include "gpu_emulator.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "../../backends/gpu/src/gpu_api.hpp"

namespace ringflow::gpu {

kernel_table_info builtin_emulated_table() {
  using table = table_with_demos<>;
  return describe_table<table>("emulated", &emulator::launch_table<table>);
}

namespace {
std::atomic<int> g_devices{1};
std::atomic<int> g_fail_next_launch{0};
std::atomic<int> g_sticky{0};  // the process's sticky error (0: none)
std::atomic<int> g_trap_error{0};
std::atomic<int> g_grid_end_error{
    0};  // report_grid_end_as()  // what the stream reports for a trap (0: error_illegal_instruction)

struct emu_stream {
  std::mutex mu;
  std::vector<std::thread> threads;
  std::atomic<unsigned> live{0};
  std::atomic<int> error{0};
};
}  // namespace

namespace emulator {
void set_devices(int n) { g_devices.store(n); }
void reset_process() {
  g_sticky.store(0);
  g_trap_error.store(0);
  g_grid_end_error.store(0);
  g_fail_next_launch.store(0);
  g_devices.store(1);
}
void fail_next_launch(int error) { g_fail_next_launch.store(error); }
void report_traps_as(int error) { g_trap_error.store(error); }
void report_grid_end_as(int error) { g_grid_end_error.store(error); }

int launch(void* stream, unsigned workers, const persistent_args& args, std::function<void(unsigned)> body) {
  if (const int e = g_sticky.load()) return e;
  if (const int e = g_fail_next_launch.exchange(0)) return e;
  auto* s = static_cast<emu_stream*>(stream);
  std::lock_guard lock(s->mu);
  for (auto& t : s->threads) t.join();  // the previous grid has ended (stream query said so)
  s->threads.clear();
  s->error.store(0);  // a new grid: the previous one's error was reported (and read) already
  g_grid_end_error.store(0);
  s->live.store(workers);
  for (unsigned w = 0; w < workers; ++w) {
    s->threads.emplace_back([s, w, args, body] {
      try {
        body(w);
        if (const int e = g_grid_end_error.load()) s->error.store(e);
      } catch (...) {
        // A trap: the grid dies. Make the other workers leave (emulation only, see the header).
        const int reported = g_trap_error.load() ? g_trap_error.load() : error_illegal_instruction;
        s->error.store(reported);
        g_sticky.store(reported);
        args.kernel_control->request_stop();
        for (std::uint32_t i = 0; i < args.max_rings; ++i) {
          std::atomic_ref<std::uint64_t> ctl(args.rings[i].ctl);
          ctl.fetch_or(persistent_ctl::abandon, std::memory_order_acq_rel);
        }
        // Scouted workers read ctl only when the control mark moves; the scout may be the worker
        // that died, so the mark itself moves too.
        if (args.summary) std::atomic_ref<std::uint64_t>(args.summary[0]).fetch_add(1, std::memory_order_acq_rel);
        if (args.scout_marks)
          std::atomic_ref<std::uint64_t>(args.scout_marks[0]).fetch_add(1, std::memory_order_acq_rel);
      }
      s->live.fetch_sub(1, std::memory_order_acq_rel);
    });
  }
  return 0;
}
}  // namespace emulator

namespace emulated::api {
const char* error_name(error e) {
  switch (e) {
    case 0: return "emulatedSuccess";
    case emulator::error_memory: return "emulatedErrorMemoryAllocation";
    case 100: return "emulatedErrorNoDevice";
    case emulator::error_not_ready: return "emulatedErrorNotReady";
    case emulator::error_launch_out_of_resources: return "emulatedErrorLaunchOutOfResources";
    case emulator::error_illegal_instruction: return "emulatedErrorIllegalInstruction";
    case emulator::error_unknown: return "emulatedErrorUnknown";
    default: return "emulatedErrorUnrecognized";
  }
}
const char* error_string(error e) {
  switch (e) {
    case 0: return "no error";
    case emulator::error_memory: return "out of memory";
    case 100: return "no device (emulated)";
    case emulator::error_not_ready: return "not ready";
    case emulator::error_launch_out_of_resources: return "too many resources requested for launch";
    case emulator::error_illegal_instruction: return "an illegal instruction was encountered";
    default: return "unknown error";
  }
}
error device_count(int& n) {
  n = g_devices.load();
  return n > 0 ? success : 100;
}
error set_device(int) { return success; }
error versions(int& driver, int& runtime) {
  driver = runtime = 0;
  return success;
}
error describe(int ordinal, gpu_info& out) {
  out.ordinal = ordinal;
  out.name = "host emulation of a GPU";
  out.arch = "emulated";
  out.multiprocessors = 2;
  out.can_map_host_memory = true;
  out.memory_bytes = 1ull << 30;
  return success;
}
namespace {
error alloc(void** p, std::size_t n) {
  n = (n + 4095) / 4096 * 4096;
  *p = std::aligned_alloc(4096, n);
  if (!*p) return emulator::error_memory;
  std::memset(*p, 0, n);
  return success;
}
}  // namespace
error host_alloc_mapped(void** p, std::size_t n) { return g_sticky.load() ? g_sticky.load() : alloc(p, n); }
error device_pointer(void** dev, void* host) {
  *dev = host;
  return success;
}
error host_register(void* p, std::size_t n) {
  if (const int e = g_sticky.load()) return e;
  return p && n ? success : emulator::error_memory;  // (the memory is already the "device's")
}
error host_unregister(void*) { return success; }
error device_alloc(void** p, std::size_t n) { return g_sticky.load() ? g_sticky.load() : alloc(p, n); }
error free_host(void* p) {
  std::free(p);
  return success;
}
error free_device(void* p) {
  std::free(p);
  return success;
}
error init_context(int) { return g_sticky.load(); }
error stream_create(stream& s) {
  if (const int e = g_sticky.load()) return e;
  s = new emu_stream;
  return success;
}
error stream_destroy(stream s) {
  auto* es = static_cast<emu_stream*>(s);
  for (auto& t : es->threads) t.join();
  delete es;
  return success;
}
error memset_async(void* p, int v, std::size_t n, stream) {
  if (const int e = g_sticky.load()) return e;  // a poisoned context fails every call
  std::memset(p, v, n);
  return success;
}
error stream_query(stream s) {
  auto* es = static_cast<emu_stream*>(s);
  if (es->live.load(std::memory_order_acquire) > 0) return emulator::error_not_ready;
  return es->error.load();
}
bool not_ready(error e) { return e == emulator::error_not_ready; }
error stream_synchronize(stream s) {
  auto* es = static_cast<emu_stream*>(s);
  std::lock_guard lock(es->mu);
  for (auto& t : es->threads) t.join();
  es->threads.clear();
  // The grid's own error was reported by stream_query(); a sync reports only a poisoned context
  // (what a real stream does once a kernel's non-sticky error was read).
  return g_sticky.load();
}
error last_error() { return success; }
error device_reset() { return success; }
fault_kind classify(error e) {
  if (e == emulator::error_illegal_instruction) return {kernel_error::device_fault, true};
  if (e == emulator::error_memory) return {kernel_error::out_of_memory, false};
  if (e == 100) return {kernel_error::device_lost, true};
  return {kernel_error::internal, false};
}
}  // namespace emulated::api

}  // namespace ringflow::gpu
