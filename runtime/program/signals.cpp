// The run's signal handling: see program.hpp (signal_watcher).
#include <pthread.h>

#include "program.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::program {

signal_watcher::signal_watcher() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
}

void signal_watcher::start(std::function<void(int)> on_first, std::function<void(int)> on_second) {
  thread_ = std::thread([this, on_first = std::move(on_first), on_second = std::move(on_second)] {
    name_this_thread("rf-signals");
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0) continue;
      if (finished_.load()) return;
      if (sig == SIGHUP) {
        reload_.store(true);
        continue;
      }
      if (sig == 0) return;
      if (stop_signal_.exchange(sig) != 0) {  // the second signal: exit fast
        on_second(sig);
        continue;
      }
      on_first(sig);
    }
  });
}

void signal_watcher::finish() {
  if (!thread_.joinable()) return;
  finished_.store(true);
  pthread_kill(thread_.native_handle(), SIGHUP);  // wakes sigwait (blocked, so delivered to it)
  thread_.join();
}

}  // namespace ringflow::program
