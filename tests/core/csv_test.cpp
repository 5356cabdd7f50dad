#include <proxytask/core/csv.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pt = proxytask;

namespace {

using fields = std::vector<std::string>;

pt::csv_table parse_ok(std::string_view text) {
  auto table = pt::parse_csv(text, "t.csv");
  EXPECT_TRUE(table) << (table ? "" : table.error().message());
  return table ? *table : pt::csv_table{};
}

pt::error parse_error(std::string_view text) {
  auto table = pt::parse_csv(text, "t.csv");
  EXPECT_FALSE(table) << "parsed, but should not have";
  return table ? pt::error{} : table.error();
}

}  // namespace

TEST(Csv, ReadsHeaderAndRowsWithLineNumbers) {
  auto const t = parse_ok("a,b,c\n1,2,3\n4,5,6\n");
  EXPECT_EQ(t.source, "t.csv");
  EXPECT_EQ(t.header, (fields{"a", "b", "c"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (fields{"1", "2", "3"}));
  EXPECT_EQ(t.rows[1].fields, (fields{"4", "5", "6"}));
  EXPECT_EQ(t.rows[0].line, 2u);
  EXPECT_EQ(t.rows[1].line, 3u);
}

TEST(Csv, AcceptsAMissingFinalNewline) {
  auto const t = parse_ok("a,b\n1,2");
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].fields, (fields{"1", "2"}));
}

TEST(Csv, KeepsEmptyFields) {
  auto const t = parse_ok("a,b,c\n,,\n1,,3\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (fields{"", "", ""}));
  EXPECT_EQ(t.rows[1].fields, (fields{"1", "", "3"}));
}

TEST(Csv, ReadsQuotedFieldsWithCommasAndDoubledQuotes) {
  auto const t = parse_ok("name,\"a, b\"\n\"say \"\"hi\"\"\",\"\"\n");
  EXPECT_EQ(t.header, (fields{"name", "a, b"}));
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_EQ(t.rows[0].fields, (fields{"say \"hi\"", ""}));
}

TEST(Csv, QuotedFieldMaySpanLinesAndLaterLinesStayCorrect) {
  auto const t = parse_ok("a,b\n\"two\nlines\",1\nx,2\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields[0], "two\nlines");
  EXPECT_EQ(t.rows[0].line, 2u);
  EXPECT_EQ(t.rows[1].line, 4u);
}

TEST(Csv, AcceptsCrlfLineEndings) {
  auto const t = parse_ok("a,b\r\n1,2\r\n3,\r\n");
  EXPECT_EQ(t.header, (fields{"a", "b"}));
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].fields, (fields{"1", "2"}));
  EXPECT_EQ(t.rows[1].fields, (fields{"3", ""}));
  EXPECT_EQ(t.rows[1].line, 3u);
}

TEST(Csv, AcceptsBareCrLineEndings) {
  auto const t = parse_ok("a,b\r1,2\r3,4");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[1].fields, (fields{"3", "4"}));
  EXPECT_EQ(t.rows[1].line, 3u);
}

TEST(Csv, StripsAUtf8ByteOrderMark) {
  auto const t = parse_ok("\xEF\xBB\xBFmodel,score\r\nm1,0.5\r\n");
  EXPECT_EQ(t.header, (fields{"model", "score"}));
  EXPECT_TRUE(t.column_index("model"));
}

TEST(Csv, SkipsEmptyLinesButCountsThem) {
  auto const t = parse_ok("\na,b\n\n1,2\n\n\n3,4\n\n");
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].line, 4u);
  EXPECT_EQ(t.rows[1].line, 7u);
}

TEST(Csv, HeaderOnlyGivesNoRows) {
  auto const t = parse_ok("a,b\n");
  EXPECT_EQ(t.header.size(), 2u);
  EXPECT_TRUE(t.rows.empty());
}

TEST(Csv, RejectsAnEmptyFile) {
  for (std::string_view text : {"", "\n\n", "\xEF\xBB\xBF"}) {
    auto const e = parse_error(text);
    EXPECT_EQ(e.code, pt::errc::malformed_file);
    EXPECT_NE(e.context.find("t.csv"), std::string::npos) << e.context;
    EXPECT_NE(e.context.find("empty"), std::string::npos) << e.context;
  }
}

TEST(Csv, RejectsRaggedRowsNamingTheLine) {
  auto const e = parse_error("a,b,c\n1,2,3\n4,5\n");
  EXPECT_EQ(e.code, pt::errc::malformed_file);
  EXPECT_EQ(e.context, "t.csv:3: 2 fields, but the header (line 1) has 3");
  auto const longer = parse_error("a,b\n1,2,3\n");
  EXPECT_EQ(longer.context, "t.csv:2: 3 fields, but the header (line 1) has 2");
}

TEST(Csv, RejectsDuplicateHeaderNames) {
  auto const e = parse_error("a,b,a\n1,2,3\n");
  EXPECT_EQ(e.code, pt::errc::malformed_file);
  EXPECT_EQ(e.context, "t.csv:1: duplicate column name 'a' (columns 1 and 3)");
}

TEST(Csv, RejectsAnUnterminatedQuoteNamingWhereItOpens) {
  auto const e = parse_error("a,b\n1,2\n3,\"never\n4,5\n");
  EXPECT_EQ(e.code, pt::errc::malformed_file);
  EXPECT_NE(e.context.find("t.csv:3: column 'b' (column 2)"), std::string::npos) << e.context;
  EXPECT_NE(e.context.find("never closes"), std::string::npos) << e.context;
}

TEST(Csv, RejectsAQuoteInsideAnUnquotedField) {
  auto const e = parse_error("a,b\n1,x\"y\n");
  EXPECT_EQ(e.code, pt::errc::malformed_file);
  EXPECT_NE(e.context.find("t.csv:2: column 'b' (column 2)"), std::string::npos) << e.context;
}

TEST(Csv, RejectsTextAfterAClosingQuote) {
  auto const e = parse_error("a,b\n\"1\"x,2\n");
  EXPECT_EQ(e.code, pt::errc::malformed_file);
  EXPECT_NE(e.context.find("t.csv:2: column 'a' (column 1)"), std::string::npos) << e.context;
}

TEST(Csv, FindColumnListsTheAvailableNames) {
  auto const t = parse_ok("model,ref,s1\n");
  EXPECT_EQ(t.find_column("ref").value(), 1u);
  auto const missing = t.find_column("Ref");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, pt::errc::not_found);
  EXPECT_EQ(missing.error().context,
            "t.csv: no column named 'Ref'; the columns are 'model', 'ref', 's1'");
}

TEST(Csv, ReadsAFileFromDisk) {
  auto const path = std::filesystem::temp_directory_path() /
                    ("proxytask_csv_test_" + std::to_string(::getpid()) + ".csv");
  {
    std::ofstream out(path, std::ios::binary);
    out << "a,b\r\n1,\"x,y\"\r\n";
  }
  auto const t = pt::read_csv(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->source, path.string());
  EXPECT_EQ(t->rows.at(0).fields, (fields{"1", "x,y"}));
}

TEST(Csv, MissingFileIsNotFound) {
  auto const t = pt::read_csv("/nonexistent/proxytask/scores.csv");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, pt::errc::not_found);
  EXPECT_NE(t.error().context.find("/nonexistent/proxytask/scores.csv"), std::string::npos);
}

TEST(Csv, DirectoryIsAnIoError) {
  auto const t = pt::read_csv(std::filesystem::temp_directory_path());
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, std::error_code(EISDIR, std::system_category()));
}

TEST(CsvNumber, ParsesNumbersInTheUsualForms) {
  EXPECT_EQ(pt::parse_number_or_missing("1.5"), 1.5);
  EXPECT_EQ(pt::parse_number_or_missing("-776.4428597"), -776.4428597);
  EXPECT_EQ(pt::parse_number_or_missing("1e-3"), 1e-3);
  EXPECT_EQ(pt::parse_number_or_missing("2E+05"), 2e5);
  EXPECT_EQ(pt::parse_number_or_missing("+7"), 7.0);
  EXPECT_EQ(pt::parse_number_or_missing(" 42 "), 42.0);
  EXPECT_EQ(pt::parse_number_or_missing(".5"), 0.5);
  EXPECT_EQ(pt::parse_number_or_missing("inf"), std::numeric_limits<double>::infinity());
  EXPECT_EQ(pt::parse_number_or_missing("-Infinity"), -std::numeric_limits<double>::infinity());
}

TEST(CsvNumber, EmptyAndNanAreMissing) {
  for (std::string_view text : {"", "  ", "nan", "NaN", "NAN", "nAn", "-nan", " nan "}) {
    auto const v = pt::parse_number_or_missing(text);
    ASSERT_TRUE(v) << "'" << text << "'";
    EXPECT_TRUE(std::isnan(*v)) << "'" << text << "'";
  }
}

TEST(CsvNumber, RejectsText) {
  for (std::string_view text : {"abc", "1.5x", "1,5", "0x10", "--1", "+-1", "+", "-", "1e", "n/a",
                                "NA", "None", "1 2", "1e999"}) {
    EXPECT_FALSE(pt::parse_number_or_missing(text)) << "'" << text << "'";
  }
}

TEST(CsvNumber, ErrorNamesFileLineAndColumn) {
  auto const t = parse_ok("model,ref,step 1\nm1,0.5,0.25\nm2,0.6,oops\n");
  EXPECT_EQ(pt::csv_number(t, 0, 2).value(), 0.25);
  auto const bad = pt::csv_number(t, 1, 2);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, pt::errc::invalid_argument);
  EXPECT_EQ(bad.error().context,
            "t.csv:3: column 'step 1' (column 3): cannot parse 'oops' as a number");
}

TEST(CsvNumber, ErrorShortensLongFields) {
  std::string const long_text(500, 'x');
  auto const t = parse_ok("a\n" + long_text + "\n");
  auto const bad = pt::csv_number(t, 0, 0);
  ASSERT_FALSE(bad);
  EXPECT_LT(bad.error().context.size(), 200u);
  EXPECT_NE(bad.error().context.find("(500 characters)"), std::string::npos);
}

TEST(CsvNumber, ColumnGivesNanForMissingAndTheFirstError) {
  auto const t = parse_ok("a,b\n1,\n,x\nnan,3\n");
  auto const a = pt::csv_numbers(t, 0).value();
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0], 1.0);
  EXPECT_TRUE(std::isnan(a[1]));
  EXPECT_TRUE(std::isnan(a[2]));
  auto const b = pt::csv_numbers(t, 1);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().context, "t.csv:3: column 'b' (column 2): cannot parse 'x' as a number");
}
