// Checks of a topology against its config and of a run against this machine: see program.hpp.
#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "program.hpp"
#include "ringflow/process/segment.hpp"
#include "ringflow/ring.hpp"
#include "ringflow/runtime/catalog.hpp"

namespace ringflow::program {

using namespace ringflow::ops;

namespace {

ring_config ring_of(const node_spec& n) {
  ring_config c;
  c.arena_bytes = n.arena_bytes;
  if (n.ring_slots) c.capacity = n.ring_slots;
  return c;
}

std::string mib(std::uint64_t bytes) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(1);
  s << static_cast<double>(bytes) / (1024.0 * 1024.0) << " MiB";
  return s.str();
}

// "MemAvailable:  123 kB" of /proc/meminfo, in bytes (0 when unknown).
std::uint64_t meminfo_available() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return 0;
}

// The cgroup v2 memory limit left to this process (memory.max - memory.current), 0 when none.
std::uint64_t cgroup_available() {
  std::ifstream self("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(self, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  if (path.empty()) return 0;
  const std::string dir = "/sys/fs/cgroup" + path;
  std::ifstream max(dir + "/memory.max"), cur(dir + "/memory.current");
  std::string m;
  std::uint64_t used = 0;
  if (!(max >> m) || m == "max" || !(cur >> used)) return 0;
  std::uint64_t limit = 0;
  const auto [p, ec] = std::from_chars(m.data(), m.data() + m.size(), limit);
  if (ec != std::errc() || p != m.data() + m.size()) return 0;  // not a number: no limit we can read
  return limit > used ? limit - used : 1;
}

// RLIMIT_AS less what is mapped now, 0 when unlimited.
std::uint64_t address_space_available() {
  rlimit r{};
  if (::getrlimit(RLIMIT_AS, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 0;
  std::ifstream in("/proc/self/status");
  std::string key, unit;
  std::uint64_t kb = 0, vm = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    if (l >> key >> kb && key == "VmSize:") vm = kb * 1024;
  }
  return r.rlim_cur > vm ? r.rlim_cur - vm : 1;
}

}  // namespace

std::vector<topology_error> check_against_config(const topology& t, const program_config& cfg) {
  std::vector<topology_error> out;
  for (const load_spec& l : t.load) {
    const message_info* m = find_message(l.message);
    if (!m || !m->make) continue;  // the parser reported it
    std::size_t bytes = 0;
    try {
      bytes = m->make(0, l.payload_bytes).bytes.size();
    } catch (const std::exception&) {
      continue;  // a plugin's hook that fails says so per message at run time
    }
    const std::string what = "load generator '" + l.name + "': payload_bytes " + std::to_string(l.payload_bytes) +
                             " makes " + std::to_string(bytes) + "-byte " + l.message + " messages";
    if (static_cast<std::int64_t>(bytes) > cfg.limits.max_payload_bytes)
      out.push_back({t.file, l.pos,
                     what + ", past limits.max_payload_bytes (" + std::to_string(cfg.limits.max_payload_bytes) +
                         "): every one would be refused"});
    const node_spec* target = t.node(l.target);
    if (target && target->kind == node_kind::ring) {
      const ring_config rc = ring_of(*target);
      const std::uint64_t cap = std::max<std::uint64_t>(rc.arena_bytes, rc.inline_capacity());
      if (bytes > cap)
        out.push_back({t.file, l.pos,
                       what + ", larger than node '" + target->name + "''s rings carry (" + std::to_string(cap) +
                           " bytes: arena_bytes " + std::to_string(rc.arena_bytes) + "): every one would be refused"});
    }
  }
  return out;
}

resource_estimate estimate_resources(const topology& t) {
  resource_estimate e;
  for (const node_spec& n : t.nodes) {
    if (n.kind != node_kind::ring) continue;
    const ring_config rc = ring_of(n);
    const std::uint64_t pair = ring_layout{rc}.bytes() * 2;  // requests + replies
    if (n.host == "process") {
      const std::uint64_t seg = process::segment_layout::of(rc, rc).total;
      e.shm_bytes += seg * n.replicas;
      e.memory_bytes += seg * n.replicas;  // tmpfs pages are memory too
    } else {
      e.memory_bytes += pair * n.replicas;
    }
  }
  return e;
}

machine_resources this_machine() {
  machine_resources m;
  m.memory_bytes = meminfo_available();
  for (std::uint64_t x : {cgroup_available(), address_space_available()})
    if (x && (m.memory_bytes == 0 || x < m.memory_bytes)) m.memory_bytes = x;
  struct statvfs v {};
  if (::statvfs("/dev/shm", &v) == 0) m.shm_bytes = static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
  return m;
}

std::vector<std::string> check_resources(const resource_estimate& need, const machine_resources& have) {
  std::vector<std::string> out;
  if (have.memory_bytes && need.memory_bytes > have.memory_bytes)
    out.push_back("the topology's rings need " + mib(need.memory_bytes) + " of memory, this machine has " +
                  mib(have.memory_bytes) + " available (rings x slots x arena_bytes x replicas)");
  if (need.shm_bytes && need.shm_bytes > have.shm_bytes)
    out.push_back("the topology's kernel-host segments need " + mib(need.shm_bytes) + " in /dev/shm, it has " +
                  mib(have.shm_bytes) + " free (host: process nodes; Docker: --shm-size)");
  return out;
}

}  // namespace ringflow::program
