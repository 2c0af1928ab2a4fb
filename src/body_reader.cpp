// Request bodies: buffered before the handler (ServerSettings::bufferBody), or read by the
// handler piece by piece; what a handler leaves unread is drained or the connection closes.
#include "http1_connection.hpp"

#include <algorithm>
#include <cstring>

namespace asynchttp::detail {

namespace {
// Content-Length bodies: reserved up front up to this (address space, not yet memory), and
// received in steps of kBodyChunk, each committed only as its bytes arrive.
constexpr std::size_t kEagerBodyReserve = 1 << 20;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

// A body read in pieces gets a buffer of kBodyChunk: 4 KiB reads would cost a system call
// each (the buffer returns to a pooled page when the connection parks).
void Connection::growForBody() {
  if (buffer_.capacity() >= kBodyChunk) return;
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  buffer_.grow(kBodyChunk, end_);
}

// The read deadline covers a streamed body too, until its end.
void Connection::bodyEnded() noexcept {
  bodyDone_ = true;
  disarmDeadline();
  deadlinePaused_ = false;
}

Future<void> Connection::sendContinue() {
  continueSent_ = true;
  transport_->corked() += kContinue;
  interimBytes_ += kContinue.size();  // an interim response answers nothing
  co_await transport_->flush();
}

// Before waiting for body bytes: what is answered goes out (the client may be waiting for
// it), and `100 Continue` when the client waits for it and nothing final was sent.
Future<void> Connection::beforeBodyRead() {
  co_await transport_->flush();
  if (head_.expectContinue && !continueSent_ && !finalSent_) co_await sendContinue();
}

void Connection::rejectBody(HttpCode code, std::string_view reason) {
  bodyEnded();  // nothing more is read of it: the connection closes after the response
  closeAfterResponse_ = true;
  bodyRejection_ = code;
  if (stream_ == StreamState::headPending) stream_ = StreamState::none;  // the error is the answer
  if (!finalSent_) appendError(code, reason);
}

void Connection::bodyFailed(HttpCode code, std::string_view reason) {
  rejectBody(code, reason);
  throw BodyRefused("request body: " + std::to_string(code.value) + " " + std::string(reason));
}

void Connection::clientLeftMidBody() {
  bodyEnded();
  transport_->close();
  throw SocketClosedError("recv (the client left before the end of the body)");
}

Future<Connection::BodyStatus> Connection::receiveBody(std::string& body, std::uint64_t limit) {
  if (head_.framing == BodyFraming::contentLength) {
    if (body.size() + bodyRemaining_ > limit) {
      rejectBody(Http413, "Payload Too Large");
      co_return BodyStatus::rejected;
    }
    std::size_t buffered =
        static_cast<std::size_t>(std::min<std::uint64_t>(bodyRemaining_, end_ - begin_));
    body.append(buffer_.data() + begin_, buffered);
    consume(buffered);
    bodyRemaining_ -= buffered;
    if (bodyRemaining_ > 0) {
      co_await beforeBodyRead();
      // Received straight into the body: the only copy in user space is the kernel's. Memory
      // is committed as bytes arrive (a reservation is address space until written), so a
      // client announcing 8 MiB and sending nothing costs little.
      body.reserve(body.size() + std::min<std::uint64_t>(bodyRemaining_, kEagerBodyReserve));
      while (bodyRemaining_ > 0) {
        std::size_t have = body.size();
        auto step = static_cast<std::size_t>(std::min<std::uint64_t>(bodyRemaining_, kBodyChunk));
        body.resize(have + step);
        std::size_t n = co_await receive(std::span(body.data() + have, step));
        body.resize(have + n);
        if (n == 0) co_return BodyStatus::clientLeft;
        bodyRemaining_ -= n;
      }
    }
    bodyEnded();
    co_return BodyStatus::complete;
  }
  for (;;) {  // chunked
    ParseResult r = decoder_.decode(unparsed(), body);
    consume(r.consumed);
    // The size first: the answer must not depend on whether the bytes after came yet.
    if (body.size() > limit) {
      rejectBody(Http413, "Payload Too Large");
      co_return BodyStatus::rejected;
    }
    if (r.status == ParseStatus::error) {
      rejectBody(r.error, r.reason);
      co_return BodyStatus::rejected;
    }
    if (r.status == ParseStatus::complete) {
      bodyEnded();
      co_return BodyStatus::complete;
    }
    co_await beforeBodyRead();
    growForBody();
    std::size_t n = co_await receive(readSpace());
    if (n == 0) co_return BodyStatus::clientLeft;
    end_ += n;
  }
}

Future<std::string_view> Connection::bodyChunk() {
  if (!streamingBody_) {  // buffered before the handler: the whole body, once
    if (bufferedBodyTaken_) co_return std::string_view{};
    bufferedBodyTaken_ = true;
    co_return std::string_view(request_.body);
  }
  if (bodyDone_) co_return std::string_view{};
  growForBody();
  for (;;) {
    if (head_.framing == BodyFraming::contentLength) {
      if (bodyRemaining_ == 0) {
        bodyEnded();
        co_return std::string_view{};
      }
      if (begin_ < end_) {
        auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(bodyRemaining_, end_ - begin_));
        std::string_view piece(buffer_.data() + begin_, take);
        // Consumed now, overwritten only by the next read: valid until the next call.
        consume(take);
        bodyRemaining_ -= take;
        if (bodyRemaining_ == 0) bodyEnded();  // the deadline ends with the last byte
        co_return piece;
      }
    } else {
      chunk_.clear();
      ParseResult r = decoder_.decode(unparsed(), chunk_);
      consume(r.consumed);
      // Bytes decoded before an error are the body's: they come first, the (sticky) error
      // with the next call, wherever the input was split.
      if (r.status == ParseStatus::error && chunk_.empty()) bodyFailed(r.error, r.reason);
      if (r.status == ParseStatus::error) co_return std::string_view(chunk_);
      if (r.status == ParseStatus::complete) bodyEnded();
      if (!chunk_.empty() || bodyDone_) co_return std::string_view(chunk_);
    }
    co_await beforeBodyRead();
    std::size_t n = co_await receive(readSpace());
    if (n == 0) clientLeftMidBody();
    end_ += n;
  }
}

Future<void> Connection::readBody(std::size_t limit) {
  std::uint64_t most = std::min<std::uint64_t>(limit, limits_.maxBody);
  if (!streamingBody_) {
    if (request_.body.size() > most) bodyFailed(Http413, "Payload Too Large");
    co_return;
  }
  if (bodyDone_) co_return;
  BodyStatus status = co_await receiveBody(request_.body, most);
  if (status == BodyStatus::clientLeft) clientLeftMidBody();
  if (status == BodyStatus::rejected) {
    throw BodyRefused("readBody: the request body was refused with " +
                      std::to_string(bodyRejection_.value));
  }
}

Future<void> Connection::discardRest() {
  std::size_t total = 0;
  while (!bodyDone_ && total <= kLingerBytes) {
    std::string_view piece = co_await bodyChunk();
    total += piece.size();
  }
}

Future<bool> Connection::discardBody() {
  // A client that waits for `100 Continue` may never send the body; a long one is not worth
  // reading. Either way the connection closes after the response.
  if (waitsForContinue()) co_return false;
  if (head_.framing == BodyFraming::contentLength && bodyRemaining_ > kLingerBytes) co_return false;
  co_await transport_->flush();
  auto draining = discardRest();
  bool inTime = co_await withTimeout(draining, kLingerMs);
  if (!inTime) {
    drainExpired_ = true;      // the next read fails, even one whose wake-up is already queued
    transport_->cancelRead();  // the pending read ends with SocketClosedError
  }
  bool failed = false;
  try {
    co_await draining;
  } catch (const std::exception&) {
    failed = true;
  }
  co_return inTime && !failed && bodyDone_ && transport_->isOpen();
}

}  // namespace asynchttp::detail
