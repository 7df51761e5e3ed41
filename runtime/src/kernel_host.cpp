// The `ringflow kernel-host` entry point: see ringflow/runtime/kernel_host.hpp.
#include "ringflow/runtime/kernel_host.hpp"

#include <cstdlib>

#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/gpu_backends.hpp"
#include "ringflow/runtime/plugins.hpp"

namespace ringflow::ops {

process::kernel_lookup catalog_kernel_lookup() {
  process::kernel_lookup l;
  l.find = [](const std::string& name) -> std::optional<process::hosted_kernel> {
    const kernel_info* k = find_kernel(name);
    if (!k) return std::nullopt;
    return process::hosted_kernel{k->name, k->request_id, k->reply_id, k->cpu_factory, k->state_bytes};
  };
  l.names = [] { return kernel_names(); };
  return l;
}

int run_kernel_host(const std::string& segment, std::string& error, bool standby,
                    const std::vector<std::string>& plugins, const std::vector<std::string>& plugin_sha256) {
  using process::worker_exit;
  process::close_inherited_fds(standby);  // nothing inherited from the service but stdio
  if (!plugins.empty()) {  // the service's plugin files, byte for byte (a standby loads them before it waits)
    if (plugin_sha256.size() != plugins.size()) {
      error = "every --plugin needs its --plugin-sha256";
      return static_cast<int>(worker_exit::bad_plugin);
    }
    std::vector<loaded_plugin> got;
    std::vector<plugin_problem> problems;
    if (!load_plugins(plugins, got, problems, plugin_sha256)) {
      for (const plugin_problem& p : problems)
        error += (error.empty() ? "" : "; ") + ("plugin " + p.path + ": " + p.what);
      return static_cast<int>(worker_exit::bad_plugin);
    }
  }
  const process::worker_gpu_backends gpus = linked_worker_gpu_backends();
  if (standby) process::warm_up_standby(segment, gpus);
  if (standby && !process::wait_for_activation()) return static_cast<int>(worker_exit::service_gone);
  process::worker_segment seg;
  if (auto e = process::map_segment(segment, catalog_kernel_lookup(), seg, error, gpus)) return static_cast<int>(*e);
  process::worker_incarnation w;
  if (auto e = process::make_worker_incarnation(seg, w, error)) return static_cast<int>(*e);
  const worker_exit code = process::serve_until_done(seg, w, error);
  if (code == worker_exit::service_gone) std::_Exit(static_cast<int>(code));  // nobody to drain for
  return process::finish_worker(w, code);
}

process::worker_gpu_backends linked_worker_gpu_backends() {
  process::worker_gpu_backends v;
  for (const char* name : {"cuda", "hip"})  // never the tests' emulator: it is not a registered backend
    if (std::optional<gpu_backend> b = find_gpu_backend(name); b && b->open_with)
      v.push_back({name, b->open_with, b->warm_up});
  return v;
}

}  // namespace ringflow::ops
