// Durable checkpoints of a stateful node: see ringflow/runtime/checkpoint.hpp.
#include "ringflow/runtime/checkpoint.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ringflow/kernel.hpp"

namespace ringflow::ops {

namespace {

constexpr char magic[4] = {'R', 'F', 'C', 'K'};
constexpr std::size_t fixed_head = 4 + 4 + 4 + 4;  // magic, version, state_bytes, name length
constexpr std::size_t fixed_tail = 8 + 8 + 8 + 8;  // sequence, covered, written, checksum
constexpr std::uint32_t max_name = 4096;

std::uint32_t get32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

std::uint64_t checksum_of(const std::uint8_t* p, std::size_t n) {
  return state_checksum(p, static_cast<std::uint32_t>(n));  // FNV-1a 64 (kernel.hpp), n < 4 GiB
}

std::string errno_text(const char* step, const std::filesystem::path& p, int err) {
  return std::string(step) + " " + p.string() + ": " + std::strerror(err);
}

// Reads a whole file (at most `limit` bytes + 1, so a larger one is seen as too large).
bool read_file(const std::filesystem::path& p, std::vector<std::uint8_t>& out, std::string& why, std::size_t limit) {
  const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    why = errno == ENOENT ? "missing" : errno_text("open", p, errno);
    return false;
  }
  out.clear();
  std::uint8_t buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      why = errno_text("read", p, errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > limit) {
      why = "larger than any checkpoint (" + std::to_string(limit) + " bytes)";
      ::close(fd);
      return false;
    }
  }
  ::close(fd);
  return true;
}

}  // namespace

std::vector<std::uint8_t> encode_checkpoint(const checkpoint& c) {
  std::vector<std::uint8_t> b(fixed_head + c.kernel.size() + fixed_tail + c.state.size());
  std::uint8_t* q = b.data();
  auto put = [&q](std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) *q++ = static_cast<std::uint8_t>(v >> (8 * i));
  };
  std::memcpy(q, magic, 4);
  q += 4;
  put(checkpoint_version, 4);
  put(c.state.size(), 4);
  put(c.kernel.size(), 4);
  if (!c.kernel.empty()) std::memcpy(q, c.kernel.data(), c.kernel.size());
  q += c.kernel.size();
  put(c.sequence, 8);
  put(c.requests_covered, 8);
  put(c.written_unix_ms, 8);
  if (!c.state.empty()) std::memcpy(q, c.state.data(), c.state.size());
  q += c.state.size();
  put(checksum_of(b.data(), b.size() - 8), 8);
  return b;
}

std::optional<checkpoint> decode_checkpoint(const std::uint8_t* p, std::size_t n, std::string& why) {
  if (n < fixed_head + fixed_tail) {
    why = "torn: " + std::to_string(n) + " bytes, shorter than any checkpoint";
    return std::nullopt;
  }
  if (std::memcmp(p, magic, 4) != 0) {
    why = "not a ringflow checkpoint (bad magic)";
    return std::nullopt;
  }
  const std::uint32_t version = get32(p + 4);
  if (version != checkpoint_version) {
    why = "checkpoint format version " + std::to_string(version) + " (this build reads " +
          std::to_string(checkpoint_version) + ")";
    return std::nullopt;
  }
  const std::uint32_t state_bytes = get32(p + 8);
  const std::uint32_t name_len = get32(p + 12);
  if (state_bytes > checkpoint_max_state || name_len > max_name) {
    why = "corrupt: sizes out of range";
    return std::nullopt;
  }
  const std::size_t want = fixed_head + name_len + fixed_tail + state_bytes;
  if (n != want) {
    why = (n < want ? "torn: " : "corrupt: ") + std::to_string(n) + " bytes, the header says " + std::to_string(want);
    return std::nullopt;
  }
  if (checksum_of(p, n - 8) != get64(p + n - 8)) {
    why = "corrupt: checksum mismatch";
    return std::nullopt;
  }
  checkpoint c;
  const std::uint8_t* q = p + fixed_head;
  c.kernel.assign(reinterpret_cast<const char*>(q), name_len);
  q += name_len;
  c.state_bytes = state_bytes;
  c.sequence = get64(q);
  c.requests_covered = get64(q + 8);
  c.written_unix_ms = get64(q + 16);
  q += 24;
  c.state.assign(q, q + state_bytes);
  return c;
}

checkpoint_store::checkpoint_store(std::filesystem::path dir, std::string node)
    : dir_(std::move(dir)), node_(std::move(node)) {}

std::filesystem::path checkpoint_store::latest() const { return dir_ / (node_ + ".ckpt"); }
std::filesystem::path checkpoint_store::previous() const { return dir_ / (node_ + ".ckpt.prev"); }

std::string checkpoint_store::prepare() const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return "cannot create the checkpoint folder " + dir_.string() + ": " + ec.message();
  if (!std::filesystem::is_directory(dir_, ec)) return "the checkpoint folder " + dir_.string() + " is not a folder";
  return {};
}

std::string checkpoint_store::write(const checkpoint& c) {
  const std::vector<std::uint8_t> bytes = encode_checkpoint(c);
  const std::filesystem::path tmp = dir_ / (node_ + ".ckpt.tmp");
  auto injected = [&](const char* step) { return fail_step ? fail_step(step) : 0; };
  int fd = -1;
  auto fail = [&](const char* step, const std::filesystem::path& p, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());  // the latest and the previous are untouched
    return errno_text(step, p, err);
  };
  if (int e = injected("open")) return fail("open", tmp, e);
  fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("open", tmp, errno);
  if (int e = injected("write")) return fail("write", tmp, e);
  for (std::size_t off = 0; off < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", tmp, n < 0 ? errno : ENOSPC);
    off += static_cast<std::size_t>(n);
  }
  if (int e = injected("fsync")) return fail("fsync", tmp, e);
  if (::fsync(fd) != 0) return fail("fsync", tmp, errno);
  if (::close(fd) != 0) {
    fd = -1;
    return fail("close", tmp, errno);
  }
  fd = -1;
  if (int e = injected("rename")) return fail("rename", tmp, e);
  // The latest becomes the previous (a crash between the renames leaves the previous valid).
  if (::rename(latest().c_str(), previous().c_str()) != 0 && errno != ENOENT) return fail("rename", latest(), errno);
  if (::rename(tmp.c_str(), latest().c_str()) != 0) return fail("rename", tmp, errno);
  if (int e = injected("fsync-dir")) return errno_text("fsync-dir", dir_, e);
  const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return errno_text("open", dir_, errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return errno_text("fsync-dir", dir_, err);
  return {};
}

checkpoint_store::loaded checkpoint_store::load() const {
  loaded out;
  const std::size_t limit = fixed_head + max_name + fixed_tail + checkpoint_max_state;
  for (const std::filesystem::path& p : {latest(), previous()}) {
    std::vector<std::uint8_t> bytes;
    std::string why;
    if (!read_file(p, bytes, why, limit)) {
      if (why != "missing") out.refused.push_back(p.string() + ": " + why);
      continue;
    }
    std::optional<checkpoint> c = decode_checkpoint(bytes.data(), bytes.size(), why);
    if (!c) {
      out.refused.push_back(p.string() + ": " + why);
      continue;
    }
    out.cp = std::move(c);
    out.from = p;
    return out;
  }
  return out;
}

std::vector<std::string> checkpoint_store::discard(std::string& err) {
  std::vector<std::string> moved;
  for (const std::filesystem::path& p : {latest(), previous()}) {
    std::filesystem::path to = p;
    to += ".discarded";
    if (::rename(p.c_str(), to.c_str()) == 0) moved.push_back(to.string());
    else if (errno != ENOENT && err.empty()) err = errno_text("rename", p, errno);
  }
  return moved;
}

// ---- the journal file (durability: reply) -------------------------------------------------------

namespace {
constexpr char journal_magic[4] = {'R', 'F', 'C', 'J'};
constexpr std::uint32_t journal_version = 1;
constexpr std::size_t journal_head = 4 + 4 + 8 + 8;
constexpr std::size_t record_overhead = 4 + 8 + 8;
constexpr std::uint32_t max_record = 64u << 20;

void put_le(std::vector<std::uint8_t>& b, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
}  // namespace

void encode_journal_record(const journal_entry& e, std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  put_le(out, e.bytes.size(), 4);
  put_le(out, e.seq, 8);
  out.resize(out.size() + e.bytes.size());
  if (!e.bytes.empty()) std::memcpy(out.data() + start + 12, e.bytes.data(), e.bytes.size());
  put_le(out, checksum_of(out.data() + start, out.size() - start), 8);
}

std::vector<std::uint8_t> encode_journal(std::uint64_t base, const std::vector<journal_entry>& entries) {
  std::vector<std::uint8_t> b(4);
  std::memcpy(b.data(), journal_magic, 4);
  put_le(b, journal_version, 4);
  put_le(b, base, 8);
  put_le(b, checksum_of(b.data(), b.size()), 8);
  for (const journal_entry& e : entries) encode_journal_record(e, b);
  return b;
}

journal_contents decode_journal(const std::uint8_t* p, std::size_t n) {
  journal_contents j;
  j.present = true;
  if (n < journal_head) {
    j.note = "torn header (" + std::to_string(n) + " bytes)";
    return j;
  }
  if (std::memcmp(p, journal_magic, 4) != 0 || get32(p + 4) != journal_version || checksum_of(p, 16) != get64(p + 16)) {
    j.note = "not a ringflow journal, another version, or a damaged header";
    return j;
  }
  j.base = get64(p + 8);
  std::size_t off = journal_head;
  std::uint64_t next = j.base + 1;
  while (off < n) {
    if (n - off < record_overhead) {
      j.note = "torn record at byte " + std::to_string(off);
      return j;
    }
    const std::uint32_t size = get32(p + off);
    if (size > max_record || n - off - record_overhead < size) {
      j.note = (size > max_record ? "damaged record at byte " : "torn record at byte ") + std::to_string(off);
      return j;
    }
    const std::size_t body = 12 + static_cast<std::size_t>(size);
    if (checksum_of(p + off, body) != get64(p + off + body)) {
      j.note = "damaged record at byte " + std::to_string(off) + " (checksum)";
      return j;
    }
    const std::uint64_t seq = get64(p + off + 4);
    if (seq != next) {
      j.note = "record " + std::to_string(seq) + " at byte " + std::to_string(off) + " where " + std::to_string(next) +
               " was due";
      return j;
    }
    j.entries.push_back(journal_entry{seq, std::vector<std::uint8_t>(p + off + 12, p + off + body)});
    off += body + 8;
    ++next;
  }
  return j;
}

journal_contents read_journal(const std::filesystem::path& file) {
  std::vector<std::uint8_t> bytes;
  std::string why;
  if (!read_file(file, bytes, why, std::size_t{1} << 34)) {
    journal_contents j;
    j.present = why != "missing";
    j.note = why;
    return j;
  }
  return decode_journal(bytes.data(), bytes.size());
}

// ---- checkpoint_owner ---------------------------------------------------------------------------

checkpoint_owner& checkpoint_owner::operator=(checkpoint_owner&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    file_ = std::move(o.file_);
    o.fd_ = -1;
  }
  return *this;
}

std::string checkpoint_owner::acquire(const std::filesystem::path& dir, const std::string& node,
                                      const std::string& who) {
  release();
  const std::filesystem::path file = dir / (node + ".owner");
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot open " + file.string() + ": " + std::strerror(errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err != EWOULDBLOCK)
      return "cannot lock " + file.string() + " (" + std::strerror(err) +
             "): the folder must be on a filesystem with locks, so that two incarnations never write one state";
    std::ifstream in(file);
    std::string holder;
    std::getline(in, holder);
    return "its checkpoint folder " + dir.string() + " is in use by another process (" +
           (holder.empty() ? std::string("it has not said who yet") : holder) + ", lock " + file.string() +
           "): two incarnations must never write one node's state";
  }
  char host[256] = {};
  (void)::gethostname(host, sizeof host - 1);
  const auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::ostringstream text;
  text << "pid " << ::getpid() << " " << who << " host " << host << " since_unix_ms " << since << "\n";
  const std::string t = text.str();
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, t.data(), t.size(), 0) != static_cast<ssize_t>(t.size())) {
    // The lock holds without the text; only the refusal message of another process is poorer.
  }
  fd_ = fd;
  file_ = file;
  return {};
}

void checkpoint_owner::release() noexcept {
  if (fd_ < 0) return;
  ::flock(fd_, LOCK_UN);
  ::close(fd_);
  fd_ = -1;
}

}  // namespace ringflow::ops
