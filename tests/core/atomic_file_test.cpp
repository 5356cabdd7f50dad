#include <proxytask/core/atomic_file.hpp>

#include <gtest/gtest.h>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("proxytask-atomic-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string read(fs::path const& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir_), {}));
  }
  fs::path dir_;
};

TEST_F(AtomicFile, CreatesTheFileWithTheGivenContents) {
  auto const path = dir_ / "state.json";
  ASSERT_TRUE(proxytask::write_file_atomically(path, "{\"a\": 1}\n"));
  EXPECT_EQ(read(path), "{\"a\": 1}\n");
  EXPECT_EQ(entries(), 1u) << "no temporary file is left behind";
}

TEST_F(AtomicFile, ReplacesAnExistingFileWhole) {
  auto const path = dir_ / "state.json";
  ASSERT_TRUE(proxytask::write_file_atomically(path, std::string(100000, 'x')));
  ASSERT_TRUE(proxytask::write_file_atomically(path, "short"));
  EXPECT_EQ(read(path), "short");
  EXPECT_EQ(entries(), 1u);
}

TEST_F(AtomicFile, WritesAnEmptyFile) {
  auto const path = dir_ / "empty";
  ASSERT_TRUE(proxytask::write_file_atomically(path, ""));
  EXPECT_TRUE(fs::exists(path));
  EXPECT_EQ(fs::file_size(path), 0u);
}

TEST_F(AtomicFile, FailsWithTheErrnoAndPathWhenTheDirectoryIsMissing) {
  auto const path = dir_ / "no-such-dir" / "state.json";
  auto const r = proxytask::write_file_atomically(path, "x");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::no_such_file_or_directory);
  EXPECT_NE(r.error().message().find(path.string()), std::string::npos) << r.error().message();
}

TEST_F(AtomicFile, LeavesThePreviousVersionWhenTheWriteFails) {
  auto const path = dir_ / "state.json";
  ASSERT_TRUE(proxytask::write_file_atomically(path, "old"));
  // A file-size limit makes the write itself fail (EFBIG), even for root: a full disk, say.
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto const previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  auto const r = proxytask::write_file_atomically(path, std::string(100000, 'x'));
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, std::errc::file_too_large) << r.error().message();
  EXPECT_EQ(read(path), "old");
  EXPECT_EQ(entries(), 1u) << "the temporary file was removed";
}

TEST_F(AtomicFile, RefusesToReplaceADirectoryAndRemovesItsTemporaryFile) {
  auto const path = dir_ / "occupied";
  fs::create_directories(path / "child");
  auto const r = proxytask::write_file_atomically(path, "x");
  ASSERT_FALSE(r);
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_EQ(entries(), 1u) << "the temporary file was removed";
}

TEST_F(AtomicFile, WritesRelativePathsInTheCurrentDirectory) {
  auto const previous = fs::current_path();
  fs::current_path(dir_);
  auto const r = proxytask::write_file_atomically("relative.txt", "abc");
  fs::current_path(previous);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(read(dir_ / "relative.txt"), "abc");
}

}  // namespace

namespace {

TEST_F(AtomicFile, ReadFileReturnsWhatWasWritten) {
  auto const path = dir_ / "blob";
  std::string const contents = std::string(200000, 'a') + "end";
  ASSERT_TRUE(proxytask::write_file_atomically(path, contents));
  EXPECT_EQ(proxytask::read_file(path).value(), contents);
}

TEST_F(AtomicFile, ReadFileNamesAMissingFileAndRejectsADirectory) {
  auto const missing = proxytask::read_file(dir_ / "absent.json");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, proxytask::errc::not_found);
  EXPECT_NE(missing.error().message().find("absent.json"), std::string::npos);
  auto const directory = proxytask::read_file(dir_);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, std::errc::is_a_directory);
}

}  // namespace
