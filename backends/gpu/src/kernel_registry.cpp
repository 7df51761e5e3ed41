// The kernel table registry: see ringflow/gpu/kernel_registry.hpp.
#include "ringflow/gpu/kernel_registry.hpp"

#include <cstring>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

namespace ringflow::gpu {

namespace {
struct registry {
  std::mutex mu;
  std::vector<kernel_table_info> tables;  // every registration, in order
};
registry& the_registry() {
  static registry r;  // constructed on first use: registrations run during static initialisation
  return r;
}
}  // namespace

bool register_kernel_table(const kernel_table_info& table) noexcept {
  try {
    registry& r = the_registry();
    std::lock_guard lock(r.mu);
    r.tables.push_back(table);
  } catch (...) {
    // Out of memory during static initialisation: the device open then reports no table.
  }
  return true;
}

kernel_table_info select_kernel_table(const char* backend, const kernel_table_info& builtin) {
  kernel_table_info chosen = builtin;
  {
    registry& r = the_registry();
    std::lock_guard lock(r.mu);
    int found = 0;
    auto origin = [](const kernel_table_info& t) {
      return std::string(t.origin ? t.origin : "the program's RINGFLOW_CUDA_KERNELS");
    };
    for (const kernel_table_info& t : r.tables) {
      if (std::strcmp(t.backend, backend) != 0) continue;
      if (++found > 1)
        throw std::invalid_argument(std::string("more than one kernel table for backend ") + backend + " (" +
                                    origin(chosen) + " and " + origin(t) +
                                    "): one persistent kernel per device serves one table; list every kernel in "
                                    "one table (one .cu file, one plugin)");
      chosen = t;
    }
  }
  std::set<std::string> names;
  for (std::uint32_t i = 0; i < chosen.size; ++i)
    if (!names.insert(chosen.name(i)).second)
      throw std::invalid_argument(std::string("kernel table for ") + backend + " names kernel '" + chosen.name(i) +
                                  "' twice (the demo kernels echo, saxpy, score and vwap are always in it)");
  return chosen;
}

std::uint32_t kernel_index(const kernel_table_info& table, const std::string& kernel) {
  for (std::uint32_t i = 0; i < table.size; ++i)
    if (kernel == table.name(i)) return i;
  return table.size;
}

}  // namespace ringflow::gpu
