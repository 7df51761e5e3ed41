// Placement (internal to the engine): which backend a ring node runs on and the devices behind it.
//
// Contract
//   * backend_of(): the node's preference, or --backend's override. `auto` resolves to cuda, else
//     hip, else sim (one log line gives each GPU backend's reason); kernel hosts never get a GPU.
//     An explicit cuda/hip that is unusable is an engine_error with the driver's reason.
//   * place(): one node_placement per ring node. `device` is the one the fault ladder supervises
//     (nullptr: plain CPU, no ladder); the typed handles are there only for what is specific to a
//     backend: sim (fault rules, lost/poisoned), host (kill_worker, injection, worker pids), gpu
//     (poisoned, launches, bound rings). A node with sim faults scheduled gets a sim device, over
//     the GPU when it runs on one.
//   * A GPU backend is opened once per run and shared by every node on it (one persistent kernel).
// Thread-safety: the engine's controlling thread (start, stop); gpus() readers after start.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "ringflow/gpu/gpu_device.hpp"
#include "ringflow/process/kernel_host_device.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/engine.hpp"
#include "ringflow/sim/sim_device.hpp"

namespace ringflow::ops::engine_parts {

struct node_placement {
  std::string backend;                                // resolved: cpu | sim | cuda | hip
  std::shared_ptr<device> ladder_device;              // what the ladder supervises; nullptr: plain CPU
  std::shared_ptr<sim::sim_device> sim;               // sim-specific: faults, lost / poisoned
  std::shared_ptr<process::kernel_host_device> host;  // process-specific: workers
  std::shared_ptr<gpu::gpu_device> gpu;               // gpu-specific: poisoned, launches, rings
};

class placement {
 public:
  placement(event_log& log, const run_options& opts) : log_(log), opts_(opts) {}

  [[nodiscard]] std::string backend_of(const node_spec& n) const {
    return opts_.backend_override.empty() ? n.backend : opts_.backend_override;
  }
  /// Where ring node `n` runs (throws engine_error when its explicit GPU backend is unusable).
  [[nodiscard]] node_placement place(const node_spec& n, const topology& topo, const program_config& cfg);
  /// The on-device incarnation factory for one ring of `n` (empty when it runs plainly on the CPU).
  [[nodiscard]] incarnation_factory device_factory(const node_placement& p, const kernel_info& k, const node_spec& n,
                                                   const cpu_incarnation_options& co) const;
  /// The GPU devices opened, by backend (nullptr where unusable).
  [[nodiscard]] const std::map<std::string, std::shared_ptr<gpu::gpu_device>>& gpus() const noexcept { return gpus_; }
  /// Stops every GPU's persistent kernel (after the ring actors are gone); logs a hang.
  void stop_gpu_kernels();

 private:
  std::shared_ptr<gpu::gpu_device> gpu_device_for(const std::string& backend, std::string& why);
  std::string resolve_auto(bool hosted);

  event_log& log_;
  const run_options& opts_;
  std::map<std::string, std::shared_ptr<gpu::gpu_device>> gpus_;
  std::map<std::string, std::string> gpu_why_;
  bool auto_noted_ = false;
};

/// A ring node's CPU kernel options: its arena, its wait policy (`wait:`, else runtime.wait), its
/// kernel thread's CPUs (`cpus:`) and name (rf-k-<ring actor>).
cpu_incarnation_options cpu_options_for(const node_spec& n, const std::string& ring_name, const program_config& cfg);

}  // namespace ringflow::ops::engine_parts
