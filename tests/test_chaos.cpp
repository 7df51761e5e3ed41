// The chaos pieces (label `ops`): the `actor_crash` fault (topology rules, the program's restart
// and give-up paths) and the seeded generator behind ringflow_chaos (every topology it makes
// validates and keeps its promises). The harness itself runs in ctest as `chaos: ...`
// (tests/CMakeLists.txt).
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "chaos.hpp"
#include "ringflow/runtime/topology.hpp"
#include "support/program_run.hpp"

using namespace ringflow;
using namespace ringflow::ops;
using namespace ringflow::testing;

namespace {

std::optional<topology> parse(const std::string& text, std::vector<topology_error>& errors) {
  return parse_topology(text, "t.yaml", errors);
}

std::string all_errors(const std::vector<topology_error>& e) {
  std::string s;
  for (const auto& x : e) s += x.str() + "\n";
  return s;
}

const char* crash_topology = R"(name: crash
duration_s: 30
config:
  ladder: {hang_timeout_ms: 250}
nodes:
  - {name: ingest, function: validate, type: Echo}
  - {name: echo, kernel: echo, backend: cpu, replicas: 2}
  - {name: egress, function: passthrough, type: Echo}
edges:
  - {from: ingest, to: echo}
  - {from: echo, to: egress}
supervisors:
  - {name: stage, strategy: one_for_all, intensity: 3, period_ms: 5000, children: [echo]}
load:
  - {name: clients, target: ingest, message: Echo, rate: 2000, payload_bytes: 64, max_in_flight: 64}
faults:
)";

nlohmann::json summary_of(const std::filesystem::path& p) { return nlohmann::json::parse(slurp(p), nullptr, false); }

}  // namespace

TEST_CASE("actor_crash: any trigger on any ring node, latency_us refused, listed among the kinds") {
  std::vector<topology_error> e;
  auto t = parse(std::string(crash_topology) +
                     "  - {node: echo, kind: actor_crash, at_s: 1}\n"
                     "  - {node: echo, kind: actor_crash, at_message: 10, times: 2}\n"
                     "  - {node: echo, kind: actor_crash, probability: 0.01, times: 0}\n",
                 e);
  REQUIRE(t);
  CHECK(e.empty());
  REQUIRE(t->faults.size() == 3);
  for (const fault_spec& f : t->faults) CHECK_FALSE(f.on_device());

  e.clear();
  CHECK_FALSE(parse(std::string(crash_topology) + "  - {node: echo, kind: actor_crash, at_s: 1, latency_us: 5}\n", e));
  CHECK_THAT(all_errors(e), Catch::Contains("'latency_us' is for slow faults"));
  e.clear();
  CHECK_FALSE(parse(std::string(crash_topology) + "  - {node: ingest, kind: actor_crash, at_s: 1}\n", e));
  CHECK_THAT(all_errors(e), Catch::Contains("faults are injected into ring nodes"));
  e.clear();
  CHECK_FALSE(parse(std::string(crash_topology) + "  - {node: echo, kind: actor_crash}\n", e));
  CHECK_THAT(all_errors(e), Catch::Contains("needs one trigger"));
  e.clear();
  CHECK_FALSE(parse(std::string(crash_topology) + "  - {node: echo, kind: actor_crsh, at_s: 1}\n", e));
  CHECK_THAT(all_errors(e), Catch::Contains("kill_worker, actor_crash"));
}

TEST_CASE("actor_crash: the supervisor restarts the crashed ring actor, callers get typed errors, nothing lost") {
  // Without the `stage` supervisor: echo's replicas are the root's children, and the summary's
  // supervisor_restarts counts the root's decisions.
  std::string text = crash_topology;
  const std::string stage =
      "supervisors:\n  - {name: stage, strategy: one_for_all, intensity: 3, period_ms: 5000, "
      "children: [echo]}\n";
  REQUIRE(text.find(stage) != std::string::npos);
  text.erase(text.find(stage), stage.size());
  const auto topo =
      write_file("crash-bounded.yaml", text + "  - {node: echo, kind: actor_crash, at_s: 0.5, times: 2}\n");
  const auto sum = temp_dir() / "crash-bounded.json";
  const outcome o = run_program(
      RINGFLOW_PROGRAM, {"run", topo.string(), "--duration", "2.5", "--http", "off", "--summary-json", sum.string()});
  INFO(o.err);
  CHECK(o.code == 0);
  const nlohmann::json s = summary_of(sum);
  REQUIRE(s.is_object());
  CHECK(s["actor_crashes"] == 2);
  CHECK(s["supervisor_restarts"] == 2);  // one_for_one: the crashed replica, each time
  CHECK(s["ring_actor_restarts"] == 2);
  CHECK(s["gave_up"].is_null());
  CHECK(s["ok"] == true);
  CHECK(s["lost"] == 0);
  CHECK(s["duplicated"] == 0);
  CHECK(s["wrong"] == 0);
  CHECK(s["sent"].get<std::uint64_t>() == s["replied"].get<std::uint64_t>() + s["errors"].get<std::uint64_t>());
  CHECK(s["replied"].get<std::uint64_t>() > 3000);  // the restarted actors serve again
  for (const auto& [code, n] : s["errors_by_code"].items()) {
    INFO(code);
    CHECK((code == "stopped" || code == "unavailable"));  // the crashed actor's callers, the restart gap
  }
  CHECK_THAT(o.err, Catch::Contains("crashed (actor_crash)"));
}

TEST_CASE("actor_crash: past the root's intensity the run stops at once, gave_up root, exit 4, nothing lost") {
  const auto topo = write_file(
      "crash-give-up.yaml", std::string(crash_topology) + "  - {node: echo, kind: actor_crash, at_s: 0.3, times: 0}\n");
  const auto sum = temp_dir() / "crash-give-up.json";
  const auto t0 = std::chrono::steady_clock::now();
  const outcome o = run_program(
      RINGFLOW_PROGRAM, {"run", topo.string(), "--duration", "30", "--http", "off", "--summary-json", sum.string()});
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(o.err);
  CHECK(o.code == 4);
  CHECK(wall < 20);  // it did not wait for the 30 s duration
  const nlohmann::json s = summary_of(sum);
  REQUIRE(s.is_object());
  CHECK(s["gave_up"] == "root");
  CHECK(s["ok"] == false);
  CHECK(s["lost"] == 0);
  CHECK(s["duplicated"] == 0);
  CHECK(s["wrong"] == 0);
  CHECK(s["sent"].get<std::uint64_t>() == s["replied"].get<std::uint64_t>() + s["errors"].get<std::uint64_t>());
  // stage (intensity 3) gives up 6 times before the root (intensity 5) does: 4 x 6 crashes at least.
  CHECK(s["actor_crashes"].get<int>() >= 24);
  // Six instances of stage (the first and five restarts by the root), each restarting both
  // replicas 3 times (one_for_all) before it gives up: at least 6 x 3 x 2 ring-actor restarts.
  // The root's supervisor_restarts count only its own decisions (restarts of stage).
  CHECK(s["ring_actor_restarts"].get<int>() >= 36);
  CHECK(s["supervisor_restarts"].get<int>() >= 5);
  CHECK_THAT(o.err, Catch::Contains("supervisor 'root' gave up"));
  CHECK_THAT(o.err, Catch::Contains("\"msg\":\"gave up\""));  // the audit record
}

TEST_CASE("chaos generator: a seed gives the same topology every time, different seeds differ") {
  for (std::uint64_t s : {0ull, 1ull, 42ull, 999999ull}) CHECK(chaos::generate(s).yaml == chaos::generate(s).yaml);
  std::set<std::string> distinct;
  for (std::uint64_t s = 1; s <= 100; ++s) distinct.insert(chaos::generate(s).yaml);
  CHECK(distinct.size() == 100);
}

TEST_CASE("chaos generator: 2000 seeds validate and cover every shape, strategy, fault kind and trigger") {
  std::map<std::string, int> kinds, shapes, strategies, triggers, modes;
  int hosted = 0, replicated = 0, nested = 0, fan_in = 0;
  for (std::uint64_t seed = 1; seed <= 2000; ++seed) {
    const chaos::plan p = chaos::generate(seed);
    std::vector<topology_error> e;
    std::optional<topology> t = parse(p.yaml, e);
    INFO("seed " << seed << "\n" << p.yaml << all_errors(e));
    REQUIRE(t);
    ++shapes[p.shape], ++modes[p.mode];
    CHECK(t->nodes.size() == p.nodes);
    CHECK(t->faults.size() == p.fault_kinds.size());
    hosted += p.hosted;
    std::map<std::string, std::uint32_t> intensity_of;
    std::uint32_t min_intensity = 5;  // the root's
    for (const supervisor_entry& s : t->supervisors) {
      ++strategies[s.strategy];
      nested += !s.parent.empty() && s.parent != "root";
      min_intensity = std::min(min_intensity, s.intensity);
      intensity_of[s.name] = s.intensity;
    }
    std::map<std::string, int> incoming;
    for (const edge_spec& ed : t->edges) ++incoming[ed.to];
    for (const auto& [n, k] : incoming) fan_in += k > 1;
    for (const node_spec& n : t->nodes) replicated += n.replicas > 1;
    std::uint64_t crashes = 0;
    int unlimited_crashes = 0;
    for (const fault_spec& f : t->faults) {
      ++kinds[f.kind];
      ++triggers[f.at_s >= 0 ? "at_s" : f.at_message ? "at_message" : "probability"];
      if (f.kind == "actor_crash") (f.times == 0 ? ++unlimited_crashes : crashes += f.times);
    }
    if (p.mode == "bounded") {
      // No supervisor can give up: the crashes are fewer than any intensity in the tree.
      CHECK(unlimited_crashes == 0);
      CHECK(crashes <= min_intensity);
      CHECK(p.expected_exit == 0);
      CHECK(p.expected_gave_up.empty());
    } else {
      CHECK(unlimited_crashes == 1);
      CHECK_FALSE(p.hosted);
      CHECK(p.expected_exit == 4);
      CHECK(p.expected_gave_up == "root");
    }
  }
  for (const std::string& k : chaos::all_fault_kinds()) {
    INFO(k);
    CHECK(kinds[k] > 20);
  }
  for (const char* s : {"pipeline", "fanout", "diamond"}) CHECK(shapes[s] > 300);
  for (const char* s : {"one_for_one", "one_for_all", "rest_for_one"}) CHECK(strategies[s] > 100);
  for (const char* s : {"at_s", "at_message", "probability"}) CHECK(triggers[s] > 300);
  CHECK(modes["give_up"] > 100);
  CHECK(hosted > 300);
  CHECK(replicated > 500);
  CHECK(nested > 100);
  CHECK(fan_in > 300);
}
