// ringflow/chaos — the seeded generator behind `ringflow_chaos` (docs/FAULTS.md "Chaos").
//
// Contract
//   * generate(seed) is a pure function of the seed (its own splitmix64 generator, no std
//     distributions, whose output differs between standard libraries): the same seed gives the same
//     topology file and fault schedule on every machine and build.
//   * The topology is within the documented limits and validates: a shape (pipeline, fan-out with a
//     fan-in join, diamond) of CPU nodes (`validate`, `passthrough`) and ring nodes (the `echo`
//     kernel on `sim` or `cpu`, 1-3 replicas, at most one `host: process` node); nested supervisors
//     (every strategy, intensity 1-5); one paced load generator at the entry; 1-6 faults of every
//     kind (`kill_worker` on the process node only, `device_lost` on in-process nodes only) with
//     every trigger (`at_s`, `at_message`, `probability`).
//   * Two modes. `bounded` (most seeds): the actor_crash faults crash ring actors at most as often
//     as the smallest intensity in the tree (the root's is 5), so no supervisor can give up: the run
//     must end with exit 0 and `gave_up: null`. `give_up`: one node directly under the root or
//     under a top-level supervisor gets `actor_crash` on every message from a time on (`times: 0`):
//     escalation must reach the root, so the run must end with exit 4 and `gave_up: "root"`. Its
//     other faults are not hang or slow (a hung kernel stretches a one_for_all restart by
//     ladder.stop_timeout_ms) and it has no `host: process` node (restarting one is slow enough
//     that restarts may never exceed an intensity's rate); its duration is 8 s, a bound: the run
//     ends at the give-up.
//   * The invariants the harness checks per seed are in chaos_main.cpp (check()).
// Thread-safety: generate() is reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ringflow::chaos {

struct plan {
  std::uint64_t seed = 0;
  std::string yaml;   // the topology file
  std::string shape;  // pipeline | fanout | diamond
  std::string mode;   // bounded | give_up
  double duration_s = 0;
  int expected_exit = 0;         // 0, or 4 (the root supervisor gave up)
  std::string expected_gave_up;  // "" (null) or "root"
  std::size_t nodes = 0, ring_nodes = 0, supervisors = 0;
  bool hosted = false;                   // a `host: process` node
  std::vector<std::string> fault_kinds;  // one per fault, in schedule order
  bool stateful = false;                 // generate_stateful(): the vwap kernel, checkpointed
  std::string durability;                // its checkpoint's durability (checkpoint | reply)
};

/// The topology and fault schedule of one seed.
[[nodiscard]] plan generate(std::uint64_t seed);

/// `ringflow_chaos --stateful`: ingest (validate) -> `vwap` (stateful, sim or cpu, random snapshot
/// settings, a `checkpoint:` in the seed's folder, durability checkpoint or reply) -> egress, a
/// paced Trade load, 1-6 device faults of every kind and trigger, and in 40 % of the seeds 1-3
/// actor_crash faults (the successor takes over the state). The harness compares the final
/// checkpoint with the fault-free state of the trades answered.
[[nodiscard]] plan generate_stateful(std::uint64_t seed);

/// Every fault kind the generator draws from (the sim's, kill_worker and actor_crash).
[[nodiscard]] const std::vector<std::string>& all_fault_kinds();

}  // namespace ringflow::chaos
