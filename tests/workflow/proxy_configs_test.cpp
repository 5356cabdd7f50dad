#include <proxytask/core/atomic_file.hpp>
#include <proxytask/workflow/proxy_configs.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::testing::temp_dir;

std::vector<std::string> names(std::vector<wf::proxy_config> const& configs) {
  std::vector<std::string> out;
  for (auto const& c : configs) out.push_back(c.name);
  return out;
}

TEST(ProxyGrid, EnumeratesTheProductFirstKnobSlowest) {
  wf::proxy_grid const grid(
      {{"data_pct", {"25", "50", "75", "95"}}, {"model_scale", {"0.5", "1"}}});
  auto const configs = grid.configs().value();
  EXPECT_EQ(names(configs),
            (std::vector<std::string>{"data_pct=25,model_scale=0.5", "data_pct=25,model_scale=1",
                                      "data_pct=50,model_scale=0.5", "data_pct=50,model_scale=1",
                                      "data_pct=75,model_scale=0.5", "data_pct=75,model_scale=1",
                                      "data_pct=95,model_scale=0.5", "data_pct=95,model_scale=1"}));
  EXPECT_EQ(configs[3].args,
            (std::map<std::string, std::string>{{"data_pct", "50"}, {"model_scale", "1"}}));
}

TEST(ProxyGrid, HandlesOneKnobAndThreeKnobs) {
  EXPECT_EQ(names(wf::proxy_grid({{"steps", {"100", "200"}}}).configs().value()),
            (std::vector<std::string>{"steps=100", "steps=200"}));
  auto const three =
      wf::proxy_grid({{"a", {"1", "2"}}, {"b", {"x"}}, {"c", {"p", "q", "r"}}}).configs().value();
  ASSERT_EQ(three.size(), 6u);
  EXPECT_EQ(three.front().name, "a=1,b=x,c=p");
  EXPECT_EQ(three[2].name, "a=1,b=x,c=r");
  EXPECT_EQ(three[3].name, "a=2,b=x,c=p");
  EXPECT_EQ(three.back().name, "a=2,b=x,c=r");
}

TEST(ProxyGrid, RejectsBadKnobs) {
  auto const error_of = [](std::vector<wf::proxy_knob> knobs) {
    auto const r = wf::proxy_grid(std::move(knobs)).configs();
    EXPECT_FALSE(r);
    return r ? std::string() : r.error().context;
  };
  EXPECT_NE(error_of({}).find("no knobs"), std::string::npos);
  EXPECT_NE(error_of({{"a", {}}}).find("\"a\" has no values"), std::string::npos);
  EXPECT_NE(error_of({{"a", {"1"}}, {"a", {"2"}}}).find("repeated"), std::string::npos);
  EXPECT_NE(error_of({{"a", {"1", "1"}}}).find("twice"), std::string::npos);
  EXPECT_NE(error_of({{"", {"1"}}}).find("empty"), std::string::npos);
  EXPECT_NE(error_of({{"a=b", {"1"}}}).find("'='"), std::string::npos);
  EXPECT_NE(error_of({{"a,b", {"1"}}}).find("','"), std::string::npos);
  EXPECT_NE(error_of({{"seed", {"1"}}}).find("launch flag"), std::string::npos);
}

TEST(ProxyConfigFile, ReadsNamedArgumentMapsInOrder) {
  temp_dir dir;
  auto const path = dir.path() / "proxies.json";
  ASSERT_TRUE(pt::write_file_atomically(path, R"({"proxies": [
    {"name": "quarter", "args": {"data_pct": 25, "model_scale": "0.5", "lr": 0.001}},
    {"name": "full", "args": {}},
    {"name": "big", "args": {"steps": 1e3, "model_scale": 2.5, "n": -3}}]})"));
  auto const configs = wf::proxy_config_file::load(path).value().configs().value();
  ASSERT_EQ(configs.size(), 3u);
  EXPECT_EQ(names(configs), (std::vector<std::string>{"quarter", "full", "big"}));
  EXPECT_EQ(configs[0].args, (std::map<std::string, std::string>{
                                 {"data_pct", "25"}, {"model_scale", "0.5"}, {"lr", "0.001"}}));
  EXPECT_TRUE(configs[1].args.empty());
  EXPECT_EQ(configs[2].args, (std::map<std::string, std::string>{
                                 {"steps", "1000"}, {"model_scale", "2.5"}, {"n", "-3"}}));
}

void expect_error(std::string const& text, std::string const& where) {
  temp_dir dir;
  auto const path = dir.path() / "p.json";
  ASSERT_TRUE(pt::write_file_atomically(path, text));
  auto const file = wf::proxy_config_file::load(path);
  ASSERT_FALSE(file) << text;
  EXPECT_EQ(file.error().code, pt::errc::malformed_file);
  EXPECT_NE(file.error().context.find(path.string() + "#" + where), std::string::npos)
      << file.error().context;
}

TEST(ProxyConfigFile, NamesTheFileAndPointerOfEachError) {
  expect_error(R"([])", ": expected an object");
  expect_error(R"({})", "/proxies: missing");
  expect_error(R"({"proxies": []})", "/proxies: no proxies");
  expect_error(R"({"proxies": [{"args": {}}]})", "/proxies/0/name: missing");
  expect_error(R"({"proxies": [{"name": "", "args": {}}]})", "/proxies/0/name: the name must");
  expect_error(R"({"proxies": [{"name": "a"}]})", "/proxies/0/args: missing");
  expect_error(R"({"proxies": [{"name": "a", "args": {}}, {"name": "a", "args": {}}]})",
               "/proxies/1/name: duplicate name \"a\" (also at /proxies/0/name)");
  expect_error(R"({"proxies": [{"name": "a", "args": {"k": true}}]})",
               "/proxies/0/args/k: expected a string or a finite number");
  expect_error(R"({"proxies": [{"name": "a", "args": {"k": [1]}}]})",
               "/proxies/0/args/k: expected a string");
  expect_error(R"({"proxies": [{"name": "a", "args": {"model_dir": "x"}}]})",
               "/proxies/0/args/model_dir: \"model_dir\" is a launch flag");
  expect_error(R"({"proxies": [{"name": "a", "args": {"a/b=c": "x"}}]})",
               "/proxies/0/args/a~1b=c: argument name");
  temp_dir dir;
  ASSERT_TRUE(pt::write_file_atomically(dir.path() / "broken.json", "{\"proxies\": ["));
  auto const broken = wf::proxy_config_file::load(dir.path() / "broken.json");
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().context.find("broken.json: line 1"), std::string::npos);
}

TEST(ProxyConfigFile, TheMnasNetStyleExampleIsAGridOfTheReferenceTrainersKnobs) {
  // examples/proxies/mnasnet_style.json: data %, model width and image size, the kinds of knob
  // MnasNet's proxy used (less data, fewer epochs, smaller images), cheapest-looking first.
  auto const file = wf::proxy_config_file::load(std::filesystem::path(PROXYTASK_TEST_DATA_DIR) /
                                                "../../examples/proxies/mnasnet_style.json");
  ASSERT_TRUE(file) << file.error().message();
  auto const configs = file->configs().value();
  ASSERT_EQ(configs.size(), 8u);
  std::set<std::map<std::string, std::string>> distinct;
  for (auto const& c : configs) {
    EXPECT_EQ(c.args.size(), 3u) << c.name;
    EXPECT_TRUE(c.args.contains("data_pct") && c.args.contains("model_scale") &&
                c.args.contains("downsample"))
        << c.name;
    distinct.insert(c.args);
  }
  EXPECT_EQ(distinct.size(), 8u) << "the 2 x 2 x 2 grid";
  EXPECT_EQ(configs.front().args.at("model_scale"), "0.5");
}

}  // namespace
