#pragma once
/// @file
/// MODEL_SPEC.json: the model a trial trains, written by the controller and read by the trainer:
///   {"model_id": string, "parameters": {...any JSON object chosen by the search space...}}

#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace proxytask::protocol {

/// The contents of MODEL_SPEC.json.
struct model_spec {
  std::string model_id;            ///< the search space's name for the model
  boost::json::object parameters;  ///< the search space's parameters of the model, as it chose
};

inline void tag_invoke(boost::json::value_from_tag, boost::json::value& jv, model_spec const& s) {
  jv = {{"model_id", s.model_id}, {"parameters", s.parameters}};
}

/// Reads a model_spec from a parsed document; unknown members are ignored.
/// @returns the spec, or errc::malformed_file naming "<source>#/model_id" or
///          "<source>#/parameters" when one is missing or has the wrong type
inline result<model_spec> model_spec_from_json(boost::json::value const& v,
                                               json_location const& where) {
  auto const o = read_json_object(v, where);
  if (!o) return o.error();
  auto id = read_json_member(**o, "model_id", where, read_json_string);
  if (!id) return id.error();
  auto const parameters = read_json_member(**o, "parameters", where, read_json_object);
  if (!parameters) return parameters.error();
  return model_spec{std::move(*id), **parameters};
}

/// Parses MODEL_SPEC.json's text (NaN / Infinity tokens accepted in the parameters).
/// @returns the spec, or errc::malformed_file naming the source and the bad line or field
inline result<model_spec> parse_model_spec(std::string_view text, std::string_view source) {
  auto const doc = parse_json_lenient(text, source);
  if (!doc) return doc.error();
  return model_spec_from_json(*doc, json_location(source));
}

/// Boost.JSON's non-throwing conversion (error code only; parse_model_spec gives the message).
inline boost::system::result<model_spec> tag_invoke(boost::json::try_value_to_tag<model_spec>,
                                                    boost::json::value const& jv) {
  auto s = model_spec_from_json(jv, json_location(""));
  if (!s) return boost::system::error_code(s.error().code);
  return std::move(*s);
}

}  // namespace proxytask::protocol
