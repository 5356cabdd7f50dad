#include <proxytask/core/json.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

namespace {

TEST(ParseJson, RoundsEveryDoubleCorrectly) {
  // Boost 1.81's own parser returns 1.7241379310344829 for this text (1 ulp off).
  auto const v = proxytask::parse_json(R"({"pct": 1.7241379310344827})", "test").value();
  EXPECT_EQ(v.at("pct").as_double(), 1.7241379310344827);
  // Random decimal texts: each must parse to what strtod, the correctly rounded reference, gives.
  std::srand(7);
  for (int i = 0; i < 2000; ++i) {
    char text[64];
    double const d = std::ldexp(static_cast<double>(std::rand()) / RAND_MAX, std::rand() % 40 - 20);
    std::snprintf(text, sizeof text, "%.17g", d);
    auto const parsed = proxytask::parse_json(text, "test").value();
    double const expected = std::strtod(text, nullptr);
    ASSERT_EQ(parsed.is_double() ? parsed.as_double() : static_cast<double>(parsed.as_int64()),
              expected)
        << text;
  }
}

TEST(ParseJson, KeepsIntegersStringsAndStructure) {
  auto const v =
      proxytask::parse_json(
          R"({"n": -3, "u": 18446744073709551615, "s": "a\"b", "l": [null, true]})", "test")
          .value();
  EXPECT_EQ(v.at("n").as_int64(), -3);
  EXPECT_EQ(v.at("u").as_uint64(), 18446744073709551615u);
  EXPECT_EQ(v.at("s").as_string(), "a\"b");
  EXPECT_TRUE(v.at("l").as_array()[0].is_null());
  EXPECT_TRUE(v.at("l").as_array()[1].as_bool());
}

TEST(ParseJson, NamesSourceLineAndColumnOfASyntaxError) {
  auto const r = proxytask::parse_json("{\n  \"a\": [1, 2,\n  }", "run/state.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, proxytask::errc::malformed_file);
  EXPECT_NE(r.error().message().find("run/state.json: line 3, column 3"), std::string::npos)
      << r.error().message();
}

TEST(ParseJson, RejectsTrailingDataAndEmptyText) {
  EXPECT_FALSE(proxytask::parse_json("{} {}", "t"));
  EXPECT_FALSE(proxytask::parse_json("", "t"));
}

TEST(JsonNumber, WritesNonFiniteValuesAsNull) {
  EXPECT_TRUE(proxytask::json_number(std::nan("")).is_null());
  EXPECT_TRUE(proxytask::json_number(std::numeric_limits<double>::infinity()).is_null());
  EXPECT_EQ(proxytask::json_number(0.25).as_double(), 0.25);
}

TEST(WriteJsonFile, WritesAParsableFileAtomically) {
  auto const path = std::filesystem::temp_directory_path() /
                    ("proxytask-json-" + std::to_string(::getpid()) + ".json");
  boost::json::value const v = {{"coefficient", proxytask::json_number(0.65)},
                                {"p_value", proxytask::json_number(std::nan(""))}};
  ASSERT_TRUE(proxytask::write_json_file(path, v));
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto const back = proxytask::parse_json(text.str(), path.string()).value();
  EXPECT_EQ(back.at("coefficient").as_double(), 0.65);
  EXPECT_TRUE(back.at("p_value").is_null());
  std::filesystem::remove(path);
}

}  // namespace
