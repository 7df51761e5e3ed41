// The runtime: see ringflow/actors/runtime.hpp.
#include "ringflow/actors/runtime.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <stdexcept>

namespace ringflow {

namespace {
// True once `a` has terminated: CAF runs a functor attached to an actor that is already gone at
// once (on a live one it stays attached, a no-op, until the actor ends).
bool has_terminated(const caf::actor& a) {
  auto gone = std::make_shared<std::atomic<bool>>(false);
  a->attach_functor([gone] { gone->store(true, std::memory_order_release); });
  return gone->load(std::memory_order_acquire);
}
// Names every thread CAF starts `rf-caf-<n>` and pins it to the scheduler's CPUs.
class thread_namer final : public caf::thread_hook {
 public:
  explicit thread_namer(std::vector<int> cpus) : cpus_(std::move(cpus)) {}
  void init(caf::actor_system&) override {}
  void thread_started() override {
    name_this_thread("rf-caf-" + std::to_string(next_.fetch_add(1, std::memory_order_relaxed)));
    (void)pin_this_thread(cpus_);  // checked by the runtime's constructor
  }
  void thread_terminates() override {}

 private:
  std::vector<int> cpus_;
  std::atomic<unsigned> next_{0};
};
}  // namespace

void register_ringflow_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<fb_msg>("ringflow::fb_msg");  // also std::vector<ringflow::fb_msg>
  cfg.add_error_category(ringflow_error_category, [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
    return render_error(code, ctx);
  });
}

runtime::runtime(runtime_config cfg) : cfg_(std::move(cfg)) {
  if (cfg_.scheduler_threads == 0) throw std::invalid_argument("runtime: scheduler_threads must be >= 1");
  if (std::string why = check_cpu_list(cfg_.scheduler_cpus); !why.empty())
    throw std::invalid_argument("runtime: scheduler cpus: " + why);
  set_spin_budget_cores(cfg_.spin_cores >= 0 ? cfg_.spin_cores
                                             : std::max(0, static_cast<int>(allowed_cpus()) -
                                                               static_cast<int>(cfg_.scheduler_threads) - 1));
  if (cfg_.kernel_threads < -1) throw std::invalid_argument("runtime: kernel_threads must be -1, 0 or a thread count");
  if (cfg_.kernel_threads != 0) {
    cpu::pool_config pc;
    pc.threads = cfg_.kernel_threads < 0 ? 0 : static_cast<std::size_t>(cfg_.kernel_threads);
    pc.wait = cfg_.kernel_wait;
    kernel_pool_ = std::make_shared<cpu::kernel_pool>(pc);
  }
  poller_ = std::make_unique<completion_poller>(cfg_.poller);
  caf_cfg_.set("scheduler.max-threads", cfg_.scheduler_threads);
  caf_cfg_.add_thread_hook<thread_namer>(cfg_.scheduler_cpus);
  register_ringflow_types(caf_cfg_);
  if (cfg_.configure_caf) cfg_.configure_caf(caf_cfg_);
  system_ = std::make_unique<caf::actor_system>(caf_cfg_);
}

runtime::~runtime() {
  shutdown();
  system_.reset();  // returns: shutdown() made sure CAF does not wait for unknown actors forever
  {
    std::lock_guard<std::mutex> lock(mu_);
    rings_.clear();  // cores leave the poller
  }
  poller_.reset();
}

caf::actor runtime::spawn_ring_actor(const std::string& name, type_id request_type, type_id reply_type,
                                     incarnation_factory factory, ring_actor_options opts) {
  if (shut_down_) throw std::logic_error("runtime: spawn after shutdown");
  if (!factory) throw std::invalid_argument("ring actor '" + name + "': no incarnation factory");
  // The name of a ring actor that has ended may be reused (a supervisor restarting it does exactly
  // that); a live one keeps it. Its core may not be stopping yet (the actor's end stops it, on
  // another thread): stop it here — idempotent — so its callers are answered before it is replaced.
  auto stale_ring = [&]() -> std::shared_ptr<ring_core> {  // call with mu_ held
    auto it = rings_.find(name);
    if (it == rings_.end()) return nullptr;
    const std::shared_ptr<ring_core>& old = it->second.core;
    if (old->stopping()) return old;
    auto e = registry_.entry(name);
    return e && e->core == old && e->actor && has_terminated(e->actor) ? old : nullptr;
  };
  auto taken = [&](const std::shared_ptr<ring_core>& stale) {  // call with mu_ held
    auto e = registry_.entry(name);
    return (rings_.count(name) && !stale) || (e && !(stale && e->core == stale));
  };
  std::shared_ptr<ring_core> stale;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stale = stale_ring();
    if (taken(stale)) throw std::invalid_argument("ring actor '" + name + "': the name is already registered");
  }
  if (stale) stale->stop();  // outside the lock: it drains the old kernel
  // A stateful predecessor's state goes on in its successor (ring_actor_options::state::from).
  if (stale && opts.state.state_bytes && stale->options().state.state_bytes == opts.state.state_bytes)
    if (std::shared_ptr<const state_handover> h = stale->handover()) opts.state.from = std::move(h);
  auto core = std::make_shared<ring_core>(name, request_type, reply_type, opts, *poller_);
  core->attach(factory(&poller_->bell()));
  caf::actor actor = system_->spawn(ring_actor, core);
  std::lock_guard<std::mutex> lock(mu_);  // check and replace in one step: two restarts race here
  stale = stale_ring();
  caf::error err;
  if (taken(stale)) err = make_error(errc::name_taken, "the name '" + name + "' is already registered");
  else if (stale) std::erase(tracked_, registry_.replace(name, actor, core).actor);  // the old one is done
  else err = registry_.add(name, actor, core);
  if (err) {
    anon_send_exit(actor, caf::exit_reason::user_shutdown);
    throw std::invalid_argument("ring actor '" + name + "': " + detail_of(err));
  }
  rings_.insert_or_assign(name, ring_record{core, std::move(factory)});
  tracked_.push_back(actor);
  return actor;
}

std::shared_ptr<ring_core> runtime::ring(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rings_.find(name);
  return it == rings_.end() ? nullptr : it->second.core;
}

caf::expected<ring_client> runtime::client(const std::string& name, client_options opts) const {
  auto core = ring(name);
  if (!core) return make_error(errc::unknown_name, "no ring actor is registered under the name '" + name + "'");
  return ring_client(std::move(core), opts);
}

std::unique_ptr<incarnation> runtime::make_incarnation(const std::string& name) {
  incarnation_factory f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rings_.find(name);
    if (it == rings_.end()) throw std::invalid_argument("no ring actor named '" + name + "'");
    f = it->second.factory;
  }
  return f(&poller_->bell());
}

std::unique_ptr<incarnation> runtime::swap_incarnation(const std::string& name, incarnation_factory factory) {
  auto core = ring(name);
  if (!core) throw std::invalid_argument("no ring actor named '" + name + "'");
  std::unique_ptr<incarnation> next = factory ? factory(&poller_->bell()) : make_incarnation(name);
  std::unique_ptr<incarnation> old = core->detach();
  core->attach(std::move(next));
  return old;
}

void runtime::track(const caf::actor& a) {
  if (!a) return;
  std::lock_guard<std::mutex> lock(mu_);
  tracked_.push_back(a);
}

void runtime::on_shutdown(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_hooks_.push_back(std::move(hook));
}

bool runtime::remove_ring(const std::string& name) {
  std::shared_ptr<ring_core> core;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rings_.find(name);
    if (it == rings_.end()) return false;
    core = it->second.core;
    rings_.erase(it);
  }
  core->stop();
  if (auto e = registry_.entry(name); e && e->core == core) {
    registry_.erase(name);
    if (e->actor) anon_send_exit(e->actor, caf::exit_reason::user_shutdown);
  }
  return true;
}

void runtime::shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  // 0. Hooks (running graphs stop: their open pushes are answered).
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hooks.swap(shutdown_hooks_);
  }
  for (auto it = hooks.rbegin(); it != hooks.rend(); ++it) (*it)();  // last registered first, like destructors
  // 1. Stop accepting and answer everything in flight (errc::stopped for what was not served).
  std::vector<std::shared_ptr<ring_core>> cores;
  std::vector<caf::actor> actors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& kv : rings_) cores.push_back(kv.second.core);
    actors = std::move(tracked_);
    tracked_.clear();
  }
  for (auto& c : cores) c->stop();
  for (auto& e : registry_.take_all())
    if (e.actor) actors.push_back(std::move(e.actor));
  // 2. Exit every actor ringflow knows, and wait (bounded) until they are gone.
  struct latch {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t left = 0;
  };
  auto l = std::make_shared<latch>();
  l->left = actors.size();
  for (auto& a : actors) {
    a->attach_functor([l] {
      std::lock_guard<std::mutex> lock(l->mu);
      if (--l->left == 0) l->cv.notify_all();
    });
    anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
  actors.clear();  // drop our references: cycles among them are broken by the exits
  bool all_exited = false;
  {
    std::unique_lock<std::mutex> lock(l->mu);
    all_exited = l->cv.wait_for(lock, cfg_.shutdown_timeout, [&] { return l->left == 0; });
  }
  // 3. Actors ringflow does not know (user actors in a reference cycle, say) would make CAF's
  //    destructor wait forever: tell it not to wait; its scheduler shutdown disposes of them.
  const std::size_t still_running = system_->registry().running();
  if (!all_exited || still_running > 0) {
    std::fprintf(stderr, "ringflow: shutdown: %zu actor(s) still running after the exits%s; not waiting for them\n",
                 still_running, all_exited ? "" : " (ringflow's own did not all exit in time)");
    system_->await_actors_before_shutdown(false);
  }
}

}  // namespace ringflow
