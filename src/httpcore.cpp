#include <asynchttp/httpcore.hpp>

#include "text_internal.hpp"

#include <algorithm>
#include <array>
#include <ostream>

namespace asynchttp {

namespace {

struct CodeName {
  int code;
  std::string_view reason;
};

// Sorted by code for binary search; the registered codes Nim's httpcore knows, and a few more.
constexpr std::array kReasons = {
    CodeName{100, "Continue"},
    CodeName{101, "Switching Protocols"},
    CodeName{102, "Processing"},
    CodeName{103, "Early Hints"},
    CodeName{200, "OK"},
    CodeName{201, "Created"},
    CodeName{202, "Accepted"},
    CodeName{203, "Non-Authoritative Information"},
    CodeName{204, "No Content"},
    CodeName{205, "Reset Content"},
    CodeName{206, "Partial Content"},
    CodeName{207, "Multi-Status"},
    CodeName{208, "Already Reported"},
    CodeName{226, "IM Used"},
    CodeName{300, "Multiple Choices"},
    CodeName{301, "Moved Permanently"},
    CodeName{302, "Found"},
    CodeName{303, "See Other"},
    CodeName{304, "Not Modified"},
    CodeName{305, "Use Proxy"},
    CodeName{307, "Temporary Redirect"},
    CodeName{308, "Permanent Redirect"},
    CodeName{400, "Bad Request"},
    CodeName{401, "Unauthorized"},
    CodeName{402, "Payment Required"},
    CodeName{403, "Forbidden"},
    CodeName{404, "Not Found"},
    CodeName{405, "Method Not Allowed"},
    CodeName{406, "Not Acceptable"},
    CodeName{407, "Proxy Authentication Required"},
    CodeName{408, "Request Timeout"},
    CodeName{409, "Conflict"},
    CodeName{410, "Gone"},
    CodeName{411, "Length Required"},
    CodeName{412, "Precondition Failed"},
    CodeName{413, "Request Entity Too Large"},
    CodeName{414, "Request-URI Too Long"},
    CodeName{415, "Unsupported Media Type"},
    CodeName{416, "Requested Range Not Satisfiable"},
    CodeName{417, "Expectation Failed"},
    CodeName{418, "I'm a teapot"},
    CodeName{421, "Misdirected Request"},
    CodeName{422, "Unprocessable Entity"},
    CodeName{423, "Locked"},
    CodeName{424, "Failed Dependency"},
    CodeName{425, "Too Early"},
    CodeName{426, "Upgrade Required"},
    CodeName{428, "Precondition Required"},
    CodeName{429, "Too Many Requests"},
    CodeName{431, "Request Header Fields Too Large"},
    CodeName{451, "Unavailable For Legal Reasons"},
    CodeName{500, "Internal Server Error"},
    CodeName{501, "Not Implemented"},
    CodeName{502, "Bad Gateway"},
    CodeName{503, "Service Unavailable"},
    CodeName{504, "Gateway Timeout"},
    CodeName{505, "HTTP Version Not Supported"},
    CodeName{506, "Variant Also Negotiates"},
    CodeName{507, "Insufficient Storage"},
    CodeName{508, "Loop Detected"},
    CodeName{510, "Not Extended"},
    CodeName{511, "Network Authentication Required"},
};
static_assert(std::ranges::is_sorted(kReasons, {}, &CodeName::code));

constexpr std::array<std::string_view, 9> kMethodNames = {
    "HEAD", "GET", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"};

constexpr char toLower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}
constexpr char toUpper(char c) noexcept {
  return c >= 'a' && c <= 'z' ? char(c - 'a' + 'A') : c;
}

}  // namespace

// --- HttpCode ----------------------------------------------------------------------------

std::string_view reasonPhrase(HttpCode code) noexcept {
  auto it = std::ranges::lower_bound(kReasons, code.value, {}, &CodeName::code);
  return it != kReasons.end() && it->code == code.value ? it->reason : std::string_view{};
}

std::string to_string(HttpCode code) {
  std::string text = std::to_string(code.value);
  if (auto reason = reasonPhrase(code); !reason.empty()) {
    text += ' ';
    text += reason;
  }
  return text;
}

std::ostream& operator<<(std::ostream& os, HttpCode code) {
  return os << to_string(code);
}

bool operator==(std::string_view rawCode, HttpCode code) {
  // Nim compares the first three characters, so "404 Not Found" and "404" both match Http404.
  if (rawCode.size() < 3) return false;
  int value = 0;
  for (char c : rawCode.substr(0, 3)) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  return value == code.value;
}

// --- HttpMethod and HttpVersion ------------------------------------------------------------

std::string_view to_string(HttpMethod method) noexcept {
  return kMethodNames[static_cast<std::size_t>(method)];
}

std::ostream& operator<<(std::ostream& os, HttpMethod method) {
  return os << to_string(method);
}

std::optional<HttpMethod> parseHttpMethod(std::string_view token) noexcept {
  for (std::size_t i = 0; i < kMethodNames.size(); ++i) {
    if (kMethodNames[i] == token) return static_cast<HttpMethod>(i);
  }
  return std::nullopt;
}

bool contains(std::initializer_list<HttpMethod> methods, std::string_view token) noexcept {
  auto method = parseHttpMethod(token);
  return method && std::ranges::find(methods, *method) != methods.end();
}

bool operator==(const HttpProtocol& protocol, HttpVersion version) noexcept {
  return protocol.major == 1 && protocol.minor == (version == HttpVer11 ? 1 : 0);
}

// --- HttpHeaderValues ------------------------------------------------------------------------

const std::string& HttpHeaderValues::first() const {
  if (values_.empty()) throw KeyError("header has no value");
  return values_.front();
}

bool HttpHeaderValues::contains(std::string_view value) const noexcept {
  return std::ranges::any_of(values_, [&](const auto& v) { return equalsIgnoreCase(v, value); });
}

const std::string& HttpHeaderValues::operator[](std::size_t i) const {
  if (i >= values_.size()) {
    throw KeyError("header value index " + std::to_string(i) + " out of range (" +
                   std::to_string(values_.size()) + " values)");
  }
  return values_[i];
}

// --- HttpHeaders -------------------------------------------------------------------------------

HttpHeaders::HttpHeaders(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs,
                         bool titleCase)
    : titleCase_(titleCase) {
  for (const auto& [key, value] : pairs) add(key, value);
}

HttpHeaders newHttpHeaders(const std::vector<std::pair<std::string, std::string>>& pairs,
                           bool titleCase) {
  HttpHeaders headers(titleCase);
  for (const auto& [key, value] : pairs) headers.add(key, value);
  return headers;
}

std::string HttpHeaders::normalize(std::string_view key) const {
  std::string out;
  normalizeInto(key, out);
  return out;
}

void HttpHeaders::normalizeInto(std::string_view key, std::string& out) const {
  out.assign(key);
  bool upper = true;
  for (char& c : out) {
    if (titleCase_) {
      c = upper ? toUpper(c) : toLower(c);
      upper = c == '-';
    } else {
      c = toLower(c);
    }
  }
}

std::size_t HttpHeaders::CaseInsensitiveHash::operator()(std::string_view key) const noexcept {
  std::size_t hash = 14695981039346656037ull;  // FNV-1a over the lower-cased bytes
  for (char c : key) hash = (hash ^ static_cast<unsigned char>(toLower(c))) * 1099511628211ull;
  return hash;
}

namespace {
// The live values of a field, copied out (what Nim's `[]` returns).
template <class Field>
HttpHeaderValues liveValues(const Field& field) {
  return HttpHeaderValues(std::vector<std::string>(
      field.values.begin(), field.values.begin() + static_cast<std::ptrdiff_t>(field.count)));
}
}  // namespace

const HttpHeaders::Field* HttpHeaders::find(std::string_view key) const noexcept {
  if (!index_.empty()) {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &entries_[it->second];
  }
  for (std::size_t i = 0; i < size_; ++i) {
    if (equalsIgnoreCase(entries_[i].key, key)) return &entries_[i];
  }
  return nullptr;
}

HttpHeaders::Field& HttpHeaders::findOrCreate(std::string_view key) {
  if (const Field* field = find(key)) return const_cast<Field&>(*field);
  if (size_ == entries_.size()) entries_.emplace_back();
  Field& field = entries_[size_++];
  // A field kept from an earlier use often had this very name (a client sends the same fields
  // with every request), and its key is normalized already, in this object's one case mode.
  if (!equalsIgnoreCase(field.key, key)) normalizeInto(key, field.key);
  field.count = 0;
  if (!index_.empty()) {
    index_.emplace(field.key, size_ - 1);
  } else if (size_ > kIndexThreshold) {
    rebuildIndex();
  }
  return field;
}

void HttpHeaders::rebuildIndex() {
  index_.clear();
  if (size_ <= kIndexThreshold) return;
  for (std::size_t i = 0; i < size_; ++i) index_.emplace(entries_[i].key, i);
}

HttpHeaderValues HttpHeaders::operator[](std::string_view key) const {
  const Field* field = find(key);
  if (!field) throw KeyError("no header named '" + std::string(key) + "'");
  return liveValues(*field);
}

HttpHeaders::Ref HttpHeaders::operator[](std::string_view key) {
  return Ref(*this, key);
}

const std::string& HttpHeaders::at(std::string_view key, std::size_t i) const {
  const Field* field = find(key);
  if (!field) throw KeyError("no header named '" + std::string(key) + "'");
  if (i >= field->count) {
    throw KeyError("header '" + std::string(key) + "' has no value at index " + std::to_string(i));
  }
  return field->values[i];
}

void HttpHeaders::set(std::string_view key, std::string_view value) {
  Field& field = findOrCreate(key);
  field.count = 0;
  appendValue(field, value);
}

void HttpHeaders::set(std::string_view key, std::vector<std::string> values) {
  if (values.empty()) {
    del(key);
    return;
  }
  Field& field = findOrCreate(key);
  field.values = std::move(values);
  field.count = field.values.size();
}

void HttpHeaders::add(std::string_view key, std::string_view value) {
  appendValue(findOrCreate(key), value);
}

void HttpHeaders::appendValue(Field& field, std::string_view value) {
  if (field.count < field.values.size()) {
    detail::assignIfChanged(field.values[field.count],
                            value);  // reuses the string kept from before
  } else {
    field.values.emplace_back(value);
  }
  ++field.count;
}

void HttpHeaders::del(std::string_view key) {
  const Field* field = find(key);
  if (!field) return;
  // Move the field behind the live ones, keeping its memory for reuse and the others' order.
  auto at = entries_.begin() + (field - entries_.data());
  std::rotate(at, at + 1, entries_.begin() + static_cast<std::ptrdiff_t>(size_));
  entries_[--size_].count = 0;
  if (!index_.empty()) rebuildIndex();
}

bool HttpHeaders::hasKey(std::string_view key) const noexcept {
  return find(key) != nullptr;
}

HttpHeaderValues HttpHeaders::getOrDefault(std::string_view key, HttpHeaderValues fallback) const {
  const Field* field = find(key);
  return field ? liveValues(*field) : std::move(fallback);
}

void HttpHeaders::clear() noexcept {
  size_ = 0;
  index_.clear();
}

HttpHeaders::const_iterator HttpHeaders::begin() const noexcept {
  return const_iterator(entries_.data());
}

HttpHeaders::const_iterator HttpHeaders::end() const noexcept {
  return const_iterator(entries_.data() + size_);
}

bool operator==(const HttpHeaders& a, const HttpHeaders& b) noexcept {
  if (a.size_ != b.size_) return false;
  for (std::size_t i = 0; i < a.size_; ++i) {
    const auto& x = a.entries_[i];
    const auto& y = b.entries_[i];
    if (x.key != y.key || x.count != y.count ||
        !std::equal(x.values.begin(), x.values.begin() + static_cast<std::ptrdiff_t>(x.count),
                    y.values.begin())) {
      return false;
    }
  }
  return true;
}

std::string to_string(const HttpHeaders& headers) {
  std::string out = "{";
  bool firstField = true;
  std::string_view lastKey;
  for (const auto& [key, value] : headers) {
    if (key != lastKey || firstField) {
      if (!firstField) out += "], ";
      out += '"' + key + "\": @[";
      firstField = false;
      lastKey = key;
    } else {
      out += ", ";
    }
    out += '"' + value + '"';
  }
  if (!firstField) out += ']';
  return out + "}";
}

std::ostream& operator<<(std::ostream& os, const HttpHeaders& headers) {
  return os << to_string(headers);
}

}  // namespace asynchttp
