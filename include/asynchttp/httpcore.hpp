// httpcore: the vocabulary of HTTP shared by clients and servers (Nim's std/httpcore).
#pragma once

#include <asynchttp/errors.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace asynchttp {

/// The line terminator of HTTP/1.x.
inline constexpr std::string_view httpNewLine = "\r\n";
/// The most header lines a message may carry (Nim's headerLimit).
inline constexpr int headerLimit = 10000;

// --- HttpCode -----------------------------------------------------------------------------

/// An HTTP status code; `Http200` and friends name the registered ones.
struct HttpCode {
  int value = 0;
  friend constexpr bool operator==(HttpCode, HttpCode) = default;
  friend constexpr auto operator<=>(HttpCode, HttpCode) = default;
};

inline constexpr HttpCode Http100{100}, Http101{101}, Http102{102}, Http103{103};
inline constexpr HttpCode Http200{200}, Http201{201}, Http202{202}, Http203{203}, Http204{204},
    Http205{205}, Http206{206}, Http207{207}, Http208{208}, Http226{226};
inline constexpr HttpCode Http300{300}, Http301{301}, Http302{302}, Http303{303}, Http304{304},
    Http305{305}, Http307{307}, Http308{308};
inline constexpr HttpCode Http400{400}, Http401{401}, Http402{402}, Http403{403}, Http404{404},
    Http405{405}, Http406{406}, Http407{407}, Http408{408}, Http409{409}, Http410{410},
    Http411{411}, Http412{412}, Http413{413}, Http414{414}, Http415{415}, Http416{416},
    Http417{417}, Http418{418}, Http421{421}, Http422{422}, Http423{423}, Http424{424},
    Http425{425}, Http426{426}, Http428{428}, Http429{429}, Http431{431}, Http451{451};
inline constexpr HttpCode Http500{500}, Http501{501}, Http502{502}, Http503{503}, Http504{504},
    Http505{505}, Http506{506}, Http507{507}, Http508{508}, Http510{510}, Http511{511};

/// The reason phrase of a registered code ("Not Found"), or "" for an unknown one.
std::string_view reasonPhrase(HttpCode code) noexcept;
/// The status text, "404 Not Found"; an unknown code gives just the number (Nim's `$`).
std::string to_string(HttpCode code);
/// Writes `to_string(code)`.
std::ostream& operator<<(std::ostream& os, HttpCode code);
/// Compares a raw status line fragment such as "404" or "404 Not Found" with a code.
bool operator==(std::string_view rawCode, HttpCode code);

/// Informational (100..199).
constexpr bool is1xx(HttpCode code) noexcept {
  return code.value >= 100 && code.value < 200;
}
/// Successful (200..299).
constexpr bool is2xx(HttpCode code) noexcept {
  return code.value >= 200 && code.value < 300;
}
/// Redirection (300..399).
constexpr bool is3xx(HttpCode code) noexcept {
  return code.value >= 300 && code.value < 400;
}
/// Client error (400..499).
constexpr bool is4xx(HttpCode code) noexcept {
  return code.value >= 400 && code.value < 500;
}
/// Server error (500..599).
constexpr bool is5xx(HttpCode code) noexcept {
  return code.value >= 500 && code.value < 600;
}

// --- HttpMethod and HttpVersion --------------------------------------------------------------

/// The request methods the seed knows; the names are usable unqualified (`HttpGet`).
enum class HttpMethod : std::uint8_t {
  HttpHead,
  HttpGet,
  HttpPost,
  HttpPut,
  HttpDelete,
  HttpTrace,
  HttpOptions,
  HttpConnect,
  HttpPatch
};
using enum HttpMethod;

/// The method's token, "GET" for HttpGet.
std::string_view to_string(HttpMethod method) noexcept;
/// Writes the method's token.
std::ostream& operator<<(std::ostream& os, HttpMethod method);
/// The method whose token is exactly `token` (case-sensitive, as RFC 9110 says), if any.
std::optional<HttpMethod> parseHttpMethod(std::string_view token) noexcept;
/// True if the method named by `token` is among `methods` (Nim's `contains(set, string)`).
bool contains(std::initializer_list<HttpMethod> methods, std::string_view token) noexcept;

/// The HTTP versions the seed names; usable unqualified (`HttpVer11`).
enum class HttpVersion : std::uint8_t { HttpVer11, HttpVer10 };
using enum HttpVersion;

/// The protocol of a request as received: "HTTP/1.1" gives {orig, 1, 1}.
struct HttpProtocol {
  std::string orig;
  int major = 1;
  int minor = 1;
};
/// True when the protocol's major and minor numbers are those of `version`.
bool operator==(const HttpProtocol& protocol, HttpVersion version) noexcept;

/// ASCII case-insensitive equality, the comparison HTTP uses for tokens and field names.
constexpr bool equalsIgnoreCase(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// --- HttpHeaderValues --------------------------------------------------------------------------

/// The values of one header field, in order; converts to its first value as a string.
class HttpHeaderValues {
 public:
  HttpHeaderValues() = default;
  /// Holds the given values.
  explicit HttpHeaderValues(std::vector<std::string> values) : values_(std::move(values)) {}
  /// Holds the given values.
  HttpHeaderValues(std::initializer_list<std::string> values) : values_(values) {}

  /// The first value (Nim's converter `toString`); throws KeyError when there is none.
  operator std::string() const { return first(); }
  /// The first value; throws KeyError when there is none.
  const std::string& first() const;
  /// True if one of the values equals `value`, ignoring ASCII case.
  bool contains(std::string_view value) const noexcept;
  /// The i-th value; throws KeyError when out of range.
  const std::string& operator[](std::size_t i) const;
  /// How many values.
  std::size_t size() const noexcept { return values_.size(); }
  /// True when there is no value.
  bool empty() const noexcept { return values_.empty(); }
  /// Iterates over the values.
  auto begin() const noexcept { return values_.begin(); }
  /// End of the values.
  auto end() const noexcept { return values_.end(); }
  /// The values as a vector.
  const std::vector<std::string>& values() const noexcept { return values_; }

  /// Compares the first value with a string (as Nim's converter makes `h["k"] == "v"` do).
  friend bool operator==(const HttpHeaderValues& v, std::string_view s) {
    return !v.empty() && v.values_.front() == s;
  }
  /// Compares all values.
  friend bool operator==(const HttpHeaderValues&, const HttpHeaderValues&) = default;

 private:
  std::vector<std::string> values_;
};

/// The first value (Nim's `toString` converter); throws KeyError when there is none.
inline std::string toString(const HttpHeaderValues& values) {
  return values.first();
}

// --- HttpHeaders -----------------------------------------------------------------------------

/// A case-insensitive multimap of header fields, iterated in insertion order.
///
/// Keys are stored normalized: lower case by default, or Title-Case (`Content-Length`) when
/// made with `titleCase = true`. A value type: copies are independent.
class HttpHeaders {
  class Entry;

 public:
  class Ref;
  class const_iterator;

  /// An empty set of headers with lower-case keys.
  HttpHeaders() = default;
  /// An empty set of headers; `titleCase` chooses how keys are normalized.
  explicit HttpHeaders(bool titleCase) : titleCase_(titleCase) {}
  /// Headers from (key, value) pairs; a repeated key gathers its values in order.
  HttpHeaders(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs,
              bool titleCase = false);

  /// The values of `key`; throws KeyError when absent.
  HttpHeaderValues operator[](std::string_view key) const;
  /// A handle to the field `key` that reads like the const version and assigns with `=`.
  Ref operator[](std::string_view key);
  /// The i-th value of `key` (Nim's `h[key, i]`); throws KeyError when absent.
  const std::string& at(std::string_view key, std::size_t i) const;
  /// Replaces the values of `key` by one value.
  void set(std::string_view key, std::string_view value);
  /// Replaces the values of `key`; an empty list deletes the field.
  void set(std::string_view key, std::vector<std::string> values);
  /// Appends a value to `key`, keeping the values it has.
  void add(std::string_view key, std::string_view value);
  /// Removes the field `key`, if present.
  void del(std::string_view key);
  /// True if the field `key` is present.
  bool hasKey(std::string_view key) const noexcept;
  /// Same as hasKey (Nim's `contains`, for `key in headers`).
  bool contains(std::string_view key) const noexcept { return hasKey(key); }
  /// The values of `key`, or `fallback` when absent (by default one empty value, as Nim).
  HttpHeaderValues getOrDefault(std::string_view key,
                                HttpHeaderValues fallback = HttpHeaderValues{""}) const;
  /// The number of distinct fields.
  std::size_t len() const noexcept { return size_; }
  /// Removes every field.
  void clear() noexcept;
  /// True when keys are normalized to Title-Case.
  bool isTitleCase() const noexcept { return titleCase_; }
  /// Iterates over (key, value) pairs: each key's values in order, keys in insertion order.
  const_iterator begin() const noexcept;
  /// End of the iteration.
  const_iterator end() const noexcept;
  /// Same fields with the same values in the same order.
  friend bool operator==(const HttpHeaders& a, const HttpHeaders& b) noexcept;

  /// `key` as this object stores it (lower case or Title-Case).
  std::string normalize(std::string_view key) const;
  /// Writes `normalize(key)` into `out`, reusing its capacity.
  void normalizeInto(std::string_view key, std::string& out) const;

 private:
  // Fields in insertion order. Lookup is linear while small (the common case, cache-friendly);
  // past kIndexThreshold fields a hash index keeps a 10 000-field message from costing O(n^2).
  // Cleared fields and values are kept, not freed: a server that refills the same headers for
  // every request then allocates nothing (10 allocations per browser-like request before).
  struct Field {
    std::string key;
    std::vector<std::string> values;  // [0, count) are the values; the rest keep capacity
    std::size_t count = 0;
  };
  static constexpr std::size_t kIndexThreshold = 32;

  // Two keys normalize alike exactly when they are equal ignoring ASCII case, so lookups compare
  // the caller's key as given and never allocate a normalized copy.
  struct CaseInsensitiveHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept;
  };
  struct CaseInsensitiveEqual {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept {
      return equalsIgnoreCase(a, b);
    }
  };

  const Field* find(std::string_view key) const noexcept;
  Field& findOrCreate(std::string_view key);
  static void appendValue(Field& field, std::string_view value);
  void rebuildIndex();

  std::vector<Field> entries_;  // [0, size_) are the fields; the rest wait for reuse
  std::size_t size_ = 0;
  // key -> slot in entries_, kept only past kIndexThreshold fields.
  std::unordered_map<std::string, std::size_t, CaseInsensitiveHash, CaseInsensitiveEqual> index_;
  bool titleCase_ = false;
};

/// A handle to one field of an HttpHeaders, returned by the non-const `operator[]`.
class HttpHeaders::Ref {
 public:
  /// Replaces the values by one value.
  Ref& operator=(std::string_view value) {
    headers_.set(key_, value);
    return *this;
  }
  /// Replaces the values by a list; an empty list deletes the field.
  Ref& operator=(std::vector<std::string> values) {
    headers_.set(key_, std::move(values));
    return *this;
  }
  /// Replaces the values by a list; an empty list deletes the field.
  Ref& operator=(std::initializer_list<std::string> values) {
    return *this = std::vector<std::string>(values);
  }
  /// The values; throws KeyError when absent.
  HttpHeaderValues values() const { return std::as_const(headers_)[key_]; }
  /// The values; throws KeyError when absent.
  operator HttpHeaderValues() const { return values(); }
  /// The first value; throws KeyError when absent.
  operator std::string() const { return values().first(); }
  /// True if one value equals `value`, ignoring ASCII case; false when absent.
  bool contains(std::string_view value) const {
    return headers_.hasKey(key_) && values().contains(value);
  }
  /// The i-th value; throws KeyError when absent.
  const std::string& operator[](std::size_t i) const { return headers_.at(key_, i); }
  /// Compares the first value with `s`; false when absent.
  friend bool operator==(const Ref& r, std::string_view s) {
    return r.headers_.hasKey(r.key_) && r.values() == s;
  }

 private:
  friend class HttpHeaders;
  Ref(HttpHeaders& headers, std::string_view key) : headers_(headers), key_(key) {}
  HttpHeaders& headers_;
  std::string_view key_;
};

/// Iterates over the (key, value) pairs of an HttpHeaders.
class HttpHeaders::const_iterator {
 public:
  using value_type = std::pair<const std::string&, const std::string&>;
  using difference_type = std::ptrdiff_t;

  const_iterator() = default;
  /// The current (key, value) pair.
  value_type operator*() const { return {field_->key, field_->values[value_]}; }
  /// Moves to the next pair.
  const_iterator& operator++() {
    if (++value_ == field_->count) {
      ++field_;
      value_ = 0;
    }
    return *this;
  }
  /// Moves to the next pair.
  const_iterator operator++(int) {
    auto copy = *this;
    ++*this;
    return copy;
  }
  /// Same position.
  friend bool operator==(const const_iterator&, const const_iterator&) = default;

 private:
  friend class HttpHeaders;
  explicit const_iterator(const Field* field) : field_(field) {}
  const Field* field_ = nullptr;
  std::size_t value_ = 0;
};

/// New empty headers (Nim's `newHttpHeaders(titleCase)`).
inline HttpHeaders newHttpHeaders(bool titleCase = false) {
  return HttpHeaders(titleCase);
}
/// New headers from (key, value) pairs (Nim's `newHttpHeaders(pairs, titleCase)`).
inline HttpHeaders newHttpHeaders(
    std::initializer_list<std::pair<std::string_view, std::string_view>> pairs,
    bool titleCase = false) {
  return HttpHeaders(pairs, titleCase);
}
/// New headers from a vector of (key, value) pairs.
HttpHeaders newHttpHeaders(const std::vector<std::pair<std::string, std::string>>& pairs,
                           bool titleCase = false);

/// A readable rendering, `{"key": @["v1", "v2"], ...}` as Nim's `$` prints a table.
std::string to_string(const HttpHeaders& headers);
/// Writes `to_string(headers)`.
std::ostream& operator<<(std::ostream& os, const HttpHeaders& headers);

}  // namespace asynchttp
