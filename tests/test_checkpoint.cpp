// Durable checkpoints of stateful nodes (runtime/checkpoint.hpp, reply_journal.hpp, the engine's
// checkpointer; docs/FAULTS.md "Durable checkpoints"): the file formats against damage, the store's
// write protocol and its failures, the group-committing journal, and `ringflow run` killed with
// SIGKILL and started again, in both durability modes.
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ringflow/demo_kernels.hpp"
#include "ringflow/runtime/catalog.hpp"
#include "ringflow/runtime/checkpoint.hpp"
#include "ringflow/runtime/reply_journal.hpp"
#include "support/child_process.hpp"
#include "support/program_child.hpp"
#include "support/program_run.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace ringflow::ops;
using ringflow::testing::http_port;
using ringflow::testing::poll_until;
using ringflow::testing::program_child;
using ringflow::testing::temp_dir;

namespace {

using vwap_state = ringflow::demo_kernels::VwapKernel::state;

checkpoint sample_checkpoint(std::uint64_t seq) {
  checkpoint c;
  c.kernel = "vwap";
  c.state_bytes = 64;
  c.sequence = seq;
  c.requests_covered = 1000 * seq;
  c.written_unix_ms = 1796600000000ull + seq;
  c.state.resize(64);
  for (std::size_t i = 0; i < c.state.size(); ++i) c.state[i] = static_cast<std::uint8_t>(i * 7 + seq);
  return c;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = temp_dir() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::uint8_t> file_bytes(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void put_bytes(const fs::path& p, const std::vector<std::uint8_t>& b) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

vwap_state state_of(const checkpoint& c) {
  vwap_state s;
  REQUIRE(c.state.size() == sizeof s);
  std::memcpy(&s, c.state.data(), sizeof s);
  return s;
}

// Every trade the state holds is counted once per key, and `applied` counts them all.
void check_consistent(const vwap_state& s, std::uint64_t covered) {
  std::uint64_t trades = 0;
  for (const auto& k : s.keys) trades += k.trades;
  CHECK(trades == s.applied);
  CHECK(s.applied == covered);
}

// The state a fault-free run gives for trades 0 .. n-1 (the load generator's, VwapKernel's handler),
// without those in `skip`.
std::vector<std::uint8_t> reference_state(std::uint64_t n, const std::set<std::uint64_t>& skip = {}) {
  const kernel_info* k = find_kernel("vwap");
  const message_info* t = find_message("Trade");
  REQUIRE((k && t && k->apply_state && k->init_state));
  std::vector<std::uint8_t> s(k->state_bytes);
  k->init_state(s.data());
  for (std::uint64_t i = 0; i < n; ++i) {
    if (skip.count(i)) continue;
    const ringflow::fb_msg m = t->make(i, 64);
    k->apply_state(s.data(), m.bytes.data(), static_cast<std::uint32_t>(m.bytes.size()));
  }
  return s;
}

std::string topology(const std::string& dir, const std::string& durability, double duration) {
  return "name: ckpt\nduration_s: " + std::to_string(duration) +
         "\n"
         "nodes:\n"
         "  - {name: ingest, function: validate, type: Trade}\n"
         "  - {name: vwap, kernel: vwap, backend: cpu, state: {snapshot_every: 500, snapshot_ms: 200},\n"
         "     checkpoint: {dir: " +
         dir + ", every_ms: 100, durability: " + durability +
         "}}\n"
         "  - {name: egress, function: passthrough, type: VwapReply}\n"
         "edges:\n"
         "  - {from: ingest, to: vwap}\n"
         "  - {from: vwap, to: egress}\n"
         "load:\n"
         "  - {name: traders, target: ingest, message: Trade, rate: 3000, max_in_flight: 64}\n";
}

std::uint64_t replied_so_far(httplib::Client& cli) {
  auto r = cli.Get("/metrics");
  if (!r || r->status != 200) return 0;
  std::smatch m;
  static const std::regex re(R"re(ringflow_messages_total\{actor="vwap",outcome="ok"\} ([0-9.e+]+))re");
  if (!std::regex_search(r->body, m, re)) return 0;
  return static_cast<std::uint64_t>(std::stod(m[1].str()));
}

std::uint64_t checkpoints_so_far(httplib::Client& cli) {
  auto r = cli.Get("/metrics");
  if (!r || r->status != 200) return 0;
  std::smatch m;
  static const std::regex re(R"re(ringflow_checkpoints_total\{ring="vwap"\} ([0-9.e+]+))re");
  if (!std::regex_search(r->body, m, re)) return 0;
  return static_cast<std::uint64_t>(std::stod(m[1].str()));
}

nlohmann::json summary_of(const fs::path& p) {
  return nlohmann::json::parse(ringflow::testing::slurp(p), nullptr, false);
}

}  // namespace

// ---- the checkpoint file ----------------------------------------------------------------------

TEST_CASE("a checkpoint file round-trips, and every torn or damaged copy is refused with a reason", "[checkpoint]") {
  const checkpoint c = sample_checkpoint(3);
  const std::vector<std::uint8_t> b = encode_checkpoint(c);
  std::string why;
  const std::optional<checkpoint> d = decode_checkpoint(b.data(), b.size(), why);
  REQUIRE(d);
  CHECK(d->kernel == "vwap");
  CHECK(d->state_bytes == 64);
  CHECK(d->sequence == 3);
  CHECK(d->requests_covered == 3000);
  CHECK(d->written_unix_ms == c.written_unix_ms);
  CHECK(d->state == c.state);
  for (std::size_t n = 0; n < b.size(); ++n) {  // every prefix: torn
    why.clear();
    CHECK_FALSE(decode_checkpoint(b.data(), n, why));
    CHECK_FALSE(why.empty());
  }
  for (std::size_t i = 0; i < b.size(); ++i) {  // every byte damaged
    std::vector<std::uint8_t> x = b;
    x[i] ^= 0x40;
    CHECK_FALSE(decode_checkpoint(x.data(), x.size(), why));
  }
  std::vector<std::uint8_t> longer = b;
  longer.push_back(0);
  CHECK_FALSE(decode_checkpoint(longer.data(), longer.size(), why));
  CHECK_THAT(why, Catch::Contains("corrupt"));
}

TEST_CASE("the store keeps the latest and the previous checkpoint, a torn latest falls back to the previous",
          "[checkpoint]") {
  const fs::path dir = fresh_dir("store");
  checkpoint_store s(dir, "vwap");
  REQUIRE(s.prepare().empty());
  CHECK_FALSE(s.load().cp);  // nothing yet, nothing refused
  CHECK(s.load().refused.empty());
  REQUIRE(s.write(sample_checkpoint(1)).empty());
  REQUIRE(s.write(sample_checkpoint(2)).empty());
  checkpoint_store::loaded l = s.load();
  REQUIRE(l.cp);
  CHECK(l.cp->sequence == 2);
  CHECK(l.from == s.latest());
  CHECK(fs::exists(s.previous()));
  CHECK_FALSE(fs::exists(dir / "vwap.ckpt.tmp"));

  // A torn latest (a crash of a file system that lost the tail): the previous one, logged.
  std::vector<std::uint8_t> latest = file_bytes(s.latest());
  latest.resize(latest.size() / 2);
  put_bytes(s.latest(), latest);
  l = s.load();
  REQUIRE(l.cp);
  CHECK(l.cp->sequence == 1);
  CHECK(l.from == s.previous());
  REQUIRE(l.refused.size() == 1);
  CHECK_THAT(l.refused[0], Catch::Contains("torn"));

  // A crash between the two renames leaves no latest: the previous one.
  fs::remove(s.latest());
  l = s.load();
  REQUIRE(l.cp);
  CHECK(l.cp->sequence == 1);
  CHECK(l.refused.empty());

  // Both damaged: nothing usable, and both reported.
  put_bytes(s.latest(), {1, 2, 3});
  std::vector<std::uint8_t> prev = file_bytes(s.previous());
  prev[prev.size() - 1] ^= 1;
  put_bytes(s.previous(), prev);
  l = s.load();
  CHECK_FALSE(l.cp);
  CHECK(l.refused.size() == 2);

  // discard() moves both aside, it destroys nothing.
  std::string err;
  const std::vector<std::string> moved = s.discard(err);
  CHECK(err.empty());
  CHECK(moved.size() == 2);
  CHECK_FALSE(fs::exists(s.latest()));
  CHECK(fs::exists(dir / "vwap.ckpt.discarded"));
  CHECK(fs::exists(dir / "vwap.ckpt.prev.discarded"));
}

TEST_CASE("a failed checkpoint write (ENOSPC, EIO at any step) says why and leaves the valid checkpoint valid",
          "[checkpoint]") {
  const fs::path dir = fresh_dir("store-fail");
  checkpoint_store s(dir, "vwap");
  REQUIRE(s.prepare().empty());
  REQUIRE(s.write(sample_checkpoint(1)).empty());
  for (const char* step : {"open", "write", "fsync", "rename"}) {
    for (int err : {ENOSPC, EIO}) {
      s.fail_step = [&](const char* at) { return std::strcmp(at, step) == 0 ? err : 0; };
      const std::string why = s.write(sample_checkpoint(9));
      CHECK_THAT(why, Catch::Contains(step) && Catch::Contains(std::strerror(err)));
      s.fail_step = nullptr;
      const checkpoint_store::loaded l = s.load();
      REQUIRE(l.cp);
      CHECK(l.cp->sequence == 1);  // untouched
      CHECK_FALSE(fs::exists(dir / "vwap.ckpt.tmp"));
    }
  }
  // A folder that cannot take the temp file (it is a folder itself): an error, no crash.
  fs::create_directories(dir / "vwap.ckpt.tmp");
  CHECK_FALSE(s.write(sample_checkpoint(2)).empty());
  fs::remove(dir / "vwap.ckpt.tmp");
  CHECK(s.write(sample_checkpoint(2)).empty());
  CHECK(s.load().cp->sequence == 2);
  // A checkpoint folder that is a file: prepare() says so.
  put_bytes(temp_dir() / "not-a-folder", {1});
  CHECK_FALSE(checkpoint_store(temp_dir() / "not-a-folder", "x").prepare().empty());
}

// ---- the journal (durability: reply) --------------------------------------------------------------

TEST_CASE("a journal file reads back to its last whole record: torn, damaged and out-of-sequence tails stop it",
          "[checkpoint]") {
  std::vector<journal_entry> es;
  for (std::uint64_t i = 1; i <= 5; ++i) es.push_back({100 + i, std::vector<std::uint8_t>(i * 3, 0xab)});
  const std::vector<std::uint8_t> b = encode_journal(100, es);
  journal_contents j = decode_journal(b.data(), b.size());
  CHECK(j.note.empty());
  CHECK(j.base == 100);
  REQUIRE(j.entries.size() == 5);
  CHECK(j.entries[4].seq == 105);
  CHECK(j.entries[4].bytes == es[4].bytes);
  // Every prefix gives the whole records before the cut, never a partial one.
  std::size_t last = 0;
  for (std::size_t n = 24; n <= b.size(); ++n) {
    j = decode_journal(b.data(), n);
    CHECK(j.entries.size() >= last);
    last = j.entries.size();
    for (std::size_t k = 0; k < j.entries.size(); ++k) CHECK(j.entries[k].bytes == es[k].bytes);
  }
  CHECK(decode_journal(b.data(), 10).entries.empty());
  // A damaged byte in record 3 ends the journal after record 2.
  std::vector<std::uint8_t> x = b;
  x[24 + 2 * 20 + 3 + 6 + 14] ^= 1;  // header, records 1 and 2 (20 + 3, 20 + 6 bytes), into record 3
  j = decode_journal(x.data(), x.size());
  CHECK(j.entries.size() == 2);
  CHECK_THAT(j.note, Catch::Contains("damaged"));
  // A gap in the sequence ends it too.
  es[2].seq = 999;
  const std::vector<std::uint8_t> g = encode_journal(100, es);
  j = decode_journal(g.data(), g.size());
  CHECK(j.entries.size() == 2);
  CHECK_THAT(j.note, Catch::Contains("was due"));
}

TEST_CASE("the reply journal releases each held reply once its request is on disk, group-committed, in order",
          "[checkpoint]") {
  const fs::path dir = fresh_dir("journal");
  std::vector<std::string> failures;
  reply_journal j(dir / "vwap.journal", [&](const std::string& w) { failures.push_back(w); });
  REQUIRE(j.open(0, {}).empty());
  std::atomic<int> ok{0}, bad{0};
  for (std::uint64_t s = 1; s <= 2000; ++s)
    j.hold(s, std::vector<std::uint8_t>(16, static_cast<std::uint8_t>(s)), [&](bool d) { (d ? ok : bad)++; });
  j.flush();
  CHECK(ok == 2000);
  CHECK(bad == 0);
  const reply_journal::counters st = j.stats();
  CHECK(st.records == 2000);
  CHECK(st.commits < 2000);  // grouped
  journal_contents c = read_journal(dir / "vwap.journal");
  REQUIRE(c.entries.size() == 2000);
  CHECK(c.entries[1999].seq == 2000);
  CHECK(c.entries[1999].bytes[0] == static_cast<std::uint8_t>(2000));

  // A failed write (ENOSPC): those replies are released false, counted; the requests still reach
  // the file at the next commit (the state has them), so the journal stays gap-free.
  std::atomic<int> fail_next{1};
  j.fail_step = [&](const char* step) { return std::strcmp(step, "write") == 0 && fail_next.exchange(0) ? ENOSPC : 0; };
  j.hold(2001, {1}, [&](bool d) { (d ? ok : bad)++; });
  j.flush();
  CHECK(bad == 1);
  REQUIRE(failures.size() == 1);
  CHECK_THAT(failures[0], Catch::Contains(std::strerror(ENOSPC)));
  j.hold(2002, {2}, [&](bool d) { (d ? ok : bad)++; });
  j.flush();
  CHECK(ok == 2001);
  c = read_journal(dir / "vwap.journal");
  REQUIRE(c.entries.size() == 2002);
  CHECK(c.entries.back().seq == 2002);
  CHECK(c.note.empty());

  // Checkpoints: the file keeps what follows the one before the latest.
  j.checkpointed(1500);
  j.checkpointed(1900);
  j.hold(2003, {3}, [&](bool d) { (d ? ok : bad)++; });
  j.flush();
  c = read_journal(dir / "vwap.journal");
  CHECK(c.base == 1500);
  REQUIRE_FALSE(c.entries.empty());
  CHECK(c.entries.front().seq == 1501);
  CHECK(c.entries.back().seq == 2003);
  j.stop();
  // After stop nothing can be made durable: a late hold is released false at once by flush().
  j.hold(2004, {4}, [&](bool d) { (d ? ok : bad)++; });
  j.flush();
  CHECK(bad == 2);
}

TEST_CASE("the catalog applies a stateful kernel on the host exactly as its incarnation does", "[checkpoint]") {
  const std::vector<std::uint8_t> s = reference_state(1000);
  vwap_state v;
  std::memcpy(&v, s.data(), sizeof v);
  check_consistent(v, 1000);
  CHECK(v.keys[0].trades == 1000 / ringflow::demo_kernels::vwap_keys + (1000 % ringflow::demo_kernels::vwap_keys > 0));
}

// ---- the program: SIGKILL and a restart ------------------------------------------------------------

TEST_CASE("ringflow run resumes a stateful node from its checkpoint after SIGKILL (durability: checkpoint)",
          "[checkpoint][program]") {
  const fs::path dir = fresh_dir("run-ckpt");
  const fs::path topo = dir / "t.yaml";
  {
    std::ofstream(topo) << topology("ckpts", "checkpoint", 1.0);  // relative: next to the topology file
  }
  // 1. A clean run: its final checkpoint holds every trade, and equals the fault-free state.
  const fs::path s1 = dir / "s1.json";
  auto o = ringflow::testing::run_program(RINGFLOW_PROGRAM,
                                          {"run", topo.string(), "--http", "off", "--summary-json", s1.string()});
  REQUIRE(o.code == 0);
  const nlohmann::json j1 = summary_of(s1);
  const std::uint64_t r1 = j1.value("replied", 0ull);
  REQUIRE(r1 > 1000);
  REQUIRE(j1.value("errors", 1ull) == 0);
  checkpoint_store store(dir / "ckpts", "vwap");
  checkpoint_store::loaded l = store.load();
  REQUIRE(l.cp);
  CHECK(l.cp->requests_covered == r1);
  CHECK(l.cp->state == reference_state(r1));

  // 2. Killed mid-run: the checkpoint holds at least every trade answered more than a period
  //    (every_ms 100) before the kill.
  program_child c({"run", topo.string(), "--duration", "0", "--http", "127.0.0.1:0"}, "ckpt-killed");
  const int port = http_port(c);
  REQUIRE(port != 0);
  CHECK(c.wait_log([](const nlohmann::json& j) {
    return j.value("msg", "").find("resumes from its checkpoint") != std::string::npos &&
           j.value("requests_covered", 0ull) > 0;
  }));
  httplib::Client cli("127.0.0.1", port);
  REQUIRE(poll_until([&] { return replied_so_far(cli) > 1500; }, 30s));
  const std::uint64_t seen = replied_so_far(cli);
  // Two more checkpoints: the second was asked for after `seen` was answered.
  const std::uint64_t written = checkpoints_so_far(cli);
  REQUIRE(poll_until([&] { return checkpoints_so_far(cli) >= written + 2; }, 30s));
  kill(c.pid, SIGKILL);
  CHECK(c.wait() == 128 + SIGKILL);
  l = store.load();
  REQUIRE(l.cp);
  const std::uint64_t covered = l.cp->requests_covered;
  CHECK(covered >= r1 + seen);
  check_consistent(state_of(*l.cp), covered);

  // 3. Started again: it resumes from exactly that checkpoint and counts on.
  const fs::path s3 = dir / "s3.json";
  o = ringflow::testing::run_program(RINGFLOW_PROGRAM,
                                     {"run", topo.string(), "--http", "off", "--summary-json", s3.string()});
  REQUIRE(o.code == 0);
  CHECK_THAT(o.err, Catch::Contains("resumes from its checkpoint"));
  CHECK_THAT(o.err, Catch::Contains("\"requests_covered\":" + std::to_string(covered)));
  const std::uint64_t r3 = summary_of(s3).value("replied", 0ull);
  l = store.load();
  REQUIRE(l.cp);
  CHECK(l.cp->requests_covered == covered + r3);
  check_consistent(state_of(*l.cp), covered + r3);
}

TEST_CASE("durability: reply — after SIGKILL every trade answered is in the resumed state", "[checkpoint][program]") {
  const fs::path dir = fresh_dir("run-reply");
  const fs::path topo = dir / "t.yaml";
  { std::ofstream(topo) << topology(dir.string() + "/state", "reply", 0); }
  program_child c({"run", topo.string(), "--duration", "0", "--http", "127.0.0.1:0"}, "reply-killed");
  const int port = http_port(c);
  REQUIRE(port != 0);
  httplib::Client cli("127.0.0.1", port);
  REQUIRE(poll_until([&] { return replied_so_far(cli) > 2000; }, 30s));
  const std::uint64_t seen = replied_so_far(cli);  // released, so durable
  kill(c.pid, SIGKILL);
  CHECK(c.wait() == 128 + SIGKILL);
  // What a restart will fold: the checkpoint, then the journal's requests after it.
  checkpoint_store store(dir / "state", "vwap");
  const checkpoint_store::loaded l = store.load();
  const std::uint64_t ck = l.cp ? l.cp->requests_covered : 0;
  const journal_contents j = read_journal(dir / "state" / "vwap.journal");
  REQUIRE(j.present);
  CHECK(j.base <= ck);
  const std::uint64_t durable = j.entries.empty() ? ck : std::max(ck, j.entries.back().seq);
  CHECK(durable >= seen);

  const fs::path s2 = dir / "s2.json";
  const auto o = ringflow::testing::run_program(
      RINGFLOW_PROGRAM, {"run", topo.string(), "--duration", "1", "--http", "off", "--summary-json", s2.string()});
  REQUIRE(o.code == 0);
  if (durable > ck) CHECK_THAT(o.err, Catch::Contains("folded its journal"));
  const std::uint64_t r2 = summary_of(s2).value("replied", 0ull);
  const checkpoint_store::loaded after = store.load();
  REQUIRE(after.cp);
  CHECK(after.cp->requests_covered == durable + r2);
  check_consistent(state_of(*after.cp), durable + r2);
}

TEST_CASE("one writer per node's state: the owner lock refuses a second holder and is free once its process dies",
          "[checkpoint]") {
  const fs::path dir = fresh_dir("owner");
  checkpoint_owner a;
  REQUIRE(a.acquire(dir, "vwap", "member m2").empty());
  CHECK(a.held());
  {
    std::ifstream in(dir / "vwap.owner");
    std::string line;
    std::getline(in, line);
    CHECK_THAT(line, Catch::StartsWith("pid " + std::to_string(::getpid()) + " member m2 host "));
  }
  // flock is per open file: a second holder is refused even in this process, naming the first.
  checkpoint_owner b;
  std::string why = b.acquire(dir, "vwap", "member m3");
  CHECK_FALSE(b.held());
  CHECK_THAT(why, Catch::Contains("in use by another process") && Catch::Contains("member m2") &&
                      Catch::Contains("two incarnations must never write one node's state"));
  CHECK(b.acquire(dir, "other", "member m3").empty());  // another node's lock is its own
  a.release();
  CHECK(b.acquire(dir, "vwap", "member m3").empty());
  b.release();

  // Held by a child process: refused; the child SIGKILLed: free at once (the kernel drops it).
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    checkpoint_owner c;
    const char ok = c.acquire(dir, "vwap", "member child").empty() ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    for (;;) ::pause();
  }
  char ok = 0;
  REQUIRE(::read(ready[0], &ok, 1) == 1);
  REQUIRE(ok == 'y');
  why = a.acquire(dir, "vwap", "member m2");
  CHECK_THAT(why, Catch::Contains("pid " + std::to_string(child) + " member child"));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(a.acquire(dir, "vwap", "member m2").empty());
}

TEST_CASE("a second ringflow run on a checkpoint folder in use is refused (exit 4) and changes nothing",
          "[checkpoint][program]") {
  const fs::path dir = fresh_dir("run-owner");
  const fs::path topo = dir / "t.yaml";
  { std::ofstream(topo) << topology("ckpts", "reply", 0); }
  program_child first({"run", topo.string(), "--duration", "0", "--http", "127.0.0.1:0"}, "owner-first");
  const int port = http_port(first);
  REQUIRE(port != 0);
  httplib::Client cli("127.0.0.1", port);
  REQUIRE(poll_until([&] { return replied_so_far(cli) > 500; }, 30s));
  const auto o = ringflow::testing::run_program(RINGFLOW_PROGRAM, {"run", topo.string(), "--http", "off"});
  CHECK(o.code == 4);
  CHECK_THAT(o.err, Catch::Contains("in use by another process") &&
                        Catch::Contains("pid " + std::to_string(first.pid) + " run"));
  // The first run goes on answering (the second wrote nothing: no checkpoint, no journal).
  const std::uint64_t before = replied_so_far(cli);
  CHECK(poll_until([&] { return replied_so_far(cli) > before + 200; }, 30s));
  kill(first.pid, SIGKILL);
  CHECK(first.wait() == 128 + SIGKILL);
  const auto again =
      ringflow::testing::run_program(RINGFLOW_PROGRAM, {"run", topo.string(), "--duration", "1", "--http", "off"});
  CHECK(again.code == 0);  // the dead holder's lock went with its process
}

TEST_CASE("a checkpoint of another kernel or state size is refused (exit 4) unless --discard-checkpoints",
          "[checkpoint][program]") {
  const fs::path dir = fresh_dir("run-mismatch");
  const fs::path topo = dir / "t.yaml";
  { std::ofstream(topo) << topology("ckpts", "checkpoint", 0.3); }
  checkpoint_store store(dir / "ckpts", "vwap");
  REQUIRE(store.prepare().empty());
  REQUIRE(store.write(sample_checkpoint(4)).empty());  // 64 bytes of state: VwapKernel keeps 776
  auto o = ringflow::testing::run_program(RINGFLOW_PROGRAM, {"run", topo.string(), "--http", "off"});
  CHECK(o.code == 4);
  CHECK_THAT(o.err, Catch::Contains("64 bytes of state") && Catch::Contains("--discard-checkpoints"));
  CHECK(store.load().cp->sequence == 4);  // nothing was changed

  o = ringflow::testing::run_program(RINGFLOW_PROGRAM,
                                     {"run", topo.string(), "--http", "off", "--discard-checkpoints"});
  CHECK(o.code == 0);
  CHECK_THAT(o.err, Catch::Contains("checkpoints discarded"));
  CHECK(fs::exists(dir / "ckpts" / "vwap.ckpt.discarded"));
  const checkpoint_store::loaded l = store.load();
  REQUIRE(l.cp);
  CHECK(l.cp->state_bytes == sizeof(vwap_state));
  CHECK(l.cp->requests_covered < 4000);  // a fresh history (the discarded one claimed 4000)
  check_consistent(state_of(*l.cp), l.cp->requests_covered);

  // Files present but none usable: the state is unknown, so the start is refused too.
  put_bytes(store.latest(), {0});
  put_bytes(store.previous(), {0});
  o = ringflow::testing::run_program(RINGFLOW_PROGRAM, {"run", topo.string(), "--http", "off"});
  CHECK(o.code == 4);
  CHECK_THAT(o.err, Catch::Contains("is usable"));
}

TEST_CASE("a checkpoint that cannot be written is logged and counted, the run goes on, the previous one stays",
          "[checkpoint][program]") {
  const fs::path dir = fresh_dir("run-fail");
  const fs::path topo = dir / "t.yaml";
  { std::ofstream(topo) << topology("ckpts", "checkpoint", 1.0); }
  fs::create_directories(dir / "ckpts" / "vwap.ckpt.tmp");  // the temp file's name taken by a folder: EISDIR
  const fs::path s = dir / "s.json";
  const auto o = ringflow::testing::run_program(RINGFLOW_PROGRAM,
                                                {"run", topo.string(), "--http", "off", "--summary-json", s.string()});
  CHECK(o.code == 0);  // nothing was lost: the state is in memory, only its durability failed
  CHECK(summary_of(s).value("lost", 1ull) == 0);
  CHECK_THAT(o.err, Catch::Contains("writing a checkpoint failed") && Catch::Contains("Is a directory"));
  CHECK_FALSE(fs::exists(dir / "ckpts" / "vwap.ckpt"));

  // The same, live: ringflow_checkpoint_failures_total counts them.
  program_child c({"run", topo.string(), "--duration", "0", "--http", "127.0.0.1:0"}, "ckpt-fail-live");
  const int port = http_port(c);
  REQUIRE(port != 0);
  httplib::Client cli("127.0.0.1", port);
  static const std::regex re(R"re(ringflow_checkpoint_failures_total\{ring="vwap"\} ([0-9.e+]+))re");
  CHECK(poll_until(
      [&] {
        auto r = cli.Get("/metrics");
        std::smatch m;
        return r && std::regex_search(r->body, m, re) && std::stod(m[1].str()) >= 2;
      },
      30s));
  kill(c.pid, SIGTERM);
  CHECK(c.wait() == 0);
}

TEST_CASE("validate refuses checkpoint blocks on stateless kernels, unknown keys and durabilities", "[checkpoint]") {
  const fs::path dir = fresh_dir("validate");
  auto validate = [&](const std::string& node) {
    const fs::path p = dir / "v.yaml";
    std::ofstream(p) << "name: v\nnodes:\n  - " + node + "\nload: []\n";
    return ringflow::testing::run_program(RINGFLOW_PROGRAM, {"validate", p.string()});
  };
  auto o = validate("{name: e, kernel: echo, backend: cpu, checkpoint: {dir: d}}");
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains("keeps no state ('checkpoint' is for stateful kernels)"));
  o = validate("{name: v, kernel: vwap, checkpoint: {dir: d, durability: sometimes}}");
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains("unknown durability 'sometimes'"));
  o = validate("{name: v, kernel: vwap, checkpoint: {every_ms: 10}}");
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains("dir"));
  o = validate("{name: v, kernel: vwap, checkpoint: {dir: d, every_ms: 0}}");
  CHECK(o.code == 3);
  o = validate("{name: v, kernel: vwap, checkpoint: {dir: d, fsync: always}}");
  CHECK(o.code == 3);
  CHECK_THAT(o.err, Catch::Contains("fsync"));
  o = validate("{name: v, kernel: vwap, checkpoint: {dir: d, every_ms: 50, durability: reply}}");
  CHECK(o.code == 0);
}

TEST_CASE(
    "stateful-demo.yaml: crash, hang, corrupt reply, device loss, fail-back, worker kills, and the checkpointed "
    "states equal the fault-free ones",
    "[checkpoint][program][examples]") {
  const fs::path dir = fresh_dir("demo");
  fs::copy_file(fs::path(RINGFLOW_SOURCE_DIR) / "examples/topologies/stateful-demo.yaml", dir / "stateful-demo.yaml");
  const fs::path s = dir / "s.json";
  const auto o = ringflow::testing::run_program(
      RINGFLOW_PROGRAM, {"run", (dir / "stateful-demo.yaml").string(), "--http", "off", "--summary-json", s.string()});
  INFO(o.err.substr(o.err.size() > 4000 ? o.err.size() - 4000 : 0));
  REQUIRE(o.code == 0);
  const nlohmann::json j = summary_of(s);
  CHECK(j.value("lost", 1ull) == 0);
  CHECK(j.value("errors", 1ull) == 0);
  CHECK(j.value("restarts", 0ull) >= 3);
  CHECK(j.value("reroutes", 0ull) >= 1);
  CHECK(j.value("failbacks", 0ull) >= 1);
  CHECK(j.value("worker_restarts", 0ull) >= 2);  // vwap_isolated's worker, killed twice
  // Each node's traders send trades 0, 1, ...: each node's drained checkpoint covers its replies,
  // and its state is the fault-free one for those trades, every trade once, through every fault.
  std::uint64_t covered = 0;
  for (const char* node : {"vwap", "vwap_isolated"}) {
    INFO(node);
    const checkpoint_store::loaded l = checkpoint_store(dir / ".ringflow-state", node).load();
    REQUIRE(l.cp);
    CHECK(l.cp->requests_covered > 0);
    CHECK(l.cp->state == reference_state(l.cp->requests_covered));
    covered += l.cp->requests_covered;
  }
  CHECK(covered == j.value("replied", 0ull));
}

TEST_CASE("a stateful ring actor that crashes hands its state to its successor: every answered trade once",
          "[checkpoint][program][faults]") {
  const fs::path dir = fresh_dir("handover");
  const fs::path topo = dir / "t.yaml";
  {
    std::ofstream(topo) << topology("ckpts", "checkpoint", 3.0) +
                               "supervisors:\n"
                               "  - {name: s, strategy: one_for_one, intensity: 5, period_ms: 5000, children: [vwap]}\n"
                               "faults:\n"
                               "  - {node: vwap, kind: actor_crash, at_s: 0.6}\n"
                               "  - {node: vwap, kind: actor_crash, at_s: 1.4}\n"
                               "  - {node: vwap, kind: actor_crash, at_s: 2.2}\n";
  }
  const fs::path s = dir / "s.json";
  const auto o = ringflow::testing::run_program(RINGFLOW_PROGRAM,
                                                {"run", topo.string(), "--http", "off", "--summary-json", s.string()});
  INFO(o.err.substr(o.err.size() > 3000 ? o.err.size() - 3000 : 0));
  REQUIRE(o.code == 0);
  const nlohmann::json j = summary_of(s);
  CHECK(j.value("actor_crashes", 0ull) == 3);
  CHECK(j.value("lost", 1ull) == 0);
  // The trades refused while the actor was restarted, or answered `stopped` by the crash, were
  // never applied; every other one is in the state exactly once.
  std::set<std::uint64_t> failed;
  for (const auto& f : j["failed_sequences"]) {
    const std::string code = f.value("code", "");
    CHECK((code == "unavailable" || code == "stopped" || code == "overloaded"));
    failed.insert(f.value("sequence", 0ull));
  }
  CHECK(failed.size() == j.value("errors", 0ull));
  const std::uint64_t replied = j.value("replied", 0ull);
  const checkpoint_store::loaded l = checkpoint_store(dir / "ckpts", "vwap").load();
  REQUIRE(l.cp);
  CHECK(l.cp->requests_covered == replied);
  CHECK(l.cp->state == reference_state(j.value("sent", 0ull), failed));
}
