// HTTP/1.1 request parsing: see http_parse.hpp.
#include "http_parse.hpp"

#include <cstdint>

namespace ringflow::ops::http {

namespace {

constexpr std::size_t max_fields = 100;

bool is_tchar(unsigned char c) {  // RFC 9110 5.6.2 token characters
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

parse_result fail(int code, std::string why) {
  parse_result r;
  r.status = parse_status::error;
  r.code = code;
  r.error = std::move(why);
  return r;
}

// Does a comma-separated header value contain `token` (case-insensitive)?
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

parse_result parse_request(std::string_view buf, std::size_t max_header_bytes, std::size_t max_body_bytes) {
  // Find the end of the header: the first empty line after the request line.
  std::size_t pos = 0;
  while (pos < buf.size() && (buf[pos] == '\r' || buf[pos] == '\n')) {  // leading empty lines
    if (buf[pos] == '\r' && (pos + 1 >= buf.size() || buf[pos + 1] != '\n')) {
      if (pos + 1 >= buf.size()) break;  // a CR at the end: wait for its LF
      return fail(400, "a bare CR before the request line");
    }
    pos += buf[pos] == '\r' ? 2 : 1;
    if (pos > max_header_bytes) return fail(431, "request header larger than the limit");
  }
  const std::size_t start = pos;
  std::size_t header_end = std::string_view::npos;  // index just past the empty line
  std::size_t line_start = start;
  for (std::size_t i = start; i < buf.size() && i < max_header_bytes + 1; ++i) {
    if (buf[i] != '\n') continue;
    std::size_t line_len = i - line_start;
    if (line_len > 0 && buf[i - 1] == '\r') --line_len;
    if (line_len == 0 && line_start > start) {
      header_end = i + 1;
      break;
    }
    line_start = i + 1;
  }
  if (header_end == std::string_view::npos) {
    if (buf.size() > max_header_bytes) return fail(431, "request header larger than the limit");
    return {};
  }
  if (header_end > max_header_bytes) return fail(431, "request header larger than the limit");

  // Split into lines (without their CRLF / LF).
  std::string_view head = buf.substr(start, header_end - start);
  auto next_line = [&head]() -> std::string_view {
    const std::size_t nl = head.find('\n');
    std::string_view line = head.substr(0, nl);
    head.remove_prefix(nl == std::string_view::npos ? head.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };

  // Request line.
  parse_result r;
  const std::string_view line = next_line();
  for (unsigned char c : line)
    if (is_ctl(c)) return fail(400, "a control byte in the request line");
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
      line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "the request line is not METHOD TARGET HTTP-VERSION");
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (method.empty() || target.empty()) return fail(400, "the request line is not METHOD TARGET HTTP-VERSION");
  for (unsigned char c : method)
    if (!is_tchar(c)) return fail(400, "the method is not a token");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "the request line does not end in HTTP/<major>.<minor>");
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
    return fail(505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)");
  r.req.minor = version[7] - '0';
  if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {  // absolute-form
    const std::size_t authority = target.find("//") + 2;
    const std::size_t slash = target.find('/', authority);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target != "*" && target.front() != '/') return fail(400, "the request target is not a path");
  for (unsigned char c : target)
    if (c == ' ' || c >= 0x80) return fail(400, "the request target has a byte that must be percent-encoded");
  r.req.method = std::string(method);
  r.req.path = std::string(target.substr(0, target.find_first_of("?#")));
  if (r.req.path.empty()) r.req.path = "/";

  // Fields.
  bool close = false, keep_alive = false, have_length = false;
  std::uint64_t length = 0;
  std::size_t fields = 0;
  while (!head.empty()) {
    const std::string_view f = next_line();
    if (f.empty()) break;  // the terminating empty line
    if (++fields > max_fields) return fail(431, "more than 100 header fields");
    if (f.front() == ' ' || f.front() == '\t') return fail(400, "obsolete line folding in the header");
    const std::size_t colon = f.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(400, "a header field without a name");
    const std::string_view name = f.substr(0, colon);
    for (unsigned char c : name)
      if (!is_tchar(c)) return fail(400, "a header field name that is not a token");
    const std::string_view value = trim(f.substr(colon + 1));
    for (unsigned char c : value)
      if (is_ctl(c) && c != '\t') return fail(400, "a control byte in a header field value");
    if (iequals(name, "content-length")) {
      if (value.empty() || value.size() > 18) return fail(400, "Content-Length is not a plain decimal number");
      std::uint64_t v = 0;
      for (char c : value) {
        if (c < '0' || c > '9') return fail(400, "Content-Length is not a plain decimal number");
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (have_length && v != length) return fail(400, "conflicting Content-Length fields");
      have_length = true;
      length = v;
    } else if (iequals(name, "transfer-encoding")) {
      return fail(501, "request bodies with a Transfer-Encoding are not supported");
    } else if (iequals(name, "connection")) {
      close = close || has_token(value, "close");
      keep_alive = keep_alive || has_token(value, "keep-alive");
    }
  }
  if (length > max_body_bytes) return fail(413, "request body larger than the limit");
  if (buf.size() - header_end < length) return {};  // the body is still arriving
  r.status = parse_status::complete;
  r.req.keep_alive = r.req.minor == 1 ? !close : (keep_alive && !close);
  r.req.body_bytes = static_cast<std::size_t>(length);
  r.req.consumed = header_end + static_cast<std::size_t>(length);
  return r;
}

const char* reason_phrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace ringflow::ops::http
