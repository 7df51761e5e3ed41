// Wait policies, the process spin budget, thread names and pinning: see ringflow/wait_policy.hpp.
#include "ringflow/wait_policy.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <type_traits>

namespace ringflow {

namespace {

int default_budget() noexcept { return static_cast<int>(allowed_cpus()) - 1; }

// The budget: `cap` slots (-1 until first used: the default), `used` taken. A slot is taken by a
// CAS that keeps used <= cap; giving one back is a decrement. Relaxed would do for the count
// itself; acq_rel keeps the budget's history readable in a debugger and costs nothing here.
std::atomic<int> cap{-1};
std::atomic<int> used{0};

int capacity() noexcept {
  int c = cap.load(std::memory_order_relaxed);
  if (c < 0) {
    int expected = -1;
    const int d = std::max(0, default_budget());
    cap.compare_exchange_strong(expected, d, std::memory_order_acq_rel);
    c = cap.load(std::memory_order_relaxed);
  }
  return c;
}

bool try_take() noexcept {
  const int c = capacity();
  int u = used.load(std::memory_order_relaxed);
  while (u < c)
    if (used.compare_exchange_weak(u, u + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) return true;
  return false;
}

// The calling thread's slot: given back when the thread exits, too.
struct slot_holder {
  bool held = false;
  ~slot_holder() {
    if (held) used.fetch_sub(1, std::memory_order_acq_rel);
  }
};
thread_local slot_holder slot;

}  // namespace

const char* to_string(wait_mode m) noexcept {
  switch (m) {
    case wait_mode::park: return "park";
    case wait_mode::adaptive: return "adaptive";
    case wait_mode::spin: return "spin";
  }
  return "?";
}

std::optional<wait_mode> parse_wait_mode(std::string_view s) noexcept {
  if (s == "park") return wait_mode::park;
  if (s == "adaptive") return wait_mode::adaptive;
  if (s == "spin") return wait_mode::spin;
  return std::nullopt;
}

void release_spin_slot() noexcept {
  if (!slot.held) return;
  slot.held = false;
  used.fetch_sub(1, std::memory_order_acq_rel);
}

bool idle_step(const wait_policy& w, std::uint32_t& idle) noexcept {
  switch (w.mode) {
    case wait_mode::spin:
      ++idle;
      cpu_relax();
      return false;
    case wait_mode::park: ++idle; return true;
    case wait_mode::adaptive: break;
  }
  if (w.park && !slot.held) {
    if (!try_take()) {  // no spare core: park at once
      ++idle;
      return true;
    }
    slot.held = true;
  }
  ++idle;
  switch (w.step(idle)) {
    case wait_step::spin: cpu_relax(); return false;
    case wait_step::yield:
      if (idle > w.park_threshold()) idle = w.park_threshold();  // only when !w.park
      sched_yield();
      return false;
    case wait_step::park: break;
  }
  release_spin_slot();
  return true;
}

int spin_budget_cores() noexcept { return capacity(); }
void set_spin_budget_cores(int n) noexcept { cap.store(n < 0 ? std::max(0, default_budget()) : n); }
int spin_budget_in_use() noexcept { return used.load(std::memory_order_relaxed); }

unsigned allowed_cpus() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  const int n = CPU_COUNT(&set);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

static_assert(std::is_same_v<pthread_t, unsigned long>, "name_thread takes a pthread_t as unsigned long");

void name_thread(unsigned long thread, std::string_view name) noexcept {
  char buf[16];
  const std::size_t n = std::min<std::size_t>(name.size(), 15);
  std::memcpy(buf, name.data(), n);
  buf[n] = '\0';
  (void)pthread_setname_np(static_cast<pthread_t>(thread), buf);
}

void name_this_thread(std::string_view name) noexcept { name_thread(pthread_self(), name); }

namespace {
std::string cpu_set_of(const std::vector<int>& cpus, cpu_set_t& set) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
    return std::string("sched_getaffinity: ") + std::strerror(errno);
  for (int c : cpus) {
    if (c < 0 || c >= CPU_SETSIZE || !CPU_ISSET(c, &allowed)) {
      std::string list;
      for (int i = 0; i < CPU_SETSIZE; ++i)
        if (CPU_ISSET(i, &allowed)) {
          if (!list.empty()) list += ',';
          list += std::to_string(i);
        }
      // Appended, not "literal" + std::string&&: GCC 12 warns falsely (-Wrestrict) on that form.
      std::string why = "CPU ";
      why += std::to_string(c);
      why += " is not in this process's allowed CPU set (";
      why += list;
      why += ')';
      return why;
    }
    CPU_SET(c, &set);
  }
  return {};
}
}  // namespace

std::string check_cpu_list(const std::vector<int>& cpus) {
  cpu_set_t set;
  return cpu_set_of(cpus, set);
}

std::string pin_this_thread(const std::vector<int>& cpus) {
  if (cpus.empty()) return {};
  cpu_set_t set;
  if (std::string why = cpu_set_of(cpus, set); !why.empty()) return why;
  const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) return std::string("pthread_setaffinity_np: ") + std::strerror(rc);
  return {};
}

}  // namespace ringflow
