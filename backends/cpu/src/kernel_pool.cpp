// CPU kernel threads hosting many rings: see ringflow/cpu/kernel_pool.hpp for the contract.
//
// The ready-queue protocol (why nothing is lost and no ring is served twice at once):
//   * pending_ is true while the ring sits in one worker's queue (ready or blocked) or is being
//     served. Only the false -> true exchange of notify() (or of settle()) queues it, so a ring is
//     in at most one queue, and only the worker that took it from a queue serves it.
//   * Producer: push (release store of the slot, relaxed store of the ring's tail); notify():
//     seq_cst fence, then pending_ (load, exchange). Worker done with a ring (settle()): pending_
//     = false, seq_cst fence, then the ring's tail (and stop flag). By the fence rule one of the
//     two sees the other's store: the producer queues the ring, or the worker sees the new tail
//     and queues it again itself. The store of false is a release and the producer's exchange
//     an acquire: the next worker to serve the ring sees everything the last one did to its
//     endpoints (then the queue's lock carries it on).
//   * home_ changes only under the old home's lock (enqueue() re-checks it under the lock), and a
//     ring is moved only while it is queued (its queue entry moves with it) or being served (the
//     serving worker re-queues it at its new home). So moves never hand a ring to two workers.
#include "ringflow/cpu/kernel_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>

#include "ringflow/incarnation.hpp"

namespace ringflow::cpu {
namespace pool_detail {

using ring_ptr = std::shared_ptr<pooled_ring>;
constexpr std::uint64_t blocked_retry_ns = 200'000;  // a full response ring: retried every 200 us

struct worker {
  std::size_t index = 0;
  doorbell bell;
  std::mutex mu;                               // ready, blocked
  std::deque<ring_ptr> ready;                  // rings with requests (or a stop flag), in turn order
  std::vector<ring_ptr> blocked;               // rings whose response ring was full
  std::size_t homed = 0;                       // rings homed here (pool_state::mu)
  std::atomic<std::uint64_t> batch_start{0};   // steady ns when the current batch began; 0 = none
  std::atomic<pooled_ring*> serving{nullptr};  // the ring of the current batch
  std::atomic<std::uint64_t> busy_ns{0};       // time spent in batches
  std::uint64_t busy_seen = 0;                 // the monitor's last look
  std::atomic<bool> retired{false};
  std::atomic<bool> quit{false};
  std::atomic<bool> done{false};
  std::thread thread;
};

struct pool_state : std::enable_shared_from_this<pool_state> {
  pool_config cfg;
  std::size_t threads = 1;
  mutable std::mutex mu;  // workers, retired, rings, homed counts
  std::vector<std::shared_ptr<worker>> workers;
  std::vector<std::shared_ptr<worker>> retired;  // still running (a stuck batch), or ended not yet joined
  std::vector<std::shared_ptr<worker>> ended;    // joined; kept for stale home pointers (see watch())
  std::unordered_set<pooled_ring*> rings;
  std::atomic<std::uint64_t> moves{0}, stuck{0}, rescued{0};
  std::mutex mon_mu;
  std::condition_variable mon_cv;
  bool stopping = false;  // mon_mu
  std::thread monitor;

  std::shared_ptr<worker> start_worker(std::size_t index) {
    auto w = std::make_shared<worker>();
    w->index = index;
    w->thread = std::thread([self = shared_from_this(), w] { self->run(*w); });
    name_thread(w->thread.native_handle(), "rf-kp-" + std::to_string(index));
    return w;
  }

  void start() {
    threads = cfg.threads ? cfg.threads : allowed_cpus();
    for (std::size_t i = 0; i < threads; ++i) workers.push_back(start_worker(i));
    monitor = std::thread([self = shared_from_this()] { self->watch(); });
    name_thread(monitor.native_handle(), "rf-kp-mon");
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mon_mu);
      stopping = true;
    }
    mon_cv.notify_all();
    if (monitor.joinable()) monitor.join();
    std::vector<std::shared_ptr<worker>> all;
    {
      std::lock_guard<std::mutex> lock(mu);
      all = workers;
      all.insert(all.end(), retired.begin(), retired.end());
    }
    for (auto& w : all) {
      w->quit.store(true, std::memory_order_release);
      w->bell.ring();
    }
    for (auto& w : all) {
      if (!w->thread.joinable()) continue;
      // A worker still inside a handler (retired or not yet seen stuck) may never return: it is
      // not joined; it keeps this state (and its ring) alive through its shared_ptr and ends
      // when the handler does.
      if (!w->done.load() && (w->retired.load() || w->batch_start.load() != 0)) w->thread.detach();
      else w->thread.join();
    }
    // Entries left in the queues (a notify after the last stop) would keep their rings, and the
    // rings this state, alive in a cycle: drop them (outside the locks: a ring's destructor locks).
    for (auto& w : all) {
      std::deque<ring_ptr> ready;
      std::vector<ring_ptr> blocked;
      {
        std::lock_guard<std::mutex> lock(w->mu);
        ready.swap(w->ready);
        blocked.swap(w->blocked);
      }
    }
  }

  // True when ring r is inside a batch that has run for longer than stuck_after (a hung handler).
  bool in_stuck_batch(const pooled_ring& r) const {
    const std::uint64_t now = steady_now_ns();
    const auto stuck_ns =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.stuck_after).count());
    std::lock_guard<std::mutex> lock(mu);
    for (const auto* list : {&workers, &retired})
      for (const auto& w : *list) {
        const std::uint64_t s = w->batch_start.load(std::memory_order_relaxed);
        if (w->serving.load(std::memory_order_relaxed) == &r && s != 0 && now > s && now - s > stuck_ns) return true;
      }
    return false;
  }

  // The live worker with the fewest rings (call with mu held).
  worker* least_loaded() {
    worker* best = nullptr;
    for (auto& w : workers)
      if (!best || w->homed < best->homed) best = w.get();
    return best;
  }

  void home(pooled_ring& r) {
    std::lock_guard<std::mutex> lock(mu);
    worker* w = least_loaded();
    ++w->homed;
    r.home_.store(w, std::memory_order_release);
    rings.insert(&r);
  }

  void forget(pooled_ring& r) {
    std::lock_guard<std::mutex> lock(mu);
    if (worker* w = r.home_.load(std::memory_order_acquire)) {
      --w->homed;
      // Under the home's lock, as every change of home_ (enqueue() re-checks it there).
      std::lock_guard<std::mutex> wl(w->mu);
      r.home_.store(nullptr, std::memory_order_release);
    }
    rings.erase(&r);
  }

  // Queues r at its home; the caller made it pending (or holds it as the serving worker).
  static void enqueue(ring_ptr r, bool blocked) {
    for (;;) {
      worker* w = r->home_.load(std::memory_order_acquire);
      if (!w) {  // detached (being destroyed): nobody serves it any more
        r->pending_.store(false, std::memory_order_release);
        return;
      }
      std::unique_lock<std::mutex> lock(w->mu);
      if (r->home_.load(std::memory_order_relaxed) != w) continue;  // moved meanwhile
      if (blocked) w->blocked.push_back(std::move(r));
      else w->ready.push_back(std::move(r));
      lock.unlock();
      w->bell.ring();
      return;
    }
  }

  // The serving worker is done with r for now (no requests left that it saw): see the protocol.
  // The position is read before pending_ is cleared: after that another worker may serve it.
  static void settle(ring_ptr r) {
    const std::uint64_t pos = r->chan_.kernel_requests_.position();
    r->pending_.store(false, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with notify()'s
    const bool work = ring_observer(r->chan_.requests()).tail() != pos || r->control_.stop_is_requested();
    if (work && !r->pending_.exchange(true, std::memory_order_acq_rel)) enqueue(std::move(r), false);
  }

  // A queue entry of a finished ring: dropped, unless restart() raced with it (it then queues
  // the ring itself or we see it running again: the same fence pair as above).
  static void drop(ring_ptr r) {
    r->pending_.store(false, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with notify()'s (in restart())
    if (!r->finished_.load(std::memory_order_acquire) && !r->pending_.exchange(true, std::memory_order_acq_rel))
      enqueue(std::move(r), false);
  }

  // The completion bell under its lease (see pooled_ring::release_completion_bell()).
  static void ring_completion(pooled_ring& r) noexcept {
    r.bell_users_.fetch_add(1, std::memory_order_seq_cst);
    if (doorbell* b = r.completion_bell_.load(std::memory_order_seq_cst)) b->ring();
    r.bell_users_.fetch_sub(1, std::memory_order_release);
  }

  static void finish(pooled_ring& r, bool clean, const char* why) {
    r.chan_.kernel_requests_.publish();
    if (clean) r.control_.set_state(kernel_state::stopped);  // release: the replies above are visible
    else r.control_.fault(kernel_error::reply_stuck, 0, why);
    r.draining_ = false;
    // The bells before finished_: once a stop() sees it finished, the owner may destroy what
    // they belong to. (Waiters re-check the state, which is final already.)
    r.chan_.reply_bell_.ring();
    ring_completion(r);
    // finished_ before pending_: a notify() that queues the ring from now on finds it finished
    // (its worker drops the entry) instead of serving it again beside us.
    r.finished_.store(true, std::memory_order_release);
    r.pending_.store(false, std::memory_order_release);
  }

  // One turn of ring r on worker w: a batch of at most max_batch requests (or of its drain).
  void serve(worker& w, ring_ptr r) {
    pooled_ring& ring = *r;
    if (ring.finished_.load(std::memory_order_acquire)) return drop(std::move(r));  // stopped meanwhile
    channel& ch = ring.chan_;
    control_block& cb = ring.control_;
    const std::uint64_t start = steady_now_ns();
    if (cb.stop_is_requested() && !ring.draining_) {
      cb.set_state(kernel_state::draining);
      ring.draining_ = true;
      ring.drain_budget_ = ch.requests_.config().capacity;
    }
    w.serving.store(&ring, std::memory_order_relaxed);
    w.batch_start.store(start, std::memory_order_relaxed);
    serve_tally tally;
    serve_result last = serve_result::served;
    std::uint32_t budget = cfg.max_batch;
    if (ring.draining_) budget = static_cast<std::uint32_t>(std::min<std::uint64_t>(budget, ring.drain_budget_));
    std::uint32_t n = 0;
    // A retired worker (stuck in this batch) ends the batch at the next request: the ring moves on.
    while (n < budget && !w.retired.load(std::memory_order_relaxed)) {
      last = ch.serve(start, tally);
      if (last != serve_result::served) break;
      ++n;
    }
    cb.beat();
    if (tally.served) {
      cb.progressed(tally.served, tally.handler_errors, tally.rejected);
      if (ch.deliver_replies()) ring_completion(ring);  // completion callbacks: still in the batch
    }
    const std::uint64_t end = steady_now_ns();
    w.batch_start.store(0, std::memory_order_relaxed);
    w.serving.store(nullptr, std::memory_order_relaxed);
    w.busy_ns.fetch_add(end - start, std::memory_order_relaxed);
    if (ring.draining_) {
      ring.drain_budget_ -= n;
      if (last == serve_result::idle || ring.drain_budget_ == 0) return finish(ring, true, nullptr);
      if (end > ring.stop_deadline_ns_.load(std::memory_order_relaxed))
        return finish(ring, false,
                      last == serve_result::blocked ? "stop: response ring stayed full past the stop timeout"
                                                    : "stop: the drain did not finish within the stop timeout");
      if (last == serve_result::blocked) {
        ring.chan_.reply_bell_.ring();
        ring_completion(ring);
        return enqueue(std::move(r), true);
      }
      return enqueue(std::move(r), false);  // more to drain: its next turn
    }
    if (last == serve_result::blocked) return enqueue(std::move(r), true);
    if (last == serve_result::served) return enqueue(std::move(r), false);  // batch full: back of the queue
    ch.kernel_requests_.publish();
    settle(std::move(r));
  }

  void run(worker& w) {
    name_this_thread("rf-kp-" + std::to_string(w.index));
    std::uint32_t idle = 0;
    std::uint64_t retry_at = 0;
    for (;;) {
      ring_ptr r;
      bool blocked = false;
      {
        std::lock_guard<std::mutex> lock(w.mu);
        // Blocked rings retry every 200 us even while others keep the worker busy.
        if (!w.blocked.empty() && steady_now_ns() >= retry_at) {
          for (auto& b : w.blocked) w.ready.push_back(std::move(b));
          w.blocked.clear();
          retry_at = steady_now_ns() + blocked_retry_ns;
        }
        if (!w.ready.empty()) {
          r = std::move(w.ready.front());
          w.ready.pop_front();
        }
        blocked = !w.blocked.empty();
      }
      if (r) {
        idle = 0;
        serve(w, std::move(r));
        continue;
      }
      if (w.quit.load(std::memory_order_acquire) || w.retired.load(std::memory_order_acquire)) break;
      if (!idle_step(cfg.wait, idle)) continue;
      const doorbell::token t = w.bell.prepare_wait();
      bool work = false;
      {
        std::lock_guard<std::mutex> lock(w.mu);
        work = !w.ready.empty();
        blocked = !w.blocked.empty();
      }
      if (work || w.quit.load(std::memory_order_acquire) || w.retired.load(std::memory_order_acquire)) {
        w.bell.cancel_wait();
        idle = 0;
        continue;
      }
      (void)w.bell.wait(t, blocked ? std::chrono::nanoseconds(blocked_retry_ns) : std::chrono::nanoseconds::zero());
      idle = blocked ? 0 : cfg.wait.park_threshold();
    }
    release_spin_slot();
    w.done.store(true, std::memory_order_release);
  }

  // Moves r's home from `from` to `to`, with its queue entry if it has one. Call with mu held.
  static void move_ring(pooled_ring& r, worker& from, worker& to) {
    ring_ptr entry;
    bool was_blocked = false;
    {
      std::lock_guard<std::mutex> lock(from.mu);
      if (r.home_.load(std::memory_order_relaxed) != &from) return;
      auto it = std::find_if(from.ready.begin(), from.ready.end(), [&](const ring_ptr& p) { return p.get() == &r; });
      if (it != from.ready.end()) {
        entry = std::move(*it);
        from.ready.erase(it);
      } else if (auto b = std::find_if(from.blocked.begin(), from.blocked.end(),
                                       [&](const ring_ptr& p) { return p.get() == &r; });
                 b != from.blocked.end()) {
        entry = std::move(*b);
        from.blocked.erase(b);
        was_blocked = true;
      }
      r.home_.store(&to, std::memory_order_release);
    }
    --from.homed;
    ++to.homed;
    if (entry) enqueue(std::move(entry), was_blocked);
  }

  // A worker stuck in one batch: retire it, and give every ring homed there to a new worker.
  void rescue(const std::shared_ptr<worker>& w) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = std::find(workers.begin(), workers.end(), w);
    if (it == workers.end()) return;
    w->retired.store(true, std::memory_order_release);
    std::shared_ptr<worker> fresh = start_worker(w->index);
    *it = fresh;
    retired.push_back(w);
    stuck.fetch_add(1, std::memory_order_relaxed);
    for (pooled_ring* r : rings)
      if (r->home_.load(std::memory_order_relaxed) == w.get()) {
        move_ring(*r, *w, *fresh);
        rescued.fetch_add(1, std::memory_order_relaxed);
      }
    w->bell.ring();  // an idle retired worker ends now
  }

  // One active ring from the hottest worker to the coldest one, when they differ enough.
  void rebalance(std::chrono::nanoseconds window) {
    std::lock_guard<std::mutex> lock(mu);
    if (workers.size() < 2) return;
    worker *hot = nullptr, *cold = nullptr;
    std::uint64_t hot_ns = 0, cold_ns = ~0ull;
    for (auto& w : workers) {
      const std::uint64_t b = w->busy_ns.load(std::memory_order_relaxed);
      const std::uint64_t d = b - w->busy_seen;
      w->busy_seen = b;
      if (!hot || d > hot_ns) hot = w.get(), hot_ns = d;
      if (!cold || d < cold_ns) cold = w.get(), cold_ns = d;
    }
    // Every ring's progress since the last look (also for rings on cooler workers: keeps it fresh).
    pooled_ring* busiest = nullptr;
    pooled_ring* second = nullptr;
    std::uint64_t busiest_n = 0, second_n = 0;
    for (pooled_ring* r : rings) {
      const std::uint64_t p = r->control_.processed_count();
      const std::uint64_t d = p >= r->processed_seen_ ? p - r->processed_seen_ : p;
      r->processed_seen_ = p;
      if (r->home_.load(std::memory_order_relaxed) != hot || d == 0) continue;
      if (d > busiest_n) {
        second = busiest, second_n = busiest_n;
        busiest = r, busiest_n = d;
      } else if (d > second_n) {
        second = r, second_n = d;
      }
    }
    const double w = static_cast<double>(window.count());
    if (hot == cold || static_cast<double>(hot_ns) < cfg.hot * w || static_cast<double>(cold_ns) > cfg.cold * w ||
        !second)
      return;
    move_ring(*second, *hot, *cold);
    moves.fetch_add(1, std::memory_order_relaxed);
  }

  // A ring waiting in a healthy worker's queue is not hung: its heartbeat moves (the watchdog's
  // hang check reads it) even while a long round of other rings runs before its turn.
  void beat_queued() {
    std::lock_guard<std::mutex> l(mu);
    for (auto& w : workers) {
      std::lock_guard<std::mutex> wl(w->mu);
      for (auto& r : w->ready) r->control_.beat();
      for (auto& r : w->blocked) r->control_.beat();
    }
  }

  void watch() {
    name_this_thread("rf-kp-mon");
    auto last_rebalance = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mon_mu);
    while (!stopping) {
      mon_cv.wait_for(lock, cfg.monitor_every, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      const std::uint64_t now = steady_now_ns();
      const auto stuck_ns =
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(cfg.stuck_after).count());
      std::vector<std::shared_ptr<worker>> hung;
      {
        std::lock_guard<std::mutex> l(mu);
        for (auto& w : workers) {
          const std::uint64_t s = w->batch_start.load(std::memory_order_relaxed);
          if (s != 0 && now > s && now - s > stuck_ns) hung.push_back(w);
        }
        // Join retired workers that have ended (their handler returned). Their objects stay
        // (ended) while the pool lives: a producer may still hold one as a stale home pointer
        // and will lock it, see the ring moved, and look again.
        for (auto it = retired.begin(); it != retired.end();) {
          if ((*it)->done.load(std::memory_order_acquire)) {
            if ((*it)->thread.joinable()) (*it)->thread.join();
            ended.push_back(std::move(*it));
            it = retired.erase(it);
          } else {
            ++it;
          }
        }
      }
      for (auto& w : hung) rescue(w);
      beat_queued();
      const auto t = std::chrono::steady_clock::now();
      if (t - last_rebalance >= cfg.rebalance_every) {
        rebalance(t - last_rebalance);
        last_rebalance = t;
      }
      lock.lock();
    }
  }
};

}  // namespace pool_detail

using pool_detail::pool_state;

// ---- kernel_pool --------------------------------------------------------------------------------

kernel_pool::kernel_pool(pool_config cfg) : state_(std::make_shared<pool_state>()) {
  if (cfg.max_batch == 0) throw std::invalid_argument("kernel_pool: max_batch must be >= 1");
  if (cfg.stuck_after.count() <= 0 || cfg.monitor_every.count() <= 0 || cfg.rebalance_every.count() <= 0)
    throw std::invalid_argument("kernel_pool: stuck_after, monitor_every and rebalance_every must be > 0");
  state_->cfg = std::move(cfg);
  state_->start();
}

kernel_pool::~kernel_pool() { state_->shutdown(); }

const pool_config& kernel_pool::config() const noexcept { return state_->cfg; }

std::shared_ptr<pooled_ring> kernel_pool::attach(const kernel_binding& k, const ring_options& opts,
                                                 doorbell* completion_bell) {
  if (!k.usable()) throw std::invalid_argument("kernel_pool: a kernel binding without name or serve");
  std::shared_ptr<pooled_ring> r(new pooled_ring(state_, k, opts, completion_bell));
  state_->home(*r);
  if (!r->restart()) throw std::logic_error("kernel_pool: a new ring did not start");
  return r;
}

pool_stats kernel_pool::stats() const {
  pool_stats s;
  std::lock_guard<std::mutex> lock(state_->mu);
  s.workers = state_->workers.size();
  s.threads = s.workers;
  for (const auto& w : state_->retired)
    if (!w->done.load(std::memory_order_acquire)) ++s.threads;
  s.rings = state_->rings.size();
  for (const auto& w : state_->workers) s.rings_per_worker.push_back(w->homed);
  s.moves = state_->moves.load(std::memory_order_relaxed);
  s.stuck = state_->stuck.load(std::memory_order_relaxed);
  s.rescued = state_->rescued.load(std::memory_order_relaxed);
  return s;
}

// ---- pooled_ring --------------------------------------------------------------------------------

pooled_ring::pooled_ring(std::shared_ptr<pool_state> pool, const kernel_binding& k, const ring_options& opts,
                         doorbell* completion_bell)
    : pool_(std::move(pool)), chan_(k, opts), completion_bell_(completion_bell) {
  control_.reset(0);
  control_.set_state(kernel_state::idle);
}

pooled_ring::~pooled_ring() { pool_->forget(*this); }

void pooled_ring::notify() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with settle()'s (see the protocol)
  if (pending_.load(std::memory_order_relaxed)) return;
  if (pending_.exchange(true, std::memory_order_acq_rel)) return;
  pool_state::enqueue(shared_from_this(), false);
}

void pooled_ring::request_stop(std::chrono::milliseconds timeout) noexcept {
  if (finished()) return;
  // The earliest deadline asked for wins (abandon after stop, or stop after abandon). Relaxed:
  // the stop flag's release orders it before the worker's read.
  const std::uint64_t deadline =
      steady_now_ns() +
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count());
  std::uint64_t cur = stop_deadline_ns_.load(std::memory_order_relaxed);
  while ((cur == 0 || deadline < cur) &&
         !stop_deadline_ns_.compare_exchange_weak(cur, deadline, std::memory_order_relaxed)) {}
  control_.request_stop();
  notify();
}

bool pooled_ring::stop(std::chrono::milliseconds timeout) {
  request_stop(timeout);
  // The worker finishes the drain, or faults it at its first turn after the deadline. Waiting in
  // its worker's queue behind other rings is progress: keep waiting. Give up only when the ring
  // is inside a handler that the pool counts as stuck (a hang: it may never finish), or at a
  // hard bound far beyond the timeout.
  const auto start = std::chrono::steady_clock::now();
  const auto soft = start + timeout + std::chrono::milliseconds(100);
  const auto hard = soft + std::chrono::seconds(30);
  auto pause = std::chrono::microseconds(20);
  while (!finished()) {
    const auto now = std::chrono::steady_clock::now();
    if (now > hard || (now > soft && pool_->in_stuck_batch(*this))) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::microseconds(2000));
  }
  return control_.current_state() == kernel_state::stopped;
}

bool pooled_ring::restart() {
  if (!finished()) return false;
  if (pending_.load(std::memory_order_acquire)) {
    // A stale queue entry of the previous incarnation: its worker drops it (finished) soon.
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (pending_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    if (pending_.load(std::memory_order_acquire)) return false;
  }
  control_.reset(++epoch_);
  stop_deadline_ns_.store(0, std::memory_order_relaxed);
  chan_.kernel_requests_ = ring_consumer(chan_.requests_.region());
  chan_.kernel_replies_ = ring_producer(chan_.replies_.region(), chan_.replies_.producer_scratch());
  draining_ = false;
  control_.set_state(kernel_state::running);
  finished_.store(false, std::memory_order_release);  // release: the endpoints above, for the worker
  notify();                                           // requests pushed before the restart are served
  return true;
}

void pooled_ring::release_completion_bell() noexcept {
  completion_bell_.store(nullptr, std::memory_order_seq_cst);
  while (bell_users_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
}

int pooled_ring::home_index() const noexcept {
  std::lock_guard<std::mutex> lock(pool_->mu);
  const pool_detail::worker* w = home_.load(std::memory_order_acquire);
  return w ? static_cast<int>(w->index) : -1;
}

}  // namespace ringflow::cpu
