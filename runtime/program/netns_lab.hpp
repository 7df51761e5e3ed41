// netns_lab: the network `ringflow cluster up` builds for member_partition faults (Linux network
// namespaces, root only). docs/OPERATIONS.md "Clusters".
//
// Contract
//   * setup(n): a hub namespace `rfh<pid>` holding a bridge, and per member i a namespace
//     `rfm<pid>-<i>` joined to the bridge by a veth pair (`va<i>` in the hub, `vb<i>` in the
//     member's namespace with address 10.231.0.<i+1>/24, loopback up). The addresses exist only
//     inside these namespaces; the host's own namespace is not touched (no interface, route or
//     address is added there). false with a reason when namespaces cannot be made (not root, no
//     `ip`, a container without CAP_SYS_ADMIN): callers skip (exit 77).
//   * enter(i): in a forked child before exec, moves it into member i's namespace (setns; the fd
//     was opened at setup, so this is async-signal-safe).
//   * partition(i, true) sets `va<i>` down: member i's links are cut (its process keeps running;
//     nothing is reset, packets are dropped, as in a real partition); partition(i, false) heals.
//   * teardown() (also the destructor) deletes the namespaces, and with them the veth pairs and
//     the bridge. Idempotent.
// Thread-safety: one thread (the `cluster up` watcher).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ringflow::program {

class netns_lab {
 public:
  netns_lab() = default;
  ~netns_lab();
  netns_lab(const netns_lab&) = delete;
  netns_lab& operator=(const netns_lab&) = delete;

  bool setup(std::size_t members, std::string& why);
  [[nodiscard]] std::string address(std::size_t i) const;  // member i's address
  [[nodiscard]] const std::string& ns_name(std::size_t i) const { return members_.at(i); }
  /// In a forked child only: joins member i's namespace; false if setns failed.
  bool enter(std::size_t i) const noexcept;
  bool partition(std::size_t i, bool cut, std::string& why);
  void teardown();

 private:
  std::string hub_;
  std::vector<std::string> members_;
  std::vector<int> fds_;
};

}  // namespace ringflow::program
