// Shared basics of the core: array spans, errors, checked arithmetic.
#pragma once

#include <cstdint>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <sstream>
#include <memory>
#include <utility>
#include <vector>

namespace graphplat {

// A read-only view of a contiguous array; the core never owns caller memory.
template <class T>
struct Span {
  const T* data = nullptr;
  int64_t size = 0;
  const T& operator[](int64_t i) const { return data[i]; }
  const T* begin() const { return data; }
  const T* end() const { return data + size; }
  bool empty() const { return size == 0; }
};

template <class T>
Span<T> make_span(const T* data, int64_t size) { return Span<T>{data, size}; }

// A vector whose resize() leaves elements uninitialized: output buffers are always fully
// written by the core, so zero-filling them first would be wasted memory bandwidth.
template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <class T>
using Buffer = std::vector<T, DefaultInitAllocator<T>>;

// Errors: the bindings map InvalidArgument to ValueError and OutOfRange to IndexError.
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct OutOfRange : std::out_of_range {
  using std::out_of_range::out_of_range;
};

template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// Largest number of entries one call may return; larger requests are refused up front
// instead of failing inside a parallel region.
constexpr int64_t kMaxOutputEntries = int64_t(1) << 31;
constexpr int64_t kMaxFanout = int64_t(1) << 20;

// Checks that every id lies in [0, bound); names the argument and the first bad value.
void check_ids_in_range(Span<int64_t> ids, int64_t bound, const char* what, int num_threads);

}  // namespace graphplat
