// Placement of ring nodes: see placement.hpp.
#include "placement.hpp"

#include "fault_schedule.hpp"
#include "ringflow/runtime/gpu_backends.hpp"
#include "ringflow/runtime/kernel_host.hpp"
#include "ringflow/runtime/plugins.hpp"

namespace ringflow::ops::engine_parts {

std::shared_ptr<gpu::gpu_device> placement::gpu_device_for(const std::string& backend, std::string& why) {
  if (auto it = gpus_.find(backend); it != gpus_.end()) {
    why = gpu_why_[backend];
    return it->second;
  }
  std::shared_ptr<gpu::gpu_device> d;
  try {
    if (opts_.open_gpu) {
      d = opts_.open_gpu(backend);
    } else if (std::optional<gpu_backend> b = find_gpu_backend(backend); b && b->open) {
      d = b->open();
    }
    if (!d)
      why = "this program was built without the " + backend + " backend (no " + (backend == "cuda" ? "nvcc" : "hipcc") +
            " at build time, or it does not link ringflow::backend_" + backend + ")";
  } catch (const std::exception& e) {
    why = e.what();
  }
  gpus_[backend] = d;
  gpu_why_[backend] = why;
  if (d)
    log_.info("program",
              "device " + d->id() + " (" + d->info().name + ", " + d->info().arch + "): one persistent kernel, " +
                  std::to_string(d->workers()) + " workers",
              {{"device", d->id()}});
  return d;
}

// `auto`: a GPU when one is usable (not for kernel hosts: their workers run cpu or sim), else sim.
std::string placement::resolve_auto(bool hosted) {
  std::string why_cuda, why_hip;
  if (!hosted && gpu_device_for("cuda", why_cuda)) return "cuda";
  if (!hosted && gpu_device_for("hip", why_hip)) return "hip";
  if (!auto_noted_ && !hosted)
    log_.info("program", "backend auto: no usable GPU (cuda: " + why_cuda + "; hip: " + why_hip +
                             "); ring nodes run on the sim device (the CPU kernel behind the fault injector)");
  auto_noted_ = auto_noted_ || !hosted;
  return "sim";
}

node_placement placement::place(const node_spec& n, const topology& topo, const program_config& cfg) {
  node_placement p;
  bool faulted = false;  // device faults scheduled: the node needs a fault injector
  for (const fault_spec& f : topo.faults) faulted = faulted || (f.node == n.name && f.on_device());
  const bool hosted = n.host == "process";
  p.backend = backend_of(n);
  if (p.backend == "auto") p.backend = resolve_auto(hosted);
  const bool on_gpu = p.backend == "cuda" || p.backend == "hip";
  if (on_gpu && hosted) {
    // The worker owns the device context (ringflow/process/kernel_host_device.hpp): the service
    // opens no device of its own, it only checks that one is usable before starting workers.
    std::optional<gpu_backend> b = find_gpu_backend(p.backend);
    const gpu::gpu_probe probe = b && b->probe ? b->probe() : gpu::gpu_probe{};
    if (!b || !b->open_with)
      throw engine_error("node '" + n.name + "': backend '" + p.backend +
                         "' is not available: this program was built "
                         "without the " +
                         p.backend + " backend; use auto, sim or cpu");
    if (!probe.usable)
      throw engine_error("node '" + n.name + "': backend '" + p.backend + "' is not available: " + probe.detail +
                         " (ringflow devices lists what this machine has); use auto, sim or cpu");
  } else if (on_gpu) {
    std::string why;
    p.gpu = gpu_device_for(p.backend, why);
    if (!p.gpu)
      throw engine_error("node '" + n.name + "': backend '" + p.backend + "' is not available: " + why +
                         " (ringflow devices lists what this machine has); use auto, sim or cpu");
  }
  if (hosted) {
    process::kernel_host_options ho;
    ho.kernels = catalog_kernel_lookup();
    ho.worker_args = worker_plugin_args(topo.plugins);  // workers load the same plugin files (by hash)
    ho.program = opts_.kernel_host_program;
    ho.heartbeat_timeout = std::chrono::milliseconds(cfg.workers.heartbeat_timeout_ms);
    ho.start_timeout = std::chrono::milliseconds(cfg.workers.start_timeout_ms);
    ho.standby = cfg.workers.standby == "on";
    ho.backend = on_gpu ? p.backend : p.backend == "sim" || faulted ? "sim" : "cpu";
    for (const fault_spec& f : topo.faults)  // message and probability rules: every worker starts with them
      if (f.node == n.name && f.on_device() && f.at_s < 0) ho.standing_faults.push_back(rule_of(f));
    p.host = process::kernel_host_device::make("host:" + n.name, ho);
  } else if (p.backend == "sim" || faulted) {
    sim::sim_device_options o;
    o.pump_wait =
        wait_policy::of(parse_wait_mode(n.wait.empty() ? cfg.runtime.wait : n.wait).value_or(wait_mode::adaptive));
    o.id = p.gpu ? "sim:" + n.name + "@" + p.gpu->id() : "sim:" + n.name;  // faults injected over the GPU
    p.sim = sim::sim_device::make(o, std::hash<std::string>{}(n.name));
  }
  // The ladder supervises the outermost device: the kernel host, else the sim decorator, else the GPU.
  if (p.host) p.ladder_device = p.host;
  else if (p.sim) p.ladder_device = p.sim;
  else if (p.gpu) p.ladder_device = p.gpu;
  return p;
}

cpu_incarnation_options cpu_options_for(const node_spec& n, const std::string& ring_name, const program_config& cfg) {
  cpu_incarnation_options co;
  co.rings.requests.arena_bytes = co.rings.replies.arena_bytes = n.arena_bytes;
  if (n.ring_slots) co.rings.requests.capacity = co.rings.replies.capacity = n.ring_slots;
  co.wait = wait_policy::of(parse_wait_mode(n.wait.empty() ? cfg.runtime.wait : n.wait).value_or(wait_mode::adaptive));
  co.cpus = n.cpus;
  co.thread_name = "rf-k-" + ring_name;
  return co;
}

incarnation_factory placement::device_factory(const node_placement& p, const kernel_info& k, const node_spec& n,
                                              const cpu_incarnation_options& co) const {
  incarnation_factory f;
  if (p.gpu) {
    gpu::gpu_ring_options go;
    go.requests.arena_bytes = go.replies.arena_bytes = n.arena_bytes;
    if (n.ring_slots) go.requests.capacity = go.replies.capacity = n.ring_slots;
    give_state_room(go.requests, k.state_bytes);  // a stateful kernel's snapshots travel in the rings
    give_state_room(go.replies, k.state_bytes);
    f = p.gpu->factory(k.name, go);            // throws for a kernel the GPU table lacks or bad ring options
    if (p.sim) f = p.sim->wrap(std::move(f));  // the injector over the GPU's incarnations
  } else if (p.sim) {
    f = k.sim_factory(*p.sim, co);
  }
  // A kernel host's workers run the node's backend themselves (a GPU worker opens its own device).
  if (p.host) f = p.host->factory(k.name, co);
  return f;
}

void placement::stop_gpu_kernels() {
  for (const auto& [backend, dev] : gpus_)  // the ring actors are gone: stop each device's kernel
    if (dev && !dev->stop_kernel())
      log_.write(log_level::error, "program", "device " + dev->id() + ": " + dev->last_error(),
                 {{"device", dev->id()}});
}

}  // namespace ringflow::ops::engine_parts
