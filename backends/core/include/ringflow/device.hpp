// ringflow/device.hpp — a device incarnations can be placed on (backends/core).
//
// Contract
//   * A device is what the fault ladder supervises as one unit: it has a stable id (the key of its
//     circuit breaker and of its metrics: "sim:0", "cuda:0", "host:<node>") and can be
//     reinitialized after a device-level fault (a sticky error). A backend's device also makes
//     incarnation factories (its own `factory(...)` members: what they take is backend-specific).
//   * The CPU fallback is not a device: rerouting to it is the ladder's last rung.
//   * The decorators compose through this interface: the sim device wraps any device's
//     incarnations with a fault injector; a kernel host runs a backend in a worker process.
// Thread-safety: id()/backend() from any thread; reinitialize() from the fault ladder's thread.
#pragma once

#include <string>

namespace ringflow {

/// What a device's in-process reinitialization achieved.
enum class [[nodiscard]] reinit_outcome{ok, unsupported, failed};

class device {
 public:
  virtual ~device() = default;
  /// Stable id, e.g. "sim:0", "cuda:0": the key of the device's circuit breaker and metrics.
  [[nodiscard]] virtual const std::string& id() const noexcept = 0;
  [[nodiscard]] virtual const char* backend() const noexcept = 0;
  /// In-process reinitialization (e.g. a device reset) after a device-level fault. `detail`
  /// says why when the outcome is not ok. Called by the fault ladder's thread.
  virtual reinit_outcome reinitialize(std::string& detail) = 0;
};

}  // namespace ringflow
