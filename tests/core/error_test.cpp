#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>

#include <gtest/gtest.h>

#include <string>
#include <system_error>

namespace {

proxytask::result<int> parse_positive(int v) {
  if (v <= 0) return proxytask::make_error(proxytask::errc::invalid_argument, "value must be > 0");
  return v;
}

TEST(Error, CodesBelongToTheProxytaskCategory) {
  std::error_code const ec = proxytask::errc::malformed_file;
  EXPECT_STREQ(ec.category().name(), "proxytask");
  EXPECT_EQ(ec.message(), "malformed file");
  EXPECT_EQ(ec, proxytask::errc::malformed_file);
  EXPECT_NE(ec, proxytask::errc::not_found);
}

TEST(Error, MessageJoinsCodeAndContext) {
  auto const e = proxytask::make_error(proxytask::errc::malformed_file,
                                       "run/TRIAL_TRAINING_METRICS.json#/latency");
  EXPECT_EQ(e.message(), "malformed file: run/TRIAL_TRAINING_METRICS.json#/latency");
  EXPECT_EQ((proxytask::error{proxytask::errc::internal, {}}.message()), "internal error");
}

TEST(Error, ResultHoldsAValueOrAnError) {
  auto const good = parse_positive(3);
  ASSERT_TRUE(good);
  EXPECT_EQ(*good, 3);
  auto const bad = parse_positive(-1);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, proxytask::errc::invalid_argument);
}

TEST(Error, ValueThrowsTheProxytaskExceptionWithTheContext) {
  try {
    (void)parse_positive(0).value();
    FAIL() << "value() must throw";
  } catch (proxytask::exception const& e) {
    EXPECT_EQ(e.error().code, proxytask::errc::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("value must be > 0"), std::string::npos);
  }
}

TEST(Error, ExpectsThrowsLogicErrorNamingTheCondition) {
  auto check = [](int n) { PROXYTASK_EXPECTS(n >= 0, "n must not be negative"); };
  EXPECT_NO_THROW(check(1));
  try {
    check(-1);
    FAIL() << "PROXYTASK_EXPECTS must throw";
  } catch (proxytask::logic_error const& e) {
    std::string const what = e.what();
    EXPECT_NE(what.find("n must not be negative"), std::string::npos) << what;
    EXPECT_NE(what.find("n >= 0"), std::string::npos) << what;
  }
}

}  // namespace
