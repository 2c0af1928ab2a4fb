// Static-file answers: media types, validators, preconditions and Range (RFC 9110 §8.8, §13, §14).
#include "file_response.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <span>

namespace asynchttp::detail {
namespace {

constexpr std::string_view kOws = " \t";

constexpr bool isDigit(char c) noexcept {
  return c >= '0' && c <= '9';
}

constexpr char toLower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string_view skip(std::string_view s, std::string_view chars) noexcept {
  return s.substr(std::min(s.find_first_not_of(chars), s.size()));
}

std::string_view trim(std::string_view s) noexcept {
  s = skip(s, kOws);
  return s.substr(0, s.find_last_not_of(kOws) + 1);
}

// --- media types ----------------------------------------------------------------------------

struct MimeEntry {
  std::string_view ext;
  std::string_view type;
};

// Sorted by extension for a binary search (checked below).
constexpr MimeEntry kMimeTypes[] = {
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"opus", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "text/xml; charset=utf-8"},
    {"zip", "application/zip"},
};
static_assert(std::ranges::is_sorted(kMimeTypes, {}, &MimeEntry::ext));
constexpr std::size_t kLongestExtension =
    std::ranges::max(kMimeTypes, {}, [](const MimeEntry& e) { return e.ext.size(); }).ext.size();

// --- HTTP-date -------------------------------------------------------------------------------

// Indexed as std::chrono::weekday::c_encoding() and month numbers minus one.
constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 7> kLongDays = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                       "Thursday", "Friday", "Saturday"};
constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// Reads `text` as one HTTP-date form, given as a pattern: `a` a day name ("Sun"), `A` a long one
// ("Sunday"), `b` a month name, `d` `y` `h` `m` `s` digits of the day, year, hour, minute and
// second, `_` a day digit or a space; anything else stands for itself. Names are case-sensitive
// (RFC 9110 writes them %s"..."), and the weekday is checked for form only, as most servers do.
std::optional<std::int64_t> parseDateAs(std::string_view text, std::string_view pattern) noexcept {
  int day = 0, month = 0, year = 0, hour = 0, minute = 0, second = 0, yearDigits = 0;
  for (const char p : pattern) {
    if (p == 'a' || p == 'A' || p == 'b') {
      using Names = std::span<const std::string_view>;
      const Names names = p == 'a' ? Names(kDays) : p == 'A' ? Names(kLongDays) : Names(kMonths);
      const auto it = std::ranges::find_if(names, [&](auto n) { return text.starts_with(n); });
      if (it == names.end()) return {};
      if (p == 'b') month = static_cast<int>(it - names.begin()) + 1;
      text.remove_prefix(it->size());
      continue;
    }
    if (text.empty()) return {};
    const char c = text.front();
    text.remove_prefix(1);
    int* const field = p == 'd' || p == '_' ? &day
                       : p == 'y'           ? &year
                       : p == 'h'           ? &hour
                       : p == 'm'           ? &minute
                       : p == 's'           ? &second
                                            : nullptr;
    if (!field) {
      if (c != p) return {};
    } else if (!(p == '_' && c == ' ')) {
      if (!isDigit(c)) return {};
      *field = *field * 10 + (c - '0');
      yearDigits += p == 'y';
    }
  }
  // RFC 9110 pivots two-digit years on today's date; a pure function takes POSIX's %y pivot
  // instead (69 is 2069, 70 is 1970). RFC 850 dates are rare enough for this not to matter.
  if (yearDigits == 2) year += year < 70 ? 2000 : 1900;
  namespace chr = std::chrono;
  const chr::year_month_day date{chr::year{year}, chr::month(static_cast<unsigned>(month)),
                                 chr::day(static_cast<unsigned>(day))};
  // Second 60 is a leap second (RFC 9110 §5.6.7); it counts as the next minute's first.
  if (!text.empty() || !date.ok() || hour > 23 || minute > 59 || second > 60) return {};
  const std::int64_t days = chr::sys_days(date).time_since_epoch().count();
  return days * 86400 + hour * 3600 + minute * 60 + second;
}

// Writes `value` as exactly `count` decimal digits ending just before `end`.
void putDigits(char* end, unsigned value, int count) noexcept {
  for (int i = 0; i < count; ++i, value /= 10) *--end = static_cast<char>('0' + value % 10);
}

// --- entity tags -----------------------------------------------------------------------------

struct EntityTag {
  bool weak = false;
  std::string_view opaque;  // with its quotes
};

enum class Comparison { strong, weak };

// Takes one entity-tag (RFC 9110 §8.8.3) off the front of `s`; nullopt when there is none.
std::optional<EntityTag> takeEntityTag(std::string_view& s) noexcept {
  EntityTag tag;
  tag.weak = s.starts_with("W/");
  if (tag.weak) s.remove_prefix(2);
  if (!s.starts_with('"')) return {};
  std::size_t end = 1;
  // etagc: %x21 / %x23-7E / obs-text.
  for (; end < s.size() && s[end] != '"'; ++end) {
    const auto c = static_cast<unsigned char>(s[end]);
    if (c <= 0x20 || c == 0x7F) return {};
  }
  if (end == s.size()) return {};
  tag.opaque = s.substr(0, end + 1);
  s.remove_prefix(end + 1);
  return tag;
}

bool tagsMatch(const EntityTag& a, const EntityTag& b, Comparison how) noexcept {
  return a.opaque == b.opaque && (how == Comparison::weak || (!a.weak && !b.weak));
}

// True when the list field `name`, all its lines taken as one list, is "*" alone or holds a tag
// matching `current`. A malformed element matches nothing but spoils none of its neighbours.
bool listMatches(const HttpHeaders& headers, std::string_view name,
                 const std::optional<EntityTag>& current, Comparison how) noexcept {
  bool found = false, star = false;
  std::size_t elements = 0;
  for (const auto& [key, value] : headers) {
    if (!equalsIgnoreCase(key, name)) continue;
    std::string_view rest = value;
    // Empty elements (",,") are allowed by the list syntax (RFC 9110 §5.6.1).
    while (!(rest = skip(rest, " \t,")).empty()) {
      ++elements;
      const bool isStar = rest.starts_with('*');
      if (isStar) rest.remove_prefix(1);
      const auto tag = isStar ? std::nullopt : takeEntityTag(rest);
      rest = skip(rest, kOws);
      if ((!isStar && !tag) || (!rest.empty() && rest.front() != ',')) {
        rest = rest.substr(std::min(rest.find(','), rest.size()));
        continue;
      }
      star = star || isStar;
      found = found || (tag && current && tagsMatch(*tag, *current, how));
    }
  }
  return found || (star && elements == 1);
}

// The one value of a field that may appear only once; nullopt when absent or repeated (a
// repeated one is invalid, and RFC 9110 has invalid preconditions ignored).
std::optional<std::string_view> singleValue(const HttpHeaders& headers,
                                            std::string_view name) noexcept {
  std::optional<std::string_view> found;
  for (const auto& [key, value] : headers) {
    if (!equalsIgnoreCase(key, name)) continue;
    if (found) return {};
    found = trim(value);
  }
  return found;
}

std::optional<std::int64_t> singleDate(const HttpHeaders& headers, std::string_view name) noexcept {
  const auto value = singleValue(headers, name);
  return value ? parseHttpDate(*value) : std::nullopt;
}

bool ifRangeMatches(std::string_view value, const std::optional<EntityTag>& current,
                    std::int64_t mtimeSeconds) noexcept {
  if (value.starts_with('"') || value.starts_with("W/")) {
    const auto tag = takeEntityTag(value);
    return tag && value.empty() && current && tagsMatch(*tag, *current, Comparison::strong);
  }
  return parseHttpDate(value) == mtimeSeconds;
}

// --- Range -----------------------------------------------------------------------------------

std::optional<std::uint64_t> takeNumber(std::string_view& s) noexcept {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (error != std::errc{}) return {};  // no digits, or past uint64
  s.remove_prefix(static_cast<std::size_t>(end - s.data()));
  return value;
}

// The bytes that `first-last`, `first-` or `-suffix` (no first) selects, or nullopt if none.
std::optional<FileAnswer> select(std::optional<std::uint64_t> first,
                                 std::optional<std::uint64_t> last, std::uint64_t size) noexcept {
  if (!first) {
    if (*last == 0 || size == 0) return {};
    const std::uint64_t length = std::min(*last, size);
    return FileAnswer{Http206, size - length, length};
  }
  if (*first >= size) return {};
  const std::uint64_t end = last ? std::min(*last, size - 1) : size - 1;
  return FileAnswer{Http206, *first, end - *first + 1};
}

// The answer a Range value asks for; nullopt when it is to be ignored (invalid, or not bytes).
std::optional<FileAnswer> evaluateRange(std::string_view value, std::uint64_t size) noexcept {
  const auto equals = value.find('=');
  if (equals == std::string_view::npos || !equalsIgnoreCase(value.substr(0, equals), "bytes")) {
    return {};
  }
  std::string_view rest = value.substr(equals + 1);
  std::size_t specs = 0;
  std::optional<FileAnswer> satisfiable;
  while (!(rest = skip(rest, " \t,")).empty()) {
    std::optional<std::uint64_t> first, last;
    if (!rest.starts_with('-') && !(first = takeNumber(rest))) return {};
    if (!rest.starts_with('-')) return {};
    rest.remove_prefix(1);
    if (!rest.empty() && isDigit(rest.front()) && !(last = takeNumber(rest))) return {};
    if ((!first && !last) || (first && last && *last < *first)) return {};
    rest = skip(rest, kOws);
    if (!rest.empty() && rest.front() != ',') return {};
    ++specs;
    if (auto answer = select(first, last, size)) satisfiable = answer;
  }
  if (specs == 0) return {};
  if (!satisfiable) return FileAnswer{Http416};
  // One satisfiable range of several still needs multipart/byteranges, which we do not build.
  return specs == 1 ? satisfiable : FileAnswer{Http200, 0, size};
}

}  // namespace

std::string_view mimeType(std::string_view path) noexcept {
  constexpr std::string_view fallback = "application/octet-stream";
  const std::string_view name = path.substr(path.rfind('/') + 1);  // npos + 1 == 0
  const auto dot = name.rfind('.');
  // A leading dot marks a hidden file (".profile"), not an extension.
  if (dot == std::string_view::npos || dot == 0) return fallback;
  const std::string_view ext = name.substr(dot + 1);
  std::array<char, kLongestExtension> lower{};
  if (ext.empty() || ext.size() > lower.size()) return fallback;
  std::ranges::transform(ext, lower.begin(), toLower);
  const std::string_view key(lower.data(), ext.size());
  const auto it = std::ranges::lower_bound(kMimeTypes, key, {}, &MimeEntry::ext);
  return it != std::end(kMimeTypes) && it->ext == key ? it->type : fallback;
}

std::string entityTag(std::int64_t mtimeSeconds, std::uint64_t size) {
  std::array<char, 40> buffer{};
  char* const end = buffer.data() + buffer.size();
  char* p = buffer.data();
  *p++ = '"';
  // A time before 1970 prints as its two's complement: the tag stays hex digits only.
  p = std::to_chars(p, end, static_cast<std::uint64_t>(mtimeSeconds), 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, end, size, 16).ptr;
  *p++ = '"';
  return std::string(buffer.data(), p);
}

std::string formatHttpDate(std::int64_t seconds) {
  namespace chr = std::chrono;
  // Clamped to years 0000..9999, so that the result is always a 29-character IMF-fixdate.
  const chr::sys_seconds time{
      chr::seconds(std::clamp<std::int64_t>(seconds, -62167219200, 253402300799))};
  const auto day = chr::floor<chr::days>(time);
  const chr::year_month_day date{day};
  const chr::hh_mm_ss clock{time - day};
  std::string out = "Sun, 00 Jan 0000 00:00:00 GMT";
  out.replace(0, 3, kDays[chr::weekday(day).c_encoding()]);
  putDigits(out.data() + 7, static_cast<unsigned>(date.day()), 2);
  out.replace(8, 3, kMonths[static_cast<unsigned>(date.month()) - 1]);
  putDigits(out.data() + 16, static_cast<unsigned>(static_cast<int>(date.year())), 4);
  putDigits(out.data() + 19, static_cast<unsigned>(clock.hours().count()), 2);
  putDigits(out.data() + 22, static_cast<unsigned>(clock.minutes().count()), 2);
  putDigits(out.data() + 25, static_cast<unsigned>(clock.seconds().count()), 2);
  return out;
}

std::optional<std::int64_t> parseHttpDate(std::string_view text) noexcept {
  if (auto t = parseDateAs(text, "a, dd b yyyy hh:mm:ss GMT")) return t;  // IMF-fixdate
  if (auto t = parseDateAs(text, "A, dd-b-yy hh:mm:ss GMT")) return t;    // RFC 850
  return parseDateAs(text, "a b _d hh:mm:ss yyyy");                       // asctime
}

FileAnswer evaluateFileRequest(HttpMethod method, const HttpHeaders& headers, std::string_view etag,
                               std::int64_t mtimeSeconds, std::uint64_t size) {
  const FileAnswer whole{Http200, 0, size};
  auto current = takeEntityTag(etag);
  if (!etag.empty()) current.reset();  // the caller's tag must be one whole entity-tag
  const bool getOrHead = method == HttpGet || method == HttpHead;

  // RFC 9110 §13.2.2 steps 1 and 2.
  if (headers.hasKey("If-Match")) {
    if (!listMatches(headers, "If-Match", current, Comparison::strong)) return {Http412};
  } else if (const auto since = singleDate(headers, "If-Unmodified-Since");
             since && mtimeSeconds > *since) {
    return {Http412};
  }
  // Steps 3 and 4.
  if (headers.hasKey("If-None-Match")) {
    if (listMatches(headers, "If-None-Match", current, Comparison::weak)) {
      return {getOrHead ? Http304 : Http412};
    }
  } else if (getOrHead) {
    if (const auto since = singleDate(headers, "If-Modified-Since");
        since && mtimeSeconds <= *since) {
      return {Http304};
    }
  }
  // Step 5: Range. A repeated If-Range is invalid, so it matches nothing.
  if (!getOrHead) return whole;
  const auto range = singleValue(headers, "Range");
  if (!range) return whole;
  if (headers.hasKey("If-Range")) {
    const auto ifRange = singleValue(headers, "If-Range");
    if (!ifRange || !ifRangeMatches(*ifRange, current, mtimeSeconds)) return whole;
  }
  return evaluateRange(*range, size).value_or(whole);
}

std::string contentRange(const FileAnswer& answer, std::uint64_t size) {
  if (answer.code == Http206 && answer.length > 0) {
    return "bytes " + std::to_string(answer.offset) + "-" +
           std::to_string(answer.offset + answer.length - 1) + "/" + std::to_string(size);
  }
  if (answer.code == Http416) return "bytes */" + std::to_string(size);
  return {};  // no Content-Range for other answers
}

}  // namespace asynchttp::detail
