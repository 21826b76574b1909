#include "graphplat/sockio.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

namespace graphplat {

namespace {

constexpr int kMaxIov = 1024;  // IOV_MAX on Linux

}  // namespace

RecvResult recv_rows(int fd, Span<int64_t> rows, int64_t row_bytes, char* out, int64_t num_out_rows,
                     int64_t timeout_ms) {
  for (int64_t i = 0; i < rows.size; ++i)
    if (rows[i] < 0 || rows[i] >= num_out_rows)
      throw OutOfRange(cat("row ", rows[i], " (at position ", i, ") is out of range [0, ", num_out_rows, ")"));
  RecvResult result;
  if (row_bytes <= 0 || rows.size == 0) return result;
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));
  iovec iov[kMaxIov];
  int64_t next = 0;   // first row not yet complete
  int64_t done = 0;   // bytes of row `next` already read
  while (next < rows.size) {
    // One iovec per run of adjacent rows, starting where the last read stopped.
    int n = 0;
    int64_t r = next;
    while (r < rows.size && n < kMaxIov) {
      int64_t run = 1;
      while (r + run < rows.size && rows[r + run] == rows[r] + run) ++run;
      const int64_t skip = r == next ? done : 0;
      iov[n].iov_base = out + rows[r] * row_bytes + skip;
      iov[n].iov_len = static_cast<size_t>(run * row_bytes - skip);
      ++n;
      r += run;
    }
    // With a deadline the read never blocks (MSG_DONTWAIT, also on a blocking socket): a
    // lack of data is waited for with poll, which knows the deadline.
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(n);
    const ssize_t got = recvmsg(fd, &msg, timeout_ms >= 0 ? MSG_DONTWAIT : 0);
    if (got > 0) {
      result.bytes_read += got;
      const int64_t total = done + got;  // bytes from the start of row `next`
      next += total / row_bytes;
      done = total % row_bytes;
      continue;
    }
    if (got == 0) {
      result.status = RecvStatus::kClosed;
      return result;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      result.status = RecvStatus::kError;
      result.error = errno;
      return result;
    }
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        result.status = RecvStatus::kTimeout;
        return result;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left, 1 << 30));
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, wait_ms);
    if (ready == 0) {
      result.status = RecvStatus::kTimeout;
      return result;
    }
    if (ready < 0 && errno != EINTR) {
      result.status = RecvStatus::kError;
      result.error = errno;
      return result;
    }
  }
  return result;
}

}  // namespace graphplat
