// Wait policies (park / adaptive / spin), the process spin budget, thread names and pinning
// (backends/core wait_policy.hpp). No CAF here: this file runs under ThreadSanitizer (label tsan),
// and Debian's CAF is not instrumented; the runtime's side is test_wait_runtime.cpp.
#include <pthread.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/cpu/cpu_kernel.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/wait_policy.hpp"

using namespace ringflow;

namespace {
std::string this_thread_name() {
  char buf[32] = {};
  pthread_getname_np(pthread_self(), buf, sizeof buf);
  return buf;
}
// Restores the default budget whatever a test set.
struct budget_guard {
  ~budget_guard() { set_spin_budget_cores(-1); }
};
}  // namespace

TEST_CASE("wait modes: names, park parks at once, spin never parks", "[wait]") {
  CHECK(parse_wait_mode("park") == wait_mode::park);
  CHECK(parse_wait_mode("adaptive") == wait_mode::adaptive);
  CHECK(parse_wait_mode("spin") == wait_mode::spin);
  CHECK_FALSE(parse_wait_mode("Spin"));
  CHECK_FALSE(parse_wait_mode(""));
  for (wait_mode m : {wait_mode::park, wait_mode::adaptive, wait_mode::spin}) CHECK(parse_wait_mode(to_string(m)) == m);
  std::uint32_t idle = 0;
  CHECK(idle_step(wait_policy::of(wait_mode::park), idle));  // the first idle pass parks
  const wait_policy spin = wait_policy::of(wait_mode::spin);
  idle = 0;
  bool parked = false;
  for (int i = 0; i < 200000 && !parked; ++i) parked = idle_step(spin, idle);
  CHECK_FALSE(parked);
  CHECK(spin_budget_in_use() == 0);  // spin needs no slot
}

TEST_CASE("adaptive: never more spinners than the spin budget, slots come back on park and on exit", "[wait]") {
  budget_guard restore;
  set_spin_budget_cores(1);
  REQUIRE(spin_budget_cores() == 1);
  wait_policy w;  // adaptive, 4000 spins + 16 yields
  std::uint32_t idle = 0;
  CHECK_FALSE(idle_step(w, idle));  // takes the one slot and spins
  CHECK(spin_budget_in_use() == 1);
  // Another thread finds no slot: it parks at once.
  bool other_parks = false;
  std::thread([&] {
    std::uint32_t i = 0;
    other_parks = idle_step(w, i);
  }).join();
  CHECK(other_parks);
  CHECK(spin_budget_in_use() == 1);
  // Run the ladder out: the park step gives the slot back.
  bool parked = false;
  for (std::uint32_t i = 0; i < w.park_threshold() + 2 && !parked; ++i) parked = idle_step(w, idle);
  CHECK(parked);
  CHECK(spin_budget_in_use() == 0);
  // A thread that ends while holding a slot returns it.
  std::thread([&] {
    std::uint32_t i = 0;
    CHECK_FALSE(idle_step(w, i));
    CHECK(spin_budget_in_use() == 1);
  }).join();
  CHECK(spin_budget_in_use() == 0);
  // release_spin_slot() gives it back explicitly.
  idle = 0;
  CHECK_FALSE(idle_step(w, idle));
  release_spin_slot();
  CHECK(spin_budget_in_use() == 0);
  // A budget of zero: adaptive parks at once.
  set_spin_budget_cores(0);
  idle = 0;
  CHECK(idle_step(w, idle));
  // The default: allowed CPUs - 1.
  set_spin_budget_cores(-1);
  CHECK(spin_budget_cores() == std::max(0, static_cast<int>(allowed_cpus()) - 1));
}

TEST_CASE("adaptive under contention: the number of threads holding slots never exceeds the budget", "[wait][tsan]") {
  budget_guard restore;
  set_spin_budget_cores(1);
  wait_policy w;
  w.spin_iterations = 50;
  w.yield_iterations = 2;
  // Sampled on every spin step (the thread is spinning, so it must hold a slot): the slots held
  // then, never more than the budget and at least this thread's. (A counter of the test's own,
  // decremented after idle_step() returned park, would lag the slot's release inside idle_step()
  // and count a thread twice.)
  std::atomic<int> worst{0}, spin_steps{0}, unheld{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      std::uint32_t idle = 0;
      for (int i = 0; i < 20000; ++i) {
        if (idle_step(w, idle)) {
          idle = 0;
          continue;
        }
        if (w.step(idle) != wait_step::spin) continue;  // the yield steps hold it too; sample spins
        spin_steps.fetch_add(1, std::memory_order_relaxed);
        const int now = spin_budget_in_use();
        if (now < 1) unheld.fetch_add(1, std::memory_order_relaxed);
        int prev = worst.load();
        while (now > prev && !worst.compare_exchange_weak(prev, now)) {}
      }
      release_spin_slot();
    });
  for (auto& t : ts) t.join();
  CHECK(worst.load() <= 1);
  CHECK(spin_steps.load() > 0);  // somebody did spin
  CHECK(unheld.load() == 0);
  CHECK(spin_budget_in_use() == 0);
}

TEST_CASE("threads are named rf-..., cut to 15 bytes, and CPU lists outside the allowed set are refused", "[wait]") {
  std::thread([] {
    name_this_thread("rf-k-a-very-long-node-name");
    CHECK(this_thread_name() == "rf-k-a-very-lon");
  }).join();
  CHECK(check_cpu_list({}).empty());
  CHECK(check_cpu_list({0}).empty());
  const std::string why = check_cpu_list({4000});
  CHECK_THAT(why, Catch::Contains("CPU 4000 is not in this process's allowed CPU set (0"));
  CHECK_THAT(check_cpu_list({-1}), Catch::Contains("CPU -1"));
  std::thread([] {
    CHECK(pin_this_thread({0}).empty());
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(pthread_getaffinity_np(pthread_self(), sizeof set, &set) == 0);
    CHECK(CPU_COUNT(&set) == 1);
    CHECK(CPU_ISSET(0, &set));
    CHECK_FALSE(pin_this_thread({4000}).empty());
  }).join();
  // The kernel and the runtime check before they start a thread.
  cpu::kernel_config kc;
  kc.name = "pinned";
  kc.cpus = {4000};
  cpu::cpu_kernel k(kc);
  (void)k.add_ring<demo_kernels::EchoKernel>();
  CHECK_THROWS_WITH(k.start(), Catch::Contains("cpu_kernel 'pinned': cpus: CPU 4000"));
}
