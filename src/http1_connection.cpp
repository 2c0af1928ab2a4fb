// The HTTP/1 connection's request loop: read, parse, call the handler, keep alive or close.
#include "http1_connection.hpp"

#include "tcp_transport.hpp"
#include "text_internal.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace asynchttp::detail {

namespace {

// Fills `url` from an origin-form target ("/path?query"), which is a path and a query, never
// an authority: "//a" is the path "//a". Cheaper than the general parseUri, and more exact here.
// No anchor: the parser refuses a "#" in the target.
void fillOriginForm(std::string_view target, Uri& url) {
  url.scheme.clear();
  url.username.clear();
  url.password.clear();
  url.hostname.clear();
  url.port.clear();
  url.opaque = false;
  url.isIpv6 = false;
  url.anchor.clear();
  auto question = target.find('?');
  assignIfChanged(url.query, question == std::string_view::npos ? std::string_view{}
                                                                : target.substr(question + 1));
  assignIfChanged(url.path, target.substr(0, question));
}

// The parser's limits from the server's settings.
ParserLimits limitsFrom(const ServerSettings& settings) {
  ParserLimits limits;
  limits.maxRequestLine = settings.maxRequestLine;
  limits.maxHeaderBytes = settings.maxHeaderBytes;
  limits.maxHeaderCount = std::min<std::size_t>(settings.maxHeaders, headerLimit);
  limits.maxBody = settings.maxBody;
  limits.allowConnect = settings.allowConnect;
  return limits;
}

/// True for the errors a send or receive ends with when the client went away (a reset, a closed
/// socket), stopped reading past writeTimeout, or the connection was closed under it (shutdown).
bool clientGone(int code) noexcept {
  return code == EPIPE || code == ECONNRESET || code == ETIMEDOUT || code == ECANCELED;
}

}  // namespace

Connection::Connection(std::unique_ptr<Transport> transport, AsyncSocket client,
                       std::string address, const ServerSettings& settings,
                       std::shared_ptr<const RequestCallback> callback,
                       std::shared_ptr<ConnectionSet> siblings, std::string_view received)
    : transport_(std::move(transport)),
      callback_(std::move(callback)),
      siblings_(std::move(siblings)),
      limits_(limitsFrom(settings)),
      decoder_(limits_),
      maxOutputBuffer_(settings.maxOutputBuffer),
      bufferBody_(settings.bufferBody) {
  readTimeout_ = settings.readTimeout;
  deadline_.owner = this;
  deadline_.fire = [](TimerNode& node) { static_cast<Deadline&>(node).owner->readTimedOut(); };
  phaseTimer_.owner = this;
  phaseTimer_.fire = [](TimerNode& node) { static_cast<Deadline&>(node).owner->phaseTimerFired(); };
  request_.client = std::move(client);
  request_.hostname = std::move(address);
  attach(request_);
  buffer_.grow(std::max(kInitialReadBuffer, received.size()), 0);
  if (!received.empty()) std::memcpy(buffer_.data(), received.data(), received.size());
  end_ = received.size();
  siblings_->add(this);  // last: a constructor that throws leaves no dangling entry
}

Connection::~Connection() {
  releaseStream();
  transport_->loop().cancelTimer(deadline_);
  transport_->loop().cancelTimer(phaseTimer_);
  siblings_->remove(this);
}

bool Connection::parkIfIdleSince(Clock::time_point cutoff) noexcept {
  if (!idle_ || parking_ || closing_ || timedOut_ || phaseSince_ > cutoff ||
      !transport_->parkable() || transport_->writing() || !transport_->corked().empty()) {
    return false;
  }
  parking_ = true;
  transport_->cancelRead();
  return true;
}

void Connection::shutdown(bool evenNew) noexcept {
  closing_ = true;
  // The pending read ends with SocketClosedError. A new connection's first request may be on
  // its way (the client just connected): it gets a moment first, as in Go's Shutdown.
  if (idle_ && (servedRequest_ || evenNew)) transport_->close();
}

std::optional<Clock::time_point> Connection::phaseEnd() const noexcept {
  Clock::duration limit = siblings_->phaseLimits[static_cast<std::size_t>(phase_)];
  if (limit == Clock::duration::zero()) return std::nullopt;
  return phaseSince_ + limit;
}

void Connection::armPhaseTimer(Clock::time_point end) {
  Dispatcher& loop = transport_->loop();
  loop.cancelTimer(phaseTimer_);
  phaseTimer_.deadline = end;
  loop.addTimer(phaseTimer_);
}

// The timer was armed for an earlier phase's end: arm it again for this one's, or end the wait.
void Connection::phaseTimerFired() noexcept {
  auto end = phaseEnd();
  if (!end) return;
  if (Clock::now() < *end) {
    phaseTimer_.deadline = *end;
    transport_->loop().addTimer(phaseTimer_);  // cannot throw: the heap just gave its slot up
    return;
  }
  if (phase_ == Phase::head) headTimedOut_ = true;
  readTimedOut();
}

void Connection::forceClose() noexcept {
  closing_ = true;
  if (transport_->isOpen()) transport_->abort();
}

void Connection::armDeadlineNow() {
  // From a fresh clock (the loop's may be a turn old, after a slow handler), saturating.
  deadline_.deadline = deadlineAfter(Clock::now(), readTimeout_);
  transport_->loop().addTimer(deadline_);
}

void Connection::armDeadlineAt(Clock::time_point when) {
  deadline_.deadline = when;
  transport_->loop().addTimer(deadline_);
}

// Only the read is cancelled: answers to earlier pipelined requests still being written are
// not cut short (their bytes would otherwise be lost mid-response).
void Connection::readTimedOut() noexcept {
  timedOut_ = true;
  transport_->cancelRead();
}

// The free tail of the read buffer, made room for by compacting or growing it.
std::span<char> Connection::readSpace() {
  if (end_ == buffer_.capacity()) {
    if (begin_ > 0) {  // compact: parsed bytes are gone, views into them were copied
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.capacity() - end_ < kMinReadSpace) {
      buffer_.grow(std::max(buffer_.capacity() * 2, kInitialReadBuffer), end_);
    }
  }
  return {buffer_.data() + end_, buffer_.capacity() - end_};
}

Future<std::size_t> Connection::receive(std::span<char> into) {
  bool resumed = false;  // a paused deadline runs while this waits for the client
  for (;;) {
    // A deadline that passed while the connection was writing, or while a wake-up was queued.
    if (timedOut_ || drainExpired_)
      throw ReadDeadlinePassed("recv (the request's read deadline passed)");
    std::ptrdiff_t n = transport_->tryRead(into);
    if (n >= 0) {
      leavePhase();
      if (resumed) pauseDeadline();
      clientSentBody_ = clientSentBody_ || n > 0;
      co_return static_cast<std::size_t>(n);
    }
    resumed = resumed || resumeDeadline();
    enterPhase(Phase::body, Clock::now());  // "no body byte for bodyTimeout"
    if (!co_await TransportReadable{*transport_}) {
      if (timedOut_) throw ReadDeadlinePassed("recv (the request's read deadline passed)");
      throw SocketClosedError("recv");
    }
  }
}

void Connection::pauseDeadline() noexcept {
  if (deadline_.heapIndex == TimerNode::kNotQueued) return;
  readBudget_ = std::max(Clock::duration::zero(), deadline_.deadline - Clock::now());
  disarmDeadline();
  deadlinePaused_ = true;
}

bool Connection::resumeDeadline() {
  if (!deadlinePaused_) return false;
  deadlinePaused_ = false;
  armDeadlineAt(Clock::now() + readBudget_);
  return true;
}

// Hands the socket to a ParkedConnection; the caller (run) then ends, freeing the rest.
void Connection::park() noexcept {
  CarriedClocks clocks;
  if (deadline_.heapIndex != TimerNode::kNotQueued) clocks.readDeadline = deadline_.deadline;
  // Only a new connection parks waiting for a head (the others wait for the next request).
  if (phase_ == Phase::head) clocks.headerSince = phaseSince_;
  int domain = AF_INET;
  int fd = transport_->detachForParking(domain);
  siblings_->park(fd, domain, callback_, clocks, phaseEnd());
  disarmDeadline();
  transport_->loop().cancelTimer(phaseTimer_);
  buffer_.release(false);
}

Future<void> Connection::sendError(HttpCode code, std::string_view reason) {
  std::string_view text = reason.empty() ? reasonPhrase(code) : reason;
  appendError(code, text);
  co_await transport_->flush();
  co_await lingerAndClose();
}

// Lingering close: stop sending, then drain what the client still sends for a while, so that
// closing with unread bytes does not reset the connection before it reads the response.
Future<void> Connection::lingerAndClose() {
  transport_->shutdownWrite();
  auto drain = [](Transport& t) -> Future<void> {
    char sink[4096];
    std::size_t total = 0;
    while (total < kLingerBytes) {
      std::size_t n = co_await readSome(t, sink);
      if (n == 0) break;
      total += n;
    }
  };
  auto draining = drain(*transport_);
  co_await withTimeout(draining, kLingerMs);
  transport_->close();  // a drain still pending ends with SocketClosedError, which it drops
  try {
    co_await draining;
  } catch (const OSError&) {
  }
}

// After a handler threw: log it, answer 500 if it had sent nothing, and close.
Future<void> Connection::handlerFailed(std::exception_ptr failure, bool answered) {
  // A refused or late body is the client's mistake, no handler failure to report.
  try {
    std::rethrow_exception(failure);
  } catch (const BodyRefused&) {
  } catch (const ReadDeadlinePassed&) {
  } catch (const OSError& e) {
    // Nor is a client that left, or was cut off, mid-response: each would log a line (a flood
    // under load); anything else the system refused is reported.
    if (!clientGone(e.code())) reportException("request handler failed", failure);
  } catch (...) {
    reportException("request handler failed", failure);
  }
  if (!answered) {
    if (drainExpired_) {
      co_await sendError(Http408, "Request Timeout");
      co_return;
    }
    co_await sendError(Http500, "Internal Server Error");
  } else {
    co_await transport_->flush();
    co_await lingerAndClose();
  }
}

// Copies the parsed head into the Request; false (after answering 400) if the target is bad.
bool Connection::fillRequest() {
  Request& r = request_;
  r.reqMethod = head_.method;
  assignIfChanged(r.protocol.orig, head_.version);
  r.protocol.major = head_.versionMajor;
  r.protocol.minor = head_.versionMinor;
  assignIfChanged(r.target, head_.target);
  r.headers.clear();
  for (const auto& field : head_.headers) r.headers.add(field.name, field.value);
  r.body.clear();
  servedRequest_ = true;
  // The exchange's state first: an invalid target is answered in this request's terms.
  keepAlive_ = head_.keepAlive;
  headRequest_ = head_.method == HttpHead;
  continueSent_ = false;
  closeAfterResponse_ = false;
  finalSent_ = false;
  interimBytes_ = 0;
  stream_ = StreamState::none;
  bodyRejection_ = HttpCode{};
  bodyDone_ = head_.framing == BodyFraming::none ||
              (head_.framing == BodyFraming::contentLength && head_.contentLength == 0);
  bodyRemaining_ = head_.framing == BodyFraming::contentLength ? head_.contentLength : 0;
  if (head_.framing == BodyFraming::chunked) decoder_.reset();
  streamingBody_ = !bufferBody_ && !bodyDone_;
  bufferedBodyTaken_ = false;
  try {
    if (head_.method == HttpConnect) {  // authority-form: host:port, which is no URI
      r.url = Uri{};
      auto colon = head_.target.rfind(':');
      r.url.hostname.assign(head_.target.substr(0, colon));
      r.url.port.assign(head_.target.substr(colon + 1));
    } else if (head_.target.front() == '/') {
      fillOriginForm(head_.target, r.url);
    } else {
      parseUri(head_.target, r.url);  // absolute-form, or "*"
    }
  } catch (const UriParseError&) {
    return false;
  }
  return true;
}

// The common path runs here without nested coroutines: reads, parsing and the handler call
// cost no coroutine frame of their own (about ten per request before, measured with callgrind).
Future<void> Connection::run(std::unique_ptr<Connection> self) {
  // `self` owns this object from the frame: the connection is one frame plus this object,
  // not a second coroutine frame around it (220 bytes less per idle connection).
  (void)self;
  Transport& transport = *transport_;
  try {
    for (;;) {
      ParseResult r = parseRequestHead(unparsed(), scanned_, limits_, head_);
      if (r.status == ParseStatus::partial) {
        scanned_ = end_ - begin_;
        co_await transport.flush();  // one write for the whole batch of responses
        idle_ = begin_ == end_;
        if (idle_ && closing_ && servedRequest_) break;
        // From a fresh clock: after a slow handler the loop's time is behind.
        if (idle_ && servedRequest_) {
          enterPhase(Phase::idle, Clock::now());
        } else if (phase_ != Phase::head) {
          enterPhase(Phase::head, Clock::now());  // the first byte, or the connection's start
        }
        armDeadline();
        std::ptrdiff_t n;
        while ((n = timedOut_ ? -1 : transport.tryRead(readSpace())) < 0) {
          if (!timedOut_ && co_await TransportReadable{transport}) continue;
          if (!parking_ || closing_ || timedOut_ || !transport.isOpen()) {
            throw SocketClosedError("recv");
          }
          parking_ = false;
          // Parked only while drained; bytes that came meanwhile are read here instead.
          if (!transport.mayRead()) {
            park();
            co_return;
          }
        }
        idle_ = false;
        if (n == 0) break;  // the client closed
        end_ += static_cast<std::size_t>(n);
        continue;
      }
      scanned_ = 0;
      leavePhase();
      if (r.status == ParseStatus::error) {
        headRequest_ = false;  // answered for a request that could not be read: never HEAD
        disarmDeadline();
        co_await sendError(r.error, r.reason);
        co_return;
      }
      bool targetOk = fillRequest();
      consume(r.consumed);
      clientSentBody_ = !bodyDone_ && begin_ < end_;  // what follows a head is its body
      if (!targetOk) {
        disarmDeadline();
        co_await sendError(Http400, "Invalid request target");
        co_return;
      }
      if (!bodyDone_) armDeadline();  // also for a head that was already buffered (pipelined)
      if (!bodyDone_ && !streamingBody_) {
        readingBody_ = true;
        BodyStatus body = co_await receiveBody(request_.body, limits_.maxBody);
        readingBody_ = false;
        if (body == BodyStatus::clientLeft) break;
        if (body == BodyStatus::rejected) {
          disarmDeadline();
          co_await transport.flush();
          co_await lingerAndClose();
          co_return;
        }
      }
      // The handler is never cut short by the read deadline; only its reads of a streamed body
      // are. The deadline is paused meanwhile and runs only while such a read waits for the
      // client: what the handler does in between is not the client's time.
      if (bodyDone_) {
        disarmDeadline();
      } else {
        pauseDeadline();
      }

      // The handler. Its answers stay corked while it runs without waiting; if it waits, what
      // it already answered is written first, so that it does not wait with it.
      std::uint64_t markBefore = outputMark();
      std::exception_ptr failure;
      bool peerGone = false;
      corked_ = true;
      // `handling` outlives everything below: the handler holds `request_` until it is done,
      // even when the connection fails under it.
      Future<void> handling;
      try {
        handling = (*callback_)(request_);
      } catch (...) {
        failure = std::current_exception();
      }
      if (!failure && !handling.finished()) {
        corked_ = false;
        try {
          co_await transport.flush();
        } catch (const OSError&) {
          peerGone = true;  // the handler still runs to its end; its writes will fail
        }
      }
      if (!failure) {
        try {
          co_await handling;
        } catch (...) {
          failure = std::current_exception();
        }
      }
      corked_ = true;
      if (peerGone || !transport.isOpen()) {
        timedOut_ = false;  // whatever was answered is cut: no 408 behind it
        break;              // closed, by the peer or by the handler
      }
      if (stream_ == StreamState::headPending || stream_ == StreamState::open) {
        streamAbort();  // a stream the handler neither finished nor dropped
      }
      releaseStream();  // a stream handle kept past the handler reaches nothing
      bool answered = finalSent_ || outputMark() - markBefore > interimBytes_;
      disarmDeadline();
      deadlinePaused_ = false;
      if (timedOut_) {
        // The handler's body read ran out of time: the body is not read any further, and the
        // connection ends after the answer (a 408 when the handler gave none).
        timedOut_ = false;
        drainExpired_ = true;
        closeAfterResponse_ = true;
      }
      if (stream_ == StreamState::aborted) {
        co_await transport.flush();
        if (streamFraming_ == Framing::untilClose) {
          transport.abort();  // an ordinary close would make the cut body look complete
        } else {
          transport.close();
        }
        break;
      }
      if (failure) {
        co_await handlerFailed(failure, answered);
        co_return;
      }
      if (!answered && drainExpired_) {
        co_await sendError(Http408, "Request Timeout");
        co_return;
      }
      if (!answered) {
        // Documented choice: a handler that answers nothing gets a 500 on its behalf, so that
        // no client waits forever and the mistake shows.
        co_await respond(Http500, std::string_view("The request handler sent no response.\n"),
                         HttpHeaders());
      }
      if (bodyUnread() && !closeAfterResponse_ && !closing_ && keepAlive_) {
        // The next request must not be parsed from the middle of this body.
        if (!co_await discardBody()) closeAfterResponse_ = true;
      }
      if (!keepAlive_ || closeAfterResponse_ || closing_) {
        co_await transport.flush();
        // The client sent more after a request that ends the connection: closing with bytes
        // unread would reset it, and it could lose the response. Linger then, as nginx does;
        // otherwise close at once (no extra system calls per connection).
        if (begin_ < end_ || bodyUnread() || transport.mayRead()) co_await lingerAndClose();
        break;
      }
    }
    co_await transport.flush();
  } catch (const OSError&) {
    // The peer vanished mid-exchange, or the read deadline aborted a read: either way, this
    // connection only.
  } catch (const std::exception&) {
    // A second reader on the socket (a handler's own detached read), or memory exhausted:
    // reported, and the connection still closes below.
    reportException("connection failed", std::current_exception());
  }
  disarmDeadline();
  if (timedOut_ && transport.isOpen()) {
    // 408 once a request line has come (a request is arriving, too slowly), or any byte past
    // headerTimeout; before that, a silent close, as for an idle keep-alive connection.
    bool requestStarted = readingBody_ || (headTimedOut_ && begin_ < end_) ||
                          unparsed().find('\n') != std::string_view::npos;
    if (!readingBody_) headRequest_ = false;  // a head still arriving: not the last request's
    if (requestStarted) {
      try {
        co_await sendError(Http408, "Request Timeout");
      } catch (const std::exception&) {
        // Nothing more to do for this connection: it closes below.
      }
    }
  }
  transport.close();
}

Future<void> serveTcp(AsyncSocket client, std::string address,
                      std::shared_ptr<const RequestCallback> callback,
                      std::shared_ptr<ConnectionSet> set, std::string_view received,
                      CarriedClocks clocks) {
  const auto& state = SocketAccess::state(client);
  state->writeTimeoutMs = set->settings.writeTimeout;
  state->writeMinRate = set->settings.writeMinRate;
  auto connection = std::make_unique<Connection>(
      std::make_unique<TcpTransport>(state), std::move(client), std::move(address), set->settings,
      std::move(callback), std::move(set), received);
  Connection& c = *connection;
  if (clocks.readDeadline) c.armDeadlineAt(*clocks.readDeadline);
  if (clocks.headerSince) c.continueHeaderTimeout(*clocks.headerSince);
  return c.run(std::move(connection));
}

}  // namespace asynchttp::detail
