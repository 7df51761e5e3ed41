// The load driver: see load_driver.hpp.
#include "load_driver.hpp"

#include <algorithm>
#include <random>

#include "ringflow/actors/errors.hpp"
#include "ringflow/wait_policy.hpp"

namespace ringflow::ops::engine_parts {

using clock = std::chrono::steady_clock;

// ---- token bucket ---------------------------------------------------------------------------------

void token_bucket::set_rate(double per_s, clock::time_point now) {
  if (last_ == clock::time_point{}) last_ = now;
  rate_ = per_s;
  tokens_ = std::min(tokens_, burst());
}

std::chrono::nanoseconds token_bucket::take(clock::time_point now) {
  if (rate_ <= 0) return std::chrono::nanoseconds::zero();
  tokens_ = std::min(burst(), tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
  last_ = now;
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return std::chrono::nanoseconds::zero();
  }
  // Capped in double before the cast (a tiny rate must wait long, not overflow into a spin).
  const double ns = std::min((1.0 - tokens_) / rate_ * 1e9, 3.6e12);  // at most an hour per wait
  return std::max(std::chrono::nanoseconds(1), std::chrono::nanoseconds(static_cast<std::int64_t>(ns)));
}

// ---- lifecycle ---------------------------------------------------------------------------------------

void load_driver::configure(double ingress_rate_per_s, std::int64_t max_payload_bytes, double sample_ratio) {
  {
    std::lock_guard<std::mutex> lock(bucket_mu_);
    bucket_.set_rate(ingress_rate_per_s, clock::now());
  }
  max_payload_.store(max_payload_bytes);
  sample_ratio_.store(sample_ratio);
}

void load_driver::start(const std::vector<load_spec>& specs, std::shared_ptr<running_graph> graph, trace_writer* tracer,
                        std::uint64_t load_start_ns) {
  graph_ = std::move(graph);
  tracer_ = tracer;
  load_start_ns_ = load_start_ns;
  for (const load_spec& s : specs) {
    auto g = std::make_unique<generator>();
    g->spec = s;
    g->msg = find_message(s.message);
    gens_.push_back(std::move(g));
  }
  for (auto& g : gens_) {
    generator* p = g.get();
    g->thread = std::thread([this, p] {
      name_this_thread("rf-load-" + p->spec.name);
      run(*p);
    });
  }
}

void load_driver::stop() {
  stop_.store(true, std::memory_order_release);
  for (auto& g : gens_)
    if (g->thread.joinable()) g->thread.join();
}

bool load_driver::finished() const {
  for (const auto& g : gens_)
    if (!g->finished.load(std::memory_order_acquire)) return false;
  return true;
}

std::uint64_t load_driver::open_total() const {
  std::uint64_t n = 0;
  for (const auto& g : gens_) n += g->open_count.load(std::memory_order_acquire);
  return n;
}

load_counts load_driver::counts() const {
  // Every generator's lock (in one order; answer() takes only its own): a consistent cut.
  std::vector<std::unique_lock<std::mutex>> locks;
  for (const auto& g : gens_) locks.emplace_back(g->mu);
  load_counts c;
  c.sent = sent_.load();
  c.replied = replied_.load();
  c.errors = errors_.load();
  c.duplicated = duplicated_.load();
  c.wrong = wrong_.load();
  for (const auto& g : gens_) c.open += g->open.size();
  return c;
}

load_counts load_driver::totals() const noexcept {
  load_counts c;
  c.sent = sent_.load();
  c.replied = replied_.load();
  c.errors = errors_.load();
  c.duplicated = duplicated_.load();
  c.wrong = wrong_.load();
  c.open = open_total();
  return c;
}

std::map<std::string, std::uint64_t> load_driver::errors_by_code() const {
  std::lock_guard<std::mutex> lock(err_mu_);
  return errors_by_code_;
}

// ---- a generator ---------------------------------------------------------------------------------------

// Waits for `due` and for room in the window; true when the message may go now, false to loop.
bool load_driver::pace(generator& g, clock::time_point due) {
  const auto now = clock::now();
  if (due > now) {
    std::this_thread::sleep_for(std::min<clock::duration>(due - now, std::chrono::milliseconds(20)));  // pacing
    return false;
  }
  if (g.open_count.load(std::memory_order_acquire) >= g.spec.max_in_flight) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));  // the window is full: wait for answers
    return false;
  }
  return true;
}

// Waits until the ingress bucket lets one message in; false when the load is stopped meanwhile.
bool load_driver::acquire_token() {
  for (;;) {
    std::chrono::nanoseconds wait;
    {
      std::lock_guard<std::mutex> lock(bucket_mu_);
      wait = bucket_.take(clock::now());
    }
    if (wait == std::chrono::nanoseconds::zero()) return true;
    if (stop_.load(std::memory_order_acquire)) return false;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(wait, std::chrono::milliseconds(10)));  // pacing
  }
}

void load_driver::refuse(generator& g, std::uint64_t seq, const std::string& code, const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(g.mu);  // refused before it entered: sent, and an error
    sent_.fetch_add(1, std::memory_order_relaxed);
    errors_.fetch_add(1, std::memory_order_relaxed);
  }
  count_error(g.spec.name, seq, code);
  log_failure(g, seq, code + ": " + why, 0, 0);
}

void load_driver::run(generator& g) {
  const load_spec& s = g.spec;
  std::mt19937_64 rng(std::hash<std::string>{}(s.name) ^ load_start_ns_);
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  const auto begin = clock::now() + std::chrono::nanoseconds(static_cast<std::int64_t>(s.start_s * 1e9));
  const auto end = s.duration_s > 0 ? begin + std::chrono::nanoseconds(static_cast<std::int64_t>(s.duration_s * 1e9))
                                    : clock::time_point::max();
  const double period_ns = 1e9 / s.rate;
  std::uint64_t seq = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    // Pacing: the i-th message is due at begin + i/rate (no catch-up burst beyond the window).
    const auto due = begin + std::chrono::nanoseconds(static_cast<std::int64_t>(static_cast<double>(seq) * period_ns));
    if (due >= end) break;
    if (!pace(g, due)) continue;
    if (!acquire_token()) break;
    fb_msg m;
    try {
      m = g.msg->make(seq, s.payload_bytes);  // a plugin's hook may fail (it says why)
    } catch (const std::exception& e) {
      refuse(g, seq++, "load_request_failed", e.what());
      continue;
    }
    if (static_cast<std::int64_t>(m.bytes.size()) > max_payload_.load(std::memory_order_relaxed)) {
      refuse(g, seq++, ringflow::to_string(errc::oversize), "the message exceeds limits.max_payload_bytes");
      continue;
    }
    std::uint64_t th = 0, tl = 0, span = 0;
    if (tracer_ && coin(rng) < sample_ratio_.load(std::memory_order_relaxed)) {
      th = rng() | 1, tl = rng(), span = rng() | 1;
      m.trace_hi = th, m.trace_lo = tl, m.span = span;
    }
    {
      std::lock_guard<std::mutex> lock(g.mu);
      const auto due_ns = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(due.time_since_epoch()).count());
      g.open.emplace(seq, generator::open_push{steady_now(), due_ns});
      sent_.fetch_add(1, std::memory_order_relaxed);
    }
    g.open_count.fetch_add(1, std::memory_order_acq_rel);
    const std::uint64_t my = seq++;
    graph_->push(s.target, std::move(m),
                 [this, &g, my, th, tl, span](graph_result r) { answer(g, my, std::move(r), th, tl, span); });
  }
  g.finished.store(true, std::memory_order_release);
}

// ---- answers ---------------------------------------------------------------------------------------------

void load_driver::answer(generator& g, std::uint64_t seq, graph_result&& r, std::uint64_t trace_hi,
                         std::uint64_t trace_lo, std::uint64_t span) {
  const std::uint64_t now = steady_now();
  // The outcome first (it needs no lock): every terminal output must carry the sequence sent.
  std::string error;
  bool right = r.ok();
  if (r.ok()) {
    for (const fb_msg& out : r.outputs) {
      const message_info* t = find_message(out.type());
      if (!t) {
        right = false;
        error = "wrong answer: an output of an unknown type";
        continue;
      }
      if (t->sequence_of)
        if (const std::optional<std::uint64_t> s = t->sequence_of(out); s && *s != seq) {
          right = false;
          error = "wrong answer: an output carries another sequence number";
        }
      if (std::string why; right && t->check && !t->check(out, why)) {
        right = false;
        error = "wrong answer: " + t->name + " " + why;
      }
    }
  } else {
    error = std::string(ringflow::to_string(r.code)) + ": " + r.detail;
  }
  std::uint64_t t0 = 0, due = 0;
  {
    std::lock_guard<std::mutex> lock(g.mu);
    auto it = g.open.find(seq);
    if (it == g.open.end()) {  // answered before: the exactly-once promise is broken
      duplicated_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    t0 = it->second.push_ns;
    due = it->second.due_ns;
    g.open.erase(it);
    if (r.ok()) (right ? replied_ : wrong_).fetch_add(1, std::memory_order_relaxed);
    else errors_.fetch_add(1, std::memory_order_relaxed);
  }
  g.open_count.fetch_sub(1, std::memory_order_release);
  latency_.record(now > t0 ? now - t0 : 0);
  intended_.record(now > due ? now - due : 0);
  intended_hist_.observe(static_cast<double>(now > due ? now - due : 0) / 1e9);
  if (!r.ok()) count_error(g.spec.name, seq, ringflow::to_string(r.code));
  if (!error.empty()) log_failure(g, seq, error, trace_hi, trace_lo);
  if (tracer_ && (trace_hi | trace_lo))
    tracer_->ingress(trace_hi, trace_lo, span, g.spec.name, g.spec.target, seq, t0, now, error.empty(), error);
}

void load_driver::count_error(const std::string& generator, std::uint64_t seq, const std::string& code) {
  std::lock_guard<std::mutex> lock(err_mu_);
  ++errors_by_code_[code];
  if (failed_.size() < failed_sequences_max)
    failed_.push_back({{"generator", generator}, {"sequence", seq}, {"code", code}});
  else ++failed_dropped_;
}

nlohmann::json load_driver::failed_sequences(std::uint64_t& dropped) const {
  std::lock_guard<std::mutex> lock(err_mu_);
  dropped = failed_dropped_;
  return failed_;
}

// One warn record per failed message, with its trace id when it was traced; after the first 100,
// one in 1000 (a storm of identical errors must not drown the log).
void load_driver::log_failure(const generator& g, std::uint64_t seq, const std::string& error, std::uint64_t trace_hi,
                              std::uint64_t trace_lo) {
  const std::uint64_t n = failures_logged_.fetch_add(1, std::memory_order_relaxed);
  if (n >= 100 && n % 1000 != 0) return;
  nlohmann::json f = {{"generator", g.spec.name},
                      {"node", g.spec.target},
                      {"sequence", seq},
                      {"error", error},
                      {"failures_so_far", n + 1}};
  if (trace_hi | trace_lo) {
    std::uint64_t id[2] = {trace_hi, trace_lo};
    f["trace_id"] = trace_writer::hex(id, 16);
  }
  log_.warn("load", "message failed", f);
}

}  // namespace ringflow::ops::engine_parts
