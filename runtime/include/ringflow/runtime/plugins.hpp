// ringflow/runtime/plugins.hpp — loading kernel plugins (ringflow/plugin.hpp) into the catalog.
//
// Contract
//   * load_plugins() loads a list of plugin files all or none. For each file: open it, hash its
//     content (SHA-256) from the open descriptor, dlopen that same descriptor (/proc/self/fd/N,
//     RTLD_NOW | RTLD_LOCAL: what was hashed is what runs, and no plugin symbol is visible to
//     another), find `ringflow_plugin_v1`, call it (an exception is caught), check the versions
//     (plugin ABI, ringflow major.minor, FlatBuffers major.minor.revision must equal this
//     program's; both are named when they differ), then check the contents: names present and
//     sane, function pointers present, no kernel, message type (by name or type id) or function
//     defined twice — within the plugin, between the plugins of the list, or with what the
//     catalog already has (the built-ins, plugins loaded before) — and every kernel's request and
//     reply types known (the plugin's own, a built-in, or another plugin's of the list) with the
//     same type id. Only when every file passes are they added to the catalog (and their device
//     tables registered); otherwise every file opened by this call is closed again and `problems`
//     says, per file, why.
//   * A file already loaded (same content hash) is not loaded again: its entry is returned.
//     A different file at a path already loaded is refused (a running process cannot replace a
//     plugin). Plugins are never unloaded.
//   * expected_sha256 (kernel-host workers: what the service loaded) makes a file whose hash
//     differs a problem, naming both hashes.
//   * Plugins are code: they are loaded only from the paths given (a topology's `plugins:`, the
//     worker's --plugin). Every load is recorded (loaded_plugins(): path, hash, versions, what it
//     added); the program logs them (event "plugin loaded") and `ringflow validate` prints them.
// Thread-safety: load_plugins() serialises itself; the catalog's own locks cover readers.
#pragma once

#include <string>
#include <vector>

#include "ringflow/runtime/topology.hpp"

namespace ringflow::ops {

struct loaded_plugin {
  std::string path;  // the file as given (resolved)
  std::string sha256;
  std::string name;  // the plugin's own name (its CMake target)
  std::string ringflow_version, flatbuffers_version;
  std::vector<std::string> kernels, messages, functions;
  std::vector<std::string> gpu_backends;  // device tables it brought
  std::vector<std::string> loadable;      // its message types with load generator hooks
};

struct plugin_problem {
  std::string path;
  std::string what;
};

/// Loads `paths` (see the contract). On success `out` has one entry per path, in order.
bool load_plugins(const std::vector<std::string>& paths, std::vector<loaded_plugin>& out,
                  std::vector<plugin_problem>& problems, const std::vector<std::string>& expected_sha256 = {});

/// Every plugin this process has loaded, in load order.
std::vector<loaded_plugin> loaded_plugins();

/// The topology parser's plugin loader: loads a topology's `plugins:` and adds their names (and
/// every catalog name they depend on) to the names the file is checked against. Problems become
/// topology errors at the plugin's line ("file:line:col: plugin 'x': why").
plugin_loader topology_plugin_loader();

/// load_topology() with the plugin loader.
std::optional<topology> load_topology_with_plugins(const std::string& path, std::vector<topology_error>& errors,
                                                   const topology_limits& limits = {});

/// "sha256:<64 hex>" of a file's content; "" with `error` when it cannot be read.
std::string sha256_of_file(const std::string& path, std::string& error);

/// Kernel-host worker arguments that make a worker load the same plugins (--plugin P
/// --plugin-sha256 H for each).
std::vector<std::string> worker_plugin_args(const std::vector<plugin_ref>& plugins);

}  // namespace ringflow::ops
