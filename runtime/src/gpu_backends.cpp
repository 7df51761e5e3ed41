// The program's GPU backends: see ringflow/runtime/gpu_backends.hpp.
#include "ringflow/runtime/gpu_backends.hpp"

#include <map>
#include <mutex>

namespace ringflow::ops {
namespace {
struct backends {
  std::mutex mu;
  std::map<std::string, gpu_backend> by_name;
};
backends& the_backends() {
  static backends b;
  return b;
}
}  // namespace

void register_gpu_backend(gpu_backend b) {
  backends& r = the_backends();
  std::lock_guard lock(r.mu);
  std::string name = b.name;
  r.by_name[name] = std::move(b);
}

std::optional<gpu_backend> find_gpu_backend(const std::string& name) {
  backends& r = the_backends();
  std::lock_guard lock(r.mu);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) return std::nullopt;
  return it->second;
}

}  // namespace ringflow::ops
