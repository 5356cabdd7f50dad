// Checkpoints: a round trip keeps every array, resuming gives the same bits as never stopping,
// and corrupt, truncated, foreign and mismatched files give errors that name the file.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/trainer/checkpoint.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <support/temp_dir.hpp>
#include <trainer/synthetic_data.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;
using tr::activation;
using optimizer = tr::training_config::optimizer;

bool same_bits(std::span<float const> a, std::span<float const> b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

void expect_same_trainer(tr::mlp_trainer const& a, tr::mlp_trainer const& b) {
  EXPECT_EQ(a.step(), b.step());
  EXPECT_TRUE(same_bits(a.parameters(), b.parameters()));
  EXPECT_TRUE(same_bits(a.state().moment1, b.state().moment1));
  EXPECT_TRUE(same_bits(a.state().moment2, b.state().moment2));
  EXPECT_TRUE(same_bits(a.state().ema, b.state().ema));
}

tr::mlp_spec const spec{.hidden = {24, 12}, .act = activation::gelu, .dropout = 0.2};
tr::training_config const adam_config{.batch_size = 16,
                                      .total_steps = 40,
                                      .learning_rate = 5e-3,
                                      .weight_decay = 1e-3,
                                      .clip_norm = 1.0,
                                      .ema_decay = 0.95,
                                      .warmup_fraction = 0.1,
                                      .seed = 99};

void write_string(std::filesystem::path const& p, std::string const& s) {
  pt::write_file_atomically(p, s).value();
}

TEST(TrainerCheckpoint, RoundTripKeepsEveryArrayAndTheShape) {
  tr::set_blas_threads(1);
  pt::testing::temp_dir dir;
  auto const data = pt::testing::make_synthetic(64, 10, 10, 3);
  tr::mlp_trainer t(spec, 10, adam_config);
  pt::testing::train_for(t, data, 16, 7);
  auto const path = dir.path() / "model.ckpt";
  ASSERT_TRUE(tr::save_checkpoint(path, t));

  auto const c = tr::load_checkpoint(path);
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->spec, spec);
  EXPECT_EQ(c->features, 10u);
  EXPECT_EQ(c->classes, 10u);
  EXPECT_EQ(c->opt, optimizer::adam);
  EXPECT_EQ(c->config_hash, tr::config_hash(adam_config));
  EXPECT_EQ(c->state.step, 7);
  EXPECT_TRUE(same_bits(c->parameters, t.parameters()));
  EXPECT_TRUE(same_bits(c->state.moment1, t.state().moment1));
  EXPECT_TRUE(same_bits(c->state.moment2, t.state().moment2));
  EXPECT_TRUE(same_bits(c->state.ema, t.state().ema));

  auto const resumed = tr::resume_trainer(path, spec, 10, adam_config);
  ASSERT_TRUE(resumed) << resumed.error().message();
  expect_same_trainer(*resumed, t);
}

TEST(TrainerCheckpoint, ResumeEqualsUninterruptedTrainingBitwise) {
  tr::set_blas_threads(1);
  pt::testing::temp_dir dir;
  auto const data = pt::testing::make_synthetic(80, 10, 10, 4);
  tr::training_config sgd_config = adam_config;
  sgd_config.opt = optimizer::sgd_momentum;
  sgd_config.learning_rate = 0.05;
  sgd_config.ema_decay = 0.0;
  for (auto const& config : {adam_config, sgd_config}) {
    tr::mlp_trainer uninterrupted(spec, 10, config);
    pt::testing::train_for(uninterrupted, data, 16, 40);

    auto const path = dir.path() / "resume.ckpt";
    {
      tr::mlp_trainer first(spec, 10, config);
      pt::testing::train_for(first, data, 16, 17);
      ASSERT_TRUE(tr::save_checkpoint(path, first));
      pt::testing::train_for(first, data, 16, 5);  // killed later; the checkpoint is at 17
    }
    auto resumed = tr::resume_trainer(path, spec, 10, config);
    ASSERT_TRUE(resumed) << resumed.error().message();
    EXPECT_EQ(resumed->step(), 17);
    pt::testing::train_for(*resumed, data, 16, 40 - 17);
    expect_same_trainer(*resumed, uninterrupted);
    EXPECT_EQ(resumed->evaluate(data), uninterrupted.evaluate(data));
  }
}

TEST(TrainerCheckpoint, ContinuingWithALongerScheduleIsAllowed) {
  tr::set_blas_threads(1);
  pt::testing::temp_dir dir;
  tr::mlp_trainer t(spec, 10, adam_config);
  auto const path = dir.path() / "m.ckpt";
  ASSERT_TRUE(tr::save_checkpoint(path, t));
  tr::training_config longer = adam_config;
  longer.total_steps = 400;
  auto const resumed = tr::resume_trainer(path, spec, 10, longer);
  ASSERT_TRUE(resumed) << resumed.error().message();
  EXPECT_EQ(resumed->config().total_steps, 400);
}

class TrainerCheckpointFile : public ::testing::Test {
 protected:
  void SetUp() override {
    tr::set_blas_threads(1);
    tr::mlp_trainer t(spec, 10, adam_config);
    auto const data = pt::testing::make_synthetic(32, 10, 10, 5);
    pt::testing::train_for(t, data, 16, 2);
    good_ = tr::checkpoint_bytes(t);
    path_ = dir_.path() / "bad.ckpt";
  }

  // Loads `bytes` from a file and expects errc::malformed_file naming it and saying `what`.
  void expect_malformed(std::string const& bytes, std::string const& what) {
    write_string(path_, bytes);
    auto const c = tr::load_checkpoint(path_);
    ASSERT_FALSE(c) << what;
    EXPECT_EQ(c.error().code, pt::errc::malformed_file) << c.error().message();
    EXPECT_NE(c.error().message().find(path_.string()), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find(what), std::string::npos) << c.error().message();
  }

  // Re-seals bytes whose body was edited (a well-formed file with the edited content).
  static std::string reseal(std::string bytes) {
    bytes.resize(bytes.size() - 8);
    std::uint64_t h = tr::detail::fnv1a(bytes);
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((h >> (8 * i)) & 0xff));
    return bytes;
  }

  pt::testing::temp_dir dir_;
  std::filesystem::path path_;
  std::string good_;
};

TEST_F(TrainerCheckpointFile, FlippedByteIsReportedAsCorrupt) {
  for (std::size_t at : {std::size_t{40}, good_.size() / 2, good_.size() - 9, good_.size() - 1}) {
    std::string bad = good_;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    expect_malformed(bad, "checksum mismatch");
  }
}

TEST_F(TrainerCheckpointFile, TruncatedFilesAreErrorsAtEveryLength) {
  for (std::size_t n : {std::size_t{0}, std::size_t{5}, std::size_t{8}, std::size_t{15},
                        std::size_t{30}, good_.size() / 2, good_.size() - 1}) {
    write_string(path_, good_.substr(0, n));
    auto const c = tr::load_checkpoint(path_);
    ASSERT_FALSE(c) << "length " << n;
    EXPECT_EQ(c.error().code, pt::errc::malformed_file) << c.error().message();
    EXPECT_NE(c.error().message().find(path_.string()), std::string::npos);
  }
}

TEST_F(TrainerCheckpointFile, ForeignFileAndOtherVersionAreNamed) {
  expect_malformed("{\"not\": \"a checkpoint\"}", "bad magic");
  std::string other = good_;
  other[8] = 2;  // version 2
  expect_malformed(other, "version 2");
}

TEST_F(TrainerCheckpointFile, ArraysThatDoNotMatchTheShapeAreMalformed) {
  // Layout after the version: u64 features (12), u64 classes (20), u32 depth (28), widths (32..)
  std::string wider = good_;
  wider[32] = 25;  // the first hidden width 24 -> 25: the parameter count no longer matches
  expect_malformed(reseal(wider), "parameters hold");
  std::string no_layers = good_;
  no_layers[28] = 0;
  expect_malformed(reseal(no_layers), "impossible shape");
  std::string extra = good_;
  extra.insert(extra.size() - 8, "xyzw");
  expect_malformed(reseal(extra), "bytes after the last array");
}

TEST_F(TrainerCheckpointFile, ResumeRejectsAnotherModelOrConfigNamingTheFile) {
  write_string(path_, good_);
  auto check = [&](tr::mlp_spec const& s, std::size_t features, tr::training_config const& c,
                   std::string const& what) {
    auto const r = tr::resume_trainer(path_, s, features, c);
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code, pt::errc::invalid_argument) << r.error().message();
    EXPECT_NE(r.error().message().find(path_.string()), std::string::npos);
    EXPECT_NE(r.error().message().find(what), std::string::npos) << r.error().message();
  };
  tr::mlp_spec other = spec;
  other.hidden = {24, 13};
  check(other, 10, adam_config, "expected 10-[24, 13]-10");
  check(spec, 11, adam_config, "expected 11-[24, 12]-10");
  other = spec;
  other.act = activation::relu;
  check(other, 10, adam_config, "activation or dropout");
  tr::training_config c = adam_config;
  c.seed = 100;
  check(spec, 10, c, "another config");
  c = adam_config;
  c.opt = optimizer::sgd_momentum;
  check(spec, 10, c, "another config");

  auto const missing = tr::resume_trainer(dir_.path() / "none.ckpt", spec, 10, adam_config);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, pt::errc::not_found);
  EXPECT_NE(missing.error().message().find("none.ckpt"), std::string::npos);
}

}  // namespace
