#include "graphplat/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif

#include "graphplat/common.h"

namespace graphplat {

namespace {

std::atomic<int> g_default_threads{0};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// One job at a time; a caller that finds the pool busy runs its loop alone.
class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // never destroyed: workers outlive static teardown
    return *pool;
  }

  void run(int64_t num_tasks, int num_threads, const std::function<void(int64_t)>& task) {
    bool expected = false;
    // Busy (another caller's loop, or a loop nested in one of our tasks): run alone.
    if (num_threads <= 1 || num_tasks <= 1 || !busy_.compare_exchange_strong(expected, true)) {
      run_serial(num_tasks, task);
      return;
    }
    struct Release {
      std::atomic<bool>& flag;
      ~Release() { flag.store(false, std::memory_order_release); }
    } release{busy_};
    ensure_workers(num_threads - 1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = &task;
      num_tasks_ = num_tasks;
      next_.store(0);
      pending_.store(num_tasks);
      helpers_wanted_ = num_threads - 1;
      error_ = nullptr;
      ++generation_;
      published_.store(generation_, std::memory_order_release);
    }
    cv_.notify_all();
    work();
    // Wait only for tasks other threads have claimed; unclaimed ones were ours.
    while (pending_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    std::exception_ptr err;
    {
      std::lock_guard<std::mutex> lock(mu_);
      task_ = nullptr;
      err = error_;
    }
    // Workers that woke late may still be inside work(): wait until they have left it.
    while (active_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
    if (err) std::rethrow_exception(err);
  }

 private:
  void run_serial(int64_t num_tasks, const std::function<void(int64_t)>& task) {
    for (int64_t i = 0; i < num_tasks; ++i) task(i);
  }

  void work() {
    while (true) {
      const int64_t i = next_.fetch_add(1, std::memory_order_relaxed);
      if (i >= num_tasks_) return;
      try {
        (*task_)(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
      }
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void ensure_workers(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    while (static_cast<int>(workers_.size()) < n) {
      const int id = static_cast<int>(workers_.size());
      workers_.emplace_back([this, id] { worker_loop(id); });
      workers_.back().detach();
    }
  }

  void worker_loop(int id) {
    uint64_t seen = 0;
    while (true) {
      // Spin briefly before sleeping: a multi-pass call (sampling, relabeling) starts its
      // next loop within microseconds, and a condition-variable wake-up costs about as much
      // as a small loop.
      const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
      for (int i = 0; published_.load(std::memory_order_acquire) == seen; ++i) {
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > spin_until) break;
        cpu_relax();
      }
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (task_ == nullptr || id >= helpers_wanted_) continue;
        active_.fetch_add(1, std::memory_order_acq_rel);
      }
      work();
      active_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::atomic<bool> busy_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* task_ = nullptr;
  int64_t num_tasks_ = 0;
  int helpers_wanted_ = 0;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_{0};  // generation_, readable without the mutex
  static constexpr int kSpinMicros = 50;
  std::atomic<int64_t> next_{0};
  std::atomic<int64_t> pending_{0};
  std::atomic<int> active_{0};
  std::exception_ptr error_;
};

}  // namespace

namespace {

// CPUs this process may run on: its affinity mask (taskset, a container's cpuset), not the
// machine's CPU count, which std::thread::hardware_concurrency() gives. Threads beyond the
// mask share its cores, and a parallel_for's threads then wait for descheduled peers.
int usable_cpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
#endif
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int default_num_threads() {
  int n = g_default_threads.load();
  if (n <= 0) {
    n = usable_cpus();
    g_default_threads.store(n);
  }
  return n;
}

void set_default_num_threads(int n) {
  if (n < 1) throw InvalidArgument(cat("num_threads must be >= 1, got ", n));
  if (n > 1024) throw InvalidArgument(cat("num_threads must be <= 1024, got ", n));
  g_default_threads.store(n);
}

int resolve_threads(int n) {
  if (n < 0) throw InvalidArgument(cat("num_threads must be >= 0 (0 = default), got ", n));
  if (n > 1024) throw InvalidArgument(cat("num_threads must be <= 1024, got ", n));
  return n == 0 ? default_num_threads() : n;
}

void run_tasks(int64_t num_tasks, int num_threads, const std::function<void(int64_t)>& task) {
  if (num_tasks <= 0) return;
  Pool::instance().run(num_tasks, num_threads, task);
}

int64_t exclusive_scan(const int64_t* counts, int64_t n, int64_t* offsets, int num_threads) {
  const int64_t kSerial = 1 << 16;
  if (n < kSerial || num_threads <= 1) {
    int64_t acc = 0;
    for (int64_t i = 0; i < n; ++i) {
      offsets[i] = acc;
      acc += counts[i];
    }
    offsets[n] = acc;
    return acc;
  }
  // Two passes over fixed chunks: per-chunk sums, then each chunk scans from its base.
  const int64_t k = std::min<int64_t>(n / 4096, static_cast<int64_t>(num_threads) * 4);
  std::vector<int64_t> base(k + 1, 0);
  run_tasks(k, num_threads, [&](int64_t c) {
    int64_t s = 0;
    for (int64_t i = chunk_begin(n, k, c), i_end = chunk_begin(n, k, c + 1); i < i_end; ++i) s += counts[i];
    base[c + 1] = s;
  });
  for (int64_t c = 0; c < k; ++c) base[c + 1] += base[c];
  run_tasks(k, num_threads, [&](int64_t c) {
    int64_t acc = base[c];
    for (int64_t i = chunk_begin(n, k, c), i_end = chunk_begin(n, k, c + 1); i < i_end; ++i) {
      offsets[i] = acc;
      acc += counts[i];
    }
  });
  offsets[n] = base[k];
  return base[k];
}

void check_ids_in_range(Span<int64_t> ids, int64_t bound, const char* what, int num_threads) {
  const int64_t i = parallel_find_first(ids.size, num_threads, [&](int64_t k) {
    return ids[k] < 0 || ids[k] >= bound;
  });
  if (i < ids.size)
    throw OutOfRange(cat(what, "[", i, "] = ", ids[i], " is out of range [0, ", bound, ")"));
}

}  // namespace graphplat
