// ringflow/actors/ring_actor.hpp — the CAF event-based actor that fronts one ring kernel.
//
// Contract
//   * Accepts `fb_msg` requests (CAF `request(...)` or `send`) and answers each request exactly
//     once through CAF's response path: an `fb_msg` reply, or a `caf::error` of category
//     "ringflow" (errors.hpp) — wrong_type, malformed, oversize, overloaded (its window or the
//     sender's per-caller window is full), timeout, stopped, or the kernel's own error status.
//   * The actor only adapts CAF to its ring_core (ring_core.hpp): the core assigns correlation ids,
//     keeps the outbox, stages and publishes; replies go from the completion poller straight to
//     the caller's mailbox (no hop back through this actor).
//   * Per-caller accounting is keyed by the sender's actor id (anonymous senders share one).
//   * When the actor terminates (exit message, runtime shutdown, crash) its core stops: every
//     pending caller gets errc::stopped. The core — and with it the outbox — is otherwise stable
//     across kernel incarnations (ring_core::attach/detach).
// Thread-safety: an actor.
#pragma once

#include <caf/stateful_actor.hpp>

#include <memory>
#include <unordered_map>

#include "ringflow/actors/ring_core.hpp"

namespace ringflow {

struct ring_actor_state {
  std::shared_ptr<ring_core> core;
  std::unordered_map<caf::actor_id, std::shared_ptr<caller_credit>> callers;
  std::shared_ptr<caller_credit> anonymous = std::make_shared<caller_credit>();
  static inline const char* name = "ringflow.ring_actor";
};

caf::behavior ring_actor(caf::stateful_actor<ring_actor_state>* self, std::shared_ptr<ring_core> core);

}  // namespace ringflow
