// A stand-in for the fault ladder in the CAF-free stress tests (label tsan: the ladder itself
// needs a CAF runtime, which Debian does not build instrumented): a periodic watchdog thread over
// one ring core on a sim device. It drains faulted and corrupting kernels and restarts them in
// place (same rings, new epoch), abandons hung ones for fresh incarnations, reinitializes a
// poisoned device; every attach replays the outbox (and a stateful core's journal).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/actors/ring_core.hpp"
#include "ringflow/sim/sim_device.hpp"

namespace ringflow::test {

class ladder_controller {
 public:
  ladder_controller(std::shared_ptr<ring_core> core, std::shared_ptr<sim::sim_device> dev, incarnation_factory make,
                    doorbell* bell)
      : core_(std::move(core)), dev_(std::move(dev)), make_(std::move(make)), bell_(bell) {
    thread_ = std::thread([this] { run(); });
  }
  ~ladder_controller() { stop(); }
  void stop() {
    done_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int replacements() const { return replacements_.load(); }
  int restarts_in_place() const { return restarts_in_place_.load(); }
  int step_failures() const { return step_failures_.load(); }  // checked by the test's thread

 private:
  void run() {
    using namespace std::chrono_literals;
    std::vector<std::unique_ptr<incarnation>> graveyard;
    const incarnation* watched = nullptr;
    std::uint64_t beat = 0, corrupt = 0;
    auto beat_at = std::chrono::steady_clock::now();
    while (!done_.load()) {
      const incarnation_probe p = core_->probe();
      const ring_stats s = core_->stats();
      const auto now = std::chrono::steady_clock::now();
      if (p.identity != watched) {
        watched = p.identity;
        beat = p.heartbeat;
        beat_at = now;
      }
      const bool faulted = p.state == kernel_state::faulted;
      const bool corrupted = s.corrupt_replies != corrupt;
      if (p.heartbeat != beat || (p.request_depth == 0 && p.awaiting_replies == 0)) {
        beat = p.heartbeat;
        beat_at = now;
      }
      const bool hung = now - beat_at > 30ms;
      if (faulted || corrupted || hung) {
        corrupt = s.corrupt_replies;
        // As the ladder does: a faulted or corrupting kernel is drained and restarted in place
        // (same rings, new epoch); a hung one is abandoned and replaced.
        std::unique_ptr<incarnation> old = hung && !faulted && !corrupted ? core_->detach_abandon() : core_->detach();
        if (dev_->poisoned()) {
          std::string why;
          if (dev_->reinitialize(why) != reinit_outcome::ok) step_failures_.fetch_add(1);
        }
        try {
          if (!hung && old->restart()) {
            core_->attach(std::move(old));
            restarts_in_place_.fetch_add(1);
          } else {
            old->abandon();
            graveyard.push_back(std::move(old));
            core_->attach(make_(bell_));
          }
        } catch (...) {
          step_failures_.fetch_add(1);
          return;
        }
        replacements_.fetch_add(1);
        watched = nullptr;
      }
      graveyard.erase(std::remove_if(graveyard.begin(), graveyard.end(), [](auto& i) { return i->finished(); }),
                      graveyard.end());
      // A periodic watchdog, as the ladder is (its watch interval): this sleep is its polling
      // period, not a wait for another thread's progress.
      std::this_thread::sleep_for(500us);
    }
  }

  std::shared_ptr<ring_core> core_;
  std::shared_ptr<sim::sim_device> dev_;
  incarnation_factory make_;
  doorbell* bell_;
  std::atomic<bool> done_{false};
  std::atomic<int> replacements_{0}, restarts_in_place_{0}, step_failures_{0};
  std::thread thread_;
};

}  // namespace ringflow::test
