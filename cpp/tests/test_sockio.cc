// recv_rows over a socketpair: scattered and adjacent rows, rows split across reads,
// a peer closing early, a timeout on a non-blocking socket, rows out of range.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

#include "check.h"
#include "graphplat/sockio.h"

using namespace graphplat;

namespace {

Span<int64_t> span_of(const std::vector<int64_t>& v) { return make_span(v.data(), static_cast<int64_t>(v.size())); }

struct Pair {
  int fd[2];
  Pair() { CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fd) == 0); }
  ~Pair() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
};

}  // namespace

TEST_CASE(recv_rows_scatters_in_stream_order) {
  const int64_t row_bytes = 12, n_out = 50;
  std::vector<int64_t> rows = {7, 8, 9, 3, 40, 41, 0, 49};
  std::vector<char> stream(rows.size() * row_bytes);
  for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<char>(i * 7 + 1);
  std::vector<char> out(n_out * row_bytes, 0);
  Pair p;
  // Written in uneven pieces, so rows arrive split across reads.
  std::thread writer([&] {
    size_t at = 0, step = 5;
    while (at < stream.size()) {
      const size_t k = std::min(step, stream.size() - at);
      CHECK(write(p.fd[1], stream.data() + at, k) == static_cast<ssize_t>(k));
      at += k;
      step = step * 2 + 1;
    }
  });
  RecvResult r = recv_rows(p.fd[0], span_of(rows), row_bytes, out.data(), n_out, 5000);
  writer.join();
  CHECK(r.status == RecvStatus::kOk);
  CHECK(r.bytes_read == static_cast<int64_t>(stream.size()));
  for (size_t i = 0; i < rows.size(); ++i)
    CHECK(std::memcmp(out.data() + rows[i] * row_bytes, stream.data() + i * row_bytes, row_bytes) == 0);
  CHECK(out[1 * row_bytes] == 0);  // a row not asked for is untouched
}

TEST_CASE(recv_rows_reports_close_and_timeout) {
  const int64_t row_bytes = 8;
  std::vector<int64_t> rows = {0, 1, 2};
  std::vector<char> out(3 * row_bytes);
  {
    Pair p;
    CHECK(write(p.fd[1], "0123456789", 10) == 10);
    close(p.fd[1]);
    p.fd[1] = -1;
    RecvResult r = recv_rows(p.fd[0], span_of(rows), row_bytes, out.data(), 3, 5000);
    CHECK(r.status == RecvStatus::kClosed);
    CHECK(r.bytes_read == 10);
  }
  {
    Pair p;
    fcntl(p.fd[0], F_SETFL, fcntl(p.fd[0], F_GETFL) | O_NONBLOCK);
    CHECK(write(p.fd[1], "01234", 5) == 5);
    RecvResult r = recv_rows(p.fd[0], span_of(rows), row_bytes, out.data(), 3, 50);
    CHECK(r.status == RecvStatus::kTimeout);
    CHECK(r.bytes_read == 5);
  }
}

TEST_CASE(recv_rows_checks_rows_before_reading) {
  Pair p;
  CHECK(write(p.fd[1], "01234567", 8) == 8);
  std::vector<int64_t> rows = {0, 5};
  std::vector<char> out(2 * 4);
  CHECK_THROWS(OutOfRange, recv_rows(p.fd[0], span_of(rows), 4, out.data(), 2, 100), "row 5");
  char left[8];
  CHECK(read(p.fd[0], left, 8) == 8);  // nothing was consumed
}
