// Kernel hosts (label `faults`): ring kernels in `ringflow kernel-host` worker processes over
// shared-memory rings, supervised by the fault ladder. Each case checks that every request got
// exactly one answer while workers are killed, stopped, poisoned or lie about their state.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "actor_test_support.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/kernel_host.hpp"
#include "ringflow/supervision/fault_ladder.hpp"
#include "support/child_process.hpp"
#include "support/exactly_once.hpp"
#include "support/quick_ladder.hpp"
#include "support/stateful_vwap.hpp"
#include "support/trap_kernel.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace std::chrono_literals;
using ringflow::process::kernel_host_device;
using ringflow::process::kernel_host_options;
using ringflow::testing::process_gone;
using ringflow::testing::process_state;

namespace {

constexpr const char* kPrefix = "rfkhtest";

kernel_host_options host_options(std::string backend = "cpu") {
  kernel_host_options o;
  o.program = RINGFLOW_PROGRAM;
  o.kernels = ringflow::ops::catalog_kernel_lookup();
  o.backend = std::move(backend);
  o.segment_prefix = kPrefix;
  o.heartbeat_timeout = 500ms;
  return o;
}

// A worker's hang and recovery take longer than a thread's.
ladder_config host_ladder() {
  return quick_ladder({.hang_timeout = 500ms,
                       .probe_window = 100ms,
                       .open_for = 100ms,
                       .max_open_for = 400ms,
                       .restart_window = 5000ms});
}

struct fixture {
  std::shared_ptr<kernel_host_device> dev;
  runtime rt{small_runtime()};
  fault_ladder ladder;
  explicit fixture(kernel_host_options o = host_options(), ladder_config cfg = host_ladder())
      : dev(kernel_host_device::make("host:test", std::move(o))), ladder(rt, std::move(cfg)) {}
  void spawn(const std::string& name = "echo") {
    const ops::kernel_info* k = ops::find_kernel("echo");
    cpu_incarnation_options co = quick_park();
    ladder.spawn_ring_actor(name, k->request_id, k->reply_id, dev, dev->factory("echo", co), k->cpu_factory(co));
  }
  ladder_ring_status status(const std::string& name = "echo") {
    for (const auto& r : ladder.snapshot().rings)
      if (r.name == name) return r;
    return {};
  }
};

bool call_ok(runtime& rt, const std::string& ring = "echo") {
  ring_client c = rt.client(ring).value();
  const call_result r = c.call(echo_msg(4242));
  return r.ok() && echo_seq(r.reply) == 4242;
}

/// Load on another thread while `act` runs on this one.
template <class Act>
load_result load_during(runtime& rt, int per_thread, Act act) {
  load_result r;
  std::thread t([&] { r = run_load(rt, "echo", 2, per_thread, 16); });
  try {
    act();
  } catch (...) {
    t.join();  // a failed REQUIRE in `act` must not leave the load thread joinable
    throw;
  }
  t.join();
  return r;
}

/// Injects `kind` into the worker once the load is under way, then keeps requests coming until
/// `done()` (the worker takes the rule within its liveness period and fires it on its next
/// request: the load may have ended by then).
template <class Done>
load_result inject_under_load(fixture& f, sim::fault_kind kind, int per_thread, Done done) {
  return load_during(f.rt, per_thread, [&] {
    REQUIRE(wait_until([&] { return f.rt.ring("echo")->stats().replied > 300; }));
    REQUIRE(f.dev->inject(sim::fault_rule::at(kind, 1)) == 1);
    REQUIRE(wait_until([&] {
      (void)call_ok(f.rt);
      return done();
    }));
  });
}

/// The test's own view of a live segment: what a faulty worker could write into.
struct segment_view {
  void* base = nullptr;
  std::size_t bytes = 0;
  process::host_segment_header* header = nullptr;
  process::segment_layout layout;
  explicit segment_view(const std::string& name) {
    const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    bytes = static_cast<std::size_t>(st.st_size);
    base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    REQUIRE(base != MAP_FAILED);
    header = static_cast<process::host_segment_header*>(base);
    layout = process::segment_layout::of(header->requests, header->replies);
  }
  ~segment_view() { ::munmap(base, bytes); }
  template <class T>
  T* at(std::uint64_t off) {
    return reinterpret_cast<T*>(static_cast<std::uint8_t*>(base) + off);
  }
};

std::string only_segment() {
  const auto segs = process::list_segments(kPrefix);
  REQUIRE(segs.size() == 1);
  return segs.front();
}

/// A stateful `vwap` ring actor on the fixture's kernel host; trades submitted from this thread,
/// the worker SIGKILLed `kills` times along the way (each time once a standby waits); the final
/// state must be the fault-free one, every trade answered once, in order.
void stateful_worker_kills(fixture& f, int kills) {
  using namespace ringflow::test::stateful_vwap;
  const ops::kernel_info* k = ops::find_kernel("vwap");
  const cpu_incarnation_options co = quick_park();
  f.ladder.spawn_ring_actor("vwap", k->request_id, k->reply_id, f.dev, f.dev->factory("vwap", co), k->cpu_factory(co),
                            state_options(32));
  REQUIRE(wait_until([&] { return f.rt.ring("vwap") != nullptr; }));
  std::shared_ptr<ring_core> core = f.rt.ring("vwap");
  std::vector<trade_spec> trades;
  const int per_round = 300;
  for (std::uint64_t i = 0; i < static_cast<std::uint64_t>(per_round * (kills + 1)); ++i)
    trades.push_back(trade_for(i));
  one_submitter sub(core, trades.size());
  std::vector<pid_t> killed;
  for (std::size_t i = 0; i < trades.size(); ++i) {
    sub.submit(trades[i], i);
    if (i % per_round == per_round - 1 && killed.size() < static_cast<std::size_t>(kills)) {
      REQUIRE(wait_until([&] { return f.dev->standby_pids().size() == 1 && f.dev->worker_pids().size() == 1; }));
      killed.push_back(f.dev->worker_pids().at(0));
      REQUIRE(f.dev->signal_workers(SIGKILL) == 1);  // with trades in flight: replayed by the next worker
    }
  }
  sub.require_answered_in_order(trades);  // each once, in order, the fault-free running counts
  CHECK(f.dev->worker_restarts() >= static_cast<std::uint64_t>(kills));
  for (pid_t p : killed) CHECK(process_gone(p));
  CHECK(same_state(fresh_snapshot(*core), reference(trades)));  // the state in the dead workers was not needed
  CHECK(core->stats().state_restores >= static_cast<std::uint64_t>(kills) + 1);
  CHECK(f.status("vwap").on_device);
}

}  // namespace

TEST_CASE("kernel host: requests round-trip through a worker process on shared-memory rings", "[faults][kernel-host]") {
  process::reclaim_stale_segments(kPrefix);
  for (const char* backend : {"cpu", "sim"}) {
    SECTION(backend) {
      {
        fixture f(host_options(backend));
        f.spawn();
        REQUIRE(call_ok(f.rt));
        const auto pids = f.dev->worker_pids();
        REQUIRE(pids.size() == 1);
        CHECK(pids.front() != ::getpid());
        CHECK(f.rt.ring("echo")->backend() == std::string("kernel-host:") + backend);
        CHECK(process::list_segments(kPrefix).size() == 1);
        require_exactly_once(run_load(f.rt, "echo", 2, 2000));
        CHECK(f.dev->worker_restarts() == 0);
        CHECK(f.status().faults == 0);
      }
      CHECK(process::list_segments(kPrefix).empty());  // removed on clean shutdown
    }
  }
}

TEST_CASE("kernel host: SIGKILL of the worker under load loses nothing and answers nothing twice",
          "[faults][kernel-host]") {
  std::vector<pid_t> standbys;
  {
    fixture f;
    f.spawn();
    REQUIRE(call_ok(f.rt));
    const pid_t first = f.dev->worker_pids().at(0);
    // A standby worker is started in the background; the restart activates it.
    REQUIRE(wait_until([&] { return f.dev->standby_pids().size() == 1; }));
    const pid_t standby = f.dev->standby_pids().at(0);
    CHECK(standby != first);
    const load_result r = load_during(f.rt, 3000, [&] {
      REQUIRE(wait_until([&] { return f.rt.ring("echo")->stats().replied > 1000; }));
      REQUIRE(f.dev->signal_workers(SIGKILL) == 1);
      REQUIRE(wait_until([&] { return f.dev->worker_restarts() >= 1; }));
    });
    require_exactly_once(r);
    CHECK(r.errors == 0);
    const auto st = f.status();
    CHECK(st.faults >= 1);
    CHECK(st.restarts >= 1);
    CHECK(st.on_device);
    REQUIRE(wait_until([&] { return f.dev->worker_pids().size() == 1; }));
    CHECK(f.dev->worker_pids().at(0) == standby);  // the standby took over: no process start on the way
    CHECK(process_gone(first));
    REQUIRE(wait_until([&] { return f.dev->standby_pids().size() == 1; }));  // and a new one waits
    CHECK(f.dev->standby_pids().at(0) != standby);
    standbys.push_back(f.dev->standby_pids().at(0));
    standbys.push_back(standby);
    // (Requests in flight at the kill are replayed; there may have been none at that instant.)
    CHECK(process::list_segments(kPrefix).size() == 1);  // the same segment, reattached
  }
  CHECK(process::list_segments(kPrefix).empty());   // nothing left after a crash + restart cycle
  for (pid_t p : standbys) CHECK(process_gone(p));  // no worker process either
}

TEST_CASE("kernel host: a stateful kernel's worker SIGKILLed under load -> the next worker gets the fault-free state",
          "[faults][kernel-host][state]") {
  fixture f;
  stateful_worker_kills(f, 3);
  CHECK(f.rt.ring("vwap")->backend() == "kernel-host:cpu");
}

TEST_CASE("kernel host: without a standby a restart starts a new process, and still loses nothing",
          "[faults][kernel-host]") {
  kernel_host_options o = host_options();
  o.standby = false;
  fixture f(o);
  f.spawn();
  REQUIRE(call_ok(f.rt));
  CHECK(f.dev->standby_pids().empty());
  const load_result r = load_during(f.rt, 1000, [&] {
    REQUIRE(wait_until([&] { return f.rt.ring("echo")->stats().replied > 300; }));
    REQUIRE(f.dev->signal_workers(SIGKILL) == 1);
    REQUIRE(wait_until([&] { return f.dev->worker_restarts() >= 1; }));
  });
  require_exactly_once(r);
  CHECK(f.dev->standby_pids().empty());
}

TEST_CASE("kernel host: a sticky error in a sim worker costs a worker restart, not the service",
          "[faults][kernel-host]") {
  fixture f(host_options("sim"));
  f.spawn();
  REQUIRE(call_ok(f.rt));
  const pid_t first = f.dev->worker_pids().at(0);
  const load_result r = inject_under_load(f, sim::fault_kind::sticky_error, 2000,
                                          [&] { return f.status().reinits >= 1 && f.dev->worker_restarts() >= 1; });
  require_exactly_once(r);
  const auto st = f.status();
  CHECK(st.reinits >= 1);  // a poisoned context: step 2, and the new context is a new process
  CHECK(st.on_device);
  CHECK(f.dev->faults_fired() >= 1);
  REQUIRE(wait_until([&] { return f.dev->worker_pids().size() == 1 && f.dev->worker_pids()[0] != first; }));
  CHECK(call_ok(f.rt));
}

TEST_CASE("kernel host: a kernel that hangs inside its worker is found by the watchdog and its process killed",
          "[faults][kernel-host]") {
  fixture f(host_options("sim"));
  f.spawn();
  REQUIRE(call_ok(f.rt));
  const pid_t first = f.dev->worker_pids().at(0);
  const load_result r = inject_under_load(f, sim::fault_kind::hang, 1000,
                                          [&] { return f.status().hangs >= 1 && f.status().restarts >= 1; });
  require_exactly_once(r);
  CHECK(f.status().hangs >= 1);
  // The hung worker was abandoned = SIGKILLed (a process, unlike a thread, can be ended): nothing
  // is left behind in the ladder's graveyard.
  REQUIRE(wait_until([&] { return process_gone(first); }));
  REQUIRE(wait_until([&] { return f.ladder.snapshot().graveyard == 0; }));
  CHECK(call_ok(f.rt));
}

TEST_CASE("kernel host: workers that keep crashing -> reroute to an in-process CPU kernel", "[faults][kernel-host]") {
  kernel_host_options o = host_options("sim");
  o.standing_faults.push_back(
      sim::fault_rule::at(sim::fault_kind::crash, 1));  // every worker dies on its first request
  ladder_config lc = host_ladder();
  lc.breaker.failure_threshold = 3;
  lc.breaker.open_for = 60000ms;  // stays open for the test: no probe
  fixture f(o, lc);
  f.spawn();
  const load_result r = run_load(f.rt, "echo", 2, 500);
  require_exactly_once(r);
  const auto st = f.status();
  CHECK_FALSE(st.on_device);
  CHECK(st.backend == "cpu");
  CHECK(st.reroutes == 1);
  CHECK(f.dev->worker_failures() >= 3);
  CHECK(f.rt.ring("echo")->backend() == "cpu");
}

TEST_CASE("kernel host: a stopped (SIGSTOP) worker is found by its lost heartbeat and replaced",
          "[faults][kernel-host]") {
  ladder_config lc = host_ladder();
  lc.hang_timeout = 20000ms;  // the ladder's own hang watchdog stays out of it: the monitor must find it
  fixture f(host_options(), lc);
  f.spawn();
  REQUIRE(call_ok(f.rt));
  const pid_t first = f.dev->worker_pids().at(0);
  REQUIRE(::kill(first, SIGSTOP) == 0);
  REQUIRE(wait_until([&] { return process_state(first) == 'T'; }));  // the stop is asynchronous
  // Requests sent now wait in the ring of a process that cannot run; the monitor must notice.
  ring_client c = f.rt.client("echo").value();
  const call_result r = c.call(echo_msg(7));
  CHECK(r.ok());
  CHECK(echo_seq(r.reply) == 7);
  CHECK(f.dev->worker_restarts() >= 1);
  CHECK(process_gone(first));  // killed (a stopped process still dies of SIGKILL)
  bool heartbeat_event = false;
  for (const auto& e : f.ladder.snapshot().recent_events)
    heartbeat_event = heartbeat_event || (e.fault == "crashed" && e.detail.find("heartbeat lost") != std::string::npos);
  CHECK(heartbeat_event);
  CHECK(f.status().hangs == 0);
}

TEST_CASE("kernel host: what a faulty worker writes is checked, never trusted", "[faults][kernel-host]") {
  fixture f;
  f.spawn();
  REQUIRE(call_ok(f.rt));
  const std::string seg = only_segment();

  SECTION("control block: a state out of range") {
    segment_view v(seg);
    auto* cb = v.at<control_block>(v.layout.control);
    store_release(cb->state, 77u);
    REQUIRE(wait_until([&] { return f.status().faults >= 1; }));
    bool seen = false;
    for (const auto& e : f.ladder.snapshot().recent_events)
      seen = seen || e.detail.find("control block corrupt") != std::string::npos;
    CHECK(seen);
  }
  SECTION("response ring: a tail far beyond anything published") {
    segment_view v(seg);
    ring_region rep(v.at<void>(v.layout.replies));
    store_relaxed(rep.shared()->tail, std::uint64_t{1} << 40);
    REQUIRE(wait_until([&] { return f.status().faults >= 1; }));
    bool seen = false;
    for (const auto& e : f.ladder.snapshot().recent_events)
      seen = seen || (e.fault == "bad_ring" && e.detail.find("response ring tail") != std::string::npos);
    CHECK(seen);
  }
  SECTION("response ring: its config line rewritten") {
    segment_view v(seg);
    ring_region rep(v.at<void>(v.layout.replies));
    store_relaxed(rep.shared()->config.capacity, 1u << 30);
    REQUIRE(wait_until([&] { return f.status().faults >= 1; }));
  }
  SECTION("response ring: a reply whose payload points outside the ring") {
    // Freeze the worker, forge the next reply slot (ready, absurd length in the arena), resume.
    const pid_t pid = f.dev->worker_pids().at(0);
    REQUIRE(::kill(pid, SIGSTOP) == 0);
    REQUIRE(wait_until([&] { return process_state(pid) == 'T'; }));
    {
      segment_view v(seg);
      ring_region rep(v.at<void>(v.layout.replies), v.header->replies);
      const std::uint64_t pos = load_relaxed(rep.shared()->tail);
      slot_header* h = rep.slot(pos);
      h->correlation_id = 1;
      h->type_id = msg::Echo::type_id_;
      h->flags = slot_flags::arena;
      h->arena_offset = 0xfffff000u;
      h->payload_len = 0x7ffffff0u;
      h->status = 0;
      store_release(h->seq, pos + 1);
      store_relaxed(rep.shared()->tail, pos + 1);
    }
    ::kill(pid, SIGCONT);
    REQUIRE(wait_until([&] { return f.rt.ring("echo")->stats().corrupt_replies >= 1; }));
  }
  // Whatever it was, the worker was replaced and the actor answers again, exactly once.
  REQUIRE(wait_until([&] { return f.dev->worker_failures() >= 1 || f.status().faults >= 1; }));
  require_exactly_once(run_load(f.rt, "echo", 2, 500));
}

TEST_CASE("kernel host: stale segments of a dead service are reclaimed, a live service's are kept",
          "[faults][kernel-host]") {
  process::reclaim_stale_segments(kPrefix);
  // A pid that is certainly gone: a child that exited and was reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  REQUIRE(dead > 0);
  int status = 0;
  REQUIRE(::waitpid(dead, &status, 0) == dead);
  auto make = [](const std::string& name) {
    const int fd = ::shm_open(name.c_str(), O_CREAT | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
  };
  std::ifstream statf("/proc/self/stat");
  std::string s((std::istreambuf_iterator<char>(statf)), std::istreambuf_iterator<char>());
  std::istringstream in(s.substr(s.rfind(')') + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) in >> field;
  const std::string me = std::to_string(::getpid());
  const std::string stale_dead = std::string("/") + kPrefix + "." + std::to_string(dead) + "." + field + ".0.echo";
  const std::string stale_reused = std::string("/") + kPrefix + "." + me + ".1.0.echo";  // our pid, another start time
  const std::string live = std::string("/") + kPrefix + "." + me + "." + field + ".0.echo";
  make(stale_dead);
  make(stale_reused);
  make(live);
  const auto removed = process::reclaim_stale_segments(kPrefix);
  CHECK(std::find(removed.begin(), removed.end(), stale_dead) != removed.end());
  CHECK(std::find(removed.begin(), removed.end(), stale_reused) != removed.end());
  CHECK(std::find(removed.begin(), removed.end(), live) == removed.end());
  const auto left = process::list_segments(kPrefix);
  CHECK(left == std::vector<std::string>{live});
  ::shm_unlink(live.c_str());
}

TEST_CASE("kernel host: bad options and a worker that cannot start are clear errors", "[faults][kernel-host]") {
  auto opts = host_options();
  opts.backend = "opencl";
  CHECK_THROWS_WITH(kernel_host_device::make("h", opts), Catch::Contains("unknown backend"));
  opts = host_options();
  opts.standing_faults.push_back(sim::fault_rule::at(sim::fault_kind::crash, 1));
  CHECK_THROWS_WITH(kernel_host_device::make("h", opts), Catch::Contains("sim backend"));
  opts = host_options();
  CHECK_THROWS_WITH(kernel_host_device::make("h", opts)->factory("nope"), Catch::Contains("unknown kernel"));
  opts.program = "/nonexistent/ringflow";
  auto dev = kernel_host_device::make("h", opts);
  ringflow::doorbell bell;
  CHECK_THROWS_WITH(dev->factory("echo")(&bell), Catch::Contains("cannot start"));
  // The worker itself refuses a segment that is not one.
  std::string error;
  CHECK(ops::run_kernel_host("/rfkhtest-does-not-exist", error) == 3);
  CHECK_THAT(error, Catch::Contains("cannot open segment"));
  CHECK(process::list_segments(kPrefix).empty());
}

TEST_CASE("kernel host: unlink_leftovers kills the worker of a leaked incarnation and unlinks its segment",
          "[faults][kernel-host]") {
  auto opts = host_options();
  opts.standby = false;
  auto dev = kernel_host_device::make("h", opts);
  ringflow::doorbell bell;
  std::unique_ptr<ringflow::incarnation> inc = dev->factory("echo")(&bell);
  REQUIRE(inc);
  const std::vector<pid_t> pids = dev->worker_pids();
  REQUIRE(pids.size() == 1);
  REQUIRE(process::list_segments(kPrefix).size() == 1);
  // The incarnation is still alive (enlisted) when its owner shuts down: what the fault ladder
  // leaves of an abandoned kernel that did not finish in time (it leaks it; here it is destroyed
  // at the end instead, so LeakSanitizer has nothing to report).
  const std::vector<std::string> left = dev->unlink_leftovers();
  CHECK(left.size() == 1);
  CHECK(process::list_segments(kPrefix).empty());
  CHECK(wait_until([&] { return process_gone(pids[0]); }));
  CHECK(dev->unlink_leftovers().empty());  // once
  inc.reset();                             // its own unlink finds nothing: harmless
  CHECK(process::list_segments(kPrefix).empty());
}

// ---- GPU workers (backend cuda/hip; here the tests' worker program hosting the GPU emulator) -------

namespace {

struct gpu_worker_setup {
  std::string fault_file;  // the sequence each newly active worker's once-kernels fault on
  gpu_worker_setup() {
    fault_file = "/tmp/rfkhtest-gpu-fault." + std::to_string(::getpid());
    arm(0);
  }
  ~gpu_worker_setup() { ::unlink(fault_file.c_str()); }
  /// What the next worker to become active will fault on (written before it activates).
  void arm(std::uint64_t seq) const {
    const std::string tmp = fault_file + ".tmp";
    std::ofstream(tmp) << seq << "\n";
    REQUIRE(::rename(tmp.c_str(), fault_file.c_str()) == 0);
  }
  kernel_host_options options() const {
    kernel_host_options o = host_options("emulated");
    o.program = RINGFLOW_GPU_WORKER;
    o.worker_args = {"--fault-file", fault_file};
    // Every kernel the worker program hosts, as the service sees it (ids and the CPU fallback).
    o.kernels.find = [](const std::string& n) -> std::optional<process::hosted_kernel> {
      if (n != "echo" && n != "trap_once" && n != "hang_once" && n != "vwap") return std::nullopt;
      const ops::kernel_info* k = ops::find_kernel(n == "vwap" ? "vwap" : "echo");
      return process::hosted_kernel{n, k->request_id, k->reply_id, k->cpu_factory, k->state_bytes};
    };
    o.kernels.names = [] { return std::string("echo, trap_once, hang_once, vwap"); };
    return o;
  }
};

void spawn_gpu(fixture& f, const std::string& kernel) {
  const ops::kernel_info* k = ops::find_kernel("echo");
  cpu_incarnation_options co = quick_park();
  f.ladder.spawn_ring_actor("echo", k->request_id, k->reply_id, f.dev, f.dev->factory(kernel, co), k->cpu_factory(co));
}

}  // namespace

TEST_CASE("kernel host (gpu worker): the worker's device serves the segment's rings in place",
          "[faults][kernel-host]") {
  gpu_worker_setup g;
  {
    fixture f(g.options());
    spawn_gpu(f, "echo");
    REQUIRE(call_ok(f.rt));
    CHECK(f.rt.ring("echo")->backend() == "kernel-host:emulated");
    require_exactly_once(run_load(f.rt, "echo", 2, 2000));
    CHECK(f.dev->worker_restarts() == 0);
    CHECK(f.status().faults == 0);
    // The device's kernel wrote the segment's control block (the service mirrors it): served counts.
    CHECK(f.rt.ring("echo")->stats().replied >= 4001);
  }
  CHECK(process::list_segments(kPrefix).empty());
}

TEST_CASE("kernel host (gpu worker): a trap poisons the worker's context, a new worker takes over, nothing lost",
          "[faults][kernel-host]") {
  // The reinitialize rung on a GPU: the emulator poisons the worker process as a sticky error
  // poisons a CUDA context; the replacement is a fresh process (the standby) with a clean one, and
  // the replay re-serves what the dead worker had not answered — the trapping request included
  // (each worker traps on its own armed sequence only: a transient fault, gone in the new context).
  // Several rounds, each trapping the worker that the previous one's fault activated.
  gpu_worker_setup g;
  g.arm(trap_sequence);
  fixture f(g.options());
  spawn_gpu(f, "trap_once");
  REQUIRE(call_ok(f.rt));
  constexpr int rounds = 4;
  std::vector<double> recovery_ms;
  std::vector<pid_t> workers{f.dev->worker_pids().at(0)};
  const load_result r = load_during(f.rt, 3000, [&] {
    REQUIRE(wait_until([&] { return f.rt.ring("echo")->stats().replied > 300; }));
    ring_client c = f.rt.client("echo").value();
    for (int k = 0; k < rounds; ++k) {
      REQUIRE(wait_until([&] { return f.dev->standby_pids().size() == 1; }));  // the next worker waits
      g.arm(trap_sequence + k + 1);  // what the standby will fault on once it takes over
      const auto t0 = std::chrono::steady_clock::now();
      const call_result trapped = c.call(echo_msg(trap_sequence + k));
      recovery_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      // Answered by the new worker (its replay), not lost, not an error.
      REQUIRE(trapped.ok());
      CHECK(echo_seq(trapped.reply) == trap_sequence + k);
      REQUIRE(wait_until([&] {
        const auto p = f.dev->worker_pids();
        return p.size() == 1 && p[0] != workers.back();
      }));
      workers.push_back(f.dev->worker_pids().at(0));
    }
  });
  require_exactly_once(r);
  CHECK(r.errors == 0);
  const auto st = f.status();
  CHECK(st.faults >= rounds);
  CHECK(st.on_device);  // not rerouted: the worker's replacement is the device again
  CHECK(st.reroutes == 0);
  CHECK(f.dev->worker_failures() >= static_cast<std::uint64_t>(rounds));
  for (std::size_t i = 0; i + 1 < workers.size(); ++i) CHECK(process_gone(workers[i]));
  CHECK(call_ok(f.rt));
  std::sort(recovery_ms.begin(), recovery_ms.end());
  WARN("trap -> reply from the replacement worker (emulator, 2 cores, "
       << rounds << " rounds): min " << recovery_ms.front() << " ms, max " << recovery_ms.back() << " ms");
}

TEST_CASE(
    "kernel host (gpu worker): a stateful kernel's state on the worker's device -> SIGKILL, the next worker's "
    "device gets the fault-free state",
    "[faults][kernel-host][state]") {
  gpu_worker_setup g;
  fixture f(g.options());
  stateful_worker_kills(f, 2);
  CHECK(f.rt.ring("vwap")->backend() == "kernel-host:emulated");
}

TEST_CASE("kernel host (gpu worker): a hung GPU kernel is found by the watchdog, its worker killed and replaced",
          "[faults][kernel-host]") {
  gpu_worker_setup g;
  g.arm(trap_sequence);
  fixture f(g.options());
  spawn_gpu(f, "hang_once");
  REQUIRE(call_ok(f.rt));
  const pid_t first = f.dev->worker_pids().at(0);
  call_result hung;
  const load_result r = load_during(f.rt, 1000, [&] {
    REQUIRE(wait_until([&] { return f.rt.ring("echo")->stats().replied > 300; }));
    ring_client c = f.rt.client("echo").value();
    REQUIRE(wait_until([&] { return f.dev->standby_pids().size() == 1; }));
    g.arm(0);  // the replacement worker serves it
    hung = c.call(echo_msg(trap_sequence));
  });
  require_exactly_once(r);
  REQUIRE(hung.ok());
  CHECK(echo_seq(hung.reply) == trap_sequence);
  CHECK(f.status().hangs >= 1);
  REQUIRE(wait_until([&] { return process_gone(first); }));  // SIGKILL ends a process whatever its device does
  REQUIRE(wait_until([&] { return f.ladder.snapshot().graveyard == 0; }));
  CHECK(call_ok(f.rt));
}

TEST_CASE(
    "kernel host (gpu worker): the production worker refuses the emulator, a worker of another protocol is "
    "refused",
    "[faults][kernel-host]") {
  gpu_worker_setup g;
  ringflow::doorbell bell;
  {
    // `ringflow kernel-host` registers cuda and hip (when linked), never the emulator: exit 3.
    kernel_host_options o = g.options();
    o.program = RINGFLOW_PROGRAM;
    o.worker_args.clear();
    auto dev = kernel_host_device::make("h", o);
    CHECK_THROWS_WITH(dev->factory("echo")(&bell), Catch::Contains("exited with code 3"));
  }
  {
    // A worker that reports another segment protocol version is refused before its rings are used.
    kernel_host_options o = g.options();
    o.worker_args.push_back("--report-version");
    o.worker_args.push_back("1");
    o.standby = false;
    auto dev = kernel_host_device::make("h", o);
    CHECK_THROWS_WITH(dev->factory("echo")(&bell), Catch::Contains("protocol version 1"));
  }
  {
    // The worker refuses a set-up line of another version (exit 3: bad segment).
    process::shm_mapping m = process::shm_mapping::create(kPrefix, "echo", 1 << 16);
    auto* h = new (m.base()) process::host_segment_header{};
    h->magic = process::host_segment_header::magic_value;
    h->version = 99;
    h->total_bytes = m.bytes();
    process::worker_segment seg;
    std::string error;
    const auto e = process::map_segment(m.name(), g.options().kernels, seg, error);
    REQUIRE(e);
    CHECK(*e == process::worker_exit::bad_segment);
    CHECK_THAT(error, Catch::Contains("version 99"));
  }
  CHECK(process::list_segments(kPrefix).empty());
}
