// ringflow/runtime/log.hpp — structured logs: one JSON object per line (spdlog), or plain text.
//
// Contract
//   * Every record has `ts` (UTC, ISO 8601 with microseconds), `level`, `component` and `msg`,
//     then the caller's fields (e.g. `ring`, `device`, `trace_id`, `event`); keys of the fields
//     never replace the four fixed ones. format "text" renders the same record as
//     `ts level component: msg key=value ...` for a human at a terminal.
//   * Components used by the program: `program` (start, stop, summary), `config` (the effective
//     config at start), `ladder` (one record per fault, restart, reinitialize, reroute, probe,
//     fail-back, breaker transition: the ladder_event fields), `supervisor`, `http`, `load`,
//     `audit` (privileged actions: config reloads with what changed, signals, shutdown).
//   * Output goes to stderr or to `file` (appended); every record is written at once with write(2)
//     (records are events, not per-message: few, and they must survive a crash).
//   * Every line is valid UTF-8: invalid bytes in a message or a field (a config value, a path, a
//     kernel's detail) become U+FFFD in both formats (utf8.hpp), never an exception.
//   * A failed write (a closed pipe: `ringflow run ... | head`, a full disk) is counted
//     (write_failures(), exposed as ringflow_log_write_failures_total) and the record is dropped;
//     the run goes on. The program ignores SIGPIPE, so a closed log pipe cannot kill it.
// Thread-safety: all members from any thread (spdlog's multi-threaded sinks).
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace ringflow::ops {

enum class log_level { trace, debug, info, warn, error, off };
/// Parses spdlog's level names ("trace" ... "off"); nullopt-like false for others.
bool parse_log_level(const std::string& s, log_level& out);
const char* to_string(log_level l) noexcept;

class event_log {
 public:
  /// format: "json" or "text"; file: "" = stderr. Throws std::runtime_error if the file cannot be opened.
  event_log(const std::string& level, const std::string& format, const std::string& file);
  ~event_log();

  void set_level(const std::string& level);  // ignores unknown names (the config layer checks them)
  /// A live status line shares the terminal: each record first clears that line ("\r" + erase).
  void set_status_line(bool on) noexcept { status_line_ = on; }
  bool enabled(log_level l) const;

  void write(log_level l, const std::string& component, const std::string& msg,
             const nlohmann::json& fields = nlohmann::json::object());
  void info(const std::string& component, const std::string& msg,
            const nlohmann::json& fields = nlohmann::json::object()) {
    write(log_level::info, component, msg, fields);
  }
  void warn(const std::string& component, const std::string& msg,
            const nlohmann::json& fields = nlohmann::json::object()) {
    write(log_level::warn, component, msg, fields);
  }
  void error(const std::string& component, const std::string& msg,
             const nlohmann::json& fields = nlohmann::json::object()) {
    write(log_level::error, component, msg, fields);
  }
  /// An audit record (component "audit", level info, `"audit": true`): always written unless the level is off.
  void audit(const std::string& action, const nlohmann::json& fields = nlohmann::json::object());

  /// Records (or parts of one) that could not be written since the log opened.
  [[nodiscard]] std::uint64_t write_failures() const noexcept { return failures_->load(std::memory_order_relaxed); }

  /// The rendering of one record (for tests and for the text format).
  static std::string render_json(log_level l, const std::string& component, const std::string& msg,
                                 const nlohmann::json& fields);

 private:
  std::shared_ptr<spdlog::logger> logger_;
  std::shared_ptr<std::atomic<std::uint64_t>> failures_ = std::make_shared<std::atomic<std::uint64_t>>(0);
  bool json_ = true;
  bool status_line_ = false;
};

}  // namespace ringflow::ops
