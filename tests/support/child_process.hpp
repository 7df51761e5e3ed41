// Observing other processes from tests: their /proc state, and waiting for something only they
// can make true (a line in their log, a value on their HTTP endpoint, their exit).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace ringflow::testing {

/// The state letter of /proc/<pid>/stat ('R', 'S', 'T' stopped, 'Z' zombie, ...); '?' when the
/// process does not exist.
inline char process_state(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = s.rfind(')');
  return close != std::string::npos && close + 2 < s.size() ? s[close + 2] : '?';
}

/// True once `pid` is gone, or a zombie nobody reaps (it runs no more code).
inline bool process_gone(pid_t pid) {
  const char st = process_state(pid);
  return st == '?' || st == 'Z';
}

/// Waits until `pred()` holds or `limit` passes; returns pred(). For conditions only another
/// process can make true — no event of ours to wait on — so it looks every `period`: that sleep
/// is the polling period, the deadline is what bounds the wait.
template <class Pred>
bool poll_until(Pred pred, std::chrono::milliseconds limit,
                std::chrono::milliseconds period = std::chrono::milliseconds(20)) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= give_up) return pred();
    std::this_thread::sleep_for(period);  // the polling period (see above)
  }
  return true;
}

}  // namespace ringflow::testing
