// The service's checks of a kernel-host worker: see peer_check.hpp.
#include "peer_check.hpp"

#include <algorithm>
#include <cstring>

namespace ringflow::process {

namespace {

peer_verdict refuse(kernel_error code, std::string why) {
  peer_verdict v;
  v.ok = false;
  v.code = code;
  v.why = std::move(why);
  return v;
}

// The state (acquire: pairs with the kernel's release of state; what it announces — an error code
// and detail — was written before it) and the counters, checked against what was seen before.
std::optional<peer_verdict> check_control(const control_block& s, const peer_seen& seen, std::uint32_t& raw,
                                          std::uint64_t& hb, std::uint64_t& done) {
  raw = load_acquire(s.state);
  if (raw > static_cast<std::uint32_t>(kernel_state::faulted))
    return refuse(kernel_error::internal, "kernel host: control block corrupt (state " + std::to_string(raw) + ")");
  static constexpr int rank[] = {0, 1, 2, 3, 4, 4};
  if (rank[raw] < rank[seen.state])
    return refuse(kernel_error::internal, std::string("kernel host: control block corrupt (state went back from ") +
                                              to_string(static_cast<kernel_state>(seen.state)) + " to " +
                                              to_string(static_cast<kernel_state>(raw)) + ")");
  hb = load_relaxed(s.heartbeat);
  done = load_relaxed(s.processed);
  if (hb < seen.heartbeat || done < seen.processed)
    return refuse(kernel_error::internal,
                  "kernel host: control block corrupt (heartbeat or processed count went back)");
  return std::nullopt;
}

// The rings' shared indices against the service's own side of them (acquire: pairs with the
// worker's release of head / tail, so the slots they cover are visible when the service reads them).
std::optional<peer_verdict> check_rings(const ring_storage& requests, const ring_storage& replies, peer_seen& seen,
                                        std::uint64_t& req_head, std::uint64_t& rep_tail) {
  if (!requests.region().config_intact() || !replies.region().config_intact())
    return refuse(kernel_error::bad_ring, "kernel host: a ring's config line was overwritten");
  const ring_config rq = requests.region().config();
  const ring_config rp = replies.region().config();
  ring_observer req(requests.region()), rep(replies.region());
  req_head = load_acquire(requests.region().shared()->head);
  const std::uint64_t req_tail = req.tail();
  if (req_head < seen.request_head || req_head > req_tail + rq.capacity)
    return refuse(kernel_error::bad_ring, "kernel host: request ring head corrupt (" + std::to_string(req_head) +
                                              ", was " + std::to_string(seen.request_head) + ", tail " +
                                              std::to_string(req_tail) + ")");
  rep_tail = load_acquire(replies.region().shared()->tail);
  const std::uint64_t rep_head = rep.head();
  if (rep_tail < seen.reply_tail || rep_tail > rep_head + 2ull * rp.capacity)
    return refuse(kernel_error::bad_ring, "kernel host: response ring tail corrupt (" + std::to_string(rep_tail) +
                                              ", was " + std::to_string(seen.reply_tail) + ", head " +
                                              std::to_string(rep_head) + ")");
  return std::nullopt;
}

// A state the worker moved to. A fault carries a checked error code and a bounded copy of its detail
// (written before error_code's release, which the acquire here pairs with).
std::optional<peer_verdict> state_change(const control_block& s, std::uint32_t raw, peer_state_change& out) {
  out.state = static_cast<kernel_state>(raw);
  if (out.state != kernel_state::faulted) return std::nullopt;
  const std::uint32_t ec = load_acquire(s.error_code);
  if (ec == 0 || ec > static_cast<std::uint32_t>(kernel_error::device_lost))
    return refuse(kernel_error::internal,
                  "kernel host: control block corrupt (faulted with error code " + std::to_string(ec) + ")");
  char detail[control_block::detail_bytes];
  std::memcpy(detail, s.error_detail, sizeof detail);
  detail[control_block::detail_bytes - 1] = 0;
  out.error = static_cast<kernel_error>(ec);
  out.error_flags = load_relaxed(s.error_flags) & kernel_error_flags::sticky;
  out.detail = detail;
  return std::nullopt;
}

}  // namespace

peer_verdict check_peer(const control_block& s, const ring_storage& requests, const ring_storage& replies,
                        peer_seen& seen, control_block& local) {
  std::uint32_t raw = 0;
  std::uint64_t hb = 0, done = 0;
  if (auto bad = check_control(s, seen, raw, hb, done)) return *bad;
  std::uint64_t req_head = 0, rep_tail = 0;
  if (auto bad = check_rings(requests, replies, seen, req_head, rep_tail)) return *bad;
  // Mirrored before the state is looked at (a refused fault below still leaves these current).
  seen.request_head = req_head;
  seen.reply_tail = rep_tail;
  seen.heartbeat = hb;
  seen.processed = done;
  store_relaxed(local.heartbeat, hb);
  store_relaxed(local.processed, done);
  store_relaxed(local.handler_errors, load_relaxed(s.handler_errors));
  store_relaxed(local.rejected, load_relaxed(s.rejected));
  store_relaxed(local.last_progress, std::min(load_relaxed(s.last_progress), hb));
  peer_verdict v;
  if (raw != seen.state) {
    peer_state_change change;
    if (auto bad = state_change(s, raw, change)) return *bad;  // seen.state stays: the worker dies for it
    if (change.state != kernel_state::idle && change.state != kernel_state::starting) v.change = std::move(change);
    seen.state = raw;
  }
  return v;
}

}  // namespace ringflow::process
