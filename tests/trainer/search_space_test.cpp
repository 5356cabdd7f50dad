// The reference trainer's search space: sampling from a seed, the model-scale knob, model ids and
// the JSON form stored as MODEL_SPEC.json's "parameters".

#include <proxytask/trainer/search_space.hpp>

#include <proxytask/core/json.hpp>
#include <proxytask/protocol/model_spec.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

namespace pt = proxytask;
namespace tr = proxytask::trainer;

namespace {

tr::mlp_spec spec(std::vector<std::size_t> hidden, tr::activation act, double dropout) {
  tr::mlp_spec s;
  s.hidden = std::move(hidden);
  s.act = act;
  s.dropout = dropout;
  return s;
}

// Parses `text` as MODEL_SPEC.json's parameters and returns the error's context.
std::string parse_error(std::string const& text) {
  auto const doc = pt::parse_json(text, "MODEL_SPEC.json");
  if (!doc) return "not JSON: " + doc.error().message();
  auto const s = tr::mlp_spec_from_json(*doc, pt::json_location("MODEL_SPEC.json") / "parameters");
  if (s) return "parsed";
  EXPECT_EQ(s.error().code, pt::errc::malformed_file);
  return s.error().context;
}

}  // namespace

TEST(Activation, RoundTripsThroughItsName) {
  for (tr::activation const a : tr::all_activations)
    EXPECT_EQ(tr::parse_activation(tr::to_string(a)), a);
  EXPECT_EQ(tr::to_string(tr::activation::gelu), "gelu");
  EXPECT_EQ(tr::parse_activation("ReLU"), std::nullopt);
  EXPECT_EQ(tr::parse_activation(""), std::nullopt);
}

TEST(SampleMlp, IsDeterministicForASeed) {
  for (std::uint64_t seed = 0; seed < 50; ++seed)
    EXPECT_EQ(tr::sample_mlp(seed), tr::sample_mlp(seed));
}

TEST(SampleMlp, IsPinnedAcrossPlatforms) {
  // SplitMix64 only: these specs are the same everywhere. Recorded once.
  EXPECT_EQ(tr::sample_mlp(0), spec({64, 1024, 1024, 256}, tr::activation::relu, 0.1));
  EXPECT_EQ(tr::sample_mlp(1), spec({1024, 64}, tr::activation::gelu, 0.1));
  EXPECT_EQ(tr::sample_mlp(2), spec({128, 128, 128}, tr::activation::tanh, 0.3));
  EXPECT_EQ(tr::sample_mlp(12345), spec({256}, tr::activation::relu, 0.2));
}

TEST(SampleMlp, StaysInTheSearchSpaceAndCoversIt) {
  std::set<std::size_t> depths, widths;
  std::set<tr::activation> acts;
  std::set<double> dropouts;
  std::set<std::string> ids;
  for (std::uint64_t seed = 0; seed < 1000; ++seed) {
    auto const s = tr::sample_mlp(seed);
    ASSERT_GE(s.hidden.size(), 1u);
    ASSERT_LE(s.hidden.size(), 4u);
    depths.insert(s.hidden.size());
    for (std::size_t const w : s.hidden) {
      EXPECT_NE(std::find(tr::sampled_widths.begin(), tr::sampled_widths.end(), w),
                tr::sampled_widths.end())
          << w;
      widths.insert(w);
    }
    EXPECT_NE(std::find(tr::sampled_dropouts.begin(), tr::sampled_dropouts.end(), s.dropout),
              tr::sampled_dropouts.end())
        << s.dropout;
    acts.insert(s.act);
    dropouts.insert(s.dropout);
    ids.insert(tr::mlp_model_id(s));
  }
  EXPECT_EQ(depths, (std::set<std::size_t>{1, 2, 3, 4}));
  EXPECT_EQ(widths, (std::set<std::size_t>{64, 128, 256, 512, 1024}));
  EXPECT_EQ(acts.size(), 3u);
  EXPECT_EQ(dropouts, (std::set<double>{0.0, 0.1, 0.2, 0.3}));
  EXPECT_GT(ids.size(), 600u);  // 9,360 models; depth 1 has only 60, depth 2 300
}

TEST(ScaleWidths, MultipliesRoundsAndKeepsAtLeastEight) {
  auto const s = spec({256, 64, 50, 10}, tr::activation::tanh, 0.2);
  auto const half = tr::scale_widths(s, 0.5);
  EXPECT_EQ(half.hidden, (std::vector<std::size_t>{128, 32, 25, 8}));
  EXPECT_EQ(half.act, tr::activation::tanh);
  EXPECT_EQ(half.dropout, 0.2);
  EXPECT_EQ(tr::scale_widths(s, 0.75).hidden, (std::vector<std::size_t>{192, 48, 38, 8}));
  EXPECT_EQ(tr::scale_widths(s, 0.01).hidden, (std::vector<std::size_t>{8, 8, 8, 8}));
  EXPECT_EQ(tr::scale_widths(s, 2).hidden, (std::vector<std::size_t>{512, 128, 100, 20}));
  EXPECT_EQ(tr::scale_widths(s, 1), s);
  EXPECT_EQ(tr::scale_widths(s, 1e9).hidden[0], tr::max_hidden_width);
}

TEST(ScaleWidths, RejectsScalesThatAreNotPositive) {
  auto const s = spec({256}, tr::activation::relu, 0);
  EXPECT_THROW(tr::scale_widths(s, 0), pt::logic_error);
  EXPECT_THROW(tr::scale_widths(s, -1), pt::logic_error);
  EXPECT_THROW(tr::scale_widths(s, std::nan("")), pt::logic_error);
  EXPECT_THROW(tr::scale_widths(s, std::numeric_limits<double>::infinity()), pt::logic_error);
}

TEST(MlpModelId, NamesWidthsActivationAndDropout) {
  EXPECT_EQ(tr::mlp_model_id(spec({256, 128}, tr::activation::relu, 0.1)), "mlp-256-128-relu-d0.1");
  EXPECT_EQ(tr::mlp_model_id(spec({64}, tr::activation::gelu, 0)), "mlp-64-gelu-d0");
  EXPECT_EQ(tr::mlp_model_id(spec({1024, 8, 8, 512}, tr::activation::tanh, 0.25)),
            "mlp-1024-8-8-512-tanh-d0.25");
}

TEST(MlpSpecJson, WritesTheDocumentedFields) {
  auto const jv = boost::json::value_from(spec({256, 128}, tr::activation::gelu, 0.1));
  auto const& o = jv.as_object();
  EXPECT_EQ(o.size(), 3u);
  EXPECT_EQ(boost::json::value_to<std::vector<std::size_t>>(o.at("hidden")),
            (std::vector<std::size_t>{256, 128}));
  EXPECT_EQ(o.at("activation").as_string(), "gelu");
  EXPECT_EQ(o.at("dropout").as_double(), 0.1);
}

TEST(MlpSpecJson, RoundTripsEverySampledSpec) {
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    auto const s = tr::scale_widths(tr::sample_mlp(seed), 0.3);
    auto const text = boost::json::serialize(boost::json::value_from(s));
    auto const doc = pt::parse_json(text, "x.json");
    ASSERT_TRUE(doc) << doc.error().message();
    auto const back = tr::mlp_spec_from_json(*doc, pt::json_location("x.json"));
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(*back, s) << text;
    EXPECT_EQ(boost::json::value_to<tr::mlp_spec>(*doc), s);
  }
}

TEST(MlpSpecJson, AcceptsIntegralDoublesAndIgnoresUnknownMembers) {
  auto const doc = pt::parse_json(
      R"({"hidden": [128.0, 64], "activation": "tanh", "dropout": 0, "note": "x"})", "s.json");
  ASSERT_TRUE(doc);
  auto const s = tr::mlp_spec_from_json(*doc, pt::json_location("s.json"));
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(*s, spec({128, 64}, tr::activation::tanh, 0));
}

TEST(MlpSpecJson, ErrorsNameTheFileAndPointer) {
  std::string const act = R"("activation": "relu")";
  std::string const drop = R"("dropout": 0.1)";
  EXPECT_EQ(parse_error(R"({"hidden": [64, 32, 0], )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden/2: expected an integer >= 1");
  EXPECT_EQ(parse_error(R"({"hidden": [64, -3], )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden/1: expected an integer >= 1");
  EXPECT_EQ(parse_error(R"({"hidden": [2.5], )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden/0: expected an integer >= 1");
  EXPECT_EQ(parse_error(R"({"hidden": ["64"], )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden/0: expected an integer >= 1");
  EXPECT_EQ(
      parse_error(R"({"hidden": [100000], )" + act + ", " + drop + "}"),
      "MODEL_SPEC.json#/parameters/hidden/0: expected a width of at most 65536, found 100000");
  EXPECT_EQ(parse_error(R"({"hidden": [], )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden: expected 1 to 4 hidden layer widths, found 0");
  EXPECT_EQ(parse_error(R"({"hidden": [8, 8, 8, 8, 8], )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden: expected 1 to 4 hidden layer widths, found 5");
  EXPECT_EQ(parse_error(R"({"hidden": 64, )" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden: expected an array");
  EXPECT_EQ(parse_error("{" + act + ", " + drop + "}"),
            "MODEL_SPEC.json#/parameters/hidden: missing");
  EXPECT_EQ(parse_error(R"({"hidden": [64], "activation": "swish", )" + drop + "}"),
            "MODEL_SPEC.json#/parameters/activation: unknown activation \"swish\" (expected one "
            "of relu, tanh, gelu)");
  EXPECT_EQ(parse_error(R"({"hidden": [64], "activation": 1, )" + drop + "}"),
            "MODEL_SPEC.json#/parameters/activation: expected a string");
  EXPECT_EQ(parse_error(R"({"hidden": [64], )" + drop + "}"),
            "MODEL_SPEC.json#/parameters/activation: missing");
  EXPECT_EQ(parse_error(R"({"hidden": [64], )" + act + R"(, "dropout": 0.7})"),
            "MODEL_SPEC.json#/parameters/dropout: expected a number in [0, 0.5]");
  EXPECT_EQ(parse_error(R"({"hidden": [64], )" + act + R"(, "dropout": -0.1})"),
            "MODEL_SPEC.json#/parameters/dropout: expected a number in [0, 0.5]");
  EXPECT_EQ(parse_error(R"({"hidden": [64], )" + act + R"(, "dropout": "0.1"})"),
            "MODEL_SPEC.json#/parameters/dropout: expected a number");
  EXPECT_EQ(parse_error(R"({"hidden": [64], )" + act + "}"),
            "MODEL_SPEC.json#/parameters/dropout: missing");
  EXPECT_EQ(parse_error("[1, 2]"), "MODEL_SPEC.json#/parameters: expected an object");
}

TEST(MlpSpecJson, NonThrowingConversionReportsMalformed) {
  auto const r = boost::json::try_value_to<tr::mlp_spec>(boost::json::value{{"hidden", 3}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), pt::make_error_code(pt::errc::malformed_file));
}

TEST(MlpSpecJson, TravelsAsModelSpecParameters) {
  auto const s = spec({512, 256, 64}, tr::activation::gelu, 0.3);
  auto const ms = tr::to_model_spec(s);
  EXPECT_EQ(ms.model_id, "mlp-512-256-64-gelu-d0.3");
  auto const text = boost::json::serialize(boost::json::value_from(ms));
  auto const parsed = pt::protocol::parse_model_spec(text, "MODEL_SPEC.json");
  ASSERT_TRUE(parsed) << parsed.error().message();
  auto const back = tr::mlp_spec_from_model_spec(*parsed, "MODEL_SPEC.json");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, s);

  auto const bad = pt::protocol::parse_model_spec(
      R"({"model_id": "m", "parameters": {"hidden": [64, 0], "activation": "relu", "dropout": 0}})",
      "runs/t1/MODEL_SPEC.json");
  ASSERT_TRUE(bad);
  auto const err = tr::mlp_spec_from_model_spec(*bad, "runs/t1/MODEL_SPEC.json");
  ASSERT_FALSE(err);
  EXPECT_EQ(
      err.error().message(),
      "malformed file: runs/t1/MODEL_SPEC.json#/parameters/hidden/1: expected an integer >= 1");
}
