// The same ceiling as canned_epoll.cpp over io_uring (liburing): one thread; every receive
// and send of a loop turn is submitted, and the completions reaped, by one io_uring_enter.
// Measures whether an io_uring backend could do less kernel work per request than epoll.
// Build: g++ -O2 -std=c++20 canned_uring.cpp -luring    Run: canned_uring [PORT]
#include "canned_common.hpp"

#include <liburing.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace {

enum Operation : std::uint64_t { kAccept, kReceive, kSend };

struct Client {
  int matched = 0;
  char buffer[4096];
};

io_uring ring;
std::vector<std::unique_ptr<Client>> clients;  // by descriptor

io_uring_sqe* nextEntry() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {  // the submission queue is full: hand it to the kernel and take a fresh entry
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

std::uint64_t tag(int fd, Operation op) {
  return static_cast<std::uint64_t>(fd) << 8 | op;
}

void receive(int fd) {
  io_uring_sqe* sqe = nextEntry();
  Client& c = *clients[fd];
  io_uring_prep_recv(sqe, fd, c.buffer, sizeof c.buffer, 0);
  io_uring_sqe_set_data64(sqe, tag(fd, kReceive));
}

void acceptMany(int listener) {
  io_uring_sqe* sqe = nextEntry();
  io_uring_prep_multishot_accept(sqe, listener, nullptr, nullptr, 0);
  io_uring_sqe_set_data64(sqe, tag(listener, kAccept));
}

}  // namespace

int main(int argc, char** argv) {
  int listener = canned::listenOn(argc > 1 ? std::atoi(argv[1]) : 0, false);
  io_uring_params params{};
  // Completions are run only when this thread asks (no interrupting task work): the cheapest
  // mode for a single-threaded loop; older kernels fall back to the default.
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (io_uring_queue_init_params(4096, &ring, &params) < 0) {
    params = {};
    if (int e = io_uring_queue_init_params(4096, &ring, &params); e < 0) {
      std::fprintf(stderr, "io_uring_queue_init: %s\n", std::strerror(-e));
      return 1;
    }
  }
  const std::string& replies = canned::replies();
  acceptMany(listener);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      std::uint64_t data = io_uring_cqe_get_data64(cqe);
      int fd = static_cast<int>(data >> 8);
      switch (static_cast<Operation>(data & 0xff)) {
        case kAccept: {
          if (!(cqe->flags & IORING_CQE_F_MORE)) acceptMany(listener);  // re-arm
          if (cqe->res < 0) break;
          int client = cqe->res;
          canned::noDelay(client);
          if (static_cast<std::size_t>(client) >= clients.size()) clients.resize(client * 2 + 1);
          clients[client] = std::make_unique<Client>();
          receive(client);
          break;
        }
        case kReceive: {
          if (cqe->res <= 0) {
            ::close(fd);
            break;
          }
          Client& c = *clients[fd];
          int requests = canned::countRequests(c.buffer, cqe->res, c.matched);
          while (requests > 0) {
            int batch = requests < canned::kMaxBatch ? requests : canned::kMaxBatch;
            io_uring_sqe* sqe = nextEntry();
            io_uring_prep_send(sqe, fd, replies.data(), batch * canned::kReply.size(), 0);
            io_uring_sqe_set_data64(sqe, tag(fd, kSend));
            requests -= batch;
          }
          receive(fd);
          break;
        }
        case kSend:
          break;  // replies are immutable; a failed send shows as the client's error
      }
    }
    io_uring_cq_advance(&ring, seen);
  }
}
