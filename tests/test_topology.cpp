// Topology files: every validation error has its file:line:column and says what is wrong; the
// shipped examples are valid.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/catalog_names.hpp"
#include "ringflow/runtime/topology.hpp"

using namespace ringflow::ops;

namespace {

// Parses `text`; returns the errors (empty when it is valid).
std::vector<topology_error> errors_of(const std::string& text) {
  std::vector<topology_error> errors;
  const auto t = parse_topology(text, "t.yaml", errors);
  CHECK(t.has_value() == errors.empty());
  return errors;
}

// Exactly one error, at line:column, whose text contains `what`.
void require_one(const std::string& text, int line, int column, const std::string& what) {
  const std::vector<topology_error> e = errors_of(text);
  INFO(text);
  for (const auto& x : e) INFO(x.str());
  REQUIRE(e.size() == 1);
  CHECK(e[0].file == "t.yaml");
  CHECK(e[0].pos.line == line);
  CHECK(e[0].pos.column == column);
  CHECK_THAT(e[0].what, Catch::Contains(what));
  CHECK_THAT(e[0].str(), Catch::StartsWith("t.yaml:" + std::to_string(line) + ":" + std::to_string(column) + ": "));
}

const std::string head = "name: t\n";  // line 1

}  // namespace

TEST_CASE("a valid topology parses into nodes, edges, supervisors, load and faults", "[topology]") {
  std::vector<topology_error> errors;
  const auto t = parse_topology(
      head +
          "duration_s: 5\n"
          "config: {breaker: {cooldown_ms: 100}}\n"
          "nodes:\n"
          "  - {name: in, function: validate, type: Echo}\n"
          "  - {name: echo, kernel: echo, backend: sim, replicas: 2, window: 64}\n"
          "edges: [{from: in, to: echo}]\n"
          "supervisors: [{name: s, strategy: rest_for_one, intensity: 2, period_ms: 100, children: [echo]}]\n"
          "load: [{name: l, target: in, message: Echo, rate: 10, duration_s: 1}]\n"
          "faults: [{node: echo, kind: device_lost, at_s: 1, restore_after_s: 2}]\n",
      "t.yaml", errors);
  REQUIRE(errors.empty());
  REQUIRE(t);
  CHECK(t->name == "t");
  CHECK(t->duration_s == 5);
  CHECK(t->config["breaker"]["cooldown_ms"].as<int>() == 100);
  REQUIRE(t->nodes.size() == 2);
  CHECK(t->nodes[0].kind == node_kind::cpu);
  CHECK(t->nodes[0].in_type == "Echo");
  CHECK(t->nodes[1].kind == node_kind::ring);
  CHECK(t->nodes[1].replicas == 2);
  CHECK(t->nodes[1].window == 64);
  CHECK(t->nodes[1].in_type == "Echo");
  CHECK(t->nodes[1].out_type == "Echo");
  CHECK(t->nodes[1].pos.line == 6);
  CHECK(t->entries() == std::vector<std::string>{"in"});
  REQUIRE(t->supervisors.size() == 1);
  CHECK(t->supervisors[0].strategy == "rest_for_one");
  REQUIRE(t->faults.size() == 1);
  CHECK(t->faults[0].restore_after_s == 2);
  CHECK(t->load[0].rate == 10);
}

TEST_CASE("YAML syntax errors and unreadable files are reported with their place", "[topology]") {
  require_one(head + "nodes: [\n", 3, 1, "YAML syntax error");
  std::vector<topology_error> errors;
  CHECK_FALSE(load_topology("/nonexistent/ringflow.yaml", errors));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0].str(), Catch::Contains("cannot read"));
  errors.clear();
  CHECK_FALSE(parse_topology("", "t.yaml", errors));
  CHECK_THAT(errors.at(0).what, Catch::Contains("empty"));
}

TEST_CASE("unknown keys are errors at every level, naming the allowed ones", "[topology]") {
  require_one(head + "nodse: []\nnodes: [{name: a, kernel: echo}]\n", 2, 1, "unknown key 'nodse'");
  require_one(head + "nodes:\n  - {name: a, kernel: echo, replica: 2}\n", 3, 29, "unknown key 'replica' in node");
  require_one(
      head + "nodes: [{name: a, kernel: echo}]\nload: [{name: l, target: a, message: Echo, rate: 1, burst: 2}]\n", 3,
      53, "unknown key 'burst'");
  require_one(head + "nodes: [{name: a, kernel: echo}]\nfaults: [{node: a, kind: crash, at_s: 1, when: 2}]\n", 3, 42,
              "allowed: node, kind");
}

TEST_CASE("unknown kernels, functions, types, backends, strategies and fault kinds", "[topology]") {
  require_one(head + "nodes: [{name: a, kernel: fft}]\n", 2, 27,
              "unknown kernel 'fft' (known: echo, saxpy, score, vwap)");
  require_one(head + "nodes: [{name: a, function: frob, type: Echo}]\n", 2, 29, "unknown function 'frob'");
  require_one(head + "nodes: [{name: a, function: sink, type: Ehco}]\n", 2, 41, "unknown message type 'Ehco'");
  require_one(head + "nodes: [{name: a, kernel: echo, backend: tpu}]\n", 2, 42, "unknown backend 'tpu'");
  require_one(
      head + "nodes: [{name: a, kernel: echo}]\nsupervisors: [{name: s, strategy: one_for_some, children: [a]}]\n", 3,
      35, "unknown strategy 'one_for_some'");
  require_one(head + "nodes: [{name: a, kernel: echo}]\nfaults: [{node: a, kind: meltdown, at_s: 1}]\n", 3, 26,
              "unknown fault kind 'meltdown'");
}

TEST_CASE("bad numbers: not a number, out of range, trailing garbage", "[topology]") {
  require_one(head + "nodes: [{name: a, kernel: echo, replicas: 0}]\n", 2, 43,
              "'replicas' must be an integer in 1 .. 64");
  require_one(head + "nodes: [{name: a, kernel: echo, replicas: 2x}]\n", 2, 43, "got '2x'");
  require_one(head + "nodes: [{name: a, kernel: echo}]\nload: [{name: l, target: a, message: Echo, rate: -5}]\n", 3, 50,
              "'rate' must be a number");
  require_one(head + "nodes: [{name: a, kernel: echo}]\nload: [{name: l, target: a, message: Echo, rate: .nan}]\n", 3,
              50, "'rate'");
  require_one(head + "nodes: [{name: a, kernel: echo}]\nfaults: [{node: a, kind: slow, probability: 1.5}]\n", 3, 45,
              "'probability'");
  require_one(head + "duration_s: soon\nnodes: [{name: a, kernel: echo}]\n", 2, 13, "'duration_s'");
}

TEST_CASE("names: missing, malformed, duplicated", "[topology]") {
  require_one(head + "nodes: [{kernel: echo}]\n", 2, 9, "missing 'name'");
  require_one(head + "nodes: [{name: 9lives, kernel: echo}]\n", 2, 16, "a name is a letter");
  require_one(head + "nodes:\n  - {name: a, kernel: echo}\n  - {name: a, kernel: echo}\n", 4, 12, "defined twice");
  require_one(head + "nodes: [{name: a, kernel: echo, function: sink}]\n", 2, 9, "either 'kernel'");
  require_one("nodes: [{name: a, kernel: echo}]\n", 1, 1, "missing 'name'");
  require_one(head + "edges: []\n", 1, 1, "missing 'nodes'");
}

TEST_CASE("edges: unknown ends, self-loops, type mismatches and cycles", "[topology]") {
  const std::string nodes = head +
                            "nodes:\n"
                            "  - {name: a, function: passthrough, type: Echo}\n"
                            "  - {name: b, kernel: echo}\n"
                            "  - {name: s, kernel: saxpy}\n";  // line 5
  require_one(nodes + "edges: [{from: a, to: nobody}]\n", 6, 23, "no node named 'nobody'");
  require_one(nodes + "edges: [{from: b, to: b}]\n", 6, 9, "cannot feed itself");
  require_one(nodes + "edges: [{from: b, to: s}]\n", 6, 9, "type mismatch: 'b' sends Echo but 's' takes SaxpyRequest");
  require_one(nodes + "edges:\n  - {from: a, to: b}\n  - {from: b, to: a}\n", 8, 5, "cycle (a -> b -> a)");
  require_one(nodes + "edges:\n  - {from: a, to: b}\n  - {from: a, to: b}\n", 8, 5, "given twice");
}

TEST_CASE("supervisors hold ring nodes once, parents exist and do not loop", "[topology]") {
  const std::string nodes = head +
                            "nodes:\n"
                            "  - {name: c, function: sink, type: Echo}\n"
                            "  - {name: r, kernel: echo}\n";  // line 4
  require_one(nodes + "supervisors: [{name: s, children: [c]}]\n", 5, 36, "'c' is a CPU node");
  require_one(nodes + "supervisors: [{name: s, children: [x]}]\n", 5, 36, "no node named 'x'");
  require_one(nodes + "supervisors:\n  - {name: s, children: [r]}\n  - {name: t, children: [r]}\n", 7, 26,
              "already supervised by 's'");
  require_one(nodes + "supervisors: [{name: s, children: [r], parent: p}]\n", 5, 15, "no supervisor named 'p'");
  require_one(nodes + "supervisors: [{name: root, children: [r]}]\n", 5, 22, "reserved");
  require_one(nodes + "supervisors: [{name: s}]\n", 5, 15, "needs 'children'");
  const auto e = errors_of(nodes +
                           "supervisors:\n"
                           "  - {name: s, children: [r], parent: t}\n"
                           "  - {name: t, children: [], parent: s}\n");
  bool loop = false;
  for (const auto& x : e) loop = loop || x.what.find("parents form a cycle") != std::string::npos;
  CHECK(loop);
}

TEST_CASE("load goes to an entry node of its message type, faults to ring nodes with one trigger", "[topology]") {
  const std::string nodes = head +
                            "nodes:\n"
                            "  - {name: a, function: passthrough, type: Echo}\n"
                            "  - {name: b, kernel: echo}\n"
                            "edges: [{from: a, to: b}]\n";  // line 5
  require_one(nodes + "load: [{name: l, target: b, message: Echo, rate: 1}]\n", 6, 26, "has incoming edges");
  require_one(nodes + "load: [{name: l, target: a, message: ScoreRequest, rate: 1}]\n", 6, 38,
              "'a' takes Echo, not ScoreRequest");
  require_one(nodes + "load: [{name: l, target: a, message: Echo}]\n", 6, 8, "missing 'rate'");
  require_one(nodes + "faults: [{node: a, kind: crash, at_s: 1}]\n", 6, 17, "faults are injected into ring nodes");
  require_one(nodes + "faults: [{node: b, kind: crash}]\n", 6, 10, "needs one trigger");
  require_one(nodes + "faults: [{node: b, kind: crash, at_s: 1, at_message: 5}]\n", 6, 10, "only one trigger");
  require_one(nodes + "faults: [{node: b, kind: crash, at_s: 1, restore_after_s: 1}]\n", 6, 59, "for device_lost");
}

TEST_CASE("kernel-host placement: host values, and kill_worker only for host: process nodes at a time", "[topology]") {
  const std::string hosted = head +
                             "nodes:\n"
                             "  - {name: a, kernel: echo, host: process, backend: sim}\n"
                             "  - {name: b, kernel: echo}\n";  // line 4
  std::vector<topology_error> errors;
  const auto t = parse_topology(
      hosted + "faults: [{node: a, kind: kill_worker, at_s: 1}, {node: a, kind: crash, at_message: 9}]\n", "t.yaml",
      errors);
  REQUIRE(errors.empty());
  CHECK(t->nodes[0].host == "process");
  CHECK(t->nodes[1].host == "in-process");
  CHECK(t->faults[0].kind == "kill_worker");
  require_one(head + "nodes: [{name: a, kernel: echo, host: remote}]\n", 2, 39, "unknown host 'remote'");
  // A GPU worker (host: process on cuda/hip) is valid; device faults need the sim backend's injector.
  const std::string gpu_hosted = head + "nodes: [{name: a, kernel: echo, backend: cuda, host: process}]\n";
  errors.clear();
  const auto g = parse_topology(gpu_hosted + "faults: [{node: a, kind: kill_worker, at_s: 1}]\n", "t.yaml", errors);
  REQUIRE(errors.empty());
  CHECK(g->nodes[0].backend == "cuda");
  require_one(gpu_hosted + "faults: [{node: a, kind: crash, at_message: 3}]\n", 3, 26,
              "takes kill_worker and actor_crash");
  require_one(head + "nodes: [{name: a, function: sink, type: Echo, host: process}]\n", 2, 53,
              "'host' is for ring nodes");
  require_one(hosted + "faults: [{node: b, kind: kill_worker, at_s: 1}]\n", 5, 26, "for nodes with host: process");
  require_one(hosted + "faults: [{node: a, kind: kill_worker, at_message: 3}]\n", 5, 10, "triggered by 'at_s'");
  require_one(hosted + "faults: [{node: a, kind: device_lost, at_s: 1}]\n", 5, 26, "for in-process nodes");
}

TEST_CASE("ring nodes choose their wait policy and kernel CPUs: wait and cpus", "[topology]") {
  std::vector<topology_error> errors;
  const auto t = parse_topology(head +
                                    "nodes:\n"
                                    "  - {name: a, kernel: echo, wait: spin, cpus: [1, 3]}\n"
                                    "  - {name: b, kernel: echo}\n",
                                "t.yaml", errors);
  REQUIRE(errors.empty());
  CHECK(t->nodes[0].wait == "spin");
  CHECK(t->nodes[0].cpus == std::vector<int>{1, 3});
  CHECK(t->nodes[1].wait.empty());  // runtime.wait
  CHECK(t->nodes[1].cpus.empty());
  require_one(head + "nodes: [{name: a, kernel: echo, wait: busy}]\n", 2, 39,
              "unknown wait 'busy' (known: park, adaptive, spin)");
  require_one(head + "nodes: [{name: a, kernel: echo, cpus: 2}]\n", 2, 39, "'cpus' must be a non-empty list");
  require_one(head + "nodes: [{name: a, kernel: echo, cpus: []}]\n", 2, 39, "'cpus' must be a non-empty list");
  require_one(head + "nodes: [{name: a, kernel: echo, cpus: [0, x]}]\n", 2, 43, "CPU numbers 0 .. 1023, got 'x'");
  require_one(head + "nodes: [{name: a, kernel: echo, cpus: [2000]}]\n", 2, 40, "got '2000'");
  require_one(head + "nodes: [{name: a, function: sink, type: Echo, wait: park}]\n", 2, 53, "'wait' is for ring nodes");
}

TEST_CASE("ring nodes size their rings: ring_slots", "[topology]") {
  std::vector<topology_error> errors;
  const auto t = parse_topology(head +
                                    "nodes:\n"
                                    "  - {name: a, kernel: echo, ring_slots: 32}\n"
                                    "  - {name: b, kernel: echo}\n",
                                "t.yaml", errors);
  REQUIRE(errors.empty());
  CHECK(t->nodes[0].ring_slots == 32);
  CHECK(t->nodes[1].ring_slots == 0);  // the backend's default
  require_one(head + "nodes: [{name: a, kernel: echo, ring_slots: 48}]\n", 2, 45,
              "'ring_slots' must be a power of two");
  require_one(head + "nodes: [{name: a, kernel: echo, ring_slots: 1}]\n", 2, 45, "ring_slots");
  require_one(head + "nodes: [{name: a, function: sink, type: Echo, ring_slots: 32}]\n", 2, 59,
              "'ring_slots' is for ring nodes");
}

TEST_CASE("every problem of a file is reported, not only the first", "[topology]") {
  const auto e = errors_of(head +
                           "nodes:\n"
                           "  - {name: a, kernel: fft}\n"
                           "  - {name: b, function: sink, type: Nope}\n"
                           "load: [{name: l, target: zz, message: Echo, rate: 0}]\n");
  CHECK(e.size() >= 4);
}

TEST_CASE("a stateful kernel's node: state keys, one replica, on every backend and in kernel hosts",
          "[topology][state]") {
  std::vector<topology_error> errors;
  const auto t = parse_topology(head +
                                    "nodes:\n"
                                    "  - {name: v, kernel: vwap, state: {snapshot_every: 50, snapshot_ms: 0, "
                                    "journal_max: 512, verify: true}}\n"
                                    "  - {name: w, kernel: vwap, backend: sim}\n"
                                    "  - {name: h, kernel: vwap, backend: sim, host: process}\n"
                                    "  - {name: g, kernel: vwap, backend: cuda}\n"
                                    "  - {name: gh, kernel: vwap, backend: hip, host: process}\n",
                                "t.yaml", errors);
  for (const auto& x : errors) INFO(x.str());
  REQUIRE(errors.empty());
  REQUIRE(t);
  CHECK(t->nodes[0].stateful);
  CHECK(t->nodes[0].backend == "cpu");  // auto: a stateful node asks for a GPU by name
  CHECK(t->nodes[0].snapshot_every == 50);
  CHECK(t->nodes[0].state_verify);
  CHECK_FALSE(t->nodes[1].state_verify);  // the default
  CHECK(t->nodes[0].snapshot_ms == 0);
  CHECK(t->nodes[0].journal_max == 512);
  CHECK(t->nodes[1].snapshot_every == 1000);  // the defaults
  CHECK(t->nodes[1].snapshot_ms == 1000);
  CHECK(t->nodes[1].journal_max == 16384);
  CHECK(t->nodes[2].stateful);  // a kernel-host worker keeps the state (the ring actor's snapshot survives it)
  CHECK(t->nodes[2].host == "process");
  CHECK(t->nodes[3].backend == "cuda");  // state in device memory (the worker's device for gh)
  CHECK(t->nodes[4].backend == "hip");
  const std::string nodes = head + "nodes:\n";  // the node is on line 3
  require_one(nodes + "  - {name: v, kernel: vwap, replicas: 2}\n", 3, 39, "a stateful kernel's node has replicas: 1");
  require_one(nodes + "  - {name: e, kernel: echo, state: {snapshot_every: 5}}\n", 3, 36, "keeps no state");
  require_one(nodes + "  - {name: v, kernel: vwap, state: {snapshot_every: 900, journal_max: 1000}}\n", 3, 36,
              "state.journal_max (1000) must be at least snapshot_every + window (1156)");
  require_one(nodes + "  - {name: v, kernel: vwap, state: {every: 5}}\n", 3, 37, "every");
  require_one(nodes + "  - {name: v, kernel: vwap, state: {verify: maybe}}\n", 3, 45, "'verify' must be true or false");
  require_one(nodes + "  - {name: v, kernel: vwap, state: {snapshot_every: 0}}\n", 3, 53, "snapshot_every");
  require_one(nodes + "  - {name: c, function: sink, type: Trade, state: {snapshot_every: 5}}\n", 3, 51,
              "'state' is for ring nodes");
}

TEST_CASE("a member's shares hold a folder and every folder below it, nothing beside it", "[topology]") {
  member_spec m;
  m.shares = {"/srv/state", "/mnt/vol/"};
  CHECK(m.shares_folder("/srv/state"));
  CHECK(m.shares_folder("/srv/state/vwap"));
  CHECK(m.shares_folder("/srv/./state/a/../b"));
  CHECK(m.shares_folder("/mnt/vol/x"));
  CHECK(m.shares_folder("/mnt/vol"));
  CHECK_FALSE(m.shares_folder("/srv/statefile"));
  CHECK_FALSE(m.shares_folder("/srv"));
  CHECK_FALSE(m.shares_folder("/srv/state/../other"));
  CHECK_FALSE(member_spec{}.shares_folder("/srv/state"));
}

TEST_CASE("the shipped example topologies are valid", "[topology]") {
  for (const char* f : {"supervised-demo.yaml", "pipeline.yaml", "fanout.yaml", "isolated-demo.yaml",
                        "stateful-demo.yaml", "cluster-demo.yaml", "cluster-stateful.yaml"}) {
    std::vector<topology_error> errors;
    const auto t = load_topology(std::string(RINGFLOW_SOURCE_DIR) + "/examples/topologies/" + f, errors);
    INFO(f);
    for (const auto& x : errors) INFO(x.str());
    CHECK(errors.empty());
    CHECK(t.has_value());
  }
}

TEST_CASE("the parser's names and the catalog list the same kernels, types and functions", "[topology]") {
  std::set<std::string> a, b;
  for (const auto& k : names::kernels) a.insert(std::string(k.name) + ":" + k.request + "->" + k.reply);
  for (const auto& k : kernel_catalog()) b.insert(k.name + ":" + k.request + "->" + k.reply);
  CHECK(a == b);
  a.clear(), b.clear();
  for (const char* m : names::messages) a.insert(m);
  for (const auto& m : message_catalog()) b.insert(m.name);
  CHECK(a == b);
  a.clear(), b.clear();
  for (const char* f : names::functions) a.insert(f);
  for (const auto& f : function_catalog()) b.insert(f.name);
  CHECK(a == b);
}

// ---- issue 20, M3: large legal topologies, size limits, and the hostile-YAML Low findings ------

namespace {

std::string chain(std::size_t n, bool close_cycle = false) {
  std::string s = head + "nodes:\n";
  for (std::size_t i = 0; i < n; ++i)
    s += "  - {name: n" + std::to_string(i) + ", function: passthrough, type: Echo}\n";
  s += "edges:\n";
  for (std::size_t i = 0; i + 1 < n; ++i)
    s += "  - {from: n" + std::to_string(i) + ", to: n" + std::to_string(i + 1) + "}\n";
  if (close_cycle) s += "  - {from: n" + std::to_string(n - 1) + ", to: n0}\n";
  return s;
}

std::string nested_supervisors(std::size_t n) {
  std::string s = head + "nodes:\n";
  for (std::size_t i = 0; i < n; ++i) s += "  - {name: r" + std::to_string(i) + ", kernel: echo}\n";
  s += "supervisors:\n";
  for (std::size_t i = 0; i < n; ++i)
    s += "  - {name: s" + std::to_string(i) + ", children: [r" + std::to_string(i) + "]" +
         (i ? ", parent: s" + std::to_string(i - 1) : std::string()) + "}\n";
  return s;
}

}  // namespace

// The recursive cycle check overflowed the stack on a 40,000-node chain (SIGSEGV).
TEST_CASE("a 100,000-node chain validates, and a cycle through all of it is one error", "[topology]") {
  std::vector<topology_error> errors;
  const auto t = parse_topology(chain(100000), "t.yaml", errors);
  REQUIRE(errors.empty());
  REQUIRE(t);
  CHECK(t->nodes.size() == 100000);
  CHECK(t->edges.size() == 99999);
  CHECK(t->entries() == std::vector<std::string>{"n0"});
  CHECK(t->node("n99999") == &t->nodes.back());

  const std::vector<topology_error> e = errors_of(chain(50000, true));
  REQUIRE(e.size() == 1);
  CHECK_THAT(e[0].what, Catch::Contains("edges form a cycle (n0 -> n1 -> n2 -> n3 -> n4 -> ... (49990 more) -> "
                                        "n49995 -> n49996 -> n49997 -> n49998 -> n49999 -> n0)"));
}

// 4,000 nested supervisors took 24 s (a walk up the parents for each, by linear search).
TEST_CASE("supervisor nesting is linear to check and limited by limits.max_supervisor_depth", "[topology]") {
  CHECK(errors_of(nested_supervisors(32)).empty());  // the default limit: 32 deep is fine
  const std::vector<topology_error> e = errors_of(nested_supervisors(4000));
  REQUIRE(e.size() == 1);  // once, where the chain passes the limit
  CHECK_THAT(e[0].what, Catch::Contains("supervisor 's32' is nested 33 deep, past limits.max_supervisor_depth (32)"));
  // The file's own config raises it, and a caller's limit (the config file, the environment) wins.
  const std::string raised = nested_supervisors(4000) + "config: {limits: {max_supervisor_depth: 4000}}\n";
  CHECK(errors_of(raised).empty());
  std::vector<topology_error> errors;
  topology_limits lim;
  lim.max_supervisor_depth = 10;
  CHECK_FALSE(parse_topology(raised, "t.yaml", errors, {}, lim));
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0].what, Catch::Contains("'s10' is nested 11 deep, past limits.max_supervisor_depth (10)"));
  // A cycle among parents is still one error, and so is an unknown parent.
  const std::vector<topology_error> cyc = errors_of(head +
                                                    "nodes: [{name: a, kernel: echo}, {name: b, kernel: echo}]\n"
                                                    "supervisors:\n"
                                                    "  - {name: x, children: [a], parent: y}\n"
                                                    "  - {name: y, children: [b], parent: x}\n");
  REQUIRE(cyc.size() == 1);
  CHECK_THAT(cyc[0].what, Catch::Contains("its parents form a cycle"));
}

TEST_CASE("limits.max_nodes and limits.max_edges refuse a file before its parts are read", "[topology]") {
  require_one(chain(11) + "config: {limits: {max_nodes: 10}}\n", 3, 3,
              "'nodes' has 11 entries, past limits.max_nodes (10); raise it in the config");
  require_one(chain(11) + "config: {limits: {max_edges: 5}}\n", 15, 3,
              "'edges' has 10 entries, past limits.max_edges (5)");
  std::vector<topology_error> errors;
  topology_limits lim;
  lim.max_nodes = 1000;  // the caller's limit wins over the file's
  CHECK(parse_topology(chain(11) + "config: {limits: {max_nodes: 10}}\n", "t.yaml", errors, {}, lim));
  CHECK(errors.empty());
}

// Duplicate keys were accepted (yaml-cpp keeps one of them silently).
TEST_CASE("a key given twice in any mapping is an error at its second place", "[topology]") {
  require_one(head + "nodes:\n  - {name: a, kernel: echo, replicas: 2, replicas: 3}\n", 3, 42,
              "key 'replicas' is given twice in node");
  require_one(head + "nodes: [{name: a, kernel: echo}]\nname: u\n", 3, 1, "key 'name' is given twice in the topology");
}

TEST_CASE("YAML documents: one per file, aliases shared, anchors defined before use", "[topology]") {
  require_one(head + "nodes: [{name: a, kernel: echo}]\n---\nname: u\n", 3, 1, "more than one YAML document");
  require_one(head + "nodes: [*x]\n", 2, 9, "unknown anchor '*x'");
  require_one(head + "nodes: &x [*x]\n", 2, 12, "unknown anchor '*x'");  // no self-reference (no cycles)
  // An alias is the anchored node: a node defined once and named twice is a duplicate name.
  require_one(head + "nodes: [&n {name: a, kernel: echo}, *n]\n", 2, 19, "node 'a' is defined twice");
  // An alias bomb costs what its text costs: the limit counts the list, not what it expands to.
  std::string bomb = head + "x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  for (char c = 'b'; c <= 'j'; ++c)
    bomb += std::string("x") + c + ": &" + c + " [*" + static_cast<char>(c - 1) + ", *" + static_cast<char>(c - 1) +
            ", *" + static_cast<char>(c - 1) + "]\n";
  const std::vector<topology_error> e = errors_of(bomb + "nodes: [{name: a, kernel: echo}]\n");
  CHECK_FALSE(e.empty());  // unknown top-level keys x, xb ... — reported, not expanded
  // The config block keeps the whole file's positions (the config layer reports with them).
  std::vector<topology_error> errors;
  const auto t = parse_topology(head +
                                    "# a comment — with a dash\nnodes: [{name: a, kernel: echo}]\nconfig:\n"
                                    "  breaker: {cooldown_ms: 100}\n  log: {level: warn}\n",
                                "t.yaml", errors);
  REQUIRE(t);
  CHECK(t->config["log"]["level"].as<std::string>() == "warn");
  CHECK(t->config["log"]["level"].Mark().line == 5);  // 0-based: line 6
  CHECK(t->config["log"]["level"].Mark().column == 15);
}

TEST_CASE("cluster topologies: members, placement, fallbacks, member faults and their errors", "[topology]") {
  const std::string cluster = head +
                              "cluster:\n"
                              "  members:\n"
                              "    - {name: m1, listen: \"127.0.0.1:0\"}\n"
                              "    - {name: m2, listen: \"10.0.0.2:7100\"}\n"
                              "    - {name: m3, listen: \"127.0.0.1:0\"}\n"
                              "  heartbeat_ms: 20\n"
                              "  timeout_ms: 200\n";
  const std::string nodes =
      "nodes:\n"
      "  - {name: check, function: validate, type: SaxpyRequest}\n"
      "  - {name: saxpy, kernel: saxpy, at: m2, fallback: local_cpu}\n"
      "  - {name: result, function: validate, type: SaxpyReply, at: m3, fallback: m1}\n"
      "edges: [{from: check, to: saxpy}, {from: saxpy, to: result}]\n"
      "load: [{name: l, target: check, message: SaxpyRequest, rate: 100}]\n";
  std::vector<topology_error> errors;
  const auto t = parse_topology(
      cluster + nodes + "faults: [{kind: member_kill, member: m2, at_s: 1, restore_after_s: 2}]\n", "t.yaml", errors);
  for (const auto& e : errors) INFO(e.str());
  REQUIRE(errors.empty());
  REQUIRE(t->cluster.enabled());
  REQUIRE(t->cluster.members.size() == 3);
  CHECK(t->cluster.members[1].host == "10.0.0.2");
  CHECK(t->cluster.members[1].port == 7100);
  CHECK(t->cluster.members[0].port == 0);
  CHECK(t->cluster.heartbeat_ms == 20);
  CHECK(t->cluster.timeout_ms == 200);
  CHECK(t->cluster.start_timeout_ms == 15000);
  CHECK_FALSE(t->cluster.tls);
  CHECK(t->node("check")->at == "m1");  // default: the first member
  CHECK(t->node("saxpy")->at == "m2");
  CHECK(t->node("saxpy")->fallback == "local_cpu");
  CHECK(t->node("result")->fallback == "m1");
  CHECK(t->load[0].at == "m1");
  REQUIRE(t->faults.size() == 1);
  CHECK(t->faults[0].on_member());
  CHECK(t->faults[0].member == "m2");
  CHECK(t->faults[0].restore_after_s == 2);
  CHECK(t->driving_members() == std::vector<std::string>{"m1"});

  auto one = [&](const std::string& text, const std::string& what) {
    const std::vector<topology_error> e = errors_of(text);
    INFO(text);
    for (const auto& x : e) INFO(x.str());
    REQUIRE(e.size() == 1);
    CHECK_THAT(e[0].what, Catch::Contains(what));
  };
  auto with = [&](std::string text, const std::string& from, const std::string& to) {
    const std::size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  one(with(cluster + nodes, "at: m2,", "at: m9,"), "unknown member 'm9' in 'at'");
  one(with(cluster + nodes, "10.0.0.2:7100", "10.0.0.2:x"), "'listen' must be HOST:PORT");
  CHECK(errors_of(with(cluster, "10.0.0.2:7100", "127.0.0.1:0") + nodes).empty());  // ports of 0 never clash
  one(with(cluster, "\"127.0.0.1:0\"}\n    - {name: m2, listen: \"10.0.0.2:7100\"",
           "\"10.0.0.2:7100\"}\n    - {name: m2, listen: \"10.0.0.2:7100\"") +
          nodes,
      "address 10.0.0.2:7100 is another member's too");
  one(with(cluster + nodes, "fallback: m1", "fallback: m3"), "its fallback is the member it runs on ('m3')");
  one(with(cluster + nodes, "fallback: m1", "fallback: m7"), "unknown fallback 'm7'");
  one(with(cluster, "timeout_ms: 200", "timeout_ms: 10") + nodes, "must be at least 'heartbeat_ms'");
  one(with(cluster, "name: m3", "name: local_cpu") + with(nodes, "at: m3,", "at: m2,"), "a fallback's keyword");
  one(cluster + nodes + "faults: [{kind: member_kill, member: m1, at_s: 1}]\n", "hosts load generators");
  one(cluster + nodes + "faults: [{kind: member_kill, member: m8, at_s: 1}]\n", "unknown member 'm8'");
  one(cluster + nodes + "faults: [{kind: member_partition, member: m2, at_s: 1}]\n", "missing 'restore_after_s'");
  one(head + "nodes: [{name: a, kernel: echo, at: m1}]\n", "this topology has no 'cluster:'");
  one(head + "nodes: [{name: a, kernel: echo, fallback: local_cpu}]\n", "'fallback' is for nodes of a cluster");
}
