// How to answer a request for a static file (RFC 9110 §8.8, §13, §14): media type, validators,
// preconditions and Range. Pure: no I/O, the caller supplies the file's size and times.
#pragma once

#include <asynchttp/httpcore.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace asynchttp::detail {

/// The media type for a file name, by its extension (case-insensitive); text types carry
/// "; charset=utf-8". Unknown or no extension: "application/octet-stream".
std::string_view mimeType(std::string_view path) noexcept;

/// A strong entity tag for a file's modification time and size: "\"<mtime-seconds hex>-<size
/// hex>\"" (nginx's form).
std::string entityTag(std::int64_t mtimeSeconds, std::uint64_t size);
/// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") of a time in seconds since the epoch, UTC.
std::string formatHttpDate(std::int64_t seconds);
/// Seconds since the epoch of an HTTP-date: IMF-fixdate, and the obsolete RFC 850 and asctime
/// forms (RFC 9110 §5.6.7); nullopt for anything else.
std::optional<std::int64_t> parseHttpDate(std::string_view text) noexcept;

/// What to send for a file request: the status, and the byte range of the file (the whole file
/// for 200).
struct FileAnswer {
  HttpCode code = Http200;   // Http200, Http206, Http304, Http412 or Http416
  std::uint64_t offset = 0;  // first byte to send
  std::uint64_t length = 0;  // bytes to send (0 for 304, 412, 416)
};

/// Evaluates the request's preconditions and Range against a file of `size` bytes, modified at
/// `mtimeSeconds`, whose tag is `etag` (as made by entityTag), in RFC 9110 §13.2.2's order:
/// If-Match (412 unless it lists the tag or is "*"; strong comparison), else If-Unmodified-Since
/// (412 if the file is newer); If-None-Match (for GET and HEAD: 304 when it lists the tag or "*",
/// weak comparison; other methods: 412), else If-Modified-Since (GET/HEAD only: 304 when the file
/// is not newer than the date); then Range (GET only; for HEAD too, so that HEAD reports what GET
/// would get), honoured only when If-Range is absent or matches (an entity tag: strong
/// comparison, a weak tag never matches; a date: exactly equal to the modification time).
FileAnswer evaluateFileRequest(HttpMethod method, const HttpHeaders& headers, std::string_view etag,
                               std::int64_t mtimeSeconds, std::uint64_t size);

/// "bytes first-last/size" for a 206, and "bytes */size" for a 416.
std::string contentRange(const FileAnswer& answer, std::uint64_t size);

}  // namespace asynchttp::detail
