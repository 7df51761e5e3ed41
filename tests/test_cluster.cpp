// Cluster members in process (two engines, each its own CAF actor system with a middleman, on
// loopback): engine::client("node@member") to a node on another member and to a local one, the
// client's refusals (unknown node, wrong member, wrong type, no links), member loss -> the node's
// fallback (local_cpu) or errc::node_unreachable at once, and fail-back to a new incarnation.
// The process-level runs (`ringflow cluster up`, member_kill, TLS, bad input) are
// tests/cluster_test.sh.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "actor_test_support.hpp"
#include "cluster.hpp"  // runtime/src/engine: the hello's topology signature
#include "ringflow/runtime/engine.hpp"
#include "ringflow/runtime/log.hpp"

using namespace ringflow::ops;
using namespace std::chrono_literals;
using ringflow::call_result;
using ringflow::errc;
using ringflow::fb_msg;
using ringflow::test::echo_msg;
using ringflow::test::echo_seq;

namespace {

topology parse(const std::string& text) {
  std::vector<topology_error> errors;
  auto t = parse_topology(text, "cluster-test.yaml", errors);
  for (const auto& e : errors) INFO(e.str());
  REQUIRE(t);
  return *t;
}

template <class F>
bool eventually(F f, std::chrono::milliseconds limit = 20000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(5ms);  // polling a condition another thread makes true
  }
  return f();
}

// m1 (the caller: a service that embeds a client) and m2 (serves echo and echo2).
const std::string two_members =
    "name: cluster-inproc\n"
    "cluster:\n"
    "  members:\n"
    "    - {name: m1, listen: \"127.0.0.1:0\"}\n"
    "    - {name: m2, listen: \"127.0.0.1:0\"}\n"
    "  heartbeat_ms: 20\n"
    "  timeout_ms: 300\n"
    "  start_timeout_ms: 10000\n"
    "nodes:\n"
    "  - {name: in, function: validate, type: Echo, at: m1}\n"
    "  - {name: echo, kernel: echo, backend: cpu, at: m2, fallback: local_cpu}\n"
    "  - {name: echo2, kernel: echo, backend: cpu, at: m2}\n"
    "edges: [{from: in, to: echo}]\n";

struct member {
  event_log log;
  engine eng;
  member(const topology& t, const std::string& name, const std::string& dir, bool client, const std::string& log_file,
         program_config cfg = {})
      : log("warn", "json", log_file), eng(t, std::move(cfg), log, options(name, dir, client)) {}
  static run_options options(const std::string& name, const std::string& dir, bool client) {
    run_options o;
    o.member = name;
    o.cluster_dir = dir;
    o.cluster_client = client;
    return o;
  }
};

std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() / (name + "-" + std::to_string(getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace

TEST_CASE("cluster client: node@member reaches a ring node on another member and a node here", "[ops][cluster]") {
  const std::string dir = temp_dir("rf-cluster-client");
  const topology t = parse(two_members);
  member m2(t, "m2", dir, false, dir + "/m2.log");
  m2.eng.start();  // publishes first: m1 finds its port in dir/m2.addr
  member m1(t, "m1", dir, true, dir + "/m1.log");
  m1.eng.start();
  REQUIRE(m1.eng.cluster_port() != 0);
  REQUIRE(m2.eng.cluster_port() != 0);

  caf::expected<node_client> echo = m1.eng.client("echo@m2");
  REQUIRE(echo);
  CHECK(echo->remote());
  CHECK(echo->member() == "m2");
  call_result r = echo->call(echo_msg(7), 5s);
  INFO(r.detail);
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 7);

  // Pipelined: every request answered exactly once, each with its own sequence number.
  std::mutex mu;
  std::map<std::uint64_t, int> answers;
  std::vector<std::future<call_result>> futures;
  caf::expected<node_client> wide = m1.eng.client("echo@m2", {256, 5000ms});
  REQUIRE(wide);
  for (std::uint64_t i = 1; i <= 200; ++i) futures.push_back(wide->submit(echo_msg(i)));
  for (auto& f : futures) {
    call_result a = f.get();
    REQUIRE(a.ok());
    std::lock_guard<std::mutex> lock(mu);
    ++answers[echo_seq(a.reply)];
  }
  CHECK(answers.size() == 200);
  for (const auto& [seq, n] : answers) CHECK(n == 1);
  CHECK(wide->in_flight() == 0);

  // A plain name means wherever the node runs; a node of this member is served here.
  caf::expected<node_client> plain = m1.eng.client("echo");
  REQUIRE(plain);
  CHECK(plain->remote());
  caf::expected<node_client> in = m1.eng.client("in@m1");
  REQUIRE(in);
  CHECK_FALSE(in->remote());
  r = in->call(echo_msg(9), 5s);
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 9);

  // Refusals: unknown node, the wrong member, a request of another type, a past deadline.
  CHECK(!m1.eng.client("nope"));
  CHECK(!m1.eng.client("echo@m1"));
  CHECK(!m1.eng.client("echo@m9"));
  fb_msg saxpy(ringflow::test::saxpy_request(2.0f, {1.0f}, {1.0f}));
  r = echo->call(std::move(saxpy), 5s);
  CHECK(r.code == errc::wrong_type);
  fb_msg late = echo_msg(1);
  late.deadline_ns = 1;
  r = echo->call(std::move(late));
  CHECK(r.code == errc::timeout);

  // m2 drives no load and embeds no client: it opens no links, so it cannot call m1's nodes.
  caf::expected<node_client> back = m2.eng.client("in@m1");
  CHECK(!back);
  caf::expected<node_client> own = m2.eng.client("echo2");
  REQUIRE(own);
  r = own->call(echo_msg(3), 5s);
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 3);

  m1.eng.stop();
  r = echo->call(echo_msg(4), 5s);  // the engine stopped: answered, never silence
  CHECK(r.code == errc::stopped);
  m2.eng.stop();
}

TEST_CASE("cluster client: a lost member's node goes to its fallback or fails at once, then fails back",
          "[ops][cluster]") {
  const std::string dir = temp_dir("rf-cluster-loss");
  const topology t = parse(two_members);
  auto m2 = std::make_unique<member>(t, "m2", dir, false, dir + "/m2.log");
  m2->eng.start();
  member m1(t, "m1", dir, true, dir + "/m1.log");
  m1.eng.start();
  caf::expected<node_client> echo = m1.eng.client("echo@m2");
  caf::expected<node_client> echo2 = m1.eng.client("echo2@m2");
  REQUIRE(echo);
  REQUIRE(echo2);
  REQUIRE(echo->call(echo_msg(1), 5s).ok());
  REQUIRE(echo2->call(echo_msg(1), 5s).ok());

  m2->eng.stop();  // its connection closes: m1's proxy goes down (or the heartbeat misses)
  m2.reset();
  REQUIRE(eventually([&] { return m1.eng.summary().member_failovers >= 1; }));
  call_result r = echo->call(echo_msg(11), 5s);  // fallback: local_cpu (a CPU incarnation in m1)
  INFO(r.detail);
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 11);
  const auto t0 = std::chrono::steady_clock::now();
  r = echo2->call(echo_msg(12), 5s);  // no fallback: node_unreachable at once, not the deadline
  CHECK(r.code == errc::node_unreachable);
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(r.detail.find("m2") != std::string::npos);

  // A new incarnation of m2 (a fresh epoch, a new port in dir/m2.addr): m1 connects and fails back.
  member again(t, "m2", dir, false, dir + "/m2-again.log");
  again.eng.start();
  REQUIRE(eventually([&] { return m1.eng.summary().member_failbacks >= 1; }));
  r = echo2->call(echo_msg(13), 5s);
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 13);
  m1.eng.stop();
  again.eng.stop();
}

namespace {

// The wire protocol's atoms (runtime/src/engine/cluster.cpp): the test speaks it as a peer would.
using hello_atom = caf::atom_constant<caf::atom("rf_hello")>;
using welcome_atom = caf::atom_constant<caf::atom("rf_welcome")>;
using refuse_atom = caf::atom_constant<caf::atom("rf_refuse")>;
using req_atom = caf::atom_constant<caf::atom("rf_req")>;
using rep_atom = caf::atom_constant<caf::atom("rf_rep")>;
using req_batch_atom = caf::atom_constant<caf::atom("rf_reqs")>;
using rep_batch_atom = caf::atom_constant<caf::atom("rf_reps")>;

// The value of metric `name` (the first sample) in Prometheus text; -1 when absent.
double metric(const std::string& text, const std::string& name) {
  std::size_t at = 0;
  while ((at = text.find(name, at)) != std::string::npos) {
    const bool line_start = at == 0 || text[at - 1] == '\n';
    const char next = at + name.size() < text.size() ? text[at + name.size()] : '\0';
    if (line_start && (next == ' ' || next == '{')) {
      const std::size_t end = text.find('\n', at);
      const std::string line = text.substr(at, end == std::string::npos ? std::string::npos : end - at);
      return std::stod(line.substr(line.rfind(' ') + 1));
    }
    at += name.size();
  }
  return -1;
}

struct rep {
  bool got = false;
  std::uint64_t corr = 0;
  std::uint8_t code = 0;
  std::vector<fb_msg> outs;
};
rep wait_rep(caf::scoped_actor& self, std::chrono::milliseconds limit) {
  rep r;
  self->receive(
      [&](rep_atom, std::uint64_t corr, std::uint64_t, std::uint8_t code, const std::string&, std::vector<fb_msg>& o) {
        r.got = true;
        r.corr = corr;
        r.code = code;
        r.outs = std::move(o);
      },
      caf::after(limit) >> [] {});
  return r;
}

// Answers until `n` arrived or `limit` passed: single (rf_rep) or batched (rf_reps), by corr.
std::map<std::uint64_t, std::vector<rep>> wait_reps(caf::scoped_actor& self, std::size_t n,
                                                    std::chrono::milliseconds limit) {
  std::map<std::uint64_t, std::vector<rep>> got;
  std::size_t count = 0;
  const auto until = std::chrono::steady_clock::now() + limit;
  bool quiet = false;
  while (count < n && !quiet && std::chrono::steady_clock::now() < until) {
    self->receive(
        [&](rep_atom, std::uint64_t corr, std::uint64_t, std::uint8_t code, const std::string&,
            std::vector<fb_msg>& o) {
          got[corr].push_back(rep{true, corr, code, std::move(o)});
          ++count;
        },
        [&](rep_batch_atom, std::vector<ringflow::ops::engine_parts::remote_rep>& reps) {
          for (auto& r : reps) {
            got[r.corr].push_back(rep{true, r.corr, r.code, std::move(r.outs)});
            ++count;
          }
        },
        caf::after(limit) >> [&] { quiet = true; });
  }
  return got;
}

}  // namespace

TEST_CASE("cluster protocol: hello first, requests deduped by origin, epoch and corr, old epochs fenced",
          "[ops][cluster]") {
  const std::string dir = temp_dir("rf-cluster-proto");
  const topology t = parse(two_members);
  member m2(t, "m2", dir, false, dir + "/m2.log");
  m2.eng.start();
  caf::actor_system_config cfg;
  // As a member's: the middleman with BASP heartbeats (m2 closes a connection silent for its
  // timeout_ms, 300 ms here, and this test waits that long for answers that must not come).
  ringflow::ops::engine_parts::cluster_member::configure(cfg, t.cluster);
  ringflow::register_ringflow_types(cfg);
  caf::actor_system sys(cfg);
  caf::expected<caf::actor> h = sys.middleman().remote_actor("127.0.0.1", m2.eng.cluster_port());
  REQUIRE(h);
  caf::scoped_actor self{sys};
  const std::int64_t budget = 5'000'000'000;
  auto req = [&](std::uint64_t epoch, std::uint64_t corr, std::uint64_t seq) {
    self->send(*h, req_atom::value, epoch, corr, std::string("echo"), budget, echo_msg(seq));
  };
  auto count = [&](const char* name) { return metric(m2.eng.metrics_text(), name); };
  const std::string sig = ringflow::ops::engine_parts::cluster_member::signature_of(t);

  // 1. A request before any hello: dropped (counted), never served, never answered.
  req(7, 1, 1);
  CHECK_FALSE(wait_rep(self, 300ms).got);
  CHECK(eventually([&] { return count("ringflow_cluster_unauthenticated_dropped_total") >= 1; }));
  CHECK(count("ringflow_cluster_served_total") == 0);

  // 2. A hello for another cluster is refused with the reason.
  std::string why;
  self->send(*h, hello_atom::value, std::string("other-cluster"), std::string("m1"), std::uint64_t{7}, sig);
  self->receive([&](refuse_atom, const std::string& w) { why = w; }, caf::after(5s) >> [] {});
  CHECK(why.find("other-cluster") != std::string::npos);

  // 3. The right hello: welcome from m2 with its epoch.
  std::string who;
  // A hello from a peer that runs another topology (here: echo2 placed on m1) is refused too.
  topology other = t;
  other.nodes[2].at = "m1";
  self->send(*h, hello_atom::value, t.name, std::string("m1"), std::uint64_t{7},
             ringflow::ops::engine_parts::cluster_member::signature_of(other));
  why.clear();
  self->receive([&](refuse_atom, const std::string& w) { why = w; }, caf::after(5s) >> [] {});
  CHECK(why.find("topology differs") != std::string::npos);

  self->send(*h, hello_atom::value, t.name, std::string("m1"), std::uint64_t{7}, sig);
  self->receive([&](welcome_atom, const std::string& m, std::uint64_t) { who = m; }, caf::after(5s) >> [] {});
  REQUIRE(who == "m2");

  // 4. Served once; the same (origin, epoch, corr) again is not served again: its stored answer
  //    is re-sent.
  req(7, 1, 41);
  rep a = wait_rep(self, 5s);
  REQUIRE(a.got);
  CHECK(a.corr == 1);
  CHECK(a.code == 0);
  REQUIRE(a.outs.size() == 1);
  CHECK(echo_seq(a.outs[0]) == 41);
  req(7, 1, 99);  // a different body under the same key: still the first answer
  rep again = wait_rep(self, 5s);
  REQUIRE(again.got);
  REQUIRE(again.outs.size() == 1);
  CHECK(echo_seq(again.outs[0]) == 41);
  CHECK(count("ringflow_cluster_served_total") == 1);
  CHECK(count("ringflow_cluster_deduplicated_total") == 1);

  // 5. A new incarnation of m1 (epoch 8): requests of epoch 7 are fenced, never served.
  self->send(*h, hello_atom::value, t.name, std::string("m1"), std::uint64_t{8}, sig);
  self->receive([&](welcome_atom, const std::string&, std::uint64_t) {}, caf::after(5s) >> [] {});
  req(7, 2, 2);
  CHECK_FALSE(wait_rep(self, 300ms).got);
  CHECK(count("ringflow_cluster_fenced_requests_total") == 1);

  // 6. The new epoch has a window of its own (corr 1 again is new there); a corr older than the
  //    window (65,536 behind the newest) is not served.
  req(8, 1, 51);
  rep fresh = wait_rep(self, 5s);
  REQUIRE(fresh.got);
  REQUIRE(fresh.outs.size() == 1);
  CHECK(echo_seq(fresh.outs[0]) == 51);
  req(8, 70000, 52);
  REQUIRE(wait_rep(self, 5s).got);
  req(8, 2, 53);  // 69,998 behind
  CHECK_FALSE(wait_rep(self, 300ms).got);
  CHECK(count("ringflow_cluster_served_total") == 3);
  CHECK(count("ringflow_cluster_deduplicated_total") == 2);

  // 7. A batch (rf_reqs: what a link sends when replies' callbacks send again) is the same
  //    protocol per entry: each answered exactly once (singly or in an rf_reps batch), and a corr
  //    of a batch seen before gets its stored answer, not a second serving.
  using ringflow::ops::engine_parts::remote_req;
  auto entry = [&](std::uint64_t corr, std::uint64_t seq) { return remote_req{corr, "echo", budget, echo_msg(seq)}; };
  self->send(*h, req_batch_atom::value, std::uint64_t{8},
             std::vector<remote_req>{entry(70001, 61), entry(70002, 62), entry(70003, 63)});
  auto first = wait_reps(self, 3, 5s);
  REQUIRE(first.size() == 3);
  for (std::uint64_t corr = 70001; corr <= 70003; ++corr) {
    REQUIRE(first[corr].size() == 1);
    CHECK(first[corr][0].code == 0);
    REQUIRE(first[corr][0].outs.size() == 1);
    CHECK(echo_seq(first[corr][0].outs[0]) == 60 + (corr - 70000));
  }
  self->send(*h, req_batch_atom::value, std::uint64_t{8}, std::vector<remote_req>{entry(70002, 99), entry(70004, 64)});
  auto second = wait_reps(self, 2, 5s);
  REQUIRE(second[70002].size() == 1);
  REQUIRE(second[70002][0].outs.size() == 1);
  CHECK(echo_seq(second[70002][0].outs[0]) == 62);  // the stored answer
  REQUIRE(second[70004].size() == 1);
  REQUIRE(second[70004][0].outs.size() == 1);
  CHECK(echo_seq(second[70004][0].outs[0]) == 64);
  CHECK(wait_reps(self, 1, 300ms).empty());  // nothing more
  CHECK(count("ringflow_cluster_served_total") == 7);
  CHECK(count("ringflow_cluster_deduplicated_total") == 3);
  // A batch of an old epoch is fenced whole.
  self->send(*h, req_batch_atom::value, std::uint64_t{7}, std::vector<remote_req>{entry(9, 1), entry(10, 2)});
  CHECK(wait_reps(self, 1, 300ms).empty());
  CHECK(count("ringflow_cluster_fenced_requests_total") == 3);
  m2.eng.stop();
}

TEST_CASE("cluster: a member whose topology differs is refused at start at once, naming why", "[ops][cluster]") {
  const std::string dir = temp_dir("rf-cluster-differs");
  const topology t = parse(two_members);
  // m2 runs an edited file: echo2 takes SaxpyRequest there (the remote edge's types would not match).
  std::string edited = two_members;
  const std::string from = "{name: echo2, kernel: echo, backend: cpu, at: m2}";
  edited.replace(edited.find(from), from.size(), "{name: echo2, kernel: saxpy, backend: cpu, at: m2}");
  const topology t2 = parse(edited);
  member m2(t2, "m2", dir, false, dir + "/m2.log");
  m2.eng.start();
  member m1(t, "m1", dir, true, dir + "/m1.log");
  std::string why;
  try {
    m1.eng.start();
  } catch (const engine_error& e) {
    why = e.what();
  }
  INFO(why);
  CHECK(why.find("refused at start by m2") != std::string::npos);
  CHECK(why.find("topology differs") != std::string::npos);
  m2.eng.stop();
}

TEST_CASE("cluster: backpressure holds across the link: a slow member answers overloaded, not a queue",
          "[ops][cluster]") {
  const std::string dir = temp_dir("rf-cluster-slow");
  // m2's node has a window of 1 and every request takes 300 ms there (a sim `slow` fault).
  const topology t = parse(
      "name: cluster-slow\n"
      "cluster:\n"
      "  members:\n"
      "    - {name: m1, listen: \"127.0.0.1:0\"}\n"
      "    - {name: m2, listen: \"127.0.0.1:0\"}\n"
      "  heartbeat_ms: 20\n"
      "  timeout_ms: 2000\n"
      "nodes:\n"
      "  - {name: slow, kernel: echo, backend: sim, window: 1, at: m2}\n"
      "faults:\n"
      "  - {node: slow, kind: slow, probability: 1, times: 0, latency_us: 300000}\n");
  member m2(t, "m2", dir, false, dir + "/m2.log");
  m2.eng.start();
  member m1(t, "m1", dir, true, dir + "/m1.log");
  m1.eng.start();

  // The caller's own window: over it, overloaded at once, nothing sent.
  caf::expected<node_client> one = m1.eng.client("slow@m2", {1, 10000ms});
  REQUIRE(one);
  std::future<call_result> first = one->submit(echo_msg(1));
  call_result second = one->call(echo_msg(2));
  CHECK(second.code == errc::overloaded);
  REQUIRE(first.get().ok());

  // The member's window: its ring actor takes one request; the others come back overloaded over
  // the link, each answered (none queued at m2, none lost).
  caf::expected<node_client> wide = m1.eng.client("slow@m2", {16, 10000ms});
  REQUIRE(wide);
  std::vector<std::future<call_result>> fs;
  for (std::uint64_t i = 0; i < 6; ++i) fs.push_back(wide->submit(echo_msg(10 + i)));
  int ok = 0, overloaded = 0;
  for (auto& f : fs) {
    const call_result r = f.get();
    if (r.ok()) ++ok;
    if (r.code == errc::overloaded) ++overloaded;
  }
  CHECK(ok >= 1);
  CHECK(ok + overloaded == 6);
  CHECK(overloaded >= 1);
  m1.eng.stop();
  m2.eng.stop();
}

TEST_CASE(
    "cluster: a member lost too often opens its breaker, stays on the fallback for the cool-down, then fails back",
    "[ops][cluster]") {
  const std::string dir = temp_dir("rf-cluster-breaker");
  const topology t = parse(two_members);
  program_config cfg;
  cfg.breaker.failure_threshold = 2;  // the second loss within the window opens it
  cfg.breaker.window_ms = 600000;
  cfg.breaker.cooldown_ms = 3000;
  cfg.breaker.cooldown_max_ms = 3000;
  auto m2 = std::make_unique<member>(t, "m2", dir, false, dir + "/m2-0.log");
  m2->eng.start();
  member m1(t, "m1", dir, true, dir + "/m1.log", cfg);
  m1.eng.start();
  caf::expected<node_client> echo = m1.eng.client("echo@m2");
  REQUIRE(echo);
  auto gauge = [&](const char* name) { return metric(m1.eng.metrics_text(), name); };
  // Loss 1: fails back as soon as m2 is there again.
  m2.reset();
  REQUIRE(eventually([&] { return m1.eng.summary().member_failovers == 1; }));
  m2 = std::make_unique<member>(t, "m2", dir, false, dir + "/m2-1.log");
  m2->eng.start();
  REQUIRE(eventually([&] { return m1.eng.summary().member_failbacks == 1; }));
  CHECK(gauge("ringflow_member_breaker_open") == 0);
  // Loss 2 within the window: the breaker opens; m2 back at once is not dialled for 3 s.
  m2.reset();
  REQUIRE(eventually([&] { return m1.eng.summary().member_failovers == 2; }));
  CHECK(gauge("ringflow_member_breaker_open") == 1);
  CHECK(gauge("ringflow_member_breaker_opens_total") == 1);
  const auto opened = std::chrono::steady_clock::now();
  m2 = std::make_unique<member>(t, "m2", dir, false, dir + "/m2-2.log");
  m2->eng.start();
  call_result r = echo->call(echo_msg(5), 5s);  // served by the fallback (local_cpu) meanwhile
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 5);
  // The probe after the cool-down: fail-back (not before the cool-down has passed).
  REQUIRE(eventually([&] { return m1.eng.summary().member_failbacks == 2; }, 30000ms));
  CHECK(std::chrono::steady_clock::now() - opened >= 2900ms);
  CHECK(gauge("ringflow_member_breaker_open") == 0);
  r = echo->call(echo_msg(6), 5s);
  REQUIRE(r.ok());
  m1.eng.stop();
}
