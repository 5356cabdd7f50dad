#pragma once
/// @file
/// Proxy configs: the candidate proxy tasks the proxy-task search tries, each a name and the
/// trainer arguments that make the proxy (launch convention: `--<name>=<value>`, e.g. a data
/// percentage and a model scale). Given as
///   - C++: any type with `result<std::vector<proxy_config>> configs()` (the
///     proxy_config_generator concept), in the order the search should try them;
///   - a grid: the cartesian product of knob values (proxy_grid);
///   - a JSON file of named argument maps (proxy_config_file), for users who write no C++.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace proxytask::workflow {

/// One proxy task: its name (unique within a search) and its trainer arguments.
struct proxy_config {
  std::string name;
  std::map<std::string, std::string> args;  ///< argument name -> value, passed as --name=value

  bool operator==(proxy_config const&) const = default;
};

/// A generator of proxy configs: `g.configs()` gives them in the order to try them.
template <class Generator>
concept proxy_config_generator = requires(Generator& g) {
  { g.configs() } -> std::same_as<result<std::vector<proxy_config>>>;
};

namespace detail {

/// Why `name` cannot be a trainer argument's name (empty when it can): the launch convention
/// passes --name=value, and its four own flags are not proxy arguments.
inline std::string bad_argument_name(std::string_view name) {
  if (name.empty()) return "an argument name must not be empty";
  if (name.find('=') != std::string_view::npos)
    return "argument name \"" + std::string(name) + "\" contains '='";
  if (name == "model_dir" || name == "model_spec" || name == "seed" || name == "resume_from")
    return "\"" + std::string(name) + "\" is a launch flag, not a proxy argument";
  return {};
}

}  // namespace detail

/// One knob of a proxy_grid: an argument name and the values to try, in order.
struct proxy_knob {
  std::string name;
  std::vector<std::string> values;
};

/// The cartesian product of knob values. Order: the knobs in the order given, the first
/// varying slowest (like nested loops in that order), each knob's values in the order given.
/// Names: "knob=value" pairs in knob order, joined by ",". For knobs data_pct {25, 50} and
/// model_scale {0.5, 1}: "data_pct=25,model_scale=0.5", "data_pct=25,model_scale=1",
/// "data_pct=50,model_scale=0.5", "data_pct=50,model_scale=1".
class proxy_grid {
 public:
  explicit proxy_grid(std::vector<proxy_knob> knobs) : knobs_(std::move(knobs)) {}

  /// The grid's configs.
  /// @returns them; errc::invalid_argument for no knobs, a knob without values, a bad or
  ///          repeated knob name (empty, with '=' or ',', a launch flag), or a value repeated
  ///          within a knob
  result<std::vector<proxy_config>> configs() const {
    if (knobs_.empty()) return make_error(errc::invalid_argument, "proxy_grid: no knobs");
    std::set<std::string_view> names;
    for (auto const& k : knobs_) {
      auto why = detail::bad_argument_name(k.name);
      if (why.empty() && k.name.find(',') != std::string::npos)
        why = "knob name \"" + k.name + "\" contains ','";
      if (!why.empty()) return make_error(errc::invalid_argument, "proxy_grid: " + why);
      if (!names.insert(k.name).second)
        return make_error(errc::invalid_argument, "proxy_grid: knob \"" + k.name + "\" repeated");
      if (k.values.empty())
        return make_error(errc::invalid_argument,
                          "proxy_grid: knob \"" + k.name + "\" has no values");
      std::set<std::string_view> values;
      for (auto const& v : k.values)
        if (!values.insert(v).second)
          return make_error(errc::invalid_argument, "proxy_grid: knob \"" + k.name +
                                                        "\" lists the value \"" + v + "\" twice");
    }
    std::vector<proxy_config> out;
    std::vector<std::size_t> at(knobs_.size(), 0);  // an odometer, the last knob fastest
    for (;;) {
      proxy_config c;
      for (std::size_t k = 0; k < knobs_.size(); ++k) {
        auto const& value = knobs_[k].values[at[k]];
        c.name += (k == 0 ? "" : ",") + knobs_[k].name + "=" + value;
        c.args.emplace(knobs_[k].name, value);
      }
      out.push_back(std::move(c));
      std::size_t k = knobs_.size();
      while (k > 0 && ++at[k - 1] == knobs_[k - 1].values.size()) at[--k] = 0;
      if (k == 0) return out;
    }
  }

  std::vector<proxy_knob> const& knobs() const noexcept { return knobs_; }

 private:
  std::vector<proxy_knob> knobs_;
};

static_assert(proxy_config_generator<proxy_grid const>);

/// Proxy configs from a JSON file, in the file's order:
///   {"proxies": [{"name": "quarter-data", "args": {"data_pct": 25, "model_scale": "0.5"}}, ...]}
/// An argument's value is a string, kept as it is, or a number, written as its shortest
/// round-trip decimal text (std::to_chars: 25 -> "25", 0.5 -> "0.5", 25.0 -> "25", 1e-7 ->
/// "1e-07"). Names are non-empty and unique; "args" may be empty (the trainer's defaults).
class proxy_config_file {
 public:
  /// Reads a proxy config file.
  /// @returns the configs; the read error; errc::malformed_file naming "<file>#<pointer>" (a
  ///          missing or mistyped member, an empty list, an empty or repeated name, a bad
  ///          argument name, a value that is neither a string nor a finite number)
  static result<proxy_config_file> load(std::filesystem::path const& file) {
    auto const text = read_file(file);
    if (!text) return text.error();
    auto const doc = parse_json(*text, file.string());
    if (!doc) return doc.error();
    return from_json(*doc, file.string());
  }

  /// The same from a parsed document; `source` names it in errors.
  static result<proxy_config_file> from_json(boost::json::value const& doc,
                                             std::string_view source) {
    json_location const where(source);
    auto const o = read_json_object(doc, where);
    if (!o) return o.error();
    auto const list = read_json_member(**o, "proxies", where, read_json_array);
    if (!list) return list.error();
    if ((*list)->empty()) return (where / "proxies").fail("no proxies (the list is empty)");
    proxy_config_file file;
    std::map<std::string, std::size_t> seen;
    for (std::size_t i = 0; i < (*list)->size(); ++i) {
      json_location const at = where / "proxies" / i;
      auto const p = read_json_object((**list)[i], at);
      if (!p) return p.error();
      proxy_config c;
      auto name = read_json_member(**p, "name", at, read_json_string);
      if (!name) return name.error();
      if (name->empty()) return (at / "name").fail("the name must not be empty");
      auto const [it, fresh] = seen.emplace(*name, i);
      if (!fresh)
        return (at / "name")
            .fail("duplicate name \"" + *name + "\" (also at " +
                  (where / "proxies" / it->second / "name").pointer() + ")");
      c.name = std::move(*name);
      auto const args = read_json_member(**p, "args", at, read_json_object);
      if (!args) return args.error();
      for (auto const& kv : **args) {
        json_location const arg = at / "args" / kv.key();
        if (auto const why = detail::bad_argument_name(kv.key()); !why.empty())
          return arg.fail(why);
        auto value = argument_text(kv.value(), arg);
        if (!value) return value.error();
        c.args.emplace(std::string(kv.key()), std::move(*value));
      }
      file.configs_.push_back(std::move(c));
    }
    return file;
  }

  /// The configs, in the file's order.
  result<std::vector<proxy_config>> configs() const { return configs_; }

 private:
  proxy_config_file() = default;

  static result<std::string> argument_text(boost::json::value const& v, json_location const& at) {
    if (auto const* s = v.if_string()) return std::string(s->data(), s->size());
    if (v.is_int64()) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    if (v.is_double() && std::isfinite(v.get_double())) {
      char buffer[64];
      auto const [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v.get_double());
      if (ec == std::errc()) return std::string(buffer, end);
    }
    return at.fail("expected a string or a finite number");
  }

  std::vector<proxy_config> configs_;
};

static_assert(proxy_config_generator<proxy_config_file const>);

}  // namespace proxytask::workflow
