// The runtime's side of wait policies: rf- thread names, CPU lists refused by the runtime, CPU
// kernels completing their callers themselves (reply_sink), every wait mode end to end.
#include <pthread.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "ringflow/ringflow.hpp"
#include "test_support.hpp"

using namespace ringflow;

namespace {
fb_msg echo(std::uint64_t seq, std::size_t n) { return fb_msg(test::echo_request(seq, n)); }
std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
  return out;
}
std::string this_thread_name() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}
}  // namespace

TEST_CASE("the runtime refuses scheduler and poller CPUs outside the allowed set", "[wait]") {
  runtime_config rc;
  rc.scheduler_cpus = {4000};
  CHECK_THROWS_WITH(runtime(rc), Catch::Contains("runtime: scheduler cpus: CPU 4000"));
  runtime_config pc;
  pc.poller.cpus = {4000};
  CHECK_THROWS_WITH(runtime(pc), Catch::Contains("completion poller: cpus: CPU 4000"));
}

TEST_CASE("a runtime's threads carry rf- names and the kernel completes callers on its own thread", "[wait]") {
  runtime rt;
  cpu_incarnation_options ko;
  ko.thread_name = "rf-k-mine";
  ko.cpus = {0};
  rt.spawn_ring_actor<demo_kernels::EchoKernel>("echo", {}, ko);
  cpu_incarnation_options off;
  off.complete_callers = false;
  rt.spawn_ring_actor<demo_kernels::EchoKernel>("echo2", {}, off);
  cpu_incarnation_options own;
  own.own_thread = true;
  rt.spawn_ring_actor<demo_kernels::EchoKernel>("echo3", {}, own);
  rt.spawn_ring_actor<demo_kernels::EchoKernel>("pooled", {});
  // Thread names of the whole process: rf-poll, rf-caf-<n>, rf-k-mine, rf-k-echo (a kernel thread
  // of its own), rf-kp-<n> and rf-kp-mon (the kernel pool of the other ring actors). The kernel and
  // the poller are named by their creators; CAF's threads name themselves when they start, so
  // wait (bounded) for rf-caf-0.
  std::set<std::string> names;
  for (int attempt = 0; attempt < 200 && !names.count("rf-caf-0"); ++attempt) {
    if (attempt) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    names.clear();
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream f(e.path() / "comm");
      std::string n;
      std::getline(f, n);
      names.insert(n);
    }
  }
  CHECK(names.count("rf-poll"));
  CHECK(names.count("rf-k-mine"));  // its own name
  CHECK(names.count("rf-k-echo"));  // a thread of its own by default: rf-k-<kernel>
  CHECK(names.count("rf-kp-0"));
  CHECK(names.count("rf-kp-mon"));
  CHECK(rt.kernel_pool()->stats().rings == 2);  // echo2 and pooled
  CHECK(names.count("rf-caf-0"));
  // Callbacks of submit(): with complete_callers on, the kernel thread delivers (no poller hop);
  // off, the poller does.
  auto where = [&](const std::string& ring) {
    ring_client c = *rt.client(ring);
    std::set<std::string> seen;
    for (int i = 0; i < 50; ++i) {
      std::promise<std::string> p;
      auto f = p.get_future();
      c.submit(echo(static_cast<std::uint64_t>(i), 16),
               [&p](call_result&& r) { p.set_value(r.ok() ? this_thread_name() : std::string("error")); });
      seen.insert(f.get());
    }
    return seen;
  };
  const std::set<std::string> on = where("echo");
  INFO("completed on: " << joined(on));
  CHECK(on.count("rf-k-mine"));
  CHECK(on.count("error") == 0);
  const std::set<std::string> poller = where("echo2");
  INFO("completed on: " << joined(poller));
  CHECK(poller == std::set<std::string>{"rf-poll"});
  // In the pool the worker that served the request completes its caller too. (The poller may
  // take some: a first request in flight wakes it for the deadline sweep, and it races the worker
  // for the replies — either completes each exactly once.)
  const std::set<std::string> pooled = where("pooled");
  INFO("completed on: " << joined(pooled));
  CHECK(pooled.count("error") == 0);
  CHECK(std::any_of(pooled.begin(), pooled.end(), [](const std::string& t) { return t.rfind("rf-kp-", 0) == 0; }));
}

TEST_CASE("every wait mode answers every call, in order, and park leaves the kernel parked between calls", "[wait]") {
  for (wait_mode m : {wait_mode::park, wait_mode::adaptive, wait_mode::spin}) {
    INFO(to_string(m));
    runtime_config rc;
    rc.poller.wait = wait_policy::of(m == wait_mode::spin ? wait_mode::park : m);
    runtime rt(rc);
    cpu_incarnation_options ko;
    ko.wait = wait_policy::of(m);
    rt.spawn_ring_actor<demo_kernels::EchoKernel>("echo", {}, ko);
    client_options co;
    co.wait = m;
    ring_client c = *rt.client("echo", co);
    for (std::uint32_t i = 0; i < 300; ++i) {
      const fb_msg req = echo(i, 24);
      const call_result r = c.call(req);
      REQUIRE(r.ok());
      REQUIRE(r.reply.bytes == req.bytes);
    }
    if (m == wait_mode::park) {
      const std::unique_ptr<incarnation> old = rt.swap_incarnation("echo");
      auto* inc = dynamic_cast<detail::cpu_incarnation*>(old.get());
      REQUIRE(inc);
      CHECK(inc->kernel().stats().parks >= 250);  // parked between (nearly) every call
    }
  }
}
