// What every backend's incarnation shares: see ringflow/incarnation.hpp.
#include "ringflow/incarnation.hpp"

namespace ringflow {

void discard_ring(ring_region r) noexcept {
  ring_consumer c(r);
  while (c.try_peek()) c.release();
  c.publish();
}

}  // namespace ringflow
