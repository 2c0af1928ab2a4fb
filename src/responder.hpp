// The protocol-neutral exchange: what a Request needs of whatever carries it. The HTTP/1
// connection implements it now; an HTTP/2 stream will too.
#pragma once

#include <asynchttp/asynchttpserver.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace asynchttp::detail {

/// The far side of one Request: its body and its response. See Request for each call's
/// contract; the Request checks nothing itself.
class Responder {
 public:
  virtual Future<void> respond(HttpCode code, std::string_view content,
                               const HttpHeaders& headers) = 0;
  virtual Future<void> respond(HttpCode code, std::string&& content,
                               const HttpHeaders& headers) = 0;
  virtual Future<void> sendHeaders(const HttpHeaders& headers) = 0;
  virtual Future<std::string_view> bodyChunk() = 0;
  virtual Future<void> readBody(std::size_t limit) = 0;
  /// Starts a streamed response (its head waits for the first piece or the end).
  virtual void startStream(HttpCode code, const HttpHeaders& headers) = 0;
  virtual Future<void> streamWrite(std::string_view bytes) = 0;
  virtual Future<void> streamFinish(const HttpHeaders& trailers) = 0;
  /// The stream ended without finish: the response is cut, and must not look complete.
  virtual void streamAbort() noexcept = 0;
  virtual Future<void> sendFile(std::string path, const HttpHeaders& headers) = 0;

 protected:
  ~Responder() = default;
  /// Makes `request` reach this responder.
  void attach(Request& request) noexcept { request.responder_ = this; }
  /// The exchange ends: a stream the handler kept reaches nothing from now on (its calls
  /// throw ValueError) instead of a connection that may be gone.
  void releaseStream() noexcept {
    if (openStream_) openStream_->responder_ = nullptr;
    openStream_ = nullptr;
  }

 private:
  friend class asynchttp::ResponseStream;
  ResponseStream* openStream_ = nullptr;  // the handle of the stream under way, if any
};

/// Throws ValueError unless `code` is a status code HTTP can carry (100..599).
void checkStatusCode(HttpCode code, const char* operation);

}  // namespace asynchttp::detail
