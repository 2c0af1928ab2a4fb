#include "response_writer.hpp"

#include <charconv>
#include <chrono>
#include <cstring>
#include <ctime>
#include <vector>

namespace asynchttp::detail {

// Literals appended as string_views: no strlen per append (48 instructions per response).
using namespace std::string_view_literals;

namespace {

// "HTTP/1.1 200 OK\r\n" for every code 100..599, from a table built once (~140 instructions
// per response less than formatting it). Codes outside are refused before a head is written.
std::string_view statusLine(HttpCode code) {
  constexpr int kFirst = 100, kLast = 599;
  static const auto lines = [] {  // immutable once built: shared by every thread
    std::vector<std::string> table;
    for (int value = kFirst; value <= kLast; ++value) {
      std::string line = "HTTP/1.1 " + std::to_string(value) + " ";
      line += reasonPhrase(HttpCode{value});
      table.push_back(line + "\r\n");
    }
    return table;
  }();
  if (code.value < kFirst || code.value > kLast) {
    throw ValueError("status code " + std::to_string(code.value) + " is outside 100..599");
  }
  return lines[static_cast<std::size_t>(code.value - kFirst)];
}

// A response header must not smuggle a line break or a NUL into the head.
void checkHeaderText(std::string_view text, const char* what) {
  for (char c : text) {
    if (c == '\r' || c == '\n' || c == '\0') {
      throw ValueError(std::string("response header ") + what + " contains CR, LF or NUL: '" +
                       std::string(text.substr(0, 64)) + "'");
    }
  }
}

}  // namespace

void checkHeaders(const HttpHeaders& headers) {
  for (const auto& [key, value] : headers) {
    checkHeaderText(key, "name");
    checkHeaderText(value, "value");
  }
}

void appendHeaderLines(std::string& out, const HttpHeaders& headers) {
  checkHeaders(headers);
  for (const auto& [key, value] : headers) {
    out += key;
    out += ": "sv;
    out += value;
    out += "\r\n"sv;
  }
}

std::string_view httpDate(Clock::time_point now) {
  thread_local Clock::time_point nextSecond{};
  thread_local char text[32];
  thread_local std::size_t length = 0;
  if (now >= nextSecond) {
    timespec wall{};
    ::clock_gettime(CLOCK_REALTIME, &wall);
    std::tm utc{};
    ::gmtime_r(&wall.tv_sec, &utc);
    length = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc);
    nextSecond = now + std::chrono::nanoseconds(1'000'000'000 - wall.tv_nsec);
  }
  return {text, length};
}

bool hasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (equalsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

HeadOutcome writeHead(std::string& out, HttpCode code, const HttpHeaders& headers,
                      std::optional<std::uint64_t> length, const HeadContext& context,
                      Clock::time_point now, std::string_view body) {
  std::string_view status = statusLine(code);
  std::size_t headerBytes = 0;
  for (const auto& [key, value] : headers) {
    checkHeaderText(key, "name");
    checkHeaderText(value, "value");
    headerBytes += key.size() + value.size() + 4;  // "key: value\r\n"
  }
  bool given = headers.len() > 0;  // most responses give no headers: skip the lookups
  HeadOutcome outcome;
  outcome.closeAfter = !context.keepAlive;
  bool connectionGiven = given && headers.hasKey("Connection");
  bool givenClose = false;
  if (connectionGiven) {
    for (const auto& value : headers["Connection"]) givenClose |= hasToken(value, "close");
  }
  outcome.closeAfter |= givenClose;
  if (isBodyless(code)) {
    outcome.framing = Framing::none;
  } else if (given && (headers.hasKey("Content-Length") || headers.hasKey("Transfer-Encoding"))) {
    outcome.framing = Framing::byHandler;
  } else if (length) {
    outcome.framing = Framing::contentLength;
  } else if (context.headRequest) {
    outcome.framing = Framing::none;  // a stream's length is unknown: nothing to announce
  } else if (context.http10) {
    outcome.framing = Framing::untilClose;
    outcome.closeAfter = true;
  } else {
    outcome.framing = Framing::chunked;
  }

  // Room for the longest head this can write (and the body) is made at once and trimmed
  // after: one size check, not one per piece (~530 -> ~385 instructions).
  constexpr std::size_t kMostOfTheRest = ("Date: \r\n"sv).size() + 32 +  // date
                                         ("Transfer-Encoding: chunked\r\n"sv).size() + 20 +
                                         ("Connection: keep-alive\r\n\r\n"sv).size();  // end
  const std::size_t startSize = out.size();
  out.resize(startSize + status.size() + headerBytes + kMostOfTheRest + body.size());
  char* p = out.data() + startSize;
  auto put = [&p](std::string_view text) {
    if (!text.empty()) std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  put(status);
  if (!given || !headers.hasKey("Date")) {
    put("Date: "sv);
    put(httpDate(now));
    put("\r\n"sv);
  }
  // The server closes over a handler's "keep-alive": its Connection line is left out.
  bool dropConnection = connectionGiven && outcome.closeAfter && !givenClose;
  for (const auto& [key, value] : headers) {
    if (dropConnection && equalsIgnoreCase(key, "Connection")) continue;
    put(key);
    put(": "sv);
    put(value);
    put("\r\n"sv);
  }
  if (outcome.framing == Framing::contentLength) {
    put("Content-Length: "sv);
    p = std::to_chars(p, p + 20, *length).ptr;
    put("\r\n"sv);
  } else if (outcome.framing == Framing::chunked) {
    put("Transfer-Encoding: chunked\r\n"sv);
  }
  if (is1xx(code)) {
    // An interim response says nothing of the connection.
  } else if (outcome.closeAfter && !givenClose) {
    put("Connection: close\r\n"sv);  // also over a handler's keep-alive: the server closes
  } else if (!connectionGiven && context.http10 && !outcome.closeAfter) {
    put("Connection: keep-alive\r\n"sv);  // HTTP/1.0 keeps the connection only when told
  }
  put("\r\n"sv);
  put(body);
  out.resize(static_cast<std::size_t>(p - out.data()));
  return outcome;
}

}  // namespace asynchttp::detail
