// Structured logs: see ringflow/runtime/log.hpp.
#include "ringflow/runtime/log.hpp"

#include <fcntl.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <stdexcept>

#include "ringflow/runtime/utf8.hpp"

namespace ringflow::ops {
namespace {

// Writes each record with write(2) to a descriptor (stderr or the log file, O_APPEND). A write
// that fails (EPIPE from a closed pipe, ENOSPC, EIO) drops the rest of the record and is counted;
// nothing is thrown into the caller and nothing is retried forever.
class fd_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  fd_sink(int fd, bool owned, std::shared_ptr<std::atomic<std::uint64_t>> failures)
      : fd_(fd), owned_(owned), failures_(std::move(failures)) {}
  ~fd_sink() override {
    if (owned_) ::close(fd_);
  }
  fd_sink(const fd_sink&) = delete;
  fd_sink& operator=(const fd_sink&) = delete;

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    const char* p = buf.data();
    std::size_t left = buf.size();
    int again = 0;
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n > 0) {
        p += n;
        left -= static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && ++again < 100) {  // a non-blocking stderr
        ::usleep(1000);
        continue;
      }
      failures_->fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  void flush_() override {}

 private:
  int fd_;
  bool owned_;
  std::shared_ptr<std::atomic<std::uint64_t>> failures_;
};

spdlog::level::level_enum to_spd(log_level l) {
  switch (l) {
    case log_level::trace: return spdlog::level::trace;
    case log_level::debug: return spdlog::level::debug;
    case log_level::info: return spdlog::level::info;
    case log_level::warn: return spdlog::level::warn;
    case log_level::error: return spdlog::level::err;
    case log_level::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us));
  return out;
}

}  // namespace

bool parse_log_level(const std::string& s, log_level& out) {
  static const std::pair<const char*, log_level> names[] = {{"trace", log_level::trace}, {"debug", log_level::debug},
                                                            {"info", log_level::info},   {"warn", log_level::warn},
                                                            {"error", log_level::error}, {"off", log_level::off}};
  for (const auto& [n, l] : names)
    if (s == n) {
      out = l;
      return true;
    }
  return false;
}

const char* to_string(log_level l) noexcept {
  switch (l) {
    case log_level::trace: return "trace";
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    case log_level::off: return "off";
  }
  return "info";
}

event_log::event_log(const std::string& level, const std::string& format, const std::string& file)
    : json_(format != "text") {
  spdlog::sink_ptr sink;
  if (file.empty()) {
    sink = std::make_shared<fd_sink>(STDERR_FILENO, false, failures_);
  } else {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw std::runtime_error("cannot open log file '" + valid_utf8(file) + "': " + std::strerror(errno));
    sink = std::make_shared<fd_sink>(fd, true, failures_);
  }
  logger_ = std::make_shared<spdlog::logger>("ringflow", sink);
  logger_->set_pattern("%v");  // the record is rendered by us: one JSON object (or text line) per line
  set_level(level);
}

event_log::~event_log() {
  if (logger_) logger_->flush();
}

void event_log::set_level(const std::string& level) {
  log_level l;
  if (parse_log_level(level, l)) logger_->set_level(to_spd(l));
}

bool event_log::enabled(log_level l) const { return logger_->should_log(to_spd(l)); }

std::string event_log::render_json(log_level l, const std::string& component, const std::string& msg,
                                   const nlohmann::json& fields) {
  nlohmann::ordered_json j;
  j["ts"] = utc_now();
  j["level"] = to_string(l);
  j["component"] = component;
  j["msg"] = msg;
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it)
      if (!j.contains(it.key())) j[it.key()] = it.value();
  // Invalid UTF-8 in a field (e.g. a kernel's error detail) is replaced, never thrown on.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void event_log::write(log_level l, const std::string& component, const std::string& msg, const nlohmann::json& fields) {
  if (!enabled(l)) return;
  const char* clear = status_line_ ? "\r\x1b[K" : "";
  if (json_) {
    logger_->log(to_spd(l), clear + render_json(l, component, msg, fields));
    return;
  }
  std::string line = clear + utc_now() + " " + to_string(l) + " " + component + ": " + msg;
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it)
      if (it.key() != "at_ns")  // a steady-clock stamp: for machines, noise for a reader
        line += " " + it.key() + "=" +
                (it.value().is_string() ? it.value().get<std::string>()
                                        : it.value().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  logger_->log(to_spd(l), valid_utf8(line));  // a config value or path may hold any byte
}

void event_log::audit(const std::string& action, const nlohmann::json& fields) {
  nlohmann::json f = fields.is_object() ? fields : nlohmann::json::object();
  f["audit"] = true;
  if (logger_->level() == spdlog::level::off) return;
  // Audit records are written whatever the level (short of off): privileged actions are never filtered.
  const auto saved = logger_->level();
  if (saved > spdlog::level::info) {
    logger_->log(saved, json_ ? render_json(log_level::info, "audit", action, f)
                              : valid_utf8("audit: " + action + " " +
                                           f.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    return;
  }
  write(log_level::info, "audit", action, f);
}

}  // namespace ringflow::ops
