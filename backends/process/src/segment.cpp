// Kernel-host segments: layout, naming, mapping, hygiene. See ringflow/process/segment.hpp.
#include "ringflow/process/segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace ringflow::process {

namespace {

std::uint64_t round128(std::uint64_t x) { return (x + 127) / 128 * 128; }

std::atomic<std::uint64_t> g_segment_counter{0};

struct segment_name {
  long long pid = 0;
  unsigned long long start = 0;
};
std::optional<segment_name> parse_segment(const std::string& file, const std::string& prefix) {
  if (file.rfind(prefix + ".", 0) != 0) return std::nullopt;
  segment_name n;
  char dot1 = 0, dot2 = 0;
  std::istringstream in(file.substr(prefix.size()));
  if (!(in >> dot1 >> n.pid >> dot2 >> n.start) || dot1 != '.' || dot2 != '.') return std::nullopt;
  return n;
}

}  // namespace

segment_layout segment_layout::of(const ring_config& requests, const ring_config& replies) {
  segment_layout l;
  l.control = round128(sizeof(host_segment_header));
  l.kernel_bell = round128(l.control + sizeof(control_block));
  l.reply_bell = round128(l.kernel_bell + sizeof(doorbell));
  l.requests = round128(l.reply_bell + sizeof(doorbell));
  l.replies = round128(l.requests + ring_layout{requests}.bytes());
  l.total = round128(l.replies + ring_layout{replies}.bytes());
  return l;
}

// ---- the mapping ----------------------------------------------------------------------------------

shm_mapping& shm_mapping::operator=(shm_mapping&& o) noexcept {
  if (this != &o) {
    reset();
    name_ = std::move(o.name_);
    base_ = std::exchange(o.base_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    owner_ = std::exchange(o.owner_, false);
  }
  return *this;
}

void shm_mapping::reset() noexcept {
  if (base_) ::munmap(base_, bytes_);
  if (owner_) ::shm_unlink(name_.c_str());
  base_ = nullptr;
  bytes_ = 0;
  owner_ = false;
}

shm_mapping shm_mapping::create(const std::string& prefix, const std::string& kernel, std::size_t bytes) {
  shm_mapping m;
  m.name_ = "/" + prefix + "." + std::to_string(::getpid()) + "." + std::to_string(process_start_ticks(::getpid())) +
            "." + std::to_string(g_segment_counter.fetch_add(1)) + "." + kernel;
  const int fd = ::shm_open(m.name_.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) throw std::runtime_error("kernel host: shm_open " + m.name_ + ": " + std::strerror(errno));
  m.owner_ = true;  // from here on the destructor unlinks it
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error("kernel host: sizing " + m.name_ + ": " + std::strerror(e));
  }
  // Reserve the pages now: a tmpfs short of room (Docker's 64 MB /dev/shm) fails here with ENOSPC,
  // not later with SIGBUS at the first touch of a page it cannot back.
  if (const int e = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes)); e != 0) {
    ::close(fd);
    throw std::runtime_error("kernel host: reserving " + std::to_string(bytes) + " bytes for " + m.name_ +
                             " in /dev/shm: " + std::strerror(e) +
                             (e == ENOSPC ? " (/dev/shm is too small: Docker's --shm-size)" : ""));
  }
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  const int e = errno;
  ::close(fd);  // the mapping keeps the segment
  if (p == MAP_FAILED) throw std::runtime_error("kernel host: mmap " + m.name_ + ": " + std::strerror(e));
  m.base_ = static_cast<byte*>(p);
  m.bytes_ = bytes;
  return m;
}

std::optional<shm_mapping> shm_mapping::open(const std::string& name, std::size_t min_bytes, std::string& error) {
  const int fd = ::shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) {
    error = "cannot open segment " + name + ": " + std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < min_bytes) {
    ::close(fd);
    error = "segment " + name + " is too small to hold a kernel host header";
    return std::nullopt;
  }
  const std::size_t bytes = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) {
    error = "cannot map segment " + name + ": " + std::strerror(errno);
    return std::nullopt;
  }
  shm_mapping m;
  m.name_ = name;
  m.base_ = static_cast<byte*>(p);
  m.bytes_ = bytes;
  return m;
}

// ---- fault rules on the wire ------------------------------------------------------------------------

host_segment_header::rule to_wire(const sim::fault_rule& r) {
  host_segment_header::rule w{};
  w.kind = static_cast<std::uint32_t>(r.kind);
  w.times = r.times;
  w.at_message = r.at_message;
  w.probability = r.probability;
  w.latency_us = static_cast<std::uint32_t>(r.latency.count());
  return w;
}

std::optional<sim::fault_rule> from_wire(const host_segment_header::rule& w, std::uint64_t seen) {
  if (w.kind >= sim::fault_kind_count) return std::nullopt;
  sim::fault_rule r;
  r.kind = static_cast<sim::fault_kind>(w.kind);
  r.times = w.times;
  r.at_message = w.at_message ? seen + w.at_message : 0;
  r.probability = w.probability;
  r.latency = std::chrono::microseconds(w.latency_us);
  if (r.at_message == 0 && r.probability <= 0) return std::nullopt;
  return r;
}

// ---- processes and hygiene ----------------------------------------------------------------------------

std::uint64_t process_start_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto close = s.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(s.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(in >> field)) return 0;
  try {
    return std::stoull(field);
  } catch (...) {
    return 0;
  }
}

std::vector<std::string> list_segments(const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) {
      const std::string f = e->d_name;
      if (f.rfind(prefix + ".", 0) == 0) out.push_back("/" + f);
    }
    ::closedir(d);
  }
  return out;
}

std::vector<std::string> remove_own_segments(const std::string& prefix) {
  std::vector<std::string> removed;
  const long long me = ::getpid();
  const unsigned long long start = process_start_ticks(::getpid());
  for (const std::string& name : list_segments(prefix)) {
    const auto n = parse_segment(name.substr(1), prefix);
    if (!n || n->pid != me || n->start != start) continue;
    if (::shm_unlink(name.c_str()) == 0) removed.push_back(name);
  }
  return removed;
}

std::vector<std::string> reclaim_stale_segments(const std::string& prefix) {
  std::vector<std::string> removed;
  for (const std::string& name : list_segments(prefix)) {
    const auto n = parse_segment(name.substr(1), prefix);
    if (!n) continue;  // not one of ours after all
    const pid_t pid = static_cast<pid_t>(n->pid);
    const bool alive = pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
    if (alive && process_start_ticks(pid) == n->start) continue;  // its service still runs
    if (::shm_unlink(name.c_str()) == 0) removed.push_back(name);
  }
  return removed;
}

}  // namespace ringflow::process
