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

TEST(WriteJsonFile, RefusesANonFiniteNumberAndNamesWhereItIs) {
  // Boost.JSON would write NaN or Infinity, which is not JSON: writers must use json_number
  // (null). The file is not touched.
  auto const path = std::filesystem::temp_directory_path() /
                    ("proxytask-json-nonfinite-" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  boost::json::value v = {{"parameters", {{"widths", {64, 32}}, {"lr/scale", 0.1}}}};
  v.at("parameters").at("widths").as_array().push_back(std::nan(""));
  auto const nan_in_array = proxytask::write_json_file(path, v);
  ASSERT_FALSE(nan_in_array);
  EXPECT_EQ(nan_in_array.error().code, proxytask::errc::invalid_argument);
  EXPECT_NE(nan_in_array.error().context.find(path.string() + "#/parameters/widths/2"),
            std::string::npos)
      << nan_in_array.error().context;
  v.at("parameters").at("widths").as_array().pop_back();
  v.at("parameters").as_object()["lr/scale"] = -std::numeric_limits<double>::infinity();
  auto const inf_in_object = proxytask::write_json_file(path, v);
  ASSERT_FALSE(inf_in_object);
  EXPECT_NE(inf_in_object.error().context.find("#/parameters/lr~1scale"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ReadJsonObjectFile, IsNulloptForAMissingFileAndNamesTheFileOfABadOne) {
  auto const path = std::filesystem::temp_directory_path() /
                    ("proxytask-json-object-" + std::to_string(::getpid()) + ".json");
  std::filesystem::remove(path);
  auto const missing = proxytask::read_json_object_file(path);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  ASSERT_TRUE(proxytask::write_file_atomically(path, "[1, 2]"));
  auto const array = proxytask::read_json_object_file(path);
  ASSERT_FALSE(array);
  EXPECT_EQ(array.error().code, proxytask::errc::malformed_file);
  EXPECT_NE(array.error().context.find(path.string() + "#: expected an object"), std::string::npos)
      << array.error().context;
  ASSERT_TRUE(proxytask::write_file_atomically(path, "{\"a\": 1"));
  EXPECT_FALSE(proxytask::read_json_object_file(path));
  ASSERT_TRUE(proxytask::write_file_atomically(path, "{\"a\": 1}"));
  auto const object = proxytask::read_json_object_file(path).value();
  ASSERT_TRUE(object);
  EXPECT_EQ(object->at("a").as_int64(), 1);
  std::filesystem::remove(path);
}

TEST(ParseJsonLenient, ReadsPythonNonFiniteTokensAsDoubles) {
  auto const v = proxytask::parse_json_lenient(
                     R"({"a": NaN, "b": [1, Infinity, 2.5, -Infinity, 3], "c":NaN})", "t")
                     .value();
  EXPECT_TRUE(std::isnan(v.at("a").as_double()));
  auto const& b = v.at("b").as_array();
  EXPECT_EQ(b[0].as_int64(), 1);
  EXPECT_EQ(b[1].as_double(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(b[2].as_double(), 2.5);
  EXPECT_EQ(b[3].as_double(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(b[4].as_int64(), 3);
  EXPECT_TRUE(std::isnan(v.at("c").as_double()));
  EXPECT_TRUE(std::isnan(proxytask::parse_json_lenient("NaN", "t").value().as_double()));
}

TEST(ParseJsonLenient, LeavesTokensInsideStringsAlone) {
  auto const v = proxytask::parse_json_lenient(
                     R"({"NaN": "Infinity", "e": "x\"NaN\\", "n": 0.0, "i": -Infinity})", "t")
                     .value();
  EXPECT_EQ(v.at("NaN").as_string(), "Infinity");
  EXPECT_EQ(v.at("e").as_string(), "x\"NaN\\");
  // A real 0.0 next to a replaced token stays 0.0: tokens are matched by position, not value.
  EXPECT_EQ(v.at("n").as_double(), 0.0);
  EXPECT_FALSE(std::signbit(v.at("n").as_double()));
  EXPECT_EQ(v.at("i").as_double(), -std::numeric_limits<double>::infinity());
}

TEST(ParseJsonLenient, RejectsTokensWhereNoValueCanStand) {
  for (char const* text : {"NaNx", "[1NaN]", "[NaN1]", "-NaN", "nan", "[infinity]", "{NaN: 1}",
                           "[Infinity-]", "[- Infinity]", "[NaN NaN]"}) {
    auto const r = proxytask::parse_json_lenient(text, "t");
    EXPECT_FALSE(r) << text;
    if (!r) {
      EXPECT_EQ(r.error().code, proxytask::errc::malformed_file) << text;
    }
  }
  EXPECT_FALSE(proxytask::parse_json("[NaN]", "t"));  // the strict parser still refuses them
}

TEST(ParseJsonLenient, ReportsLineAndColumnOfTheOriginalText) {
  auto const r = proxytask::parse_json_lenient("[NaN,\n -Infinity, Infinity, x]", "f.json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("f.json: line 2, column 23"), std::string::npos)
      << r.error().message();
}

TEST(JsonLocation, NamesSourceAndEscapedPointer) {
  proxytask::json_location const root("dir/F.json");
  EXPECT_EQ(root.pointer(), "");
  auto const e = (root / "a/b~c" / std::size_t{3} / "accuracy").fail("expected a number");
  EXPECT_EQ(e.code, proxytask::errc::malformed_file);
  EXPECT_EQ(e.context, "dir/F.json#/a~1b~0c/3/accuracy: expected a number");
}

TEST(JsonReaders, CheckTypesAndRanges) {
  namespace pt = proxytask;
  pt::json_location const at("F");
  auto const v = pt::parse_json_lenient(
                     R"({"i": 3, "d": 3.0, "h": 3.5, "big": 18446744073709551615, "s": "x",
                         "n": null, "nan": NaN, "neg": -1, "huge": 1e300})",
                     "F")
                     .value();
  auto const& o = v.as_object();
  EXPECT_EQ(pt::read_json_int64(o.at("i"), at).value(), 3);
  EXPECT_EQ(pt::read_json_int64(o.at("d"), at).value(), 3);
  EXPECT_EQ(pt::read_json_int64(o.at("h"), at).error().context, "F#: expected an integer");
  EXPECT_EQ(pt::read_json_int64(o.at("huge"), at).error().context, "F#: expected an integer");
  EXPECT_EQ(pt::read_json_int64(o.at("big"), at).error().context, "F#: integer out of range");
  EXPECT_EQ(pt::read_json_count(o.at("neg"), at).error().context, "F#: expected an integer >= 0");
  EXPECT_EQ(pt::read_json_double(o.at("i"), at).value(), 3.0);
  EXPECT_TRUE(std::isnan(pt::read_json_double(o.at("nan"), at).value()));
  EXPECT_EQ(pt::read_json_double(o.at("n"), at).error().context, "F#: expected a number");
  EXPECT_EQ(pt::read_json_finite(o.at("nan"), at).error().context, "F#: expected a finite number");
  EXPECT_EQ(pt::read_json_non_negative(o.at("neg"), at).error().context,
            "F#: expected a number >= 0");
  EXPECT_EQ(pt::read_json_string(o.at("s"), at).value(), "x");
  EXPECT_EQ(pt::read_json_string(o.at("i"), at).error().context, "F#: expected a string");
  EXPECT_EQ(pt::read_json_object(o.at("s"), at).error().context, "F#: expected an object");
  EXPECT_EQ(pt::read_json_array(o.at("s"), at).error().context, "F#: expected an array");
  EXPECT_EQ(pt::read_json_member(o, "i", at, pt::read_json_int64).value(), 3);
  EXPECT_EQ(pt::read_json_member(o, "s", at, pt::read_json_int64).error().context,
            "F#/s: expected an integer");
  EXPECT_EQ(pt::read_json_member(o, "absent", at, pt::read_json_int64).error().context,
            "F#/absent: missing");
}

}  // namespace
