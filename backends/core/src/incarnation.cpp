// What every backend's incarnation shares: see ringflow/incarnation.hpp.
#include "ringflow/incarnation.hpp"

namespace ringflow {

void discard_ring(ring_region r) noexcept {
  if (r.config().is_v2()) {  // nothing to read: the consumer's head jumps to the producer's tail
    store_release(r.shared()->head, load_acquire(r.shared()->tail));
    return;
  }
  ring_consumer c(r);
  while (c.try_peek()) c.release();
  c.publish();
}

void discard_rings(ring_region requests, ring_region replies) noexcept {
  if (!requests.config().is_v2()) {
    discard_ring(requests);
    discard_ring(replies);
    return;
  }
  // v2: the device's reply tail is published lazily (and not at all by a kernel that died), so
  // every cursor of the pair restarts at the request producer's tail, which the host owns: the
  // next request and its reply both take position `p`. Stale units carry older flags.
  const std::uint64_t p = load_acquire(requests.shared()->tail);
  store_release(requests.shared()->head, p);
  store_release(replies.shared()->tail, p);
  store_release(replies.shared()->head, p);
}

}  // namespace ringflow
