// One HTTP/1.1 connection over a Transport: reads requests, calls the callback, writes the
// responses in order. Its parts live in three files: http1_connection.cpp (the request loop,
// errors, closing), body_reader.cpp (request bodies), http1_response.cpp (responses: whole,
// streamed, files).
#pragma once

#include "buffers.hpp"
#include "connection_set.hpp"
#include "http1_parser.hpp"
#include "responder.hpp"
#include "response_writer.hpp"
#include "transport.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace asynchttp::detail {

// Responses up to this size are copied behind the head into the corked output and sent with
// other pipelined responses; larger bodies are written straight from the caller's bytes.
inline constexpr std::size_t kCopyBodyLimit = 16 * 1024;
// Corked output past this size is written out without waiting for the end of the batch.
inline constexpr std::size_t kFlushThreshold = 64 * 1024;
inline constexpr std::size_t kInitialReadBuffer = 4096;
inline constexpr std::size_t kMinReadSpace = 2048;
// Bodies are received in steps of this size; a streamed body's read buffer grows to it.
inline constexpr std::size_t kBodyChunk = 64 * 1024;
// After an error response, and for a body its handler left unread: how long and how much to
// drain before closing, so that the client reads the response instead of a reset.
inline constexpr std::int64_t kLingerMs = 1000;
inline constexpr std::size_t kLingerBytes = 1 << 20;

/// A handler's read of a streamed body that ran out of the request's time: the client's doing,
/// answered with 408, not reported as a handler failure.
struct ReadDeadlinePassed : SocketClosedError {
  using SocketClosedError::SocketClosedError;
};
/// A body refused while the handler read it (413, a malformed chunk), answered already: the
/// client's doing, not reported as a handler failure.
struct BodyRefused : ValueError {
  using ValueError::ValueError;
};

/// One client connection. States: reading a request (idle when no byte of the next one has
/// come), handling it, closing. A server's close() moves an idle connection to closing at
/// once, a busy one after its response.
class Connection final : public Responder {
 public:
  /// A connection over `transport`; `client` is the socket handle the Request shows (none for
  /// a transport without a socket), `received` the first bytes already read.
  Connection(std::unique_ptr<Transport> transport, AsyncSocket client, std::string address,
             const ServerSettings& settings, std::shared_ptr<const RequestCallback> callback,
             std::shared_ptr<ConnectionSet> siblings, std::string_view received = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Serves requests until the peer leaves, an error ends the connection, a request asks to
  /// close, or the server closes. `self` owns this object from the frame. Never throws.
  Future<void> run(std::unique_ptr<Connection> self);
  /// Starts parking a connection idle since `cutoff` or longer: its pending read is cancelled,
  /// and run() hands the descriptor to a ParkedConnection and ends. True if it will.
  bool parkIfIdleSince(Clock::time_point cutoff) noexcept;
  /// The server is closing: close now if idle (a new connection with no byte yet only when
  /// `evenNew`), else after the response in progress.
  void shutdown(bool evenNew) noexcept;
  /// The server's grace is over: close now (a reset), failing pending reads and writes.
  void forceClose() noexcept;
  /// Arms the read deadline at `when` (a parked connection's, carried over).
  void armDeadlineAt(Clock::time_point when);
  /// Runs the header timeout from `since` (a new connection's start, carried over parking).
  void continueHeaderTimeout(Clock::time_point since) { enterPhase(Phase::head, since); }

  // Responder: what the Request asks.
  Future<void> respond(HttpCode code, std::string_view content,
                       const HttpHeaders& headers) override;
  Future<void> respond(HttpCode code, std::string&& content, const HttpHeaders& headers) override;
  Future<void> sendHeaders(const HttpHeaders& headers) override;
  Future<std::string_view> bodyChunk() override;
  Future<void> readBody(std::size_t limit) override;
  void startStream(HttpCode code, const HttpHeaders& headers) override;
  Future<void> streamWrite(std::string_view bytes) override;
  Future<void> streamFinish(const HttpHeaders& trailers) override;
  void streamAbort() noexcept override;
  Future<void> sendFile(std::string path, const HttpHeaders& headers) override;

 private:
  friend struct ConnectionSet;
  enum class BodyStatus : std::uint8_t { complete, clientLeft, rejected };
  enum class StreamState : std::uint8_t { none, headPending, open, aborted };

  // --- reading (http1_connection.cpp) ---
  std::string_view unparsed() const noexcept { return {buffer_.data() + begin_, end_ - begin_}; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  std::span<char> readSpace();
  // Receives at least one byte into `into` (0 at end of stream); throws SocketClosedError
  // once the read deadline passed, even while the connection was writing.
  Future<std::size_t> receive(std::span<char> into);
  bool fillRequest();
  void park() noexcept;
  // The read deadline: armed when the server starts waiting for a request, disarmed once the
  // request (head, and a buffered body) is in. It aborts the pending read; run() then answers.
  void armDeadline() {
    if (readTimeout_ > 0 && deadline_.heapIndex == TimerNode::kNotQueued) armDeadlineNow();
  }
  void armDeadlineNow();
  // A streamed body's deadline stops while the handler does not wait for the body, and goes on
  // with the time that was left (resumeDeadline: true if it was paused).
  void pauseDeadline() noexcept;
  bool resumeDeadline();
  void disarmDeadline() noexcept {
    if (deadline_.heapIndex != TimerNode::kNotQueued) transport_->loop().cancelTimer(deadline_);
  }
  void readTimedOut() noexcept;
  // The named timeouts (ServerSettings::headerTimeout, bodyTimeout, idleTimeout): what the
  // connection waits for, since when. One timer serves them lazily: armed no later than the
  // current phase's end, and when it fires early (the phase changed since), armed again.
  using Phase = ConnectionSet::Phase;
  void enterPhase(Phase phase, Clock::time_point since) {
    phase_ = phase;
    phaseSince_ = since;
    Clock::duration limit = siblings_->phaseLimits[static_cast<std::size_t>(phase)];
    if (limit == Clock::duration::zero()) return;
    // Armed for no later than this phase's end (a keep-alive request's case): nothing to do.
    if (phaseTimer_.heapIndex != TimerNode::kNotQueued && phaseTimer_.deadline <= since + limit) {
      return;
    }
    armPhaseTimer(since + limit);
  }
  void armPhaseTimer(Clock::time_point end);
  void leavePhase() noexcept { phase_ = Phase::none; }
  std::optional<Clock::time_point> phaseEnd() const noexcept;
  void phaseTimerFired() noexcept;
  // Appends a short text response that ends the connection.
  void appendError(HttpCode code, std::string_view text);
  // Answers with appendError, then closes (lingering).
  Future<void> sendError(HttpCode code, std::string_view reason);
  Future<void> lingerAndClose();
  Future<void> handlerFailed(std::exception_ptr failure, bool answered);
  // Everything written or queued so far: a change means the handler answered.
  std::uint64_t outputMark() const noexcept {
    return transport_->bytesWritten() + transport_->corked().size();
  }

  // --- bodies (body_reader.cpp) ---
  Future<BodyStatus> receiveBody(std::string& body, std::uint64_t limit);
  Future<void> beforeBodyRead();
  Future<void> sendContinue();
  // After the handler: reads what it left of the body, within kLingerBytes and kLingerMs.
  // False when the connection cannot carry another request.
  Future<bool> discardBody();
  Future<void> discardRest();
  bool bodyUnread() const noexcept { return streamingBody_ && !bodyDone_; }
  // A body that went wrong while the handler reads it: the error response (if nothing was
  // answered yet), the connection closes after, and the handler gets ValueError.
  [[noreturn]] void bodyFailed(HttpCode code, std::string_view reason);
  // The body is refused: the error response (if nothing was answered yet), then close.
  void rejectBody(HttpCode code, std::string_view reason);
  void growForBody();
  void bodyEnded() noexcept;
  [[noreturn]] void clientLeftMidBody();

  // --- responses (http1_response.cpp) ---
  HeadContext headContext() const noexcept {
    bool keep = keepAlive_ && !closing_ && !closeAfterResponse_ && !timedOut_ &&
                !(bodyUnread() && unreadBodyCloses());
    return {headRequest_, request_.protocol.minor == 0, keep};
  }
  // A body left unread is drained after the response only when that is cheap and sure.
  bool unreadBodyCloses() const noexcept;
  // The client asked for `100 Continue`, got none, and sent no body byte: it may never send it.
  bool waitsForContinue() const noexcept {
    return head_.expectContinue && !continueSent_ && !clientSentBody_;
  }
  // Throws ValueError unless `code` may answer now: valid, not 101, nothing final sent (an
  // interim response after it would be taken for the next request's), no stream.
  void checkCanAnswer(HttpCode code, const char* operation) const {
    bool valid = static_cast<unsigned>(code.value - 100) <= 499u;
    if (!valid || code == Http101 || stream_ != StreamState::none || finalSent_) {
      refuseAnswer(code, operation);
    }
  }
  [[noreturn]] void refuseAnswer(HttpCode code, const char* operation) const;
  // Writes a head into the corked output (and `body`, which it copies behind it).
  HeadOutcome writeResponseHead(HttpCode code, const HttpHeaders& headers,
                                std::optional<std::uint64_t> length, std::string_view body = {}) {
    std::string& out = transport_->corked();
    std::size_t before = out.size();
    HeadOutcome head =
        writeHead(out, code, headers, length, headContext(), transport_->loop().now(), body);
    if (is1xx(code)) {
      interimBytes_ += out.size() - before;
    } else {
      finalSent_ = true;
      closeAfterResponse_ |= head.closeAfter;
    }
    return head;
  }
  bool sendsBody(const HeadOutcome& head) const noexcept {
    return !headRequest_ && head.framing != Framing::none;
  }
  // After appending to the corked output: written now unless still corked and small.
  Future<void> afterAppend() {
    if (!corked_ || transport_->corked().size() > kFlushThreshold) return transport_->flush();
    return {};
  }
  void openStreamHead(std::optional<std::uint64_t> length);
  Future<void> sendFileRange(int fd, std::uint64_t offset, std::uint64_t length);

  std::unique_ptr<Transport> transport_;
  std::shared_ptr<const RequestCallback> callback_;
  std::shared_ptr<ConnectionSet> siblings_;
  ParserLimits limits_;
  RequestHead head_;
  ChunkedDecoder decoder_;
  Request request_;
  ReadBuffer buffer_;  // received bytes; [begin_, end_) not yet parsed
  std::size_t begin_ = 0, end_ = 0;
  std::size_t scanned_ = 0;  // bytes of a partial head already searched for its end
  std::size_t maxOutputBuffer_;
  bool bufferBody_;
  // The exchange in progress.
  bool corked_ = true;  // responses wait for the end of the batch of pipelined requests
  bool keepAlive_ = true;
  bool headRequest_ = false;
  bool continueSent_ = false;
  bool closeAfterResponse_ = false;
  bool finalSent_ = false;           // a final (non-1xx) response was sent for this request
  std::size_t interimBytes_ = 0;     // bytes of 1xx responses, which do not answer a request
  bool streamingBody_ = false;       // the handler reads the body (bufferBody false)
  bool bodyDone_ = true;             // the whole body was read
  bool bufferedBodyTaken_ = false;   // bodyChunk returned a buffered body already
  bool clientSentBody_ = false;      // a body byte came (the client does not wait for 100)
  std::uint64_t bodyRemaining_ = 0;  // Content-Length bytes not read yet
  std::string chunk_;                // the piece of a chunked body bodyChunk returned last
  HttpCode bodyRejection_{};         // the status a refused body was answered with
  StreamState stream_ = StreamState::none;
  HttpCode streamCode_{};
  HttpHeaders streamHeaders_;
  Framing streamFraming_ = Framing::none;
  std::optional<std::uint64_t> streamLength_;  // a stream's declared Content-Length
  std::uint64_t streamWritten_ = 0;
  // The connection's life.
  bool idle_ = false;           // waiting for the first byte of a request
  bool parking_ = false;        // idle long enough: its wait is cancelled to park it
  bool servedRequest_ = false;  // a request came: waiting for the next is being idle
  bool headTimedOut_ = false;   // the headerTimeout passed (answered 408 if a byte came)
  Phase phase_ = Phase::none;
  std::size_t liveIndex_ = 0;     // in siblings_->live
  Clock::time_point phaseSince_;  // of phase_ (for idle, when the connection became idle)
  bool closing_ = false;          // the server is closing: no request after the current one
  bool readingBody_ = false;
  bool timedOut_ = false;
  bool drainExpired_ = false;  // discardBody ran out of time: no more reads
  bool deadlinePaused_ = false;
  Clock::duration readBudget_{};  // of a paused deadline, what is left
  struct Deadline : TimerNode {
    Connection* owner = nullptr;
  };
  Deadline deadline_;
  Deadline phaseTimer_;
  std::int64_t readTimeout_ = 0;
};

}  // namespace asynchttp::detail
