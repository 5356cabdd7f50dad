#pragma once
/// @file
/// A small, strict XML 1.0 well-formedness checker for tests, which also returns the parsed tree
/// so that a test can query elements and attributes.
///
/// It checks: one root element; tags nest and close with the same name; attribute values are
/// quoted, hold no '<', and no attribute appears twice in one tag; names are well-formed; '&' only
/// starts a valid reference (the five predefined entities, or &#N; / &#xH; naming an XML
/// character); text holds no "]]>"; comments hold no "--"; the text is valid UTF-8 of XML
/// characters. It accepts an XML declaration, comments, processing instructions, CDATA sections
/// and a DOCTYPE without an internal subset (which it rejects: no entity other than the
/// predefined five can then be declared). Namespaces are not interpreted: "xlink:href" is a name.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxytask::testing {

/// One element of a parsed document. Attribute values and text are decoded (entities replaced).
struct xml_node {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;  ///< in document order
  std::vector<xml_node> children;                               ///< child elements, in order
  std::string text;  ///< the character data directly inside this element, concatenated

  /// The value of attribute `key`, or nullopt.
  std::optional<std::string> attr(std::string_view key) const {
    for (auto const& [k, v] : attributes) {
      if (k == key) return v;
    }
    return std::nullopt;
  }

  /// This element and its descendants called `element_name` (all when empty), in document order.
  std::vector<xml_node const*> find_all(std::string_view element_name = {}) const {
    std::vector<xml_node const*> out;
    collect(element_name, out);
    return out;
  }

  /// The descendants (and self) for which attribute `key` equals `value`.
  std::vector<xml_node const*> find_by_attr(std::string_view key, std::string_view value) const {
    std::vector<xml_node const*> out;
    for (auto const* n : find_all()) {
      if (auto v = n->attr(key); v && *v == value) out.push_back(n);
    }
    return out;
  }

  /// All character data inside this element, its descendants' included, in document order.
  std::string all_text() const {
    std::string out = text;
    for (auto const& c : children) out += c.all_text();
    return out;
  }

 private:
  void collect(std::string_view element_name, std::vector<xml_node const*>& out) const {
    if (element_name.empty() || name == element_name) out.push_back(this);
    for (auto const& c : children) c.collect(element_name, out);
  }
};

/// The outcome of parse_xml: the root element, or the first error and where it was found.
struct xml_document {
  bool ok = false;
  std::string error;       ///< empty when ok
  std::size_t offset = 0;  ///< byte offset of the error
  xml_node root;
  explicit operator bool() const noexcept { return ok; }
};

namespace detail {

class xml_parser {
 public:
  explicit xml_parser(std::string_view text) : s_(text) {}

  xml_document run() {
    xml_document doc;
    if (!check_characters()) return failed(std::move(doc));
    if (s_.substr(0, 5) == "<?xml" && s_.size() > 5 && is_space(s_[5])) {
      if (!skip_until("?>", "unterminated XML declaration")) return failed(std::move(doc));
    }
    bool seen_doctype = false;
    bool seen_root = false;
    for (;;) {
      skip_spaces();
      if (pos_ >= s_.size()) break;
      if (starts_with("<!--")) {
        if (!comment()) return failed(std::move(doc));
      } else if (starts_with("<?")) {
        if (!processing_instruction()) return failed(std::move(doc));
      } else if (starts_with("<!DOCTYPE")) {
        if (seen_doctype || seen_root) return fail(std::move(doc), "misplaced DOCTYPE");
        seen_doctype = true;
        if (!doctype()) return failed(std::move(doc));
      } else if (starts_with("<")) {
        if (seen_root) return fail(std::move(doc), "more than one root element");
        seen_root = true;
        if (!element(doc.root, 0)) return failed(std::move(doc));
      } else {
        return fail(std::move(doc), "text outside the root element");
      }
    }
    if (!seen_root) return fail(std::move(doc), "no root element");
    doc.ok = true;
    return doc;
  }

 private:
  static constexpr int max_depth = 1000;

  static bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
  static bool is_name_start(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           static_cast<unsigned char>(c) >= 0x80;
  }
  static bool is_name_char(char c) noexcept {
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
  }
  static bool is_xml_char(std::uint32_t cp) noexcept {
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
  }

  bool starts_with(std::string_view p) const noexcept { return s_.substr(pos_, p.size()) == p; }
  void skip_spaces() noexcept {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  bool error(std::string message) {
    if (error_.empty()) {
      error_ = std::move(message);
      error_at_ = pos_;
    }
    return false;
  }
  xml_document failed(xml_document doc) {
    doc.ok = false;
    doc.error = error_;
    doc.offset = error_at_;
    return doc;
  }
  xml_document fail(xml_document doc, std::string message) {
    error(std::move(message));
    return failed(std::move(doc));
  }

  // Valid UTF-8, every code point an XML Char.
  bool check_characters() {
    std::size_t i = 0;
    while (i < s_.size()) {
      auto const b0 = static_cast<unsigned char>(s_[i]);
      std::size_t len = 1;
      std::uint32_t cp = b0;
      if (b0 >= 0x80) {
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
          pos_ = i;
          return error("invalid UTF-8");
        }
        if (i + len > s_.size()) {
          pos_ = i;
          return error("truncated UTF-8");
        }
        for (std::size_t k = 1; k < len; ++k) {
          auto const b = static_cast<unsigned char>(s_[i + k]);
          if ((b & 0xC0u) != 0x80u) {
            pos_ = i;
            return error("invalid UTF-8");
          }
          cp = (cp << 6) | (b & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) {
          pos_ = i;
          return error("overlong UTF-8");
        }
      }
      if (!is_xml_char(cp)) {
        pos_ = i;
        return error("a character XML does not allow (code point " + std::to_string(cp) + ")");
      }
      i += len;
    }
    return true;
  }

  bool skip_until(std::string_view end, std::string_view message) {
    auto const at = s_.find(end, pos_);
    if (at == std::string_view::npos) return error(std::string(message));
    pos_ = at + end.size();
    return true;
  }

  bool comment() {
    pos_ += 4;
    auto const at = s_.find("--", pos_);
    if (at == std::string_view::npos) return error("unterminated comment");
    pos_ = at;
    if (!starts_with("-->")) return error("'--' inside a comment");
    pos_ += 3;
    return true;
  }

  bool processing_instruction() {
    pos_ += 2;
    std::string target;
    if (!name(target)) return false;
    if (target.size() == 3 && (target[0] | 0x20) == 'x' && (target[1] | 0x20) == 'm' &&
        (target[2] | 0x20) == 'l') {
      return error("XML declaration not at the start");
    }
    if (!starts_with("?>") && (pos_ >= s_.size() || !is_space(s_[pos_]))) {
      return error("bad processing instruction");
    }
    return skip_until("?>", "unterminated processing instruction");
  }

  bool doctype() {
    pos_ += 9;
    for (; pos_ < s_.size(); ++pos_) {
      if (s_[pos_] == '[') return error("internal DTD subsets are not supported");
      if (s_[pos_] == '>') {
        ++pos_;
        return true;
      }
    }
    return error("unterminated DOCTYPE");
  }

  bool name(std::string& out) {
    if (pos_ >= s_.size() || !is_name_start(s_[pos_])) return error("expected a name");
    auto const begin = pos_;
    while (pos_ < s_.size() && is_name_char(s_[pos_])) ++pos_;
    out.assign(s_.substr(begin, pos_ - begin));
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // At '&': decodes one reference into `out`.
  bool reference(std::string& out) {
    auto const semi = s_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return error("'&' starts no reference");
    auto const body = s_.substr(pos_ + 1, semi - pos_ - 1);
    if (body == "amp") {
      out += '&';
    } else if (body == "lt") {
      out += '<';
    } else if (body == "gt") {
      out += '>';
    } else if (body == "quot") {
      out += '"';
    } else if (body == "apos") {
      out += '\'';
    } else if (body.size() >= 2 && body[0] == '#') {
      bool const hex = body[1] == 'x';
      auto const digits = body.substr(hex ? 2 : 1);
      if (digits.empty()) return error("empty character reference");
      std::uint32_t cp = 0;
      for (char const c : digits) {
        std::uint32_t d = 0;
        if (c >= '0' && c <= '9') {
          d = static_cast<std::uint32_t>(c - '0');
        } else if (hex && c >= 'a' && c <= 'f') {
          d = static_cast<std::uint32_t>(c - 'a' + 10);
        } else if (hex && c >= 'A' && c <= 'F') {
          d = static_cast<std::uint32_t>(c - 'A' + 10);
        } else {
          return error("bad digit in a character reference");
        }
        cp = cp * (hex ? 16 : 10) + d;
        if (cp > 0x10FFFF) return error("character reference out of range");
      }
      if (!is_xml_char(cp)) return error("character reference to a character XML does not allow");
      append_utf8(out, cp);
    } else {
      return error("unknown entity '&" + std::string(body) + ";'");
    }
    pos_ = semi + 1;
    return true;
  }

  bool attribute_value(std::string& out) {
    if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
      return error("attribute value not quoted");
    }
    char const quote = s_[pos_++];
    for (;;) {
      if (pos_ >= s_.size()) return error("unterminated attribute value");
      char const c = s_[pos_];
      if (c == quote) {
        ++pos_;
        return true;
      }
      if (c == '<') return error("'<' in an attribute value");
      if (c == '&') {
        if (!reference(out)) return false;
        continue;
      }
      out += c;
      ++pos_;
    }
  }

  bool element(xml_node& node, int depth) {
    if (depth > max_depth) return error("elements nested too deeply");
    ++pos_;  // '<'
    if (!name(node.name)) return false;
    // Attributes.
    for (;;) {
      bool const spaced = pos_ < s_.size() && is_space(s_[pos_]);
      skip_spaces();
      if (pos_ >= s_.size()) return error("unterminated start tag <" + node.name);
      if (starts_with("/>")) {
        pos_ += 2;
        return true;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      if (!spaced) return error("expected whitespace before an attribute");
      std::string key;
      if (!name(key)) return false;
      skip_spaces();
      if (pos_ >= s_.size() || s_[pos_] != '=') return error("expected '=' after " + key);
      ++pos_;
      skip_spaces();
      std::string value;
      if (!attribute_value(value)) return false;
      for (auto const& [k, v] : node.attributes) {
        if (k == key) return error("attribute " + key + " repeated");
      }
      node.attributes.emplace_back(std::move(key), std::move(value));
    }
    // Content.
    for (;;) {
      if (pos_ >= s_.size()) return error("element <" + node.name + "> is not closed");
      if (starts_with("</")) {
        pos_ += 2;
        std::string closing;
        if (!name(closing)) return false;
        if (closing != node.name) {
          return error("</" + closing + "> closes <" + node.name + ">");
        }
        skip_spaces();
        if (pos_ >= s_.size() || s_[pos_] != '>') return error("bad end tag </" + closing);
        ++pos_;
        return true;
      }
      if (starts_with("<!--")) {
        if (!comment()) return false;
      } else if (starts_with("<![CDATA[")) {
        pos_ += 9;
        auto const end = s_.find("]]>", pos_);
        if (end == std::string_view::npos) return error("unterminated CDATA section");
        node.text.append(s_.substr(pos_, end - pos_));
        pos_ = end + 3;
      } else if (starts_with("<?")) {
        if (!processing_instruction()) return false;
      } else if (starts_with("<!")) {
        return error("markup declaration inside an element");
      } else if (s_[pos_] == '<') {
        node.children.emplace_back();
        if (!element(node.children.back(), depth + 1)) return false;
      } else if (s_[pos_] == '&') {
        if (!reference(node.text)) return false;
      } else {
        if (starts_with("]]>")) return error("']]>' in text");
        node.text += s_[pos_++];
      }
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  std::string error_;
  std::size_t error_at_ = 0;
};

}  // namespace detail

/// Parses `text` as an XML document, strictly (see the file comment).
/// @returns the root element, or ok == false with the first error and its byte offset
inline xml_document parse_xml(std::string_view text) { return detail::xml_parser(text).run(); }

}  // namespace proxytask::testing
