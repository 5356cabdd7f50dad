#include <proxytask/protocol/model_spec.hpp>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cmath>
#include <string>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

TEST(ModelSpecJson, RoundTripsAnyParameters) {
  protocol::model_spec const spec{"mlp-3x256",
                                  {{"depth", 3},
                                   {"width", 256},
                                   {"activation", "relu"},
                                   {"lr", 0.05},
                                   {"blocks", boost::json::array{1, 2}},
                                   {"extra", nullptr}}};
  auto const v = boost::json::value_from(spec);
  EXPECT_EQ(v.as_object().size(), 2u);
  EXPECT_EQ(v.at("model_id").as_string(), "mlp-3x256");
  auto const back =
      protocol::parse_model_spec(boost::json::serialize(v), "MODEL_SPEC.json").value();
  EXPECT_EQ(back.model_id, spec.model_id);
  EXPECT_EQ(back.parameters, spec.parameters);
  auto const via_boost = boost::json::try_value_to<protocol::model_spec>(v);
  ASSERT_TRUE(via_boost);
  EXPECT_EQ(via_boost->parameters, spec.parameters);
}

TEST(ModelSpecJson, AcceptsPythonNonFiniteParameters) {
  auto const spec =
      protocol::parse_model_spec(R"({"model_id": "m", "parameters": {"dropout": NaN}})", "f")
          .value();
  EXPECT_TRUE(std::isnan(spec.parameters.at("dropout").as_double()));
}

TEST(ModelSpecJson, NamesFileAndPointerOfABadField) {
  auto const context = [](char const* text) {
    auto const r = protocol::parse_model_spec(text, "MODEL_SPEC.json");
    EXPECT_FALSE(r) << text;
    if (r) return std::string();
    EXPECT_EQ(r.error().code, pt::errc::malformed_file);
    return r.error().context;
  };
  EXPECT_EQ(context(R"({"parameters": {}})"), "MODEL_SPEC.json#/model_id: missing");
  EXPECT_EQ(context(R"({"model_id": 7, "parameters": {}})"),
            "MODEL_SPEC.json#/model_id: expected a string");
  EXPECT_EQ(context(R"({"model_id": "m", "parameters": [1]})"),
            "MODEL_SPEC.json#/parameters: expected an object");
  EXPECT_EQ(context(R"({"model_id": "m"})"), "MODEL_SPEC.json#/parameters: missing");
  EXPECT_EQ(context(R"({"model_id": "m", "parameters": {)"),
            "MODEL_SPEC.json: line 1, column 34: incomplete JSON");
}

}  // namespace
