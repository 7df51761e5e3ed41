// Structured logs: see ringflow/runtime/log.hpp.
#include "ringflow/runtime/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <chrono>
#include <ctime>

namespace ringflow::ops {
namespace {

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
  if (file.empty()) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  else sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);  // throws spdlog_ex
  logger_ = std::make_shared<spdlog::logger>("ringflow", sink);
  logger_->set_pattern("%v");  // the record is rendered by us: one JSON object (or text line) per line
  logger_->flush_on(
      spdlog::level::trace);  // every record: logs are few (events, not messages) and must survive a crash
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
  logger_->log(to_spd(l), line);
}

void event_log::audit(const std::string& action, const nlohmann::json& fields) {
  nlohmann::json f = fields.is_object() ? fields : nlohmann::json::object();
  f["audit"] = true;
  if (logger_->level() == spdlog::level::off) return;
  // Audit records are written whatever the level (short of off): privileged actions are never filtered.
  const auto saved = logger_->level();
  if (saved > spdlog::level::info) {
    logger_->log(saved, json_ ? render_json(log_level::info, "audit", action, f) : "audit: " + action + " " + f.dump());
    return;
  }
  write(log_level::info, "audit", action, f);
}

}  // namespace ringflow::ops
