// ringflow/runtime/checkpoint.hpp — durable checkpoints of a stateful node (docs/FAULTS.md
// "Durable checkpoints", docs/TOPOLOGY.md `checkpoint:`).
//
// Contract
//   * A checkpoint is one file: the kernel's name and state size, a sequence number, the number of
//     requests whose effect the state holds, the wall-clock time it was written, the state's bytes,
//     and an FNV-1a 64 checksum over all of it (format below; little-endian). decode() refuses
//     anything that is not exactly one whole, intact checkpoint, saying why.
//   * checkpoint_store keeps two per node in its folder: `<node>.ckpt` (the latest) and
//     `<node>.ckpt.prev` (the one before). write() puts the new one in `<node>.ckpt.tmp`, fsyncs
//     it, renames the latest to `.prev`, renames the temp to the latest and fsyncs the folder. A
//     crash at any point leaves a valid latest or a valid previous. A failure (ENOSPC, EIO, ...)
//     returns why and leaves the files that were valid valid (the temp is removed).
//   * load() reads the latest; if it is missing, torn or corrupt it says so (a note per file) and
//     reads the previous. It never throws on the files' content.
//   * discard() moves both aside (`.discarded`, `.prev.discarded`) so a run can start from init
//     without destroying them (`ringflow run --discard-checkpoints`).
// Thread-safety: a store is used by one thread at a time.
//
// Format (version 1): "RFCK" | u32 version | u32 state_bytes | u32 name length | name |
//                     u64 sequence | u64 requests_covered | u64 written_unix_ms | state |
//                     u64 FNV-1a 64 of everything before it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ringflow::ops {

struct checkpoint {
  std::string kernel;                  // the kernel's name (topology `kernel:`)
  std::uint32_t state_bytes = 0;       // sizeof its state
  std::uint64_t sequence = 0;          // checkpoints written for the node, over all runs (1, 2, ...)
  std::uint64_t requests_covered = 0;  // requests whose effect `state` holds, over all runs
  std::uint64_t written_unix_ms = 0;
  std::vector<std::uint8_t> state;  // state_bytes bytes
};

inline constexpr std::uint32_t checkpoint_version = 1;
/// The largest state a checkpoint carries (the kernels' states are far smaller).
inline constexpr std::uint32_t checkpoint_max_state = 64u << 20;

[[nodiscard]] std::vector<std::uint8_t> encode_checkpoint(const checkpoint& c);
/// The checkpoint in `p[0..n)`, or nullopt with `why` (too short, bad magic, unknown version,
/// sizes that disagree, checksum mismatch).
[[nodiscard]] std::optional<checkpoint> decode_checkpoint(const std::uint8_t* p, std::size_t n, std::string& why);

class checkpoint_store {
 public:
  checkpoint_store(std::filesystem::path dir, std::string node);

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  [[nodiscard]] std::filesystem::path latest() const;
  [[nodiscard]] std::filesystem::path previous() const;

  /// Creates the folder (and its parents) when missing; "" or why not.
  [[nodiscard]] std::string prepare() const;
  /// Writes `c` durably (see the header); "" on success, else why (the errno text and the step).
  [[nodiscard]] std::string write(const checkpoint& c);

  struct loaded {
    std::optional<checkpoint> cp;      // none: no usable checkpoint (start from init)
    std::filesystem::path from;        // the file it came from
    std::vector<std::string> refused;  // each file present but unusable, and why
  };
  [[nodiscard]] loaded load() const;
  /// Moves the latest and the previous aside; the names they got (empty: there were none).
  std::vector<std::string> discard(std::string& err);

  /// Tests: called before each write step ("open", "write", "fsync", "rename", "fsync-dir"); a
  /// non-zero return fails that step with that errno.
  std::function<int(const char* step)> fail_step;

 private:
  std::filesystem::path dir_;
  std::string node_;
};

// ---- ownership: one writer per node's state ---------------------------------------------------
//
// `<node>.owner` in the node's checkpoint folder: a process that runs the node's ring actor holds
// an exclusive flock(2) on it for as long as it may write the node's checkpoints and journal, so a
// second incarnation (a second `ringflow run` of the same topology, a cluster member taking a node
// over while the old one is still alive) can never write the same state beside it. The kernel drops
// the lock when the holder's process dies (SIGKILL included), so a restart after a crash takes it
// at once. The file's text says who holds it (pid, member, host, since), for the refusal message.
// flock works across processes on one machine and over NFSv4 (Linux maps it to a byte-range lock);
// a filesystem without locks (`ENOLCK`, `EOPNOTSUPP`) refuses the node, saying so.

/// An exclusive lock on `<dir>/<node>.owner` (movable, not copyable; released by the destructor
/// or release()).
class checkpoint_owner {
 public:
  checkpoint_owner() = default;
  ~checkpoint_owner() { release(); }
  checkpoint_owner(checkpoint_owner&& o) noexcept : fd_(o.fd_), file_(std::move(o.file_)) { o.fd_ = -1; }
  checkpoint_owner& operator=(checkpoint_owner&& o) noexcept;
  checkpoint_owner(const checkpoint_owner&) = delete;
  checkpoint_owner& operator=(const checkpoint_owner&) = delete;

  /// Takes the lock without waiting; `who` is written into the file (e.g. "member m2"). "" when
  /// held now, else why not: held by another process (naming the holder the file names) or the
  /// file cannot be opened or locked (errno text).
  [[nodiscard]] std::string acquire(const std::filesystem::path& dir, const std::string& node, const std::string& who);
  void release() noexcept;
  [[nodiscard]] bool held() const noexcept { return fd_ >= 0; }
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }

 private:
  int fd_ = -1;
  std::filesystem::path file_;
};

// ---- durability: reply ------------------------------------------------------------------------
//
// `<node>.journal` holds every request applied since a checkpoint, in apply order, so a restart
// can fold them into the checkpoint's state (kernel_info::apply_state): a reply is released only
// once its request is in the file (fdatasync). Format (version 1): "RFCJ" | u32 version |
// u64 base (the requests_covered it follows) | u64 FNV-1a of those 16 bytes; then records
// u32 size | u64 seq | size bytes | u64 FNV-1a of the record before it. Sequences are base + 1,
// base + 2, ...: reading stops at the first torn, damaged or out-of-sequence record.

struct journal_entry {
  std::uint64_t seq = 0;
  std::vector<std::uint8_t> bytes;
};

struct journal_contents {
  std::uint64_t base = 0;
  std::vector<journal_entry> entries;  // seq base+1, base+2, ... (whole records only)
  std::string note;                    // why reading stopped early ("" : at the end of the file)
  bool present = false;
};
/// Reads a journal file (never throws on its content; a missing file is !present).
[[nodiscard]] journal_contents read_journal(const std::filesystem::path& file);

/// The same from bytes (the file's content): what the fuzz target drives.
[[nodiscard]] journal_contents decode_journal(const std::uint8_t* p, std::size_t n);
/// A journal file's bytes: the header and `entries` (their seq as given).
[[nodiscard]] std::vector<std::uint8_t> encode_journal(std::uint64_t base, const std::vector<journal_entry>& entries);
/// One record's bytes (appended after a header).
void encode_journal_record(const journal_entry& e, std::vector<std::uint8_t>& out);

}  // namespace ringflow::ops
