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

#include "actor_test_support.hpp"
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
const char* two_members =
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
  member(const topology& t, const std::string& name, const std::string& dir, bool client, const std::string& log_file)
      : log("warn", "json", log_file), eng(t, {}, log, options(name, dir, client)) {}
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
