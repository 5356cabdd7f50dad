#pragma once
/// @file
/// JSON conventions of proxytask (Boost.JSON): parsing with correctly rounded numbers and errors
/// that name the source, line and column; numbers for writers (never a non-finite one); JSON
/// files written atomically.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace proxytask {

namespace detail {

/// A basic_parser handler that builds a boost::json::value like boost::json::parse, except that
/// doubles are converted from their text with std::from_chars: Boost 1.81's own conversion is
/// not correctly rounded (some doubles come back 1 ulp off, e.g. "1.7241379310344827").
class precise_json_handler {
 public:
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  boost::json::value_stack stack;

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { return true; }
  bool on_object_end(std::size_t n, boost::system::error_code&) {
    stack.push_object(n);
    return true;
  }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t n, boost::system::error_code&) {
    stack.push_array(n);
    return true;
  }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    stack.push_chars(s);
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    stack.push_key(s);
    return true;
  }
  bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    stack.push_chars(s);
    return true;
  }
  bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    stack.push_string(s);
    return true;
  }
  bool on_number_part(boost::json::string_view s, boost::system::error_code&) {
    number_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, boost::json::string_view, boost::system::error_code&) {
    number_.clear();
    stack.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, boost::json::string_view, boost::system::error_code&) {
    number_.clear();
    stack.push_uint64(u);
    return true;
  }
  bool on_double(double d, boost::json::string_view s, boost::system::error_code&) {
    number_.append(s.data(), s.size());
    double precise = d;
    auto const [end, ec] =
        std::from_chars(number_.data(), number_.data() + number_.size(), precise);
    // Out of range (1e999): keep Boost's answer, as boost::json::parse would.
    stack.push_double(ec == std::errc() && end == number_.data() + number_.size() ? precise : d);
    number_.clear();
    return true;
  }
  bool on_bool(bool b, boost::system::error_code&) {
    stack.push_bool(b);
    return true;
  }
  bool on_null(boost::system::error_code&) {
    stack.push_null();
    return true;
  }
  bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }

 private:
  std::string number_;
};

/// "line L, column C" of a byte offset (both 1-based).
inline std::string line_and_column(std::string_view text, std::size_t offset) {
  std::size_t line = 1, column = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

}  // namespace detail

/// Parses one JSON document, numbers correctly rounded.
/// @param[in] text   the JSON text
/// @param[in] source what the text is, for messages (a file name, "stdin")
/// @returns the value, or errc::malformed_file naming source, line, column and the problem
inline result<boost::json::value> parse_json(std::string_view text, std::string_view source) {
  boost::json::basic_parser<detail::precise_json_handler> parser(boost::json::parse_options{});
  boost::system::error_code ec;
  std::size_t const consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = boost::json::error::extra_data;
  if (ec)
    return make_error(
        errc::malformed_file,
        std::string(source) + ": " + detail::line_and_column(text, consumed) + ": " + ec.message());
  return parser.handler().stack.release();
}

/// A number for a file we write: a finite double, or null (a missing or failed value). Writers
/// never write NaN or infinity, which JSON cannot represent.
inline boost::json::value json_number(double d) {
  if (!std::isfinite(d)) return nullptr;
  return d;
}

/// Serialises `value` (with a final newline) and writes it atomically to `path`.
inline result<void> write_json_file(std::filesystem::path const& path,
                                    boost::json::value const& value) {
  return write_file_atomically(path, boost::json::serialize(value) + "\n");
}

}  // namespace proxytask
