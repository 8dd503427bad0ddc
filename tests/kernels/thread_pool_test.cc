#include "common/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace leoam {
namespace {

// Every index in [0, n) is visited exactly once, slices are contiguous and non-empty, thread
// indices are in range, and no slice is smaller than min_per_thread unless n itself is.
TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.num_threads(), threads);
    for (int64_t n : {1, 2, 3, 7, 64, 1000, 100003}) {
      for (int64_t min_per_thread : {1, 5, 64, 1 << 20}) {
        std::vector<std::atomic<int>> hits(n);
        std::atomic<int> slices{0};
        std::atomic<bool> bad_slice{false};
        pool.ParallelFor(
            n,
            [&](int64_t begin, int64_t end, int thread) {
              if (begin >= end || thread < 0 || thread >= threads) bad_slice = true;
              if (end - begin < min_per_thread && end - begin != n && n >= min_per_thread) bad_slice = true;
              for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
              slices.fetch_add(1);
            },
            min_per_thread);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
        EXPECT_FALSE(bad_slice.load()) << "threads=" << threads << " n=" << n << " min=" << min_per_thread;
        EXPECT_LE(slices.load(), threads);
        EXPECT_GE(slices.load(), 1);
      }
    }
  }
}

TEST(ThreadPoolTest, ZeroItemsCallsNothing) {
  ThreadPool pool(2);
  bool called = false;
  pool.ParallelFor(0, [&](int64_t, int64_t, int) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ThreadPoolTest, UsesWorkersForLargeLoops) {
  ThreadPool pool(2);
  std::atomic<int> distinct_mask{0};
  pool.ParallelFor(2, [&](int64_t, int64_t, int thread) { distinct_mask.fetch_or(1 << thread); });
  EXPECT_EQ(distinct_mask.load(), 3);  // both slices ran, with thread indices 0 and 1
}

TEST(ThreadPoolTest, ManyBackToBackCalls) {
  // 3 threads on a 2-core machine are oversubscribed (slow but must stay correct): fewer calls.
  for (auto [threads, calls] : {std::pair{2, 20000}, std::pair{3, 1000}}) {
    ThreadPool pool(threads);
    std::vector<int64_t> data(1000, 0);
    for (int call = 0; call < calls; ++call) {
      pool.ParallelFor(static_cast<int64_t>(data.size()), [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) data[i] += i;
      });
    }
    for (int64_t i = 0; i < static_cast<int64_t>(data.size()); ++i) ASSERT_EQ(data[i], calls * i);
  }
}

TEST(ThreadPoolTest, WorksAfterWorkersFellAsleep) {
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    // Longer than the spin phase, so the workers wait on the condition variable.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::atomic<int64_t> sum{0};
    pool.ParallelFor(100, [&](int64_t begin, int64_t end, int) {
      for (int64_t i = begin; i < end; ++i) sum += i;
    });
    EXPECT_EQ(sum.load(), 4950);
  }
}

TEST(ThreadPoolTest, DestroysWhileIdle) {
  for (int i = 0; i < 50; ++i) {
    ThreadPool never_used(4);
  }
  for (int i = 0; i < 20; ++i) {
    ThreadPool pool(3);
    std::atomic<int> count{0};
    pool.ParallelFor(30, [&](int64_t begin, int64_t end, int) { count += static_cast<int>(end - begin); });
    EXPECT_EQ(count.load(), 30);
    if (i % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));  // workers asleep
  }
}

TEST(ThreadPoolTest, DefaultThreadCountIsPositive) { EXPECT_GE(DefaultThreadCount(), 1); }

}  // namespace
}  // namespace leoam
