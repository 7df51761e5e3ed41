// The worker's side of a kernel host: see ringflow/process/worker.hpp.
#include "ringflow/process/worker.hpp"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "ringflow/wait_policy.hpp"

namespace ringflow::process {

void close_inherited_fds(bool standby) noexcept { ::close_range(standby ? 5 : 3, ~0u, 0); }

void warm_up_standby(const std::string& segment, const worker_gpu_backends& gpus) noexcept {
  if (gpus.empty()) return;
  try {
    std::string error;
    std::optional<shm_mapping> m = shm_mapping::open(segment, sizeof(host_segment_header), error);
    if (!m) return;  // map_segment() reports it after the activation
    const auto* h = reinterpret_cast<const host_segment_header*>(m->base());
    char name[sizeof h->backend + 1] = {};
    std::memcpy(name, h->backend, sizeof h->backend);
    for (const worker_gpu_backend& g : gpus)
      if (g.name == name && g.warm_up) (void)g.warm_up();
  } catch (...) {}
}

bool wait_for_activation() noexcept {
  // Beats on fd 4 (non-blocking; a full pipe drops a beat) while waiting on fd 3, so the service
  // can tell a live standby from a stopped one. A closed beat pipe must not kill us: EPIPE instead.
  struct sigaction ign {
  }, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  bool activated = false;
  for (;;) {
    (void)!::write(4, "b", 1);
    pollfd p{3, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(10).count()));
    if (r == 0 || (r < 0 && errno == EINTR)) continue;
    char c = 0;
    const ssize_t n = ::read(3, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    activated = n == 1;  // else end of file: the service dropped this standby or went away (quietly)
    break;
  }
  ::close(3);
  ::close(4);
  ::sigaction(SIGPIPE, &old, nullptr);
  return activated;
}

namespace {

// Checks the private copy of the set-up line; "" when it is good.
std::string validate_setup(const host_segment_header& hdr, std::size_t bytes) {
  if (hdr.magic != host_segment_header::magic_value) return "bad magic (not a kernel host segment)";
  if (hdr.version != host_segment_header::version_value) return "version " + std::to_string(hdr.version);
  if (hdr.total_bytes != bytes)
    return "size " + std::to_string(bytes) + " != header's " + std::to_string(hdr.total_bytes);
  if (!hdr.requests.valid() || !hdr.replies.valid()) return "invalid ring config";
  if (segment_layout::of(hdr.requests, hdr.replies).total > bytes) return "the rings do not fit the segment";
  if (hdr.rule_count > host_segment_header::max_rules || hdr.max_batch == 0) return "bad rule count or batch";
  return {};
}

}  // namespace

std::optional<worker_exit> map_segment(const std::string& name, const kernel_lookup& kernels, worker_segment& out,
                                       std::string& error, const worker_gpu_backends& gpus) {
  std::optional<shm_mapping> m = shm_mapping::open(name, sizeof(host_segment_header), error);
  if (!m) return worker_exit::bad_segment;
  out.mapping = std::move(*m);
  // The set-up line is read once, into our own copy: what is validated is what is used.
  out.setup = *out.shared();
  const host_segment_header& hdr = out.setup;
  auto bad = [&](const std::string& why) {
    error = "segment " + name + ": " + why;
    out.mapping.reset();
    return worker_exit::bad_segment;
  };
  if (std::string why = validate_setup(hdr, out.mapping.bytes()); !why.empty()) return bad(why);
  out.layout = segment_layout::of(hdr.requests, hdr.replies);
  const std::string kernel(hdr.kernel, strnlen(hdr.kernel, sizeof hdr.kernel));
  out.backend.assign(hdr.backend, strnlen(hdr.backend, sizeof hdr.backend));
  std::optional<hosted_kernel> k = kernels ? kernels.find(kernel) : std::nullopt;
  if (!k) return bad("unknown kernel '" + kernel + "'");
  out.kernel = std::move(*k);
  if (out.backend != "cpu" && out.backend != "sim") {
    const auto g =
        std::find_if(gpus.begin(), gpus.end(), [&](const worker_gpu_backend& b) { return b.name == out.backend; });
    if (g == gpus.end() || !g->open)
      return bad(
          "backend '" + out.backend + "' is not available in this kernel host (its program " +
          (is_gpu_worker_backend(out.backend) ? "does not link it" : "knows cpu, sim and the GPU backends it links") +
          ")");
    out.gpu = *g;
  }
  if (static_cast<std::int64_t>(::getppid()) != hdr.service_pid) return bad("this process is not the service's child");
  store_relaxed(out.shared()->worker_pid, static_cast<std::int64_t>(::getpid()));
  store_relaxed(out.shared()->worker_version, host_segment_header::version_value);  // before the kernel runs
  store_relaxed(out.shared()->worker_generation,
                load_acquire(out.shared()->generation));  // pairs with the service's release
  return std::nullopt;
}

std::optional<worker_exit> make_worker_incarnation(const worker_segment& seg, worker_incarnation& out,
                                                   std::string& error) {
  byte* base = seg.mapping.base();
  const segment_layout& l = seg.layout;
  auto* kernel_bell = reinterpret_cast<doorbell*>(base + l.kernel_bell);
  auto* reply_bell = reinterpret_cast<doorbell*>(base + l.reply_bell);
  cpu_incarnation_options co;
  co.rings.requests = seg.setup.requests;
  co.rings.replies = seg.setup.replies;
  co.max_batch = seg.setup.max_batch;
  try {
    if (seg.gpu) {
      // The whole segment registered with the device before its kernel launches (registration may
      // wait for running kernels); one block of one worker warp serves this worker's one ring.
      gpu::gpu_device_options go;
      go.id = seg.gpu->name + ":kernel-host";
      go.max_rings = 1;
      go.ring_pool_bytes = 4096;  // (unused: the rings are the segment's)
      go.max_reply_capacity = std::max<std::uint32_t>(seg.setup.replies.capacity, 1);
      go.blocks = 1;
      go.warps_per_block = 1;
      const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
      go.registered.push_back({base, (seg.mapping.bytes() + page - 1) / page * page});  // mmap maps whole pages
      out.gpu = seg.gpu->open(go);
      gpu::gpu_external_rings ext;
      ext.request_memory = base + l.requests;
      ext.reply_memory = base + l.replies;
      ext.control = seg.control();
      ext.requests = seg.setup.requests;
      ext.replies = seg.setup.replies;
      ext.max_batch = seg.setup.max_batch;
      out.kernel = out.gpu->factory_at(seg.kernel.name, ext)(reply_bell);
    } else if (seg.backend == "cpu") {
      co.rings.request_memory = base + l.requests;
      co.rings.reply_memory = base + l.replies;
      co.rings.attach = true;
      co.control = seg.control();
      co.kernel_bell = kernel_bell;
      out.kernel = seg.kernel.cpu_factory(co)(reply_bell);
    } else {
      sim::sim_device_options so;
      so.id = "sim:kernel-host";
      out.sim = sim::sim_device::make(so, static_cast<std::uint64_t>(::getpid()));
      for (std::uint32_t i = 0; i < seg.setup.rule_count; ++i)
        if (auto r = from_wire(seg.setup.rules[i], 0)) out.sim->faults().add(*r);
      out.sim->faults().arm();
      ring_placement own;
      own.request_memory = base + l.requests;
      own.reply_memory = base + l.replies;
      own.attach = true;
      own.control = seg.control();
      own.kernel_bell = kernel_bell;
      out.kernel = out.sim->wrap(seg.kernel.cpu_factory(co), own)(reply_bell);
    }
  } catch (const std::exception& e) {
    error = std::string("kernel did not start: ") + e.what();
    seg.control()->fault(kernel_error::launch_failed, 0, error.c_str());
    return worker_exit::start_failed;
  }
  return std::nullopt;
}

namespace {

// A GPU worker's relay: the service rings the kernel bell for new requests (notify) and to ask for
// a stop; a GPU kernel polls its rings and never parks on a futex, so this thread hands both to
// the device: notify() wakes its monitor (which rings the reply bell as replies arrive), and a stop
// request becomes the ring's stop (drained, then `stopped`; abandoned as reply_stuck past 5 s).
class gpu_relay {
 public:
  gpu_relay(const worker_segment& seg, incarnation& inc)
      : bell_(reinterpret_cast<doorbell*>(seg.mapping.base() + seg.layout.kernel_bell)),
        control_(seg.control()),
        inc_(inc),
        thread_([this] { run(); }) {}
  ~gpu_relay() {
    quit_.store(true, std::memory_order_release);
    bell_->ring();
    thread_.join();
  }
  gpu_relay(const gpu_relay&) = delete;
  gpu_relay& operator=(const gpu_relay&) = delete;

 private:
  void run() {
    name_this_thread("rf-gpu-relay");
    bool stop_sent = false;
    while (!quit_.load(std::memory_order_acquire)) {
      const doorbell::token t = bell_->prepare_wait();
      if (!stop_sent && control_->stop_is_requested()) {
        bell_->cancel_wait();
        stop_sent = true;
        (void)inc_.stop(std::chrono::milliseconds(5000));  // the main loop sees the ring finish
        continue;
      }
      inc_.notify();
      // Bounded: a lost wake-up costs at most this (the device's own monitor also sweeps every ms).
      bell_->wait(t, std::chrono::milliseconds(1));
    }
  }
  doorbell* bell_;
  control_block* control_;
  incarnation& inc_;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace

int finish_worker(worker_incarnation& w, worker_exit code) {
  if (w.gpu) {
    // Nothing to drain (the service learnt everything from the segment): a faulted or hung device
    // is left to the driver, which reclaims an ended process's context.
    if (code != worker_exit::stopped) std::_Exit(static_cast<int>(code));
    w.kernel.reset();
    if (!w.gpu->stop_kernel()) std::_Exit(static_cast<int>(code));
    w.gpu.reset();
    return static_cast<int>(code);
  }
  w.kernel.reset();  // joins the kernel's threads (it has finished)
  return static_cast<int>(code);
}

worker_exit serve_until_done(const worker_segment& seg, worker_incarnation& w, std::string& error) {
  host_segment_header* h = seg.shared();
  control_block* control = seg.control();
  // A GPU worker looks every millisecond: its device's monitor marks a faulted kernel within one,
  // and the service can replace the worker only once it has exited (a CPU or sim worker's faults
  // end its process at once, so the liveness period is enough).
  const auto interval =
      std::chrono::microseconds(w.gpu ? 1000u : std::max<std::uint32_t>(seg.setup.liveness_interval_us, 1000));
  std::uint32_t inject_seen = load_acquire(h->inject_seq);
  std::optional<gpu_relay> relay;
  if (w.gpu) relay.emplace(seg, *w.kernel);
  for (;;) {
    store_relaxed(h->liveness, load_relaxed(h->liveness) + 1);
    if (static_cast<std::int64_t>(::getppid()) != seg.setup.service_pid) {
      error = "the service process went away";
      w.kernel->abandon();
      return worker_exit::service_gone;
    }
    if (w.sim) {
      const std::uint32_t seq = load_acquire(h->inject_seq);  // pairs with the service's release
      if (seq != inject_seen) {
        inject_seen = seq;
        if (auto r = from_wire(h->inject_rule, w.sim->faults().requests_seen())) w.sim->faults().add(*r);
      }
      store_relaxed(h->faults_fired, w.sim->faults().fired_total());
    }
    if (control->finished())
      return control->current_state() == kernel_state::stopped ? worker_exit::stopped : worker_exit::kernel_faulted;
    std::this_thread::sleep_for(interval);  // the liveness period
  }
}

}  // namespace ringflow::process
