// Request and ResponseStream: thin handles that reach the exchange through its Responder.
#include "responder.hpp"

namespace asynchttp {

namespace detail {
void checkStatusCode(HttpCode code, const char* operation) {
  if (code.value < 100 || code.value > 599) {
    throw ValueError(std::string(operation) + ": status code " + std::to_string(code.value) +
                     " is outside 100..599");
  }
}
}  // namespace detail

detail::Responder& Request::responder(const char* operation) const {
  if (!responder_)
    throw ValueError(std::string(operation) + ": this Request belongs to no connection");
  return *responder_;
}

Future<void> Request::respond(HttpCode code, std::string_view content, const HttpHeaders& headers) {
  return responder("respond").respond(code, content, headers);
}

Future<void> Request::respond(HttpCode code, std::string&& content, const HttpHeaders& headers) {
  return responder("respond").respond(code, std::move(content), headers);
}

Future<void> Request::sendHeaders(const HttpHeaders& headers) {
  return responder("sendHeaders").sendHeaders(headers);
}

Future<std::string_view> Request::bodyChunk() {
  return responder("bodyChunk").bodyChunk();
}

Future<void> Request::readBody(std::size_t limit) {
  return responder("readBody").readBody(limit);
}

Future<ResponseStream> Request::respondStream(HttpCode code, const HttpHeaders& headers) {
  detail::Responder& r = responder("respondStream");
  r.startStream(code, headers);
  co_return ResponseStream(&r);
}

Future<void> Request::sendFile(std::string path, const HttpHeaders& headers) {
  return responder("sendFile").sendFile(std::move(path), headers);
}

// --- ResponseStream -----------------------------------------------------------------------------

ResponseStream::ResponseStream(detail::Responder* responder) noexcept : responder_(responder) {
  responder_->openStream_ = this;
}

ResponseStream::ResponseStream(ResponseStream&& other) noexcept
    : responder_(std::exchange(other.responder_, nullptr)) {
  if (responder_) responder_->openStream_ = this;
}

ResponseStream& ResponseStream::operator=(ResponseStream&& other) noexcept {
  if (this != &other) {
    if (responder_) {
      responder_->streamAbort();
      release();
    }
    responder_ = std::exchange(other.responder_, nullptr);
    if (responder_) responder_->openStream_ = this;
  }
  return *this;
}

ResponseStream::~ResponseStream() {
  if (responder_) {
    responder_->streamAbort();
    release();
  }
}

void ResponseStream::release() noexcept {
  if (responder_ && responder_->openStream_ == this) responder_->openStream_ = nullptr;
  responder_ = nullptr;
}

Future<void> ResponseStream::write(std::string_view bytes) {
  if (!responder_)
    throw ValueError("ResponseStream::write: the stream is finished or its exchange ended");
  return responder_->streamWrite(bytes);
}

Future<void> ResponseStream::finish(const HttpHeaders& trailers) {
  if (!responder_) {
    throw ValueError("ResponseStream::finish: the stream is finished or its exchange ended");
  }
  // Released first: a finish that throws has aborted the response already.
  detail::Responder* responder = responder_;
  release();
  return responder->streamFinish(trailers);
}

}  // namespace asynchttp
