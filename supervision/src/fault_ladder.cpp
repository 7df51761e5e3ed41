// The host watchdog and the device fault ladder: see ringflow/supervision/fault_ladder.hpp.
#include "ringflow/supervision/fault_ladder.hpp"
#include "ringflow/wait_policy.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace ringflow {

namespace {

using clock = std::chrono::steady_clock;

std::uint64_t ns_of(clock::time_point t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

const char* to_string(ladder_event::kind k) noexcept {
  switch (k) {
    case ladder_event::kind::fault: return "fault";
    case ladder_event::kind::restart: return "restart";
    case ladder_event::kind::reinitialize: return "reinitialize";
    case ladder_event::kind::reroute: return "reroute";
    case ladder_event::kind::probe: return "probe";
    case ladder_event::kind::fail_back: return "fail_back";
    case ladder_event::kind::breaker_open: return "breaker_open";
    case ladder_event::kind::breaker_closed: return "breaker_closed";
    case ladder_event::kind::recovered: return "recovered";
    case ladder_event::kind::step_failed: return "step_failed";
    case ladder_event::kind::leaked: return "leaked";
  }
  return "unknown";
}

std::string ladder_event::to_json() const {
  std::string out = "{\"event\":";
  append_json_string(out, to_string(what));
  out += ",\"at_ns\":" + std::to_string(at_ns) + ",\"ring\":";
  append_json_string(out, ring);
  out += ",\"device\":";
  append_json_string(out, device);
  if (!fault.empty()) {
    out += ",\"fault\":";
    append_json_string(out, fault);
  }
  if (!detail.empty()) {
    out += ",\"detail\":";
    append_json_string(out, detail);
  }
  if (!backend.empty()) {
    out += ",\"backend\":";
    append_json_string(out, backend);
  }
  if (attempt) out += ",\"attempt\":" + std::to_string(attempt);
  if (duration_ns) out += ",\"duration_ns\":" + std::to_string(duration_ns);
  out += '}';
  return out;
}

struct fault_ladder::impl : std::enable_shared_from_this<fault_ladder::impl> {
  enum class fault_class { transient, device };
  enum class phase { healthy, backoff, probing };
  enum class step { restart, reinitialize, reroute };

  struct device_rec {
    std::shared_ptr<device> dev;
    circuit_breaker breaker;
    std::uint64_t reinits = 0;
  };

  struct ring_rec {
    std::string name;
    std::shared_ptr<ring_core> core;
    device_rec* dev = nullptr;
    incarnation_factory on_device, on_cpu;
    bool on_device_now = true;
    phase ph = phase::healthy;
    step pending = step::restart;
    clock::time_point next_at{};
    clock::time_point probe_started{};
    // watchdog
    const incarnation* watched = nullptr;
    std::unique_ptr<incarnation> spare;  // the faulted incarnation, for a restart in place
    bool spare_on_device = false;
    std::uint64_t beat = 0;
    clock::time_point beat_at{};
    std::uint64_t submitted_seen = 0;  // the core's submitted count at the last look (activity)
    std::uint64_t corrupt_seen = 0;    // the core's corrupt_replies already handled (only the attached
                                       // incarnation's replies are read, so any increase is its fault)
    // ladder
    std::uint64_t created_reinit = 0;      // the device's reinit count when its incarnation started
    std::deque<clock::time_point> recent;  // faults within restart_window
    std::uint32_t in_a_row = 0;            // restarts since the last successful reply
    std::uint64_t detected_ns = 0;
    bool awaiting_reply = false;
    ladder_ring_status st;
  };

  impl(runtime& r, ladder_config c) : rt(r), cfg(std::move(c)), rng(cfg.seed) {}

  runtime& rt;
  ladder_config cfg;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  std::thread thread;
  std::map<std::string, device_rec> devices;  // by device id (node-based: stable addresses)
  std::map<std::string, ring_rec> rings;      // by ring actor name
  std::vector<std::unique_ptr<incarnation>> graveyard;
  std::deque<ladder_event> history;
  std::mt19937_64 rng;

  // ---- events ----------------------------------------------------------------------------------
  void emit(ladder_event::kind what, const ring_rec* r, const device_rec* d, std::string fault = {},
            std::string detail = {}, std::uint32_t attempt = 0, std::uint64_t duration_ns = 0) {
    ladder_event e;
    e.what = what;
    e.at_ns = ns_of(clock::now());
    if (r) {
      e.ring = r->name;
      e.backend = r->core->backend();
    }
    if (d) e.device = d->dev->id();
    e.fault = std::move(fault);
    e.detail = std::move(detail);
    e.attempt = attempt;
    e.duration_ns = duration_ns;
    if (cfg.on_event) cfg.on_event(e);
    if (cfg.event_history) {
      history.push_back(std::move(e));
      while (history.size() > cfg.event_history) history.pop_front();
    }
  }

  // ---- incarnations ----------------------------------------------------------------------------
  void bury(std::unique_ptr<incarnation> inc) {
    if (!inc) return;
    inc->abandon();
    graveyard.push_back(std::move(inc));
  }

  void reap() {
    graveyard.erase(std::remove_if(graveyard.begin(), graveyard.end(), [](auto& inc) { return inc->finished(); }),
                    graveyard.end());
  }

  /// Attaches a kernel on the device (`on_device`) or the CPU: the failed incarnation restarted in
  /// place when it can be (same rings, no allocation), else a new one from the factory. False
  /// (with `why`) if neither worked or the ring actor stopped meanwhile.
  bool place(ring_rec& r, bool on_device, std::string& why) {
    std::unique_ptr<incarnation> inc = std::move(r.spare);
    if (inc) {
      bool restarted = false;
      if (r.spare_on_device == on_device) {
        try {
          restarted = inc->restart();
        } catch (const std::exception&) {
          restarted = false;
        }
      }
      if (!restarted) bury(std::move(inc));
    }
    if (!inc) {
      try {
        inc = (on_device ? r.on_device : r.on_cpu)(&rt.poller().bell());
      } catch (const std::exception& e) {
        why = e.what();
        return false;
      }
    }
    r.created_reinit = r.dev->reinits;
    r.watched = nullptr;
    try {
      r.core->attach(std::move(inc));
    } catch (const std::logic_error& e) {  // the ring actor stopped meanwhile: nothing to recover
      why = e.what();
      return false;
    }
    return true;
  }

  /// Takes the incarnation off ring `r`: a faulted one is stopped (its last replies harvested) and
  /// kept for a restart in place; a hung or untrusted one (`abandon`) goes to the graveyard, as does
  /// a healthy one that moves elsewhere (`keep` false).
  void take_off(ring_rec& r, bool abandon, bool keep) {
    bury(std::move(r.spare));
    std::unique_ptr<incarnation> inc = abandon ? r.core->detach_abandon() : r.core->detach();
    if (keep && !abandon && inc) {
      r.spare = std::move(inc);
      r.spare_on_device = r.on_device_now;
    } else {
      bury(std::move(inc));
    }
    r.watched = nullptr;
  }

  std::chrono::nanoseconds backoff(std::uint32_t n) {
    double d = static_cast<double>(std::chrono::nanoseconds(cfg.backoff_initial).count());
    for (std::uint32_t i = 1; i < n; ++i) d *= cfg.backoff_multiplier;
    d = std::min(d, static_cast<double>(std::chrono::nanoseconds(cfg.backoff_max).count()));
    if (cfg.jitter > 0) d *= std::uniform_real_distribution<double>(1.0 - cfg.jitter, 1.0 + cfg.jitter)(rng);
    return std::chrono::nanoseconds(static_cast<std::int64_t>(d));
  }

  // ---- the ladder --------------------------------------------------------------------------------
  void schedule(ring_rec& r, step s, clock::time_point now) {
    std::chrono::nanoseconds delay{0};
    if (s == step::restart && ++r.in_a_row > 1) delay = backoff(r.in_a_row - 1);
    if (delay.count() == 0) {
      take(r, s, now);
      return;
    }
    r.ph = phase::backoff;
    r.pending = s;
    r.next_at = now + delay;
  }

  void take(ring_rec& r, step s, clock::time_point now) {
    r.ph = phase::healthy;
    const clock::time_point began = clock::now();
    auto took = [&] { return static_cast<std::uint64_t>(std::chrono::nanoseconds(clock::now() - began).count()); };
    device_rec& d = *r.dev;
    if (r.on_device_now && s == step::restart && !d.breaker.closed()) s = step::reroute;
    std::string why;
    switch (s) {
      case step::restart: {
        const bool ok = place(r, r.on_device_now, why);
        if (ok) {
          ++r.st.restarts;
          emit(ladder_event::kind::restart, &r, &d, {}, {}, r.in_a_row, took());
          return;
        }
        if (r.core->stopping()) return;
        emit(ladder_event::kind::step_failed, &r, &d, "launch_failed", "restart: " + why);
        if (!r.on_device_now) {  // the CPU backend refused: try again later
          schedule(r, step::restart, now);
          return;
        }
        // The device refused to start the kernel: a device fault.
        if (d.breaker.record_failure(now)) open_breaker(d, now, &r);
        take(r, d.breaker.closed() ? step::reinitialize : step::reroute, now);
        return;
      }
      case step::reinitialize: {
        const reinit_outcome o = d.dev->reinitialize(why);
        emit(ladder_event::kind::reinitialize, &r, &d, {},
             o == reinit_outcome::ok ? "ok" : (o == reinit_outcome::unsupported ? "unsupported: " : "failed: ") + why,
             0, took());
        if (o == reinit_outcome::ok) {
          ++d.reinits;
          ++r.st.reinits;
          if (place(r, true, why)) {
            ++r.st.restarts;
            emit(ladder_event::kind::restart, &r, &d, {}, "after reinitialize", r.in_a_row, took());
            return;
          }
          if (r.core->stopping()) return;
          emit(ladder_event::kind::step_failed, &r, &d, "launch_failed", "restart after reinitialize: " + why);
        }
        take(r, step::reroute, now);
        return;
      }
      case step::reroute: {
        if (d.breaker.trip(now)) open_breaker(d, now, &r);
        if (!place(r, false, why)) {
          if (r.core->stopping()) return;
          emit(ladder_event::kind::step_failed, &r, &d, "launch_failed", "reroute: " + why);
          r.on_device_now = false;
          schedule(r, step::restart, now);
          return;
        }
        r.on_device_now = false;
        ++r.st.reroutes;
        emit(ladder_event::kind::reroute, &r, &d, {}, {}, 0, took());
        return;
      }
    }
  }

  /// The breaker of `d` opened: every other ring actor still on the device moves to the CPU.
  void open_breaker(device_rec& d, clock::time_point, ring_rec* cause) {
    emit(ladder_event::kind::breaker_open, cause, &d, {},
         std::to_string(d.breaker.recent_failures()) + " failures; probe in " +
             std::to_string(d.breaker.cooldown().count()) + " ms");
    for (auto& [name, r] : rings) {
      // Healthy ones and a probe in progress (its probe failed with the device); not ones in back-off
      // (their next step sees the open breaker and reroutes).
      if (&r == cause || r.dev != &d || !r.on_device_now || r.ph == phase::backoff || !r.core->attached()) continue;
      r.ph = phase::healthy;
      take_off(r, false, false);  // a healthy kernel: drain it, keep its replies
      std::string why;
      if (!place(r, false, why)) {
        if (r.core->stopping()) continue;
        emit(ladder_event::kind::step_failed, &r, &d, {}, "reroute: " + why);
        r.on_device_now = false;
        schedule(r, step::restart, clock::now());
        continue;
      }
      r.on_device_now = false;
      ++r.st.reroutes;
      emit(ladder_event::kind::reroute, &r, &d, {}, "breaker open");
    }
  }

  void on_fault(ring_rec& r, const std::string& fault, fault_class cls, std::string detail, bool abandon,
                clock::time_point now) {
    ++r.st.faults;
    r.detected_ns = ns_of(now);
    r.awaiting_reply = true;
    device_rec& d = *r.dev;
    emit(ladder_event::kind::fault, &r, &d, fault, std::move(detail));
    // A hung kernel cannot drain; a faulted one has stopped already; a corrupting one drains.
    take_off(r, abandon, true);
    while (!r.recent.empty() && now - r.recent.front() >= cfg.restart_window) r.recent.pop_front();
    r.recent.push_back(now);
    const bool probing = r.ph == phase::probing;
    r.ph = phase::healthy;
    if (!r.on_device_now) {
      schedule(r, step::restart, now);
      return;
    }
    // A device fault of a kernel started before the device's latest reinitialization belongs to
    // the incident that reinitialization handled (a sticky error faults every kernel on the device).
    const bool same_incident = cls == fault_class::device && r.created_reinit < d.reinits;
    if (!same_incident && d.breaker.record_failure(now)) {
      if (probing) emit(ladder_event::kind::step_failed, &r, &d, fault, "fail-back probe failed");
      open_breaker(d, now, &r);
    }
    if (!d.breaker.closed()) schedule(r, step::reroute, now);
    else if (same_incident) schedule(r, step::restart, now);
    else if (cls == fault_class::device || r.recent.size() >= cfg.restarts_before_reinit)
      schedule(r, step::reinitialize, now);
    else schedule(r, step::restart, now);
  }

  static fault_class classify(kernel_error e, std::uint32_t flags) {
    if (flags & kernel_error_flags::sticky) return fault_class::device;
    switch (e) {
      case kernel_error::out_of_memory:
      case kernel_error::device_lost:
      case kernel_error::launch_failed: return fault_class::device;
      default: return fault_class::transient;
    }
  }

  // One watchdog look at ring `r`. Returns true while it needs the fast watch interval.
  bool check(ring_rec& r, clock::time_point now) {
    if (r.ph == phase::backoff) {
      if (now >= r.next_at) take(r, r.pending, now);
      return true;
    }
    const incarnation_probe p = r.core->probe();
    const ring_stats s = r.core->stats();
    if (r.awaiting_reply && s.first_reply_ns != 0 && s.last_attach_ns >= r.detected_ns) {
      r.awaiting_reply = false;
      r.in_a_row = 0;
      r.st.last_recovery_ns = s.first_reply_ns - r.detected_ns;
      emit(ladder_event::kind::recovered, &r, r.dev, {}, {}, 0, r.st.last_recovery_ns);
    }
    if (!p.attached) return true;  // someone else is swapping it (runtime::swap_incarnation) or stopping it
    if (p.identity != r.watched) {
      r.watched = p.identity;
      r.beat = p.heartbeat;
      r.beat_at = now;
    }
    if (p.state == kernel_state::faulted) {
      const fault_class cls = classify(p.error, p.error_flags);
      on_fault(r, to_string(p.error), cls, p.error_detail, false, now);
      return true;
    }
    if (s.corrupt_replies > r.corrupt_seen) {
      const std::uint64_t bad = s.corrupt_replies - r.corrupt_seen;
      r.st.corrupt_replies += bad;
      r.corrupt_seen = s.corrupt_replies;
      // Not abandoned: the kernel still runs, and whatever else it replies is verified too, so it
      // can be drained and restarted in place like a faulted one.
      on_fault(r, "corrupt_reply", fault_class::transient, std::to_string(bad) + " replies failed verification", false,
               now);
      return true;
    }
    if (p.heartbeat != r.beat || (p.request_depth == 0 && p.awaiting_replies == 0)) {
      r.beat = p.heartbeat;
      r.beat_at = now;
    } else if (now - r.beat_at >= cfg.hang_timeout) {
      ++r.st.hangs;
      const auto stalled = std::chrono::duration_cast<std::chrono::milliseconds>(now - r.beat_at).count();
      on_fault(r, "hang", fault_class::transient,
               "no heartbeat for " + std::to_string(stalled) + " ms with " + std::to_string(p.request_depth) +
                   " requests waiting",
               true, now);
      return true;
    }
    if (r.ph == phase::probing && now - r.probe_started >= cfg.probe_window) probe_succeeded(r, now);
    // Fast watch while requests flow: "in flight right now" alone misses paced traffic that is
    // served between two looks, and would leave a fault undetected for a whole idle interval.
    const bool active = s.submitted != r.submitted_seen;
    r.submitted_seen = s.submitted;
    return active || s.in_flight > 0 || r.ph != phase::healthy || r.awaiting_reply;
  }

  void probe_succeeded(ring_rec& r, clock::time_point now) {
    device_rec& d = *r.dev;
    r.ph = phase::healthy;
    if (d.breaker.state() != breaker_state::half_open) return;  // re-opened meanwhile: handled there
    d.breaker.probe_succeeded(now);
    emit(ladder_event::kind::breaker_closed, &r, &d);
    ++r.st.fail_backs;
    emit(ladder_event::kind::fail_back, &r, &d, {}, "probe healthy");
    for (auto& [name, o] : rings) {
      if (o.dev != &d || o.on_device_now || o.ph != phase::healthy || !o.core->attached()) continue;
      std::string why;
      if (!move_to_device(o, why)) {
        if (o.core->stopping()) continue;
        emit(ladder_event::kind::step_failed, &o, &d, "launch_failed", "fail-back: " + why);
        if (d.breaker.record_failure(now)) open_breaker(d, now, &o);
        return;
      }
      ++o.st.fail_backs;
      emit(ladder_event::kind::fail_back, &o, &d);
    }
  }

  /// Moves a rerouted ring actor back to its device: a new device incarnation first (a device
  /// that refuses because it still needs its reinitialization gets one), then the CPU one is
  /// drained off. False (with `why`) if the device cannot start the kernel; the ring actor then
  /// stays on the CPU untouched.
  bool move_to_device(ring_rec& r, std::string& why) {
    device_rec& d = *r.dev;
    std::unique_ptr<incarnation> inc;
    for (int attempt = 0; attempt < 2 && !inc; ++attempt) {
      try {
        inc = r.on_device(&rt.poller().bell());
      } catch (const std::exception& e) {
        why = e.what();
        std::string detail;
        if (attempt > 0 || d.dev->reinitialize(detail) != reinit_outcome::ok) return false;
        ++d.reinits;
        ++r.st.reinits;
        emit(ladder_event::kind::reinitialize, &r, &d, {}, "ok (before fail-back)");
      }
    }
    take_off(r, false, false);  // drain the CPU incarnation: its replies are kept
    r.created_reinit = d.reinits;
    try {
      r.core->attach(std::move(inc));
    } catch (const std::logic_error& e) {
      why = e.what();
      return false;
    }
    r.on_device_now = true;
    return true;
  }

  // Half-open probes: one rerouted ring actor per device tries the device again.
  void probe_devices(clock::time_point now) {
    for (auto& [id, d] : devices) {
      if (d.breaker.state() != breaker_state::open || now < d.breaker.probe_at()) continue;
      ring_rec* cand = nullptr;
      for (auto& [name, r] : rings)
        if (r.dev == &d && !r.on_device_now && r.ph == phase::healthy && r.core->attached()) {
          cand = &r;
          break;
        }
      if (!cand || !d.breaker.try_probe(now)) continue;
      std::string why;
      if (!move_to_device(*cand, why)) {
        if (cand->core->stopping()) continue;
        d.breaker.probe_failed(now);
        emit(ladder_event::kind::step_failed, cand, &d, "launch_failed", "probe: " + why);
        emit(ladder_event::kind::breaker_open, cand, &d, {},
             "probe failed; next in " + std::to_string(d.breaker.cooldown().count()) + " ms");
        continue;
      }
      cand->ph = phase::probing;
      cand->probe_started = now;
      emit(ladder_event::kind::probe, cand, &d);
    }
  }

  bool pass() {
    const clock::time_point now = clock::now();
    bool busy = false;
    for (auto it = rings.begin(); it != rings.end();) {
      if (it->second.core->stopping()) {
        bury(std::move(it->second.spare));
        it = rings.erase(it);
        continue;
      }
      busy = check(it->second, now) || busy;
      ++it;
    }
    probe_devices(now);
    reap();
    return busy || !graveyard.empty();
  }

  clock::duration next_wait(bool busy) const {
    clock::duration w = busy ? clock::duration(cfg.watch_interval) : clock::duration(cfg.idle_interval);
    for (const auto& [id, d] : devices)
      if (d.breaker.state() == breaker_state::open)
        w = std::min<clock::duration>(
            w, std::max<clock::duration>(d.breaker.probe_at() - clock::now(), clock::duration(cfg.watch_interval)));
    return w;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      const bool busy = pass();
      cv.wait_for(lock, next_wait(busy), [this] { return stopping; });
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      stopping = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
    std::lock_guard<std::mutex> lock(mu);
    for (auto& [name, r] : rings) release(r);
    // Abandoned kernels: give them a moment to finish, then leak what cannot (a stuck thread).
    const auto until = clock::now() + std::chrono::milliseconds(2000);
    while (true) {
      reap();
      if (graveyard.empty() || clock::now() > until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& inc : graveyard) {
      emit(ladder_event::kind::leaked, nullptr, nullptr, {},
           std::string("abandoned ") + inc->backend() + " kernel '" + inc->kernel_name() + "' never finished");
      (void)inc.release();  // its thread may still touch it
    }
    graveyard.clear();
    for (auto& [n, r] : rings) r.core->hold_bad_replies(false);
    rings.clear();
  }

  /// The ladder lets go of ring `r`: one waiting for its next kernel (back-off) gets a CPU
  /// incarnation now rather than none at all (unless the runtime is shutting down anyway).
  void release(ring_rec& r) {
    bury(std::move(r.spare));
    std::string why;
    if (!r.core->attached() && !r.core->stopping() && !rt.is_shut_down()) place(r, false, why);
  }

  device_rec& device_of(const std::shared_ptr<device>& dev) {
    auto it = devices.find(dev->id());
    if (it == devices.end()) it = devices.emplace(dev->id(), device_rec{dev, circuit_breaker(cfg.breaker), 0}).first;
    else it->second.dev = dev;
    return it->second;
  }

  void add(const std::string& name, std::shared_ptr<device> dev, incarnation_factory on_device,
           incarnation_factory on_cpu, bool on_device_now, const std::string& why) {
    std::shared_ptr<ring_core> core = rt.ring(name);
    if (!core) throw std::invalid_argument("fault_ladder: no ring actor named '" + name + "'");
    if (!dev || !on_device || !on_cpu)
      throw std::invalid_argument("fault_ladder: '" + name + "' needs a device and both factories");
    std::lock_guard<std::mutex> lock(mu);
    if (stopping) throw std::logic_error("fault_ladder: stopped");
    ring_rec r;
    r.name = name;
    r.core = std::move(core);
    r.dev = &device_of(dev);
    r.on_device = std::move(on_device);
    r.on_cpu = std::move(on_cpu);
    r.on_device_now = on_device_now;
    r.created_reinit = r.dev->reinits;
    r.corrupt_seen = r.core->stats().corrupt_replies;
    r.core->hold_bad_replies(true);  // replayed into the replacement instead of answered bad_reply
    r.st.name = name;
    ring_rec& slot = rings.insert_or_assign(name, std::move(r)).first->second;
    if (!on_device_now) {
      if (slot.dev->breaker.trip(clock::now())) open_breaker(*slot.dev, clock::now(), &slot);
      ++slot.st.reroutes;
      emit(ladder_event::kind::reroute, &slot, slot.dev, "launch_failed", "started on the CPU: " + why);
    }
    cv.notify_all();
  }
};

fault_ladder::fault_ladder(runtime& rt, ladder_config cfg) : rt_(&rt) {
  if (cfg.hang_timeout.count() <= 0) throw std::invalid_argument("fault_ladder: hang_timeout must be > 0");
  if (cfg.watch_interval.count() <= 0 || cfg.idle_interval.count() <= 0)
    throw std::invalid_argument("fault_ladder: watch intervals must be > 0");
  if (!(cfg.backoff_multiplier >= 1.0) || !(cfg.jitter >= 0.0 && cfg.jitter < 1.0))
    throw std::invalid_argument("fault_ladder: backoff_multiplier must be >= 1 and jitter in [0, 1)");
  if (cfg.restarts_before_reinit == 0) throw std::invalid_argument("fault_ladder: restarts_before_reinit must be >= 1");
  circuit_breaker check(cfg.breaker);  // validates the breaker configuration
  impl_ = std::make_shared<impl>(rt, std::move(cfg));
  impl_->thread = std::thread([i = impl_.get()] {
    name_this_thread("rf-ladder");
    i->run();
  });
  rt.on_shutdown([w = std::weak_ptr<impl>(impl_)] {
    if (auto i = w.lock()) i->stop();
  });
}

fault_ladder::~fault_ladder() { impl_->stop(); }

void fault_ladder::stop() { impl_->stop(); }

void fault_ladder::set_breaker_config(const breaker_config& cfg) {
  circuit_breaker check(cfg);  // validates before anything changes
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->cfg.breaker = cfg;
  for (auto& kv : impl_->devices) kv.second.breaker.reconfigure(cfg);
}

caf::actor fault_ladder::spawn_ring_actor(const std::string& name, type_id request_type, type_id reply_type,
                                          std::shared_ptr<device> dev, incarnation_factory on_device,
                                          incarnation_factory on_cpu, ring_actor_options opts) {
  if (!dev || !on_device || !on_cpu)
    throw std::invalid_argument("fault_ladder: '" + name + "' needs a device and both factories");
  // The first incarnation: on the device if it can start one, else on the CPU (degraded).
  struct first_start {
    bool on_device = true;
    std::string why;
  };
  auto first = std::make_shared<first_start>();
  incarnation_factory initial = [first, on_device, on_cpu](doorbell* bell) {
    try {
      return on_device(bell);
    } catch (const std::exception& e) {
      first->on_device = false;
      first->why = e.what();
      return on_cpu(bell);
    }
  };
  caf::actor a = impl_->rt.spawn_ring_actor(name, request_type, reply_type, std::move(initial), opts);
  impl_->add(name, std::move(dev), std::move(on_device), std::move(on_cpu), first->on_device, first->why);
  return a;
}

void fault_ladder::supervise(const std::string& name, std::shared_ptr<device> dev, incarnation_factory on_device,
                             incarnation_factory on_cpu) {
  impl_->add(name, std::move(dev), std::move(on_device), std::move(on_cpu), true, {});
}

bool fault_ladder::forget(const std::string& name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->rings.find(name);
  if (it == impl_->rings.end()) return false;
  impl_->release(it->second);
  it->second.core->hold_bad_replies(false);
  impl_->rings.erase(it);
  return true;
}

ladder_snapshot fault_ladder::snapshot() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ladder_snapshot s;
  for (const auto& [name, r] : impl_->rings) {
    ladder_ring_status st = r.st;
    st.device = r.dev->dev->id();
    st.backend = r.core->backend();
    st.on_device = r.on_device_now;
    st.phase = r.ph == impl::phase::healthy ? "healthy" : r.ph == impl::phase::backoff ? "backoff" : "probing";
    s.rings.push_back(std::move(st));
  }
  for (const auto& [id, d] : impl_->devices)
    s.devices.push_back(
        {id, d.dev->backend(), d.breaker.state(), d.breaker.recent_failures(), d.breaker.opens(), d.reinits});
  s.recent_events.assign(impl_->history.begin(), impl_->history.end());
  s.graveyard = impl_->graveyard.size();
  return s;
}

}  // namespace ringflow
