#pragma once
/// @file
/// A tiny SVG/XML writer: an element tree with attributes and text, written as well-formed XML.
///
/// Guarantees, whatever the caller passes in:
/// - text and attribute values are escaped (& < > " ' become entities); characters XML 1.0 cannot
///   carry (control characters other than tab, LF and CR) and invalid UTF-8 become U+FFFD;
/// - numbers are written by std::to_chars, so never with a locale's decimal comma, and always the
///   same bytes for the same value;
/// - a non-finite number is never written: passing one is a caller bug (PROXYTASK_EXPECTS).
///   plot.hpp skips non-finite data before it gets here.
///
/// @code
/// namespace rp = proxytask::report;
/// rp::element svg("svg");
/// svg.attr("xmlns", rp::svg_namespace).attr("width", 100).attr("height", 50);
/// svg.add(rp::element("text")).attr("x", 10).attr("y", 20).text("a < b & c");
/// std::string out = svg.to_string();  // <svg ...><text x="10" y="20">a &lt; b &amp;
/// c</text></svg>
/// @endcode

#include <proxytask/core/config.hpp>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::report {

/// The SVG namespace, for the root element's `xmlns` attribute.
inline constexpr std::string_view svg_namespace = "http://www.w3.org/2000/svg";

/// Appends the shortest decimal text that reads back as exactly `value` (std::to_chars, no
/// locale): 0.5 -> "0.5", 25.0 -> "25", 1e-7 -> "1e-07". Negative zero is written "0".
/// Use it for data values that a reader must recover exactly.
/// @pre std::isfinite(value)
/// @throws proxytask::logic_error when `value` is NaN or infinite
void append_number(std::string& out, double value);

/// append_number into a new string.
std::string format_number(double value);

/// Appends `value` rounded to `decimals` places (0..17) in fixed notation, without trailing zeros
/// or a trailing point: (12.5, 2) -> "12.5", (3.0, 2) -> "3", (-0.001, 2) -> "0". Use it for
/// drawing coordinates and tick labels, where a short, stable text matters more than the last bit.
/// @pre std::isfinite(value) and 0 <= decimals <= 17
/// @throws proxytask::logic_error when `value` is NaN or infinite
void append_fixed(std::string& out, double value, int decimals);

/// append_fixed into a new string.
std::string format_fixed(double value, int decimals);

/// Appends `text` escaped for XML text and attribute values: & < > " ' become &amp; &lt; &gt;
/// &quot; &apos;; characters not allowed in XML 1.0 and invalid UTF-8 sequences become U+FFFD.
void append_escaped(std::string& out, std::string_view text);

/// append_escaped into a new string.
std::string escape(std::string_view text);

/// One XML element: a name, attributes in the order they were set, then text and child elements
/// in the order they were added. Copyable, movable, and written with to_string / write.
class element {
 public:
  /// An element called `name`.
  /// @pre `name` is an XML name (a letter, '_' or ':', then letters, digits, '_', ':', '.', '-')
  /// @throws proxytask::logic_error otherwise
  explicit element(std::string name);

  /// The element's name.
  std::string const& name() const noexcept { return name_; }

  /// Sets attribute `key` to `value` (escaped when written). Setting a key twice replaces the
  /// value and keeps the first position, so the output never repeats an attribute.
  /// @pre `key` is an XML name
  /// @returns *this, for chaining
  element& attr(std::string_view key, std::string_view value);
  /// Sets attribute `key` to a string literal (so that it does not convert to bool or double).
  element& attr(std::string_view key, char const* value) {
    return attr(key, std::string_view(value));
  }
  /// Sets attribute `key` to format_fixed(value, 2): a drawing coordinate or length.
  /// @pre std::isfinite(value)
  element& attr(std::string_view key, double value);
  /// Sets attribute `key` to an integer.
  element& attr(std::string_view key, int value);

  /// The value of attribute `key`, or nullptr. (Unescaped, as it was set.)
  std::string const* find_attr(std::string_view key) const noexcept;

  /// Appends text content (escaped when written).
  /// @returns *this, for chaining
  element& text(std::string_view content);

  /// Appends a child element.
  /// @returns the child, now owned by this element (valid until the next add on this element)
  element& add(element child);

  /// The child elements, in order.
  std::vector<element> const& children() const noexcept { return children_; }

  /// Appends the element, its attributes and its content as XML to `out`. Elements with neither
  /// text nor children are written as empty-element tags (<circle .../>); an element with
  /// children but no text puts each child on its own line.
  void write(std::string& out) const;

  /// The element as XML text.
  std::string to_string() const;

 private:
  // Content is a list of pieces: text, or the index of a child in children_.
  struct piece {
    bool is_text;
    std::string text;
    std::size_t child;
  };
  std::string name_;
  std::vector<std::pair<std::string, std::string>> attributes_;
  std::vector<element> children_;
  std::vector<piece> content_;
  std::size_t texts_ = 0;  // how many pieces are text
};

namespace detail {

/// Whether `name` is an XML name in the ASCII subset this writer produces.
inline bool is_xml_name(std::string_view name) noexcept {
  if (name.empty()) return false;
  auto const start = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  };
  if (!start(name.front())) return false;
  for (char const c : name.substr(1)) {
    if (!start(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.') return false;
  }
  return true;
}

/// Length of the valid UTF-8 sequence at the front of `s` (1..4), or 0 when it is not valid
/// (overlong forms, surrogates and code points above U+10FFFF are not valid).
inline std::size_t utf8_sequence_length(std::string_view s) noexcept {
  auto const b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07u;
  } else {
    return 0;
  }
  if (s.size() < len) return 0;
  for (std::size_t i = 1; i < len; ++i) {
    auto const b = static_cast<unsigned char>(s[i]);
    if ((b & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  // U+FFFE and U+FFFF are not XML characters either.
  if (cp == 0xFFFE || cp == 0xFFFF) return 0;
  return len;
}

}  // namespace detail

inline void append_number(std::string& out, double value) {
  PROXYTASK_EXPECTS(std::isfinite(value), "report: a non-finite number cannot be written to SVG");
  if (value == 0.0) value = 0.0;  // -0 -> 0
  char buffer[32];
  auto const [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  PROXYTASK_EXPECTS(ec == std::errc{}, "report: std::to_chars failed");
  out.append(buffer, end);
}

inline std::string format_number(double value) {
  std::string out;
  append_number(out, value);
  return out;
}

inline void append_fixed(std::string& out, double value, int decimals) {
  PROXYTASK_EXPECTS(std::isfinite(value), "report: a non-finite number cannot be written to SVG");
  PROXYTASK_EXPECTS(decimals >= 0 && decimals <= 17, "report: decimals must be in [0, 17]");
  // 1e308 in fixed notation has 309 digits before the point.
  char buffer[400];
  auto const [end, ec] =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, decimals);
  PROXYTASK_EXPECTS(ec == std::errc{}, "report: std::to_chars failed");
  std::string_view text(buffer, static_cast<std::size_t>(end - buffer));
  if (text.find('.') != std::string_view::npos) {
    while (text.back() == '0') text.remove_suffix(1);
    if (text.back() == '.') text.remove_suffix(1);
  }
  if (text == "-0") text = "0";
  out.append(text);
}

inline std::string format_fixed(double value, int decimals) {
  std::string out;
  append_fixed(out, value, decimals);
  return out;
}

inline void append_escaped(std::string& out, std::string_view text) {
  constexpr std::string_view replacement = "\xEF\xBF\xBD";  // U+FFFD
  std::size_t i = 0;
  while (i < text.size()) {
    char const c = text[i];
    switch (c) {
      case '&':
        out += "&amp;";
        ++i;
        continue;
      case '<':
        out += "&lt;";
        ++i;
        continue;
      case '>':
        out += "&gt;";
        ++i;
        continue;
      case '"':
        out += "&quot;";
        ++i;
        continue;
      case '\'':
        out += "&apos;";
        ++i;
        continue;
      default: break;
    }
    auto const u = static_cast<unsigned char>(c);
    if (u < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      out += replacement;
      ++i;
      continue;
    }
    auto const len = detail::utf8_sequence_length(text.substr(i));
    if (len == 0) {
      out += replacement;
      ++i;
      continue;
    }
    out.append(text.substr(i, len));
    i += len;
  }
}

inline std::string escape(std::string_view text) {
  std::string out;
  append_escaped(out, text);
  return out;
}

inline element::element(std::string name) : name_(std::move(name)) {
  PROXYTASK_EXPECTS(detail::is_xml_name(name_), "report: '" + name_ + "' is not an XML name");
}

inline element& element::attr(std::string_view key, std::string_view value) {
  PROXYTASK_EXPECTS(detail::is_xml_name(key),
                    "report: '" + std::string(key) + "' is not an XML attribute name");
  for (auto& [k, v] : attributes_) {
    if (k == key) {
      v = value;
      return *this;
    }
  }
  attributes_.emplace_back(std::string(key), std::string(value));
  return *this;
}

inline element& element::attr(std::string_view key, double value) {
  return attr(key, std::string_view(format_fixed(value, 2)));
}

inline element& element::attr(std::string_view key, int value) {
  return attr(key, std::string_view(std::to_string(value)));
}

inline std::string const* element::find_attr(std::string_view key) const noexcept {
  for (auto const& [k, v] : attributes_) {
    if (k == key) return &v;
  }
  return nullptr;
}

inline element& element::text(std::string_view content) {
  content_.push_back(piece{true, std::string(content), 0});
  ++texts_;
  return *this;
}

inline element& element::add(element child) {
  children_.push_back(std::move(child));
  content_.push_back(piece{false, {}, children_.size() - 1});
  return children_.back();
}

inline void element::write(std::string& out) const {
  out += '<';
  out += name_;
  for (auto const& [k, v] : attributes_) {
    out += ' ';
    out += k;
    out += "=\"";
    append_escaped(out, v);
    out += '"';
  }
  if (content_.empty()) {
    out += "/>";
    return;
  }
  out += '>';
  // Elements that hold only elements get one child per line, for readable diffs; whitespace is
  // never added next to text, where it would show.
  bool const only_elements = texts_ == 0;
  if (only_elements) out += '\n';
  for (auto const& p : content_) {
    if (p.is_text) {
      append_escaped(out, p.text);
    } else {
      children_[p.child].write(out);
      if (only_elements) out += '\n';
    }
  }
  out += "</";
  out += name_;
  out += '>';
}

inline std::string element::to_string() const {
  std::string out;
  write(out);
  return out;
}

}  // namespace proxytask::report
