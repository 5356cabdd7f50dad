#pragma once
/// @file
/// The reference trainer's search space: multilayer perceptrons with 1 to 4 hidden layers, a
/// width per layer, an activation and a dropout rate. A seed names a model (sample_mlp, the same
/// model on every platform: SplitMix64, no <random> distributions); the "model scale" proxy knob
/// multiplies the widths (scale_widths). A spec is stored as MODEL_SPEC.json's "parameters":
///   {"hidden": [256, 128], "activation": "relu", "dropout": 0.1}

#include <proxytask/core/config.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/protocol/model_spec.hpp>
#include <proxytask/trainer/detail/splitmix64.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxytask::trainer {

/// The activation function of the hidden layers.
enum class activation { relu, tanh, gelu };

/// The activations in declaration order (for parsing and listing).
inline constexpr activation all_activations[] = {activation::relu, activation::tanh,
                                                 activation::gelu};

/// The file's string for an activation: "relu", "tanh", "gelu".
constexpr std::string_view to_string(activation a) noexcept {
  switch (a) {
    case activation::relu: return "relu";
    case activation::tanh: return "tanh";
    case activation::gelu: return "gelu";
  }
  return "?";
}

/// The activation named by `s` (exactly as to_string writes it), or nullopt.
constexpr std::optional<activation> parse_activation(std::string_view s) noexcept {
  for (activation const a : all_activations)
    if (to_string(a) == s) return a;
  return std::nullopt;
}

/// The bounds of a spec (what mlp_spec_from_json accepts).
inline constexpr std::size_t max_hidden_layers = 4;
inline constexpr std::size_t max_hidden_width = 1u << 16;
inline constexpr double max_dropout = 0.5;

/// What sample_mlp draws from.
inline constexpr std::array<std::size_t, 5> sampled_widths = {64, 128, 256, 512, 1024};
inline constexpr std::array<double, 4> sampled_dropouts = {0.0, 0.1, 0.2, 0.3};

/// The smallest width scale_widths leaves.
inline constexpr std::size_t min_scaled_width = 8;

/// One multilayer perceptron of the search space (input and output layers are implied by the
/// data: 784 or 196 inputs, 10 classes).
struct mlp_spec {
  std::vector<std::size_t> hidden;  ///< widths of the hidden layers, 1 to 4 of them
  activation act = activation::relu;
  double dropout = 0.0;  ///< on hidden activations, in [0, 0.5]

  friend bool operator==(mlp_spec const&, mlp_spec const&) = default;
};

/// The model a seed names: depth uniform in 1-4, each width uniform in {64, 128, 256, 512, 1024},
/// the activation uniform in {relu, tanh, gelu}, dropout uniform in {0, 0.1, 0.2, 0.3}.
/// The same spec for a seed on every platform.
inline mlp_spec sample_mlp(std::uint64_t seed) {
  detail::splitmix64 rng(seed);
  mlp_spec spec;
  std::size_t const depth = 1 + static_cast<std::size_t>(rng.below(max_hidden_layers));
  for (std::size_t l = 0; l < depth; ++l)
    spec.hidden.push_back(sampled_widths[rng.below(sampled_widths.size())]);
  spec.act = all_activations[rng.below(std::size(all_activations))];
  spec.dropout = sampled_dropouts[rng.below(sampled_dropouts.size())];
  return spec;
}

/// The "model scale" proxy knob: every width times `model_scale`, rounded to nearest, at least 8.
/// @param[in] spec        the model
/// @param[in] model_scale a finite factor > 0 (0.25 for a quarter-width proxy)
/// @throws logic_error when model_scale is not finite and > 0
inline mlp_spec scale_widths(mlp_spec spec, double model_scale) {
  PROXYTASK_EXPECTS(std::isfinite(model_scale) && model_scale > 0,
                    "scale_widths: the model scale must be finite and > 0");
  for (std::size_t& w : spec.hidden) {
    double const scaled = std::round(static_cast<double>(w) * model_scale);
    w = scaled >= static_cast<double>(max_hidden_width)
            ? max_hidden_width
            : std::max(min_scaled_width, static_cast<std::size_t>(scaled));
  }
  return spec;
}

/// A name for the model, e.g. "mlp-256-128-relu-d0.1" (widths, activation, dropout in its
/// shortest decimal form). Different specs get different names.
inline std::string mlp_model_id(mlp_spec const& spec) {
  std::string id = "mlp";
  for (std::size_t const w : spec.hidden) {
    // Two appends, not "-" + to_string(w): GCC 12's -Wrestrict misfires on that one in Release.
    id += '-';
    id += std::to_string(w);
  }
  id += "-";
  id += to_string(spec.act);
  char buffer[32];
  auto const end = std::to_chars(buffer, buffer + sizeof buffer, spec.dropout).ptr;
  id += "-d";
  id.append(buffer, end);
  return id;
}

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, mlp_spec const& s) {
  boost::json::array hidden;
  for (std::size_t const w : s.hidden) hidden.emplace_back(static_cast<std::uint64_t>(w));
  jv = {{"hidden", std::move(hidden)},
        {"activation", to_string(s.act)},
        {"dropout", json_number(s.dropout)}};
}

/// Reads an mlp_spec (MODEL_SPEC.json's "parameters"); unknown members are ignored.
/// @param[in] v     the parameters object
/// @param[in] where its location, e.g. json_location("MODEL_SPEC.json") / "parameters"
/// @returns the spec, or errc::malformed_file naming "<source>#<pointer>" and what is wrong:
///          "#/…/hidden" (missing, not an array, or not 1 to 4 widths), "#/…/hidden/2" (not an
///          integer >= 1, or above 65536), "#/…/activation" (not relu, tanh or gelu),
///          "#/…/dropout" (not a number in [0, 0.5])
inline result<mlp_spec> mlp_spec_from_json(boost::json::value const& v,
                                           json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  mlp_spec spec;

  auto const hidden = read_json_member(**o, "hidden", where, read_json_array);
  if (!hidden) return hidden.error();
  if ((*hidden)->empty() || (*hidden)->size() > max_hidden_layers)
    return (where / "hidden")
        .fail("expected 1 to " + std::to_string(max_hidden_layers) +
              " hidden layer widths, found " + std::to_string((*hidden)->size()));
  for (std::size_t l = 0; l < (*hidden)->size(); ++l) {
    auto const at = where / "hidden" / l;
    auto const w = read_json_int64((**hidden)[l], at);
    if (!w || *w < 1) return at.fail("expected an integer >= 1");
    if (static_cast<std::uint64_t>(*w) > max_hidden_width)
      return at.fail("expected a width of at most " + std::to_string(max_hidden_width) +
                     ", found " + std::to_string(*w));
    spec.hidden.push_back(static_cast<std::size_t>(*w));
  }

  auto const name = read_json_member(**o, "activation", where, read_json_string);
  if (!name) return name.error();
  auto const act = parse_activation(*name);
  if (!act) {
    std::string expected;
    for (activation const a : all_activations)
      expected += (expected.empty() ? "" : ", ") + std::string(to_string(a));
    return (where / "activation")
        .fail("unknown activation \"" + *name + "\" (expected one of " + expected + ")");
  }
  spec.act = *act;

  auto const dropout = read_json_member(**o, "dropout", where, read_json_double);
  if (!dropout) return dropout.error();
  if (!(*dropout >= 0 && *dropout <= max_dropout))  // NaN fails too
    return (where / "dropout").fail("expected a number in [0, 0.5]");
  spec.dropout = *dropout;
  return spec;
}

/// Boost.JSON's non-throwing conversion (error code only; mlp_spec_from_json gives the message).
inline boost::system::result<mlp_spec> tag_invoke(boost::json::try_value_to_tag<mlp_spec>,
                                                  boost::json::value const& jv) {
  auto s = mlp_spec_from_json(jv, json_location(""));
  if (!s) return boost::system::error_code(s.error().code);
  return std::move(*s);
}

/// The MODEL_SPEC.json of a spec: {"model_id": mlp_model_id(spec), "parameters": spec}.
inline protocol::model_spec to_model_spec(mlp_spec const& spec) {
  return protocol::model_spec{mlp_model_id(spec), boost::json::value_from(spec).as_object()};
}

/// The mlp_spec of a MODEL_SPEC.json read with protocol::parse_model_spec.
/// @param[in] spec   the model spec
/// @param[in] source the file's name, for messages ("MODEL_SPEC.json")
/// @returns the spec, or errc::malformed_file naming "<source>#/parameters/…"
inline result<mlp_spec> mlp_spec_from_model_spec(protocol::model_spec const& spec,
                                                 std::string_view source) {
  return mlp_spec_from_json(boost::json::value(spec.parameters),
                            json_location(source) / "parameters");
}

}  // namespace proxytask::trainer
