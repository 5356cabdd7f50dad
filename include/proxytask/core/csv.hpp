#pragma once
/// @file
/// A small CSV reader (RFC 4180) for score tables: a header line, then one record per line.
/// Every error names the source, the line and the column, so a user can find the bad field.
///
/// What it accepts:
/// - fields separated by commas; a field may be quoted ("a, b" and "say ""hi""");
///   a quoted field may span lines;
/// - LF, CRLF or CR line endings, with or without a final line ending; a UTF-8 byte-order mark;
/// - empty lines, which are skipped (as pandas does).
///
/// What it refuses (errc::malformed_file): no header, two header columns with one name, a record
/// whose field count differs from the header's, a quote that never closes, a quote inside an
/// unquoted field, and text between a closing quote and the next separator.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask {

/// One record of a CSV file: its fields, and the line it starts on (1-based, for messages).
struct csv_row {
  std::size_t line = 0;
  std::vector<std::string> fields;
};

/// A parsed CSV file: the header's column names and the records, all of the header's width.
struct csv_table {
  std::string source;               ///< the file name (or the name given to parse_csv)
  std::vector<std::string> header;  ///< column names, unique, in file order
  std::vector<csv_row> rows;        ///< records in file order; each has header.size() fields

  /// The index of the column called `name` (exact match), or nullopt.
  std::optional<std::size_t> column_index(std::string_view name) const noexcept;
  /// The index of the column called `name` (exact match).
  /// @returns errc::not_found naming the source and listing the available columns
  result<std::size_t> find_column(std::string_view name) const;
};

/// Parses CSV text.
/// @param[in] text   the whole file's contents
/// @param[in] source the name used in error messages (usually the file name)
/// @returns errc::malformed_file with "<source>:<line>: ..." as context when the text is not a
///          well-formed table
result<csv_table> parse_csv(std::string_view text, std::string source);

/// Reads and parses a CSV file.
/// @param[in] path the file
/// @returns errc::not_found when the file does not exist, the errno code on other I/O errors,
///          errc::malformed_file when its contents are not a well-formed table
result<csv_table> read_csv(std::filesystem::path const& path);

/// Parses one numeric field with the missing-value rule of score tables: an empty (or blank)
/// field, or "nan" in any case (also "-nan" and "nan(...)"), is missing and gives NaN; blanks
/// (spaces, tabs) around the number are ignored, and so is a leading '+'; "inf" and "infinity" are
/// numbers. Any other text is not a number.
/// @param[in] text the field
/// @returns the value (NaN when missing), or nullopt when the field is not a number
std::optional<double> parse_number_or_missing(std::string_view text) noexcept;

/// Parses field (`row`, `column`) of `table` with parse_number_or_missing.
/// @returns the value (NaN when missing), or errc::invalid_argument with the context
///          "<source>:<line>: column '<name>' (column <k>): cannot parse '<text>' as a number"
///          (k is 1-based)
/// @pre row < table.rows.size() and column < table.header.size()
result<double> csv_number(csv_table const& table, std::size_t row, std::size_t column);

/// Parses a whole column with csv_number (NaN for missing fields).
/// @returns the values in row order, or the error of the first field that is not a number
/// @pre column < table.header.size()
result<std::vector<double>> csv_numbers(csv_table const& table, std::size_t column);

// ------------------------------------------------------------------------------------------------
// Implementation.

namespace detail {

/// "'name' (column k)", the way every csv message names a column (k is 1-based).
inline std::string csv_column_name(std::vector<std::string> const& header, std::size_t column) {
  std::string s = "column ";
  if (column < header.size())
    s += "'" + header[column] + "' (column " + std::to_string(column + 1) + ")";
  else
    s += std::to_string(column + 1);
  return s;
}

/// A field quoted into a message, shortened so that one bad cell cannot flood the terminal.
inline std::string csv_quote_for_message(std::string_view text) {
  constexpr std::size_t max_chars = 60;
  if (text.size() <= max_chars) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, max_chars)) + "...' (" + std::to_string(text.size()) +
         " characters)";
}

/// The CSV state machine. One pass, one copy of each field.
class csv_parser {
 public:
  csv_parser(std::string_view text, std::string source) : text_(text) {
    table_.source = std::move(source);
  }

  result<csv_table> run() {
    // A UTF-8 byte-order mark is not part of the first column's name.
    if (text_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
    std::vector<std::string> record;
    std::size_t record_line = 0;
    bool have_header = false;
    for (;;) {
      auto const more = next_record(record, record_line);
      if (!more) return more.error();
      if (!*more) break;
      if (!have_header) {
        if (auto e = set_header(record, record_line)) return *e;
        have_header = true;
        continue;
      }
      if (record.size() != table_.header.size()) {
        return fail(record_line, std::to_string(record.size()) +
                                     (record.size() == 1 ? " field" : " fields") +
                                     ", but the header (line " + std::to_string(header_line_) +
                                     ") has " + std::to_string(table_.header.size()));
      }
      table_.rows.push_back(csv_row{record_line, std::move(record)});
      record = {};
      record.reserve(table_.header.size());
    }
    if (!have_header) return fail_no_line("the file is empty (no header line)");
    return std::move(table_);
  }

 private:
  error fail(std::size_t line, std::string const& what) const {
    return make_error(errc::malformed_file,
                      table_.source + ":" + std::to_string(line) + ": " + what);
  }
  error fail_no_line(std::string const& what) const {
    return make_error(errc::malformed_file, table_.source + ": " + what);
  }

  std::optional<error> set_header(std::vector<std::string>& names, std::size_t line) {
    header_line_ = line;
    for (std::size_t i = 0; i < names.size(); ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (names[i] == names[j]) {
          return fail(line, "duplicate column name '" + names[i] + "' (columns " +
                                std::to_string(j + 1) + " and " + std::to_string(i + 1) + ")");
        }
      }
    }
    table_.header = std::move(names);
    names = {};
    return std::nullopt;
  }

  bool at_end() const noexcept { return pos_ >= text_.size(); }

  // Consumes a line ending at pos_ if there is one (LF, CRLF or CR).
  bool eat_newline() noexcept {
    if (at_end()) return false;
    if (text_[pos_] == '\n') {
      ++pos_;
      ++line_;
      return true;
    }
    if (text_[pos_] == '\r') {
      ++pos_;
      if (!at_end() && text_[pos_] == '\n') ++pos_;
      ++line_;
      return true;
    }
    return false;
  }

  // Reads the next non-empty record into `fields`. Returns false at the end of the text.
  result<bool> next_record(std::vector<std::string>& fields, std::size_t& record_line) {
    fields.clear();
    while (!at_end() && eat_newline()) {
    }  // empty lines
    if (at_end()) return false;
    record_line = line_;
    for (;;) {
      std::size_t const column = fields.size();
      std::string& field = fields.emplace_back();
      if (!at_end() && text_[pos_] == '"') {
        if (auto e = quoted_field(field, column)) return *e;
      } else {
        // Unquoted: up to the next comma or line ending.
        std::size_t const start = pos_;
        while (!at_end()) {
          char const c = text_[pos_];
          if (c == ',' || c == '\n' || c == '\r') break;
          if (c == '"') {
            return fail(line_, detail::csv_column_name(table_.header, column) +
                                   ": a quote inside an unquoted field (quote the whole field "
                                   "and double the quote)");
          }
          ++pos_;
        }
        field.assign(text_.substr(start, pos_ - start));
      }
      if (at_end() || eat_newline()) return true;
      // Only a comma can follow a field here.
      ++pos_;
    }
  }

  // A quoted field starting at pos_ (on the opening quote).
  std::optional<error> quoted_field(std::string& field, std::size_t column) {
    std::size_t const open_line = line_;
    ++pos_;
    for (;;) {
      std::size_t const quote = text_.find('"', pos_);
      if (quote == std::string_view::npos) {
        return fail(open_line, detail::csv_column_name(table_.header, column) +
                                   ": the quoted field that starts here never closes");
      }
      // Count the line endings inside the field, so later messages name the right line.
      for (std::size_t i = pos_; i < quote; ++i) {
        if (text_[i] == '\n' ||
            (text_[i] == '\r' && (i + 1 >= text_.size() || text_[i + 1] != '\n')))
          ++line_;
      }
      field.append(text_.substr(pos_, quote - pos_));
      pos_ = quote + 1;
      if (!at_end() && text_[pos_] == '"') {  // "" is one quote
        field.push_back('"');
        ++pos_;
        continue;
      }
      break;
    }
    if (!at_end() && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r') {
      return fail(line_, detail::csv_column_name(table_.header, column) +
                             ": unexpected text after a closing quote (a separator or line end "
                             "must follow it)");
    }
    return std::nullopt;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
  std::size_t header_line_ = 1;
  csv_table table_;
};

inline bool csv_is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

inline bool csv_iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace detail

inline std::optional<std::size_t> csv_table::column_index(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return i;
  return std::nullopt;
}

inline result<std::size_t> csv_table::find_column(std::string_view name) const {
  if (auto i = column_index(name)) return *i;
  std::string available;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i > 0) available += ", ";
    available += "'" + header[i] + "'";
  }
  return make_error(errc::not_found, source + ": no column named '" + std::string(name) +
                                         "'; the columns are " + available);
}

inline result<csv_table> parse_csv(std::string_view text, std::string source) {
  return detail::csv_parser(text, std::move(source)).run();
}

inline result<csv_table> read_csv(std::filesystem::path const& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse_csv(*text, path.string());
}

inline std::optional<double> parse_number_or_missing(std::string_view text) noexcept {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  while (!text.empty() && detail::csv_is_blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && detail::csv_is_blank(text.back())) text.remove_suffix(1);
  if (text.empty()) return nan;
  // std::from_chars takes no '+' sign; Python and C printf may write one.
  std::string_view digits = text;
  if (digits.front() == '+') {
    digits.remove_prefix(1);
    if (digits.empty() || digits.front() == '-' || digits.front() == '+') return std::nullopt;
  }
  double value = 0;
  auto const [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  // from_chars reads "nan", "-nan" and "nan(chars)": all of them mean missing.
  if (std::isnan(value)) return nan;
  return value;
}

inline result<double> csv_number(csv_table const& table, std::size_t row, std::size_t column) {
  std::string const& text = table.rows[row].fields[column];
  if (auto value = parse_number_or_missing(text)) return *value;
  return make_error(errc::invalid_argument,
                    table.source + ":" + std::to_string(table.rows[row].line) + ": " +
                        detail::csv_column_name(table.header, column) + ": cannot parse " +
                        detail::csv_quote_for_message(text) + " as a number");
}

inline result<std::vector<double>> csv_numbers(csv_table const& table, std::size_t column) {
  std::vector<double> values(table.rows.size());
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    auto v = csv_number(table, r, column);
    if (!v) return v.error();
    values[r] = *v;
  }
  return values;
}

}  // namespace proxytask
