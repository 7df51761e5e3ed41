// Supervisor trees, modelled on OTP's supervisor_SUITE: strategies, restart types, intensity and
// escalation, shutdown order and specs, nested trees, dynamic children, start failures, ring actors
// as children, snapshots.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <future>
#include <map>
#include <mutex>

#include "actor_test_support.hpp"
#include "ringflow/supervision/supervisor.hpp"

using namespace ringflow;
using namespace ringflow::test;
using namespace std::chrono_literals;

namespace {

using crash_atom = caf::atom_constant<caf::atom("t_crash")>;

// What the test workers report: starts, graceful stops (their exit handler ran), how they ended.
// Declared before the runtime in each test: it only holds weak addresses, never actor handles.
struct probe {
  mutable std::mutex mu;
  std::vector<std::string> events;                 // "start:a", "stop:a", "ignored:a"
  std::map<std::string, caf::actor_addr> current;  // the latest instance per child id
  std::map<std::string, int> starts;
  std::map<std::string, caf::error> downs;  // how the latest instance ended
  std::map<std::string, int> refuse;        // start attempts to refuse per id (-1: all)

  void record(std::string e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(std::move(e));
  }
  std::size_t mark() const {
    std::lock_guard<std::mutex> lock(mu);
    return events.size();
  }
  std::vector<std::string> since(std::size_t n) const {
    std::lock_guard<std::mutex> lock(mu);
    return {events.begin() + static_cast<std::ptrdiff_t>(n), events.end()};
  }
  int starts_of(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = starts.find(id);
    return it == starts.end() ? 0 : it->second;
  }
  caf::actor actor_of(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = current.find(id);
    return it == current.end() ? caf::actor{} : caf::actor_cast<caf::actor>(it->second);
  }
  std::optional<caf::error> down_of(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = downs.find(id);
    if (it == downs.end()) return std::nullopt;
    return it->second;
  }
  void refuse_starts(const std::string& id, int n) {
    std::lock_guard<std::mutex> lock(mu);
    refuse[id] = n;
  }
};

// A worker: stops gracefully on an exit (recording "stop:id" before it quits, so the order of the
// records is the order of the stops), or ignores exits; quits with any reason it is told to.
caf::behavior test_worker(caf::event_based_actor* self, std::shared_ptr<probe> p, std::string id, bool ignore_exits) {
  self->set_exit_handler([self, p, id, ignore_exits](caf::exit_msg& m) {
    if (ignore_exits) {
      p->record("ignored:" + id);
      return;
    }
    p->record("stop:" + id);
    self->quit(m.reason);
  });
  self->attach_functor([p, id](const caf::error& reason) {
    std::lock_guard<std::mutex> lock(p->mu);
    p->downs[id] = reason;
  });
  return {[self](crash_atom, caf::error& reason) { self->quit(std::move(reason)); }};
}

child_spec worker(caf::actor_system& sys, std::shared_ptr<probe> p, std::string id,
                  restart_type restart = restart_type::permanent, shutdown_spec shutdown = shutdown_spec::timeout(5s),
                  bool ignore_exits = false) {
  child_spec c;
  c.id = id;
  c.restart = restart;
  c.shutdown = shutdown;
  c.start = [&sys, p, id, ignore_exits]() -> caf::expected<caf::actor> {
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (int& n = p->refuse[id]; n != 0) {
        if (n > 0) --n;
        p->events.push_back("refused:" + id);
        return make_error(errc::internal, "refused by the test");
      }
    }
    caf::actor a = sys.spawn(test_worker, p, id, ignore_exits);
    std::lock_guard<std::mutex> lock(p->mu);
    p->events.push_back("start:" + id);
    p->current[id] = a.address();
    ++p->starts[id];
    return a;
  };
  return c;
}

void crash(const probe& p, const std::string& id, caf::error reason = make_error(errc::internal, "test crash")) {
  caf::actor a = p.actor_of(id);
  REQUIRE(a);
  caf::anon_send(a, crash_atom::value, std::move(reason));
}

const supervised_child_status* child_of(const supervisor_snapshot& s, const std::string& id) {
  for (const auto& c : s.children)
    if (c.id == id) return &c;
  return nullptr;
}

// Waits until child `id` runs as its n-th instance (n - 1 restarts) in the supervisor's snapshot.
bool runs_as(const supervisor_ref& sup, const std::string& id, std::uint64_t restarts) {
  return wait_until([&] {
    const supervisor_snapshot s = sup.snapshot();
    const supervised_child_status* c = child_of(s, id);
    return c && c->running && c->restarts == restarts;
  });
}

using events = std::vector<std::string>;

supervisor_spec spec_of(std::string name, restart_strategy strategy, std::uint32_t intensity,
                        std::vector<child_spec> children, std::chrono::milliseconds period = 30s) {
  supervisor_spec s;
  s.name = std::move(name);
  s.flags = {strategy, intensity, period};
  s.children = std::move(children);
  return s;
}

}  // namespace

TEST_CASE("one_for_one restarts only the failed child", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(rt, spec_of("s", restart_strategy::one_for_one, 3,
                                          {worker(sys, p, "a"), worker(sys, p, "b"), worker(sys, p, "c")}));
  REQUIRE(sup);
  CHECK(p->since(0) == events{"start:a", "start:b", "start:c"});
  const caf::actor a = p->actor_of("a"), b = p->actor_of("b"), c = p->actor_of("c");
  const std::size_t m = p->mark();
  crash(*p, "b");
  REQUIRE(runs_as(*sup, "b", 1));
  CHECK(p->since(m) == events{"start:b"});  // nobody else stopped or started
  CHECK(p->actor_of("b") != b);
  CHECK(code_of(*p->down_of("b")) == errc::internal);
  const supervisor_snapshot s = sup->snapshot();
  CHECK(s.name == "s");
  CHECK(s.running);
  CHECK(s.restarts == 1);
  CHECK(!s.escalated);
  REQUIRE(s.children.size() == 3);
  CHECK(s.children[0].actor == a.id());
  CHECK(s.children[0].restarts == 0);
  CHECK(s.children[1].actor == p->actor_of("b").id());
  CHECK(s.children[1].last_exit.find("test crash") != std::string::npos);
  CHECK(s.children[2].actor == c.id());
}

TEST_CASE("one_for_all stops the others in reverse and restarts all in start order", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(rt, spec_of("s", restart_strategy::one_for_all, 3,
                                          {worker(sys, p, "a"), worker(sys, p, "b"), worker(sys, p, "c")}));
  REQUIRE(sup);
  const std::size_t m = p->mark();
  crash(*p, "b");
  REQUIRE(runs_as(*sup, "c", 1));
  CHECK(p->since(m) == events{"stop:c", "stop:a", "start:a", "start:b", "start:c"});
  const supervisor_snapshot s = sup->snapshot();
  CHECK(s.restarts == 1);  // one restart decision, three children restarted
  for (const auto& c : s.children) CHECK(c.restarts == 1);
}

TEST_CASE("rest_for_one restarts the failed child and the ones started after it", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(
      rt, spec_of("s", restart_strategy::rest_for_one, 3,
                  {worker(sys, p, "a"), worker(sys, p, "b"), worker(sys, p, "c"), worker(sys, p, "d")}));
  REQUIRE(sup);
  const caf::actor a = p->actor_of("a");
  const std::size_t m = p->mark();
  crash(*p, "b");
  REQUIRE(runs_as(*sup, "d", 1));
  CHECK(p->since(m) == events{"stop:d", "stop:c", "start:b", "start:c", "start:d"});
  CHECK(p->actor_of("a") == a);
  CHECK(child_of(sup->snapshot(), "a")->restarts == 0);

  // The last child fails: only it restarts.
  const std::size_t m2 = p->mark();
  crash(*p, "d");
  REQUIRE(runs_as(*sup, "d", 2));
  CHECK(p->since(m2) == events{"start:d"});
}

TEST_CASE("restart types: permanent always, transient after an abnormal exit, temporary never", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(rt, spec_of("s", restart_strategy::one_for_one, 10,
                                          {worker(sys, p, "perm"), worker(sys, p, "trans", restart_type::transient),
                                           worker(sys, p, "trans2", restart_type::transient),
                                           worker(sys, p, "temp", restart_type::temporary)}));
  REQUIRE(sup);

  // permanent: restarted even after a normal exit
  crash(*p, "perm", caf::error{});
  REQUIRE(runs_as(*sup, "perm", 1));

  // transient + normal, transient + shutdown: stays down, kept in the list (OTP)
  crash(*p, "trans", caf::error{});
  REQUIRE(wait_until([&] { return !child_of(sup->snapshot(), "trans")->running; }));
  crash(*p, "trans2", caf::make_error(caf::exit_reason::user_shutdown));
  REQUIRE(wait_until([&] { return !child_of(sup->snapshot(), "trans2")->running; }));
  // transient + abnormal: restarted
  crash(*p, "perm");  // a marker: once perm runs again, the supervisor has handled what came before
  REQUIRE(runs_as(*sup, "perm", 2));
  CHECK(p->starts_of("trans") == 1);
  CHECK(p->starts_of("trans2") == 1);

  // temporary: never restarted, even after a crash, and removed
  crash(*p, "temp");
  REQUIRE(wait_until([&] { return child_of(sup->snapshot(), "temp") == nullptr; }));
  CHECK(p->starts_of("temp") == 1);

  CHECK(sup->snapshot().restarts == 2);
  CHECK(sup->snapshot().children.size() == 3);  // perm, trans, trans2
}

TEST_CASE("a transient child restarts after an abnormal exit", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto sup = start_supervisor(
      rt, spec_of("s", restart_strategy::one_for_one, 3, {worker(rt.system(), p, "t", restart_type::transient)}));
  REQUIRE(sup);
  crash(*p, "t", caf::make_error(caf::exit_reason::kill));
  REQUIRE(runs_as(*sup, "t", 1));
  CHECK(p->starts_of("t") == 2);
}

TEST_CASE("more restarts than the intensity: children stopped in reverse, exit with restart_intensity",
          "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(rt, spec_of("s", restart_strategy::one_for_one, 2,
                                          {worker(sys, p, "a"), worker(sys, p, "b"), worker(sys, p, "c")}));
  REQUIRE(sup);
  crash(*p, "a");
  REQUIRE(runs_as(*sup, "a", 1));
  crash(*p, "a");
  REQUIRE(runs_as(*sup, "a", 2));
  const std::size_t m = p->mark();
  crash(*p, "a");  // the third within the period: more than 2
  REQUIRE(sup->wait_for_exit(10s));
  CHECK(p->since(m) == events{"stop:c", "stop:b"});
  const caf::error why = *sup->exit_reason();
  CHECK(code_of(why) == errc::restart_intensity);
  CHECK(detail_of(why).find("supervisor 's' gave up") != std::string::npos);
  CHECK(detail_of(why).find("child 'a'") != std::string::npos);
  const supervisor_snapshot s = sup->snapshot();
  CHECK(s.escalated);
  CHECK(!s.running);
  CHECK(s.restarts == 3);
  for (const auto& c : s.children) CHECK(!c.running);
  // Calls on a supervisor that is gone get a typed error.
  CHECK(code_of(sup->terminate_child("a")) == errc::stopped);
}

TEST_CASE("restarts older than the period do not count toward the intensity", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto sup = start_supervisor(rt, spec_of("s", restart_strategy::one_for_one, 1, {worker(rt.system(), p, "a")}, 50ms));
  REQUIRE(sup);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    crash(*p, "a");
    REQUIRE(runs_as(*sup, "a", i));
    const auto t = std::chrono::steady_clock::now();  // after the restart was recorded
    // Let the period pass (time, not concurrency, is what this waits for).
    REQUIRE(wait_until([&] { return std::chrono::steady_clock::now() - t > 60ms; }));
  }
  CHECK(!sup->exit_reason());
  CHECK(sup->snapshot().restarts == 3);
}

TEST_CASE("a failed restart is retried, counted, and gives up past the intensity", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup =
      start_supervisor(rt, spec_of("s", restart_strategy::one_for_one, 3, {worker(sys, p, "a"), worker(sys, p, "b")}));
  REQUIRE(sup);
  SECTION("the retry succeeds") {
    p->refuse_starts("b", 1);
    const std::size_t m = p->mark();
    crash(*p, "b");
    REQUIRE(runs_as(*sup, "b", 1));
    CHECK(p->since(m) == events{"refused:b", "start:b"});
    CHECK(sup->snapshot().restarts == 2);  // the crash and the retry
    CHECK(!sup->exit_reason());
  }
  SECTION("every attempt fails") {
    p->refuse_starts("b", -1);
    crash(*p, "b");
    REQUIRE(sup->wait_for_exit(10s));
    CHECK(code_of(*sup->exit_reason()) == errc::restart_intensity);
    CHECK(p->since(0) == events{"start:a", "start:b", "refused:b", "refused:b", "refused:b", "stop:a"});
  }
}

TEST_CASE("shutdown stops the children in reverse start order", "[supervisor]") {
  auto p = std::make_shared<probe>();
  std::optional<runtime> rt{small_runtime()};
  auto& sys = rt->system();
  auto sup = start_supervisor(
      *rt, spec_of("s", restart_strategy::one_for_one, 1,
                   {worker(sys, p, "a"), worker(sys, p, "b"), worker(sys, p, "c"), worker(sys, p, "d")}));
  REQUIRE(sup);
  const std::size_t m = p->mark();
  SECTION("through the ref") {
    REQUIRE(sup->stop());
    CHECK(*sup->exit_reason() == caf::exit_reason::user_shutdown);
  }
  SECTION("through runtime shutdown") {
    rt->shutdown();
    REQUIRE(sup->exit_reason());
  }
  CHECK(p->since(m) == events{"stop:d", "stop:c", "stop:b", "stop:a"});
  for (const char* id : {"a", "b", "c", "d"}) CHECK(*p->down_of(id) == caf::exit_reason::user_shutdown);
}

TEST_CASE("shutdown specs: timeout kills a child that ignores exits after the limit, brutal kills at once",
          "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(
      rt, spec_of("s", restart_strategy::one_for_one, 1,
                  {worker(sys, p, "stubborn", restart_type::permanent, shutdown_spec::timeout(200ms), true),
                   worker(sys, p, "brutal", restart_type::permanent, shutdown_spec::brutal())}));
  REQUIRE(sup);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(!sup->terminate_child("stubborn"));
  CHECK(std::chrono::steady_clock::now() - t0 >= 200ms);  // it was asked first, killed after the limit
  CHECK(*p->down_of("stubborn") == caf::exit_reason::kill);

  REQUIRE(!sup->terminate_child("brutal"));
  CHECK(*p->down_of("brutal") == caf::exit_reason::kill);
  CHECK(p->since(0) == events{"start:stubborn", "start:brutal", "ignored:stubborn"});  // brutal was never asked
  CHECK(sup->snapshot().children.empty());                                             // terminate_child removes them
  CHECK(sup->snapshot().restarts == 0);  // a terminated child is no failure
}

TEST_CASE("a killed supervisor takes its children down with it and answers its waiting callers", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(
      rt, spec_of("s", restart_strategy::one_for_one, 1,
                  {worker(sys, p, "a"), worker(sys, p, "b"),
                   worker(sys, p, "stubborn", restart_type::permanent, shutdown_spec::timeout(60s), true)}));
  REQUIRE(sup);
  // A caller waits on a stop that would take a minute ...
  auto waiting = std::async(std::launch::async, [&] { return sup->terminate_child("stubborn"); });
  REQUIRE(wait_until([&] { return p->since(0).back() == "ignored:stubborn"; }));
  // ... when the supervisor is killed: the caller gets a typed error, every child gets `kill`.
  caf::anon_send_exit(sup->actor(), caf::exit_reason::kill);
  REQUIRE(waiting.wait_for(10s) == std::future_status::ready);
  CHECK(code_of(waiting.get()) == errc::stopped);
  REQUIRE(wait_until([&] { return p->down_of("a") && p->down_of("b") && p->down_of("stubborn"); }));
  for (const char* id : {"a", "b", "stubborn"}) CHECK(*p->down_of(id) == caf::exit_reason::kill);
  REQUIRE(sup->wait_for_exit(10s));
  CHECK(*sup->exit_reason() == caf::exit_reason::kill);
}

TEST_CASE("nested trees: an inner supervisor that gives up is restarted by the outer with fresh children",
          "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  supervisor_spec inner =
      spec_of("inner", restart_strategy::one_for_one, 0, {worker(sys, p, "x"), worker(sys, p, "y")});
  auto sup = start_supervisor(
      rt, spec_of("outer", restart_strategy::one_for_one, 1, {worker(sys, p, "w"), supervisor_child("inner", inner)}));
  REQUIRE(sup);
  CHECK(p->since(0) == events{"start:w", "start:x", "start:y"});  // the inner's children are up before start returns
  {
    const supervisor_snapshot s = sup->snapshot();
    const supervised_child_status* in = child_of(s, "inner");
    REQUIRE(in);
    CHECK(in->kind == child_kind::supervisor);
    REQUIRE(in->nested);
    CHECK(in->nested->name == "inner");
    CHECK(in->nested->children.size() == 2);
  }
  const caf::actor w = p->actor_of("w"), x = p->actor_of("x"), y = p->actor_of("y");
  const std::size_t m = p->mark();
  crash(*p, "x");  // intensity 0: the inner gives up at once
  REQUIRE(runs_as(*sup, "inner", 1));
  REQUIRE(wait_until([&] { return p->starts_of("y") == 2; }));
  CHECK(p->since(m) == events{"stop:y", "start:x", "start:y"});
  CHECK(p->actor_of("x") != x);
  CHECK(p->actor_of("y") != y);
  CHECK(p->actor_of("w") == w);
  const supervisor_snapshot s = sup->snapshot();
  CHECK(s.restarts == 1);
  const supervised_child_status* in = child_of(s, "inner");
  CHECK(in->last_exit.find("restart_intensity") != std::string::npos);
  REQUIRE(in->nested);
  CHECK(in->nested->restarts == 0);  // a fresh inner supervisor
  CHECK(child_of(*in->nested, "x")->actor == p->actor_of("x").id());

  // The inner gives up again within the outer's period: the outer gives up too (escalation).
  crash(*p, "x");
  REQUIRE(sup->wait_for_exit(10s));
  CHECK(code_of(*sup->exit_reason()) == errc::restart_intensity);
  CHECK(*p->down_of("w") == caf::exit_reason::user_shutdown);
}

TEST_CASE("dynamic children: start_child and terminate_child at run time", "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  auto sup = start_supervisor(rt, dynamic_supervisor("dyn", 5));
  REQUIRE(sup);
  CHECK(sup->snapshot().children.empty());
  CHECK(sup->snapshot().dynamic);

  auto a = sup->start_child(worker(sys, p, "a"));
  REQUIRE(a);
  CHECK(*a == p->actor_of("a"));
  REQUIRE(sup->start_child(worker(sys, p, "b", restart_type::temporary)));
  REQUIRE(sup->start_child(worker(sys, p, "c", restart_type::transient)));
  CHECK(code_of(sup->start_child(worker(sys, p, "a")).error()) == errc::name_taken);
  child_spec no_start;
  no_start.id = "no-start";
  CHECK(code_of(sup->start_child(no_start).error()) == errc::invalid_argument);
  p->refuse_starts("bad", 1);
  auto bad = sup->start_child(worker(sys, p, "bad"));
  REQUIRE(!bad);
  CHECK(code_of(bad.error()) == errc::child_start_failed);
  CHECK(detail_of(bad.error()).find("'bad'") != std::string::npos);

  // one_for_one restarts
  crash(*p, "a");
  REQUIRE(runs_as(*sup, "a", 1));
  // a temporary child that exits, a transient one that exits normally: gone from a dynamic supervisor
  crash(*p, "b");
  crash(*p, "c", caf::error{});
  REQUIRE(wait_until([&] { return sup->snapshot().children.size() == 1; }));
  CHECK(sup->snapshot().children[0].id == "a");

  REQUIRE(!sup->terminate_child("a"));
  CHECK(sup->snapshot().children.empty());
  CHECK(*p->down_of("a") == caf::exit_reason::user_shutdown);
  CHECK(code_of(sup->terminate_child("a")) == errc::unknown_name);
  CHECK(sup->snapshot().restarts == 1);

  // A dynamic supervisor with static children is refused.
  supervisor_spec wrong = dynamic_supervisor("wrong");
  wrong.children.push_back(worker(sys, p, "z"));
  CHECK(code_of(start_supervisor(rt, wrong).error()) == errc::invalid_argument);
}

TEST_CASE("initial start failure: started children stopped in reverse, start fails with child_start_failed",
          "[supervisor]") {
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  auto& sys = rt.system();
  p->refuse_starts("c", -1);
  SECTION("a worker") {
    auto sup = start_supervisor(
        rt, spec_of("s", restart_strategy::one_for_one, 5,
                    {worker(sys, p, "a"), worker(sys, p, "b"), worker(sys, p, "c"), worker(sys, p, "d")}));
    REQUIRE(!sup);
    CHECK(code_of(sup.error()) == errc::child_start_failed);
    CHECK(detail_of(sup.error()).find("child 'c'") != std::string::npos);
    CHECK(detail_of(sup.error()).find("refused by the test") != std::string::npos);
    CHECK(p->since(0) == events{"start:a", "start:b", "refused:c", "stop:b", "stop:a"});
  }
  SECTION("inside a nested supervisor") {
    supervisor_spec inner =
        spec_of("inner", restart_strategy::one_for_one, 5, {worker(sys, p, "b"), worker(sys, p, "c")});
    auto sup =
        start_supervisor(rt, spec_of("outer", restart_strategy::one_for_one, 5,
                                     {worker(sys, p, "a"), supervisor_child("inner", inner), worker(sys, p, "d")}));
    REQUIRE(!sup);
    CHECK(code_of(sup.error()) == errc::child_start_failed);
    CHECK(detail_of(sup.error()).find("child 'inner'") != std::string::npos);
    CHECK(p->since(0) == events{"start:a", "start:b", "refused:c", "stop:b", "stop:a"});
  }
  SECTION("a bad spec") {
    auto twice = start_supervisor(
        rt, spec_of("s", restart_strategy::one_for_one, 1, {worker(sys, p, "a"), worker(sys, p, "a")}));
    CHECK(code_of(twice.error()) == errc::invalid_argument);
    CHECK(p->since(0).empty());
  }
}

TEST_CASE("a ring actor child: a crash answers its pending callers, the restarted one serves under the same name",
          "[supervisor]") {
  GatedEchoKernel::gate_closed = true;
  auto p = std::make_shared<probe>();
  runtime rt{small_runtime()};
  cpu_incarnation_options small = quick_park();
  small.rings.requests.capacity = 4;  // most requests wait in staging
  auto sup = start_supervisor(
      rt, spec_of("s", restart_strategy::one_for_one, 3, {ring_actor_child<GatedEchoKernel>(rt, "svc", {}, small)}));
  REQUIRE(sup);
  const supervisor_snapshot s0 = sup->snapshot();
  REQUIRE(s0.children.size() == 1);
  auto old_core = rt.ring("svc");
  REQUIRE(old_core);
  caf::actor old_actor = *rt.registry().lookup("svc");
  CHECK(old_actor.id() == s0.children[0].actor);

  ring_client c(old_core);
  std::vector<std::future<call_result>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(c.submit(echo_msg(i)));
  REQUIRE(wait_until([&] { return old_core->in_flight() == 20; }));
  std::thread opener([&] {  // let the kernel drain its ring once the stop began
    wait_until([&] { return old_core->stopping(); });
    GatedEchoKernel::gate_closed = false;
  });
  caf::anon_send_exit(old_actor, caf::exit_reason::kill);  // the ring actor itself crashes
  int ok = 0, stopped = 0, other = 0;
  for (auto& f : fs) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    call_result r = f.get();
    (r.ok() ? ok : r.code == errc::stopped ? stopped : other)++;
  }
  opener.join();
  CHECK(ok + stopped == 20);  // every caller answered: served, or a typed error — never silence
  CHECK(stopped >= 10);
  CHECK(other == 0);

  REQUIRE(runs_as(*sup, "svc", 1));
  auto fresh = rt.client("svc");
  REQUIRE(fresh);
  call_result r = fresh->call(echo_msg(77));
  REQUIRE(r.ok());
  CHECK(echo_seq(r.reply) == 77);
  CHECK(rt.ring("svc") != old_core);
  CHECK((*rt.registry().lookup("svc")).id() == sup->snapshot().children[0].actor);
  CHECK(c.call(echo_msg(1)).code == errc::stopped);  // the old core stays stopped
  // A live ring actor's name is still refused.
  CHECK_THROWS_AS(rt.spawn_ring_actor<GatedEchoKernel>("svc"), std::invalid_argument);
}
