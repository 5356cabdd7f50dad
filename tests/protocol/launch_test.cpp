#include <proxytask/protocol/launch.hpp>

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
namespace protocol = proxytask::protocol;

/// parse_launch over `args` (after a program name) with `env` as the whole environment.
pt::result<protocol::launch_arguments> parse(std::vector<std::string> const& args,
                                             std::map<std::string, std::string> const& env = {}) {
  std::vector<char const*> argv{"trainer"};
  for (auto const& a : args) argv.push_back(a.c_str());
  return protocol::parse_launch(static_cast<int>(argv.size()), argv.data(),
                                [&](std::string const& name) -> std::optional<std::string> {
                                  auto const it = env.find(name);
                                  if (it == env.end()) return std::nullopt;
                                  return it->second;
                                });
}

/// The context of the error that parsing must give (errc::invalid_argument).
std::string error_of(std::vector<std::string> const& args,
                     std::map<std::string, std::string> const& env = {}) {
  auto const r = parse(args, env);
  EXPECT_FALSE(r);
  if (r) return "";
  EXPECT_EQ(r.error().code, pt::errc::invalid_argument);
  return r.error().context;
}

TEST(ParseLaunch, ReadsTheFlagsAndKeepsProxyArgumentsAsStrings) {
  auto const a = parse({"--model_dir=/runs/t1", "--model_spec=/specs/m.json", "--seed=42",
                        "--resume_from=/runs/t0", "--data_pct=25", "--scale=0.5", "--note="})
                     .value();
  EXPECT_EQ(a.model_dir, "/runs/t1");
  EXPECT_EQ(a.model_spec, "/specs/m.json");
  EXPECT_EQ(a.seed, 42u);
  EXPECT_EQ(a.resume_from, std::filesystem::path("/runs/t0"));
  EXPECT_EQ(a.proxy_args,
            (decltype(a.proxy_args){{"data_pct", "25"}, {"scale", "0.5"}, {"note", ""}}));
}

TEST(ParseLaunch, DefaultsTheSpecAndSeed) {
  auto const a = parse({"--model_dir=runs/t1"}).value();
  EXPECT_EQ(a.model_spec, std::filesystem::path("runs/t1/MODEL_SPEC.json"));
  EXPECT_EQ(a.seed, 0u);
  EXPECT_FALSE(a.resume_from);
  EXPECT_TRUE(a.proxy_args.empty());
}

TEST(ParseLaunch, ReadsTheEnvironment) {
  auto const a = parse({}, {{"PROXYTASK_MODEL_DIR", "/e/dir"},
                            {"PROXYTASK_MODEL_SPEC", "/e/spec.json"},
                            {"PROXYTASK_SEED", "7"},
                            {"PROXYTASK_RESUME_FROM", "/e/prev"},
                            {"PROXYTASK_PROXY_ARGS", R"({"data_pct": "10", "steps": "500"})"}})
                     .value();
  EXPECT_EQ(a.model_dir, "/e/dir");
  EXPECT_EQ(a.model_spec, "/e/spec.json");
  EXPECT_EQ(a.seed, 7u);
  EXPECT_EQ(a.resume_from, std::filesystem::path("/e/prev"));
  EXPECT_EQ(a.proxy_args, (decltype(a.proxy_args){{"data_pct", "10"}, {"steps", "500"}}));
}

TEST(ParseLaunch, FlagsWinOverTheEnvironment) {
  auto const a = parse({"--model_dir=/f/dir", "--seed=3", "--data_pct=50"},
                       {{"PROXYTASK_MODEL_DIR", "/e/dir"},
                        {"PROXYTASK_SEED", "7"},
                        {"PROXYTASK_MODEL_SPEC", ""},  // empty counts as unset
                        {"PROXYTASK_PROXY_ARGS", R"({"data_pct": "10", "steps": "500"})"}})
                     .value();
  EXPECT_EQ(a.model_dir, "/f/dir");
  EXPECT_EQ(a.model_spec, std::filesystem::path("/f/dir/MODEL_SPEC.json"));
  EXPECT_EQ(a.seed, 3u);
  EXPECT_EQ(a.proxy_args, (decltype(a.proxy_args){{"data_pct", "50"}, {"steps", "500"}}));
}

TEST(ParseLaunch, NamesTheOffendingArgument) {
  EXPECT_EQ(error_of({}), "--model_dir (or PROXYTASK_MODEL_DIR) is required");
  EXPECT_EQ(error_of({"--model_dir="}), "--model_dir (or PROXYTASK_MODEL_DIR) is required");
  EXPECT_EQ(error_of({"--model_dir=d", "--verbose"}),
            "malformed argument '--verbose' (expected --name=value)");
  EXPECT_EQ(error_of({"--model_dir=d", "--=3"}),
            "malformed argument '--=3' (expected --name=value)");
  EXPECT_EQ(error_of({"--model_dir=d", "data_pct=3"}),
            "malformed argument 'data_pct=3' (expected --name=value)");
  EXPECT_EQ(error_of({"--model_dir=d", "--seed=-1"}), "--seed=-1: expected a non-negative integer");
  EXPECT_EQ(error_of({"--model_dir=d", "--seed=1x"}), "--seed=1x: expected a non-negative integer");
  EXPECT_EQ(error_of({"--model_dir=d"}, {{"PROXYTASK_SEED", "seven"}}),
            "PROXYTASK_SEED=seven: expected a non-negative integer");
  EXPECT_EQ(error_of({"--model_dir=d", "--model_dir=e"}), "--model_dir given twice");
  EXPECT_EQ(error_of({"--model_dir=d", "--lr=1", "--lr=2"}), "--lr given twice");
  EXPECT_EQ(error_of({"--model_dir=d"}, {{"PROXYTASK_PROXY_ARGS", R"({"lr": 0.1})"}}),
            "PROXYTASK_PROXY_ARGS#/lr: expected a string");
  EXPECT_EQ(error_of({"--model_dir=d"}, {{"PROXYTASK_PROXY_ARGS", "[]"}}),
            "PROXYTASK_PROXY_ARGS#: expected an object");
  EXPECT_EQ(error_of({"--model_dir=d"}, {{"PROXYTASK_PROXY_ARGS", "{"}}),
            "PROXYTASK_PROXY_ARGS: line 1, column 2: incomplete JSON");
}

TEST(MakeLaunchCommand, BuildsTheConventionalArgvAndEnvironment) {
  protocol::launch_arguments args;
  args.model_dir = "/runs/t1";
  args.seed = 5;
  args.resume_from = "/runs/t0";
  args.proxy_args = {{"data_pct", "25"}, {"scale", "0.5"}};
  std::vector<std::string> const trainer{"python3", "train.py"};
  auto const cmd = protocol::make_launch_command(trainer, args).value();
  EXPECT_EQ(cmd.argv,
            (std::vector<std::string>{"python3", "train.py", "--model_dir=/runs/t1",
                                      "--model_spec=/runs/t1/MODEL_SPEC.json", "--seed=5",
                                      "--resume_from=/runs/t0", "--data_pct=25", "--scale=0.5"}));
  EXPECT_EQ(cmd.environment, (std::map<std::string, std::string>{
                                 {"PROXYTASK_MODEL_DIR", "/runs/t1"},
                                 {"PROXYTASK_MODEL_SPEC", "/runs/t1/MODEL_SPEC.json"},
                                 {"PROXYTASK_SEED", "5"},
                                 {"PROXYTASK_RESUME_FROM", "/runs/t0"},
                                 {"PROXYTASK_PROXY_ARGS", R"({"data_pct":"25","scale":"0.5"})"}}));
}

TEST(MakeLaunchCommand, IsParsedBackToTheSameArguments) {
  protocol::launch_arguments args;
  args.model_dir = "runs/a b";  // a space survives: argv is not a shell line
  args.model_spec = "specs/m.json";
  args.seed = 18446744073709551615u;
  args.proxy_args = {{"lr", "1e-3"}, {"tags", "a=b,c"}};
  std::vector<std::string> const trainer{"./trainer"};
  auto const cmd = protocol::make_launch_command(trainer, args).value();
  std::vector<std::string> const flags(cmd.argv.begin() + 1, cmd.argv.end());
  EXPECT_EQ(parse(flags).value(), args);                // from the command line alone
  EXPECT_EQ(parse({}, cmd.environment).value(), args);  // from the environment alone
}

TEST(MakeLaunchCommand, RefusesNamesThatCannotRoundTrip) {
  protocol::launch_arguments args;
  args.model_dir = "d";
  std::vector<std::string> const trainer{"t"};
  for (char const* name : {"", "a=b", "seed", "model_dir"}) {
    args.proxy_args = {{name, "1"}};
    auto const r = protocol::make_launch_command(trainer, args);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().code, pt::errc::invalid_argument);
  }
  args.proxy_args.clear();
  EXPECT_FALSE(protocol::make_launch_command({}, args));
  args.model_dir.clear();
  EXPECT_FALSE(protocol::make_launch_command(trainer, args));
}

TEST(ParseNumber, TakesOnlyAWholeNumber) {
  EXPECT_EQ(protocol::parse_number<std::int64_t>("42"), 42);
  EXPECT_EQ(protocol::parse_number<double>("2e-3"), 2e-3);
  EXPECT_FALSE(protocol::parse_number<std::int64_t>("42x"));
  EXPECT_FALSE(protocol::parse_number<std::int64_t>("4.2"));
  EXPECT_FALSE(protocol::parse_number<double>(""));
  EXPECT_FALSE(protocol::parse_number<double>(" 1"));
  EXPECT_FALSE(protocol::parse_number<std::uint64_t>("-1"));
}

}  // namespace
