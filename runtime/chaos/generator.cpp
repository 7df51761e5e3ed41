// The chaos generator: see chaos.hpp.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "chaos.hpp"

namespace ringflow::chaos {

namespace {

// splitmix64: the same numbers from a seed everywhere (std distributions are not portable).
struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  int in(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1)); }
  double real(double lo, double hi) { return lo + (hi - lo) * unit(); }
  double log_real(double lo, double hi) { return std::exp(real(std::log(lo), std::log(hi))); }
  bool chance(double p) { return unit() < p; }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[next() % v.size()];
  }
};

// "c3": a letter and a number (insert, not operator+: GCC 12's -Wrestrict false positive).
std::string name_of(char letter, std::size_t i) {
  std::string s = std::to_string(i);
  s.insert(s.begin(), letter);
  return s;
}

std::string num(double x, int decimals) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", decimals, x);
  return b;
}

struct ring_node {
  std::string name;
  bool hosted = false;
  int sup = -1;  // index into sups; -1 = directly under the root
};

struct sup {
  std::string name;
  int parent = -1;  // -1 = root
  int intensity = 3;
  int depth = 1;  // 1 = a child of the root
};

// The breaker and ladder settings of a seed (drawn in this order: the seeds' files depend on it).
std::string config_block(rng& g, double hang_ms) {
  std::string y = "config:\n";
  y += "  breaker: {failure_threshold: " + std::to_string(g.in(2, 4)) +
       ", cooldown_ms: " + std::to_string(g.in(3, 12) * 100) + "}\n";
  y += "  ladder: {hang_timeout_ms: " + std::to_string(static_cast<int>(hang_ms)) +
       ", probe_window_ms: " + std::to_string(g.in(2, 5) * 100) + "}\n";
  return y;
}

const std::vector<std::string> device_kinds = {"hang", "transient_error", "sticky_error", "out_of_memory",
                                               "slow", "corrupt_reply",   "crash",        "device_lost"};

}  // namespace

const std::vector<std::string>& all_fault_kinds() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v = device_kinds;
    v.push_back("kill_worker");
    v.push_back("actor_crash");
    return v;
  }();
  return k;
}

plan generate(std::uint64_t seed) {
  rng g{seed * 0x2545f4914f6cdd1dull + 0x1234567ull};
  plan p;
  p.seed = seed;
  p.duration_s = std::round(g.real(2.0, 3.5) * 10) / 10;
  p.mode = g.chance(0.12) ? "give_up" : "bounded";

  // ---- the shape: CPU nodes and ring nodes, all carrying Echo ----
  std::vector<std::string> node_lines, edge_lines;
  std::vector<ring_node> rings;
  int cpu_count = 0;
  auto cpu = [&](const std::string& fn) {
    const std::string name = name_of('c', static_cast<std::size_t>(++cpu_count));
    node_lines.push_back("  - {name: " + name + ", function: " + fn + ", type: Echo}");
    return name;
  };
  auto ring = [&]() {
    ring_node r;
    r.name = name_of('r', rings.size() + 1);
    rings.push_back(r);
    return r.name;  // its node line is written once hosting is decided
  };
  auto edge = [&](const std::string& a, const std::string& b) {
    edge_lines.push_back("  - {from: " + a + ", to: " + b + "}");
  };
  const std::string entry = cpu("validate");
  const int shape = g.in(0, 2);
  if (shape == 0) {
    p.shape = "pipeline";
    std::string prev = entry;
    const int stages = g.in(1, 4);
    bool any_ring = false;
    for (int i = 0; i < stages; ++i) {
      const bool r = g.chance(0.7) || (i == stages - 1 && !any_ring);
      const std::string n = r ? ring() : cpu("passthrough");
      any_ring = any_ring || r;
      edge(prev, n);
      prev = n;
    }
    if (g.chance(0.5)) edge(prev, cpu("validate"));
  } else if (shape == 1) {
    p.shape = "fanout";
    const int branches = g.in(2, 3);
    std::vector<std::string> b;
    for (int i = 0; i < branches; ++i) b.push_back(ring()), edge(entry, b.back());
    if (g.chance(0.6)) {  // fan-in: the join sees every branch's output
      const std::string join = g.chance(0.5) ? ring() : cpu("passthrough");
      for (const auto& x : b) edge(x, join);
      if (g.chance(0.4)) edge(join, cpu("validate"));
    }
  } else {
    p.shape = "diamond";
    const std::string a = ring();
    const std::string b = ring();
    const std::string c = g.chance(0.5) ? ring() : cpu("passthrough");
    const std::string d = g.chance(0.5) ? ring() : cpu("validate");
    edge(entry, a), edge(a, b), edge(a, c), edge(b, d), edge(c, d);
  }
  if (g.chance(0.4)) {  // drawn in both modes, so bounded seeds are the same as before
    const std::size_t i = g.next() % rings.size();
    // give_up: no process node — restarting one (a sibling in a one_for_all or rest_for_one
    // restart) takes long enough that the restarts never exceed an intensity's rate (seed 1682).
    if (p.mode != "give_up") rings[i].hosted = true;
  }
  for (const ring_node& r : rings) {
    std::string line = "  - {name: " + r.name + ", kernel: echo, backend: " + (g.chance(0.6) ? "sim" : "cpu");
    const int replicas = r.hosted ? g.in(1, 2) : g.in(1, 3);
    if (replicas > 1) line += ", replicas: " + std::to_string(replicas);
    if (r.hosted) line += ", host: process";
    if (g.chance(0.4)) line += ", window: " + std::to_string(64 << g.in(0, 4));
    node_lines.push_back(line + "}");
  }
  p.nodes = node_lines.size();
  p.ring_nodes = rings.size();
  p.hosted = std::any_of(rings.begin(), rings.end(), [](const ring_node& r) { return r.hosted; });

  // ---- supervisors: nested, every strategy; each holds at least one ring node ----
  std::vector<sup> sups;
  const int nsup = std::min<int>(g.in(0, 3), static_cast<int>(rings.size()));
  std::vector<std::string> sup_lines;
  static const std::vector<std::string> strategies = {"one_for_one", "one_for_all", "rest_for_one"};
  for (int i = 0; i < nsup; ++i) {
    sup s;
    s.name = name_of('s', static_cast<std::size_t>(i) + 1);
    s.parent = i > 0 && g.chance(0.5) ? g.in(0, i - 1) : -1;
    s.depth = s.parent < 0 ? 1 : sups[s.parent].depth + 1;
    s.intensity = g.in(1, 5);
    sups.push_back(s);
  }
  for (std::size_t i = 0; i < rings.size(); ++i) {
    if (static_cast<int>(i) < nsup) rings[i].sup = static_cast<int>(i);
    else if (nsup > 0 && g.chance(0.7)) rings[i].sup = g.in(0, nsup - 1);
  }
  for (int i = 0; i < nsup; ++i) {
    std::string children;
    for (const ring_node& r : rings)
      if (r.sup == i) children += (children.empty() ? "" : ", ") + r.name;
    sup_lines.push_back("  - {name: " + sups[i].name + ", strategy: " + g.pick(strategies) +
                        ", intensity: " + std::to_string(sups[i].intensity) +
                        ", period_ms: " + std::to_string(g.in(2, 10) * 1000) + ", children: [" + children + "]" +
                        ", parent: " + (sups[i].parent < 0 ? std::string("root") : sups[sups[i].parent].name) + "}");
  }
  p.supervisors = sups.size();

  // ---- load and faults ----
  const int rate = g.in(3, 30) * 100;
  const double hang_ms = g.in(200, 400);
  std::vector<std::string> fault_lines;
  auto fault = [&](const std::string& node, const std::string& kind, const std::string& rest) {
    fault_lines.push_back("  - {node: " + node + ", kind: " + kind + ", " + rest + "}");
    p.fault_kinds.push_back(kind);
  };
  int crash_budget = 5;  // the root's intensity
  for (const sup& s : sups) crash_budget = std::min(crash_budget, s.intensity);
  if (p.mode == "give_up") {
    std::vector<std::string> shallow;  // so that escalation is at most (5+1) x (5+1) crashes
    for (const ring_node& r : rings)
      if (!r.hosted && (r.sup < 0 || sups[r.sup].depth == 1)) shallow.push_back(r.name);
    if (shallow.empty()) {
      p.mode = "bounded";
    } else {
      fault(g.pick(shallow), "actor_crash", "at_s: " + num(g.real(0.3, 1.0), 2) + ", times: 0");
      crash_budget = 0;
      p.expected_exit = 4;
      p.expected_gave_up = "root";
    }
  }
  const bool give_up = p.mode == "give_up";
  if (give_up) p.duration_s = 8;  // the run ends at the give-up; 8 s only bounds a run that does not
  const int nfaults = give_up ? g.in(0, 3) : g.in(1, 6);
  for (int i = 0; i < nfaults; ++i) {
    const ring_node& r = rings[g.next() % rings.size()];
    std::vector<std::string> kinds;
    for (const std::string& k : device_kinds)
      // give_up: no hang or slow kernel — stopping a hung kernel's siblings (one_for_all) waits for
      // ladder.stop_timeout_ms, which would stretch the escalation past any fixed duration.
      if (!(r.hosted && k == "device_lost") && !(give_up && (k == "hang" || k == "slow"))) kinds.push_back(k);
    if (r.hosted) kinds.push_back("kill_worker");
    if (crash_budget > 0) kinds.push_back("actor_crash");
    const std::string kind = g.pick(kinds);
    const int trigger = kind == "kill_worker" ? 0 : g.in(0, 2);
    int times = g.in(1, 3);
    if (kind == "actor_crash") times = std::min(times, crash_budget), crash_budget -= times;
    else if (trigger == 2 && (kind == "transient_error" || kind == "slow" || kind == "corrupt_reply") && g.chance(0.2))
      times = 0;  // unlimited: faults the ladder absorbs without an actor restart
    std::string rest;
    if (trigger == 0) rest = "at_s: " + num(g.real(0.2, 0.75 * p.duration_s), 2);
    else if (trigger == 1) rest = "at_message: " + std::to_string(g.in(1, std::max(2, static_cast<int>(rate * 0.5))));
    else rest = "probability: " + num(g.log_real(0.0005, 0.01), 5);
    if (kind != "kill_worker" && (trigger != 1 || kind == "actor_crash")) rest += ", times: " + std::to_string(times);
    if (kind == "slow")
      rest +=
          ", latency_us: " + std::to_string(static_cast<int>(g.chance(0.8) ? g.log_real(100, hang_ms * 500)
                                                                           : g.real(hang_ms * 1000, hang_ms * 2000)));
    if (kind == "device_lost" && g.chance(0.8)) rest += ", restore_after_s: " + num(g.real(0.3, 1.5), 2);
    fault(r.name, kind, rest);
  }

  std::string y;
  y += "# ringflow_chaos seed " + std::to_string(seed) + " (" + p.shape + ", " + p.mode + ")\n";
  y += "name: chaos-" + std::to_string(seed) + "\n";
  y += "duration_s: " + num(p.duration_s, 1) + "\n";
  y += config_block(g, hang_ms);
  y += "nodes:\n";
  for (const auto& l : node_lines) y += l + "\n";
  y += "edges:\n";
  for (const auto& l : edge_lines) y += l + "\n";
  if (!sup_lines.empty()) {
    y += "supervisors:\n";
    for (const auto& l : sup_lines) y += l + "\n";
  }
  y += "load:\n";
  y += "  - {name: clients, target: " + entry + ", message: Echo, rate: " + std::to_string(rate) +
       ", payload_bytes: " + std::to_string(16 << g.in(0, 5)) + ", max_in_flight: " + std::to_string(16 << g.in(0, 4)) +
       "}\n";
  if (!fault_lines.empty()) {
    y += "faults:\n";
    for (const auto& l : fault_lines) y += l + "\n";
  }
  p.yaml = std::move(y);
  return p;
}

plan generate_stateful(std::uint64_t seed) {
  rng g{seed * 0x9e3779b97f4a7c15ull + 0x5ca1ab1eull};
  plan p;
  p.seed = seed;
  p.stateful = true;
  p.shape = "stateful";
  p.mode = "bounded";
  p.duration_s = std::round(g.real(2.0, 3.5) * 10) / 10;
  const int rate = g.in(5, 30) * 100;
  const int window = 64 << g.in(0, 2);
  const int every = g.pick(std::vector<int>{50, 200, 1000});
  const int journal = every + window + g.in(0, 4) * 512;
  const std::string durability = g.chance(0.5) ? "reply" : "checkpoint";
  p.durability = durability;
  const double hang_ms = g.in(200, 400);
  std::string y;
  y += "# ringflow_chaos --stateful seed " + std::to_string(seed) + " (durability: " + durability + ")\n";
  y += "name: chaos-stateful-" + std::to_string(seed) + "\n";
  y += "duration_s: " + num(p.duration_s, 1) + "\n";
  y += config_block(g, hang_ms);
  y += "nodes:\n";
  y += "  - {name: c1, function: validate, type: Trade}\n";
  y += "  - {name: r1, kernel: vwap, backend: " + std::string(g.chance(0.8) ? "sim" : "cpu") + "@HOST@" +
       ", window: " + std::to_string(window) + ",\n     state: {snapshot_every: " + std::to_string(every) +
       ", snapshot_ms: " + std::to_string(g.in(0, 4) * 100) + ", journal_max: " + std::to_string(journal) +
       "},\n     checkpoint: {dir: state, every_ms: " + std::to_string(g.in(1, 5) * 50) +
       ", durability: " + durability + "}}\n";
  y += "  - {name: c2, function: passthrough, type: VwapReply}\n";
  y += "edges:\n  - {from: c1, to: r1}\n  - {from: r1, to: c2}\n";
  p.nodes = 3;
  p.ring_nodes = 1;
  if (g.chance(0.5)) {
    y += "supervisors:\n  - {name: s1, strategy: one_for_one, intensity: 5, period_ms: 5000, children: [r1]}\n";
    p.supervisors = 1;
  }
  y += "load:\n  - {name: traders, target: c1, message: Trade, rate: " + std::to_string(rate) +
       ", max_in_flight: " + std::to_string(16 << g.in(0, 3)) + "}\n";
  // Device faults of every kind, and sometimes the ring actor itself crashed (at most 3 times in
  // all: the root's and the supervisor's intensity is 5, so nobody gives up) — its successor takes
  // over the state.
  const int nfaults = g.in(1, 6);
  std::vector<std::string> lines;
  if (g.chance(0.4)) {
    const int times = g.in(1, 3);
    const bool timed = g.chance(0.5);
    lines.push_back("  - {node: r1, kind: actor_crash, " +
                    (timed ? "at_s: " + num(g.real(0.3, 0.7 * p.duration_s), 2)
                           : "probability: " + num(g.log_real(0.0002, 0.002), 5)) +
                    ", times: " + std::to_string(times) + "}");
    p.fault_kinds.push_back("actor_crash");
  }
  for (int i = 0; i < nfaults; ++i) {
    const std::string kind = g.pick(device_kinds);
    const int trigger = g.in(0, 2);
    std::string rest;
    if (trigger == 0) rest = "at_s: " + num(g.real(0.2, 0.75 * p.duration_s), 2);
    else if (trigger == 1) rest = "at_message: " + std::to_string(g.in(1, std::max(2, rate / 2)));
    else rest = "probability: " + num(g.log_real(0.0005, 0.01), 5);
    if (trigger != 1) rest += ", times: " + std::to_string(g.in(1, 3));
    if (kind == "slow") rest += ", latency_us: " + std::to_string(static_cast<int>(g.log_real(100, hang_ms * 500)));
    if (kind == "device_lost" && g.chance(0.8)) rest += ", restore_after_s: " + num(g.real(0.3, 1.5), 2);
    lines.push_back("  - {node: r1, kind: " + kind + ", " + rest + "}");
    p.fault_kinds.push_back(kind);
  }
  // A quarter of the seeds (drawn last, so the other seeds' plans are what they were): r1 in a
  // kernel-host worker, SIGKILLed once or twice; its device faults are the worker's (sim), and a
  // lost device is not a worker's fault (validate refuses it), so those lines go.
  const bool hosted = g.chance(0.25);
  p.hosted = hosted;
  const std::string at = "@HOST@";
  y.replace(y.find(at), at.size(), hosted ? ", host: process" : "");
  if (hosted) {
    std::vector<std::string> kept;
    for (const auto& l : lines)
      if (l.find("kind: device_lost") == std::string::npos) kept.push_back(l);
    lines = std::move(kept);
    p.fault_kinds.erase(std::remove(p.fault_kinds.begin(), p.fault_kinds.end(), "device_lost"), p.fault_kinds.end());
    for (int k = 0, n = g.in(1, 2); k < n; ++k) {
      lines.push_back("  - {node: r1, kind: kill_worker, at_s: " + num(g.real(0.3, 0.75 * p.duration_s), 2) + "}");
      p.fault_kinds.push_back("kill_worker");
    }
  }
  y += "faults:\n";
  for (const auto& l : lines) y += l + "\n";
  p.yaml = std::move(y);
  return p;
}

}  // namespace ringflow::chaos
