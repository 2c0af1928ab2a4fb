// The connection's buffers: one-page receive buffers from per-thread pooled slabs, so that an
// idle connection's buffer costs no resident memory.
#pragma once

#include <sys/mman.h>
#include <cstddef>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace asynchttp::detail {

// One-page blocks for receive buffers, from mmap'd slabs kept per thread. A released block
// is madvise'd away: an idle connection's buffer then costs no resident memory at all (from
// the malloc heap, freed 4 KiB chunks mostly stay resident: 6.9 KiB per idle connection).
class PagePool {
 public:
  static constexpr std::size_t kPage = 4096, kSlabPages = 64, kMaxResidentFree = 256;
  PagePool() = default;
  PagePool(const PagePool&) = delete;
  PagePool& operator=(const PagePool&) = delete;
  ~PagePool() {
    for (void* slab : slabs_) ::munmap(slab, kPage * kSlabPages);
  }
  static PagePool& local() {
    thread_local PagePool pool;
    return pool;
  }
  char* take() {
    if (free_.empty()) {
      void* slab = ::mmap(nullptr, kPage * kSlabPages, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (slab == MAP_FAILED) throw std::bad_alloc();
      slabs_.push_back(slab);
      free_.reserve(slabs_.size() * kSlabPages);  // room for every page: give() never allocates
      for (std::size_t i = kSlabPages; i-- > 0;)
        free_.push_back(static_cast<char*>(slab) + i * kPage);
    }
    char* page = free_.back();
    free_.pop_back();
    return page;
  }
  // `resident`: the page holds data worth keeping in memory (a reuse soon); else it is dropped.
  void give(char* page, bool resident) noexcept {
    // Past kMaxResidentFree free pages, even a reusable one is dropped: a burst of
    // connections must not stay resident for the life of the thread.
    if (!resident || free_.size() >= kMaxResidentFree) ::madvise(page, kPage, MADV_DONTNEED);
    free_.push_back(page);  // within the capacity reserved in take()
  }

 private:
  std::vector<void*> slabs_;
  std::vector<char*> free_;
};

// A connection's receive buffer: one pooled page, or a heap block once a request needs more.
class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { release(true); }

  char* data() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }
  // Grows to at least `size` bytes, keeping the first `keep`.
  void grow(std::size_t size, std::size_t keep) {
    char* bigger;
    std::size_t capacity;
    if (size <= PagePool::kPage) {
      bigger = PagePool::local().take();
      capacity = PagePool::kPage;
    } else {
      capacity = (size + PagePool::kPage - 1) / PagePool::kPage * PagePool::kPage;
      bigger = static_cast<char*>(std::malloc(capacity));
      if (!bigger) throw std::bad_alloc();
    }
    if (keep > 0) std::memcpy(bigger, data_, keep);
    release(true);
    data_ = bigger;
    capacity_ = capacity;
  }
  // Frees the buffer; `resident` keeps a pooled page's memory for the next connection.
  void release(bool resident) noexcept {
    if (!data_) return;
    if (capacity_ == PagePool::kPage) {
      PagePool::local().give(data_, resident);
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    capacity_ = 0;
  }

 private:
  char* data_ = nullptr;
  std::size_t capacity_ = 0;
};

}  // namespace asynchttp::detail
