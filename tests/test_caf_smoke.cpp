// The CAF find module's imported targets (caf_core, caf_io) compile, link and run: an actor
// system with explicitly sized scheduler threads answers a request. (The actor layer builds on it.)
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <chrono>

TEST_CASE("CAF 0.17 links through the find module and serves a request", "[caf]") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);  // CAF's default is max(cores, 4): set it explicitly
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  CHECK(sys.scheduler().num_workers() == 2);
  // Spawned with an argument: CAF 0.17.6's init_fun_factory dereferences a null argument tuple
  // for argument-less function-based actors (UBSan: reference binding to null pointer). The actor
  // layer must keep to spawns with arguments or class-based actors, or UBSan CI fails in CAF code.
  auto doubler = sys.spawn([](int factor) -> caf::behavior { return {[factor](int x) { return factor * x; }}; }, 2);
  caf::scoped_actor self{sys};
  int answer = 0;
  self->request(doubler, std::chrono::seconds(5), 21)
      .receive([&](int r) { answer = r; }, [&](caf::error& e) { FAIL(sys.render(e)); });
  CHECK(answer == 42);
  anon_send_exit(doubler, caf::exit_reason::user_shutdown);
}
