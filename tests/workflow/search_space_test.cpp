#include <proxytask/core/atomic_file.hpp>
#include <proxytask/workflow/search_space.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

namespace {

namespace pt = proxytask;
namespace wf = proxytask::workflow;
using pt::testing::temp_dir;

std::filesystem::path write(temp_dir const& dir, std::string const& name, std::string const& text) {
  auto const path = dir.path() / name;
  pt::write_file_atomically(path, text).value();
  return path;
}

std::string const five_candidates = R"({"candidates": [
  {"model_id": "m0", "parameters": {"width": 8}},
  {"model_id": "m1", "parameters": {"width": 16}},
  {"model_id": "m2", "parameters": {"width": 32}},
  {"model_id": "m3", "parameters": {"width": 64, "dropout": NaN}},
  {"model_id": "m4", "parameters": {"width": 128}}]})";

TEST(CandidateFileSpace, SamplesTheSameCandidateForASeed) {
  temp_dir dir;
  auto const space = wf::candidate_file_space::load(write(dir, "c.json", five_candidates)).value();
  ASSERT_EQ(space.candidates().size(), 5u);
  auto const again = wf::candidate_file_space::load(dir.path() / "c.json").value();
  for (std::uint64_t seed : {0ull, 1ull, 42ull, 1ull << 40, ~0ull}) {
    auto const a = space.sample(seed).value();
    EXPECT_EQ(a.model_id, space.sample(seed).value().model_id) << seed;
    EXPECT_EQ(a.model_id, again.sample(seed).value().model_id) << seed;
  }
  // The documented rule, pinned: a change of it changes which models a run trains.
  EXPECT_EQ(space.sample(0).value().model_id,
            "m" + std::to_string(wf::detail::candidate_index(0, 5)));
}

TEST(CandidateFileSpace, SpreadsSeedsOverTheCandidates) {
  temp_dir dir;
  auto const space = wf::candidate_file_space::load(write(dir, "c.json", five_candidates)).value();
  std::map<std::string, int> counts;
  for (std::uint64_t seed = 0; seed < 2000; ++seed) ++counts[space.sample(seed).value().model_id];
  ASSERT_EQ(counts.size(), 5u);
  for (auto const& [id, n] : counts) {  // 400 expected each; 5 sigma is about 90
    EXPECT_GT(n, 300) << id;
    EXPECT_LT(n, 500) << id;
  }
}

TEST(CandidateFileSpace, AcceptsAPlainArrayAndKeepsTheParameters) {
  auto const doc = pt::parse_json(
      R"([{"model_id": "only", "parameters": {"hidden": [4, 2], "activation": "relu"}}])", "x");
  auto const space = wf::candidate_file_space::from_json(doc.value(), "inline").value();
  auto const spec = space.sample(123).value();
  EXPECT_EQ(spec.model_id, "only");
  EXPECT_EQ(spec.parameters.at("activation").as_string(), "relu");
}

void expect_error(std::string const& text, std::string const& pointer) {
  temp_dir dir;
  auto const path = write(dir, "bad.json", text);
  auto const space = wf::candidate_file_space::load(path);
  ASSERT_FALSE(space) << text;
  EXPECT_EQ(space.error().code, pt::errc::malformed_file) << text;
  EXPECT_NE(space.error().context.find(path.string() + "#" + pointer), std::string::npos)
      << space.error().context;
}

TEST(CandidateFileSpace, NamesTheFileAndPointerOfEachError) {
  expect_error(R"({"candidates": []})", "/candidates: no candidates");
  expect_error(R"([])", ": no candidates");
  expect_error(R"({"models": []})", "/candidates: missing");
  expect_error(R"(42)", ": expected an array");
  expect_error(R"({"candidates": [{"model_id": "a", "parameters": {}}, {"parameters": {}}]})",
               "/candidates/1/model_id: missing");
  expect_error(R"([{"model_id": "a", "parameters": []}])", "/0/parameters: expected an object");
  expect_error(R"([{"model_id": "a", "parameters": {}}, {"model_id": "b", "parameters": {}},
                   {"model_id": "a", "parameters": {}}])",
               "/2/model_id: duplicate model_id \"a\" (also at /0)");
  temp_dir dir;
  auto const broken = wf::candidate_file_space::load(write(dir, "broken.json", "[{"));
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().context.find("broken.json: line 1"), std::string::npos)
      << broken.error().context;
  EXPECT_EQ(wf::candidate_file_space::load(dir.path() / "missing.json").error().code,
            pt::errc::not_found);
}

wf::command_space sh(std::string const& script, double timeout_s = 30) {
  return wf::command_space({"/bin/sh", "-c", script, "space"}, {.timeout_s = timeout_s});
}

TEST(CommandSpace, ReadsTheSpecTheCommandPrintsForTheSeed) {
  // The seed arrives as the last argument, --seed=N.
  auto const space =
      sh(R"(s=${1#--seed=}; printf '{"model_id": "m%s", "parameters": {"w": %s}}' "$s" "$s")");
  auto const spec = space.sample(17).value();
  EXPECT_EQ(spec.model_id, "m17");
  EXPECT_EQ(spec.parameters.at("w").as_int64(), 17);
  EXPECT_EQ(space.sample(3).value().model_id, "m3");
}

TEST(CommandSpace, CachesEachSeedsSpec) {
  temp_dir dir;
  auto const counter = dir.path() / "runs.txt";
  auto const space =
      sh("echo run >> '" + counter.string() + R"('; printf '{"model_id": "m", "parameters": {}}')");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(space.sample(5).value().model_id, "m");
  EXPECT_EQ(pt::read_file(counter).value(), "run\n");
  EXPECT_TRUE(space.sample(6));
  EXPECT_EQ(pt::read_file(counter).value(), "run\nrun\n");
  std::vector<std::uint64_t> const seeds{5, 6, 7, 5};
  auto const all = wf::presample(space, seeds).value();
  EXPECT_EQ(all.size(), 3u);
  EXPECT_EQ(pt::read_file(counter).value(), "run\nrun\nrun\n");
}

TEST(CommandSpace, ANonZeroExitNamesTheCommandTheSeedAndItsStderr) {
  auto const space = sh("echo 'no such model' >&2; exit 3");
  auto const spec = space.sample(9);
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code, pt::errc::invalid_argument);
  auto const& msg = spec.error().context;
  EXPECT_NE(msg.find("/bin/sh -c"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--seed=9"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(seed 9)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exited with status 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stderr: no such model"), std::string::npos) << msg;
}

TEST(CommandSpace, BadJsonIsAMalformedFileNamingTheCommandAndSeed) {
  auto const space = sh("echo 'not json'");
  auto const spec = space.sample(4);
  ASSERT_FALSE(spec);
  EXPECT_EQ(spec.error().code, pt::errc::malformed_file);
  auto const& msg = spec.error().context;
  EXPECT_NE(msg.find("stdout of search-space command"), std::string::npos) << msg;
  EXPECT_NE(msg.find("(seed 4)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stdout: not json"), std::string::npos) << msg;

  auto const no_id = sh(R"(printf '{"parameters": {}}')").sample(4);
  ASSERT_FALSE(no_id);
  EXPECT_NE(no_id.error().context.find("#/model_id: missing"), std::string::npos)
      << no_id.error().context;
}

TEST(CommandSpace, ATimeoutKillsTheCommand) {
  auto const space = sh("echo starting >&2; exec sleep 30", 0.2);
  auto const started = std::chrono::steady_clock::now();
  auto const spec = space.sample(1);
  ASSERT_FALSE(spec);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  EXPECT_NE(spec.error().context.find("killed after running"), std::string::npos)
      << spec.error().context;
  EXPECT_NE(spec.error().context.find("stderr: starting"), std::string::npos)
      << spec.error().context;
}

TEST(CommandSpace, AMissingProgramIsAnErrorNamingIt) {
  wf::command_space const space({"/nonexistent/proxytask-space"});
  auto const spec = space.sample(1);
  ASSERT_FALSE(spec);
  EXPECT_NE(spec.error().context.find("/nonexistent/proxytask-space --seed=1"), std::string::npos)
      << spec.error().context;
}

TEST(Presample, StopsAtTheFirstError) {
  auto const space = sh(
      R"(if [ "$1" = --seed=2 ]; then exit 1; fi; printf '{"model_id": "m", "parameters": {}}')");
  std::vector<std::uint64_t> const seeds{1, 2, 3};
  auto const all = wf::presample(space, seeds);
  ASSERT_FALSE(all);
  EXPECT_NE(all.error().context.find("(seed 2)"), std::string::npos) << all.error().context;
}

}  // namespace
