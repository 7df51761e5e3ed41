// The ring actor: see ringflow/actors/ring_actor.hpp.
#include "ringflow/actors/ring_actor.hpp"

#include <caf/all.hpp>

#include <chrono>

#include "ringflow/portable.hpp"

namespace ringflow {

namespace {
// Credits of the current sender; prunes idle callers when the map grows (actors come and go).
std::shared_ptr<caller_credit>& credit_of(caf::stateful_actor<ring_actor_state>* self) {
  ring_actor_state& st = self->state;
  const caf::strong_actor_ptr& sender = self->current_sender();
  if (!sender) return st.anonymous;
  auto it = st.callers.find(sender->id());
  if (it != st.callers.end()) return it->second;
  if (st.callers.size() >= 4096) {
    for (auto i = st.callers.begin(); i != st.callers.end();) {
      if (i->second.use_count() == 1 && i->second->in_flight.load(std::memory_order_relaxed) == 0)
        i = st.callers.erase(i);
      else ++i;
    }
  }
  return st.callers.emplace(sender->id(), std::make_shared<caller_credit>()).first->second;
}
}  // namespace

caf::behavior ring_actor(caf::stateful_actor<ring_actor_state>* self, std::shared_ptr<ring_core> core) {
  self->state.core = core;
  // The actor's end (exit, shutdown, crash) stops its core: pending callers get errc::stopped.
  self->attach_functor([core] { core->stop(); });
  return {
      [self](fb_msg& request) -> caf::result<fb_msg> {
        completion_target target;
        target.sender = self->current_sender();
        target.request_id = self->current_message_id();
        std::string detail;
        ring_core& core = *self->state.core;
        std::uint64_t id = 0;
        const errc e = core.submit(std::move(request), std::move(target), credit_of(self), detail, &id);
        if (e != errc::ok) return make_error(e, std::move(detail));
        // Latency mode (see ring_actor_options::help_wait): with nothing else in the mailbox, wait
        // briefly for this reply here and hand it to the caller through this worker's queue. A
        // new message ends the wait at once, so under load requests are never serialised.
        const auto help = core.options().help_wait;
        if (help.count() > 0 && self->mailbox().empty()) {
          const auto until = std::chrono::steady_clock::now() + help;
          while (!core.answered(id) && self->mailbox().empty()) {
            if (core.poll_replies_from(self->context()) == 0) {
              if (std::chrono::steady_clock::now() >= until) break;
              cpu_relax();
            }
          }
        }
        return caf::delegated<fb_msg>{};  // answered by the completion poller (or just now)
      },
  };
}

}  // namespace ringflow
