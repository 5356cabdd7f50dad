#include <proxytask/core/thread_pool.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

TEST(ThreadPool, RunsEveryIndexExactlyOnce) {
  for (unsigned threads : {1u, 2u, 4u}) {
    proxytask::thread_pool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(hits.size(), [&](std::size_t i, unsigned thread) {
      EXPECT_LT(thread, threads);
      ++hits[i];
    });
    for (auto const& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, UsesSeveralThreadsAndCanBeReused) {
  proxytask::thread_pool pool(3);
  for (int round = 0; round < 50; ++round) {
    std::atomic<int> sum{0};
    pool.parallel_for(100, [&](std::size_t i, unsigned) { sum += static_cast<int>(i); });
    EXPECT_EQ(sum.load(), 4950);
  }
  std::set<std::thread::id> ids;
  std::mutex m;
  pool.parallel_for(64, [&](std::size_t, unsigned) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard lock(m);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GT(ids.size(), 1u);
}

TEST(ThreadPool, RethrowsTheFirstExceptionAndStaysUsable) {
  proxytask::thread_pool pool(2);
  EXPECT_THROW(pool.parallel_for(100,
                                 [](std::size_t i, unsigned) {
                                   if (i == 37) throw std::runtime_error("item 37");
                                 }),
               std::runtime_error);
  std::atomic<int> count{0};
  pool.parallel_for(10, [&](std::size_t, unsigned) { ++count; });
  EXPECT_EQ(count.load(), 10);
}

TEST(ThreadPool, ZeroMeansTheHardwareThreads) {
  proxytask::thread_pool pool(0);
  EXPECT_GE(pool.size(), 1u);
  pool.parallel_for(0, [](std::size_t, unsigned) { FAIL() << "no index to run"; });
}

}  // namespace
