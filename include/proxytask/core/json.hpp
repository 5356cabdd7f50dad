#pragma once
/// @file
/// JSON conventions of proxytask (Boost.JSON): parsing with correctly rounded numbers and errors
/// that name the source, line and column (optionally accepting the NaN and Infinity tokens that
/// Python's json module writes); field readers whose errors name "<source>#<JSON pointer>";
/// numbers for writers (never a non-finite one); JSON files written atomically.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask {

namespace detail {

/// A non-finite number that parse_json_lenient found in the text: the ordinal of its token among
/// all the number tokens of the document (0-based), and its value.
struct non_finite_token {
  std::size_t number_index;
  double value;
};

/// A basic_parser handler that builds a boost::json::value like boost::json::parse, except that
/// doubles are converted from their text with std::from_chars: Boost 1.81's own conversion is
/// not correctly rounded (some doubles come back 1 ulp off, e.g. "1.7241379310344827").
/// The number tokens listed in `non_finite` (ascending number_index) become their value instead.
class precise_json_handler {
 public:
  explicit precise_json_handler(std::span<non_finite_token const> non_finite = {})
      : non_finite_(non_finite) {}

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
    if (!push_non_finite()) stack.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, boost::json::string_view, boost::system::error_code&) {
    number_.clear();
    if (!push_non_finite()) stack.push_uint64(u);
    return true;
  }
  bool on_double(double d, boost::json::string_view s, boost::system::error_code&) {
    number_.append(s.data(), s.size());
    double precise = d;
    auto const [end, ec] =
        std::from_chars(number_.data(), number_.data() + number_.size(), precise);
    bool const converted = ec == std::errc() && end == number_.data() + number_.size();
    number_.clear();
    if (push_non_finite()) return true;
    // Out of range (1e999): keep Boost's answer, as boost::json::parse would.
    stack.push_double(converted ? precise : d);
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
  /// Counts a number token; pushes the non-finite value recorded for it, if there is one.
  bool push_non_finite() {
    std::size_t const index = number_index_++;
    if (next_non_finite_ == non_finite_.size() ||
        non_finite_[next_non_finite_].number_index != index)
      return false;
    stack.push_double(non_finite_[next_non_finite_++].value);
    return true;
  }

  std::string number_;
  std::span<non_finite_token const> non_finite_;
  std::size_t next_non_finite_ = 0;
  std::size_t number_index_ = 0;
};

/// JSON's whitespace and the characters that may precede or follow a value in a valid document.
constexpr bool is_value_boundary(char c) noexcept {
  switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
    case ',':
    case ':':
    case '[':
    case ']':
    case '{':
    case '}': return true;
    default: return false;
  }
}

/// The pre-pass of parse_json_lenient. Each NaN, Infinity or -Infinity token outside a string,
/// standing where a value can stand, is replaced by a number of the SAME length ("0.0",
/// "0.000000", "-0.000000"), so every byte offset (and so every line and column in an error)
/// is unchanged. Rather than a sentinel value, which a real number in the file could equal, the
/// token's ordinal among the document's number tokens is recorded: the handler counts numbers
/// as Boost reports them and substitutes the value at those ordinals. The count agrees with
/// Boost's whenever the parse succeeds, because a valid document's number tokens are exactly the
/// maximal runs of [-+.eE0-9] that start with '-' or a digit outside strings.
inline std::string rewrite_non_finite(std::string_view text, std::vector<non_finite_token>& found) {
  struct token {
    std::string_view text, replacement;
    double value;
  };
  static constexpr token tokens[] = {
      {"-Infinity", "-0.000000", -std::numeric_limits<double>::infinity()},
      {"Infinity", "0.000000", std::numeric_limits<double>::infinity()},
      {"NaN", "0.0", std::numeric_limits<double>::quiet_NaN()}};
  auto const is_number_char = [](char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
  };
  std::string out(text);
  std::size_t numbers = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char const c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // the escaped character cannot end the string
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    bool const starts_value = i == 0 || is_value_boundary(text[i - 1]);
    bool replaced = false;
    for (token const& t : tokens) {
      std::size_t const end = i + t.text.size();
      if (starts_value && text.substr(i, t.text.size()) == t.text &&
          (end == text.size() || is_value_boundary(text[end]))) {
        out.replace(i, t.text.size(), t.replacement);
        found.push_back({numbers++, t.value});
        i = end - 1;
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    if (c == '-' || (c >= '0' && c <= '9')) {
      ++numbers;
      while (i + 1 < text.size() && is_number_char(text[i + 1])) ++i;
    }
  }
  return out;
}

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

inline result<boost::json::value> parse_json_with(std::string_view text, std::string_view source,
                                                  std::span<non_finite_token const> non_finite) {
  boost::json::basic_parser<precise_json_handler> parser(boost::json::parse_options{}, non_finite);
  boost::system::error_code ec;
  std::size_t const consumed = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = boost::json::error::extra_data;
  if (ec)
    return make_error(
        errc::malformed_file,
        std::string(source) + ": " + line_and_column(text, consumed) + ": " + ec.message());
  return parser.handler().stack.release();
}

}  // namespace detail

/// Parses one JSON document, numbers correctly rounded.
/// @param[in] text   the JSON text
/// @param[in] source what the text is, for messages (a file name, "stdin")
/// @returns the value, or errc::malformed_file naming source, line, column and the problem
inline result<boost::json::value> parse_json(std::string_view text, std::string_view source) {
  return detail::parse_json_with(text, source, {});
}

/// Parses one JSON document like parse_json, and also accepts the tokens NaN, Infinity and
/// -Infinity where a value can stand (outside strings), as Python's json module writes them for
/// non-finite floats; they become the double NaN, +inf, -inf. Line and column in errors refer
/// to the original text.
/// @param[in] text   the JSON text, possibly with Python's non-finite tokens
/// @param[in] source what the text is, for messages (a file name, "stdin")
/// @returns the value, or errc::malformed_file naming source, line, column and the problem
inline result<boost::json::value> parse_json_lenient(std::string_view text,
                                                     std::string_view source) {
  std::vector<detail::non_finite_token> non_finite;
  std::string const rewritten = detail::rewrite_non_finite(text, non_finite);
  return detail::parse_json_with(rewritten, source, non_finite);
}

/// Where a value sits in a document, for error messages: the source (a file name) and the JSON
/// pointer (RFC 6901) of the value, e.g. "TRIAL_TRAINING_METRICS.json#/latency".
class json_location {
 public:
  /// The whole document of `source` (its pointer is empty).
  explicit json_location(std::string_view source) : source_(source) {}

  /// The member `key` of the object here ('~' and '/' in the key escaped as ~0 and ~1).
  json_location operator/(std::string_view key) const {
    json_location child = *this;
    child.pointer_ += '/';
    for (char const c : key) {
      if (c == '~')
        child.pointer_ += "~0";
      else if (c == '/')
        child.pointer_ += "~1";
      else
        child.pointer_ += c;
    }
    return child;
  }
  /// The element `index` of the array here.
  json_location operator/(std::size_t index) const {
    json_location child = *this;
    child.pointer_ += '/' + std::to_string(index);
    return child;
  }

  std::string const& pointer() const noexcept { return pointer_; }

  /// errc::malformed_file with the context "<source>#<pointer>: <what>".
  proxytask::error fail(std::string_view what) const {
    return make_error(errc::malformed_file, source_ + "#" + pointer_ + ": " + std::string(what));
  }

 private:
  std::string source_;
  std::string pointer_;
};

/// The value as an object, or an error "expected an object" at `where`.
inline result<boost::json::object const*> read_json_object(boost::json::value const& v,
                                                           json_location const& where) {
  if (auto const* o = v.if_object()) return o;
  return where.fail("expected an object");
}

/// The value as an array, or an error "expected an array" at `where`.
inline result<boost::json::array const*> read_json_array(boost::json::value const& v,
                                                         json_location const& where) {
  if (auto const* a = v.if_array()) return a;
  return where.fail("expected an array");
}

/// The member `key` of `object` (which sits at `where`), or an error "missing" naming the member.
inline result<boost::json::value const*> read_json_field(boost::json::object const& object,
                                                         std::string_view key,
                                                         json_location const& where) {
  if (auto const* v = object.if_contains(key)) return v;
  return (where / key).fail("missing");
}

/// The member `key` of `object` (which sits at `where`), read with `read(value, location)`, e.g.
/// read_json_member(o, "latency", where, read_json_double).
/// @returns what `read` returns, or an error "missing" naming the member
template <class Read>
auto read_json_member(boost::json::object const& object, std::string_view key,
                      json_location const& where, Read read)
    -> decltype(read(std::declval<boost::json::value const&>(), where)) {
  auto const v = read_json_field(object, key, where);
  if (!v) return v.error();
  return read(**v, where / key);
}

/// Any JSON number as a double (NaN and infinities included, as parse_json_lenient gives them),
/// or an error "expected a number".
inline result<double> read_json_double(boost::json::value const& v, json_location const& where) {
  if (v.is_double()) return v.get_double();
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return where.fail("expected a number");
}

/// A finite number, or an error "expected a finite number" (also for NaN and infinities).
inline result<double> read_json_finite(boost::json::value const& v, json_location const& where) {
  auto const d = read_json_double(v, where);
  if (d && !std::isfinite(*d)) return where.fail("expected a finite number");
  return d;
}

/// A finite number >= 0 (a pct, a duration), or an error saying what it is not.
inline result<double> read_json_non_negative(boost::json::value const& v,
                                             json_location const& where) {
  auto const d = read_json_finite(v, where);
  if (d && *d < 0) return where.fail("expected a number >= 0");
  return d;
}

/// An integer in int64's range. A double with an integral value (3.0, as some writers put
/// integers) is accepted; 3.5, an infinity or 1e300 is an error.
inline result<std::int64_t> read_json_int64(boost::json::value const& v,
                                            json_location const& where) {
  if (v.is_int64()) return v.get_int64();
  if (v.is_uint64()) return where.fail("integer out of range");
  if (v.is_double()) {
    double const d = v.get_double();
    // 2^63 is exactly representable; every integral double below it fits in int64.
    if (std::isfinite(d) && d == std::trunc(d) && d >= -0x1p63 && d < 0x1p63)
      return static_cast<std::int64_t>(d);
  }
  return where.fail("expected an integer");
}

/// An integer >= 0 (a step, a count), or an error saying what it is not.
inline result<std::int64_t> read_json_count(boost::json::value const& v,
                                            json_location const& where) {
  auto const i = read_json_int64(v, where);
  if (i && *i < 0) return where.fail("expected an integer >= 0");
  return i;
}

/// A string, or an error "expected a string".
inline result<std::string> read_json_string(boost::json::value const& v,
                                            json_location const& where) {
  if (auto const* s = v.if_string()) return std::string(s->data(), s->size());
  return where.fail("expected a string");
}

/// A number for a file we write: a finite double, or null (a missing or failed value). Writers
/// never write NaN or infinity, which JSON cannot represent.
inline boost::json::value json_number(double d) {
  if (!std::isfinite(d)) return nullptr;
  return d;
}

/// A JSON file that holds an object and may not exist yet (a state file, a journal).
/// @returns its document (an object); nullopt when there is no such file; errc::malformed_file
///          naming the file when it does not parse or is not an object; the I/O error otherwise
inline result<std::optional<boost::json::value>> read_json_object_file(
    std::filesystem::path const& path) {
  auto const text = read_file(path);
  if (!text) {
    if (text.error().code == errc::not_found) return std::optional<boost::json::value>();
    return text.error();
  }
  auto doc = parse_json(*text, path.string());
  if (!doc) return doc.error();
  if (auto const o = read_json_object(*doc, json_location(path.string())); !o) return o.error();
  return std::optional<boost::json::value>(std::move(*doc));
}

namespace detail {

/// Where the first non-finite double in `value` sits (Boost 1.81 would serialise it as NaN or
/// Infinity, which JSON cannot represent), or nullopt.
inline std::optional<json_location> first_non_finite(boost::json::value const& value,
                                                     json_location const& where) {
  if (auto const* d = value.if_double(); d && !std::isfinite(*d)) return where;
  if (auto const* a = value.if_array())
    for (std::size_t i = 0; i < a->size(); ++i)
      if (auto found = first_non_finite((*a)[i], where / i)) return found;
  if (auto const* o = value.if_object())
    for (auto const& member : *o)
      if (auto found = first_non_finite(member.value(), where / member.key())) return found;
  return std::nullopt;
}

}  // namespace detail

/// Serialises `value` (with a final newline) and writes it atomically to `path`.
/// @returns errc::invalid_argument naming the file and the JSON pointer when `value` holds a
///          non-finite number (writers use json_number: null for a missing or failed value);
///          otherwise the error of the write
inline result<void> write_json_file(std::filesystem::path const& path,
                                    boost::json::value const& value) {
  if (auto const found = detail::first_non_finite(value, json_location(path.string()))) {
    auto e = found->fail("a non-finite number cannot be written as JSON");
    e.code = errc::invalid_argument;  // the data given to the writer, not a file, is at fault
    return e;
  }
  return write_file_atomically(path, boost::json::serialize(value) + "\n");
}

}  // namespace proxytask
