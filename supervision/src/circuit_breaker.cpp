// The per-device circuit breaker: see ringflow/supervision/circuit_breaker.hpp.
#include "ringflow/supervision/circuit_breaker.hpp"

#include <algorithm>
#include <stdexcept>

namespace ringflow {

const char* to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "unknown";
}

namespace {
breaker_config checked(breaker_config cfg) {
  if (cfg.failure_threshold == 0) throw std::invalid_argument("circuit breaker: failure_threshold must be >= 1");
  if (cfg.open_for.count() <= 0) throw std::invalid_argument("circuit breaker: open_for must be > 0");
  if (cfg.window.count() <= 0) throw std::invalid_argument("circuit breaker: window must be > 0");
  if (!(cfg.backoff >= 1.0)) throw std::invalid_argument("circuit breaker: backoff must be >= 1");
  if (cfg.max_open_for < cfg.open_for) cfg.max_open_for = cfg.open_for;
  return cfg;
}
}  // namespace

circuit_breaker::circuit_breaker(breaker_config cfg) : cfg_(checked(cfg)), cooldown_(cfg_.open_for) {}

void circuit_breaker::reconfigure(breaker_config cfg) {
  cfg_ = checked(cfg);
  if (state_ == breaker_state::closed) cooldown_ = cfg_.open_for;
  cooldown_ = std::min(cooldown_, cfg_.max_open_for);
}

void circuit_breaker::forget_before(clock::time_point now) {
  while (!failures_.empty() && now - failures_.front() >= cfg_.window) failures_.pop_front();
}

void circuit_breaker::open(clock::time_point now) {
  state_ = breaker_state::open;
  probe_at_ = now + cooldown_;
  ++opens_;
}

bool circuit_breaker::record_failure(clock::time_point now) {
  if (state_ == breaker_state::half_open) {
    probe_failed(now);
    return true;
  }
  forget_before(now);
  failures_.push_back(now);
  if (state_ == breaker_state::closed && failures_.size() >= cfg_.failure_threshold) {
    open(now);
    return true;
  }
  return false;
}

bool circuit_breaker::trip(clock::time_point now) {
  if (state_ == breaker_state::open) return false;
  open(now);
  return true;
}

bool circuit_breaker::try_probe(clock::time_point now) {
  if (state_ == breaker_state::closed) return true;
  if (state_ == breaker_state::half_open || now < probe_at_) return false;
  state_ = breaker_state::half_open;
  return true;
}

void circuit_breaker::probe_succeeded(clock::time_point) {
  state_ = breaker_state::closed;
  failures_.clear();
  cooldown_ = cfg_.open_for;
}

void circuit_breaker::probe_failed(clock::time_point now) {
  // In double and capped before the cast: a large backoff must not overflow the duration.
  const double next_ms = std::min(std::chrono::duration<double, std::milli>(cooldown_).count() * cfg_.backoff,
                                  std::chrono::duration<double, std::milli>(cfg_.max_open_for).count());
  cooldown_ = std::chrono::milliseconds(static_cast<std::int64_t>(next_ms));
  state_ = breaker_state::closed;  // open() below counts the re-open
  open(now);
}

}  // namespace ringflow
