// Reading a stream of fixed-size rows from a socket straight into scattered rows of an
// array (recvmsg into one iovec per run of adjacent rows): a remote feature answer lands in the batch's own rows, with no
// intermediate buffer and no scatter pass over it afterwards.
#pragma once
#include <cstdint>

#include "graphplat/common.h"

namespace graphplat {

enum class RecvStatus { kOk, kTimeout, kClosed, kError };

struct RecvResult {
  RecvStatus status = RecvStatus::kOk;
  int error = 0;            // errno, for kError
  int64_t bytes_read = 0;   // bytes taken from the socket (all of them on kOk)
};

// Reads rows.size * row_bytes bytes from fd: the i-th row_bytes of the stream go to
// out + rows[i] * row_bytes (out has num_out_rows rows). fd must be a stream socket,
// blocking or not (with a deadline every read is MSG_DONTWAIT and waits happen in poll); gives up with kTimeout once timeout_ms have
// passed (timeout_ms < 0: no limit), kClosed when the peer closes first. Rows are
// range-checked before anything is read (OutOfRange names the first bad one).
RecvResult recv_rows(int fd, Span<int64_t> rows, int64_t row_bytes, char* out, int64_t num_out_rows,
                     int64_t timeout_ms);

}  // namespace graphplat
