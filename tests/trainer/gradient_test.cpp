// The training math against independent computations: the back-end's operations against naive
// loops and closed forms, and the whole backward pass against central finite differences, for
// every parameter of a small model, every activation, with and without dropout.

#include <proxytask/trainer/cpu_backend.hpp>
#include <proxytask/trainer/mlp.hpp>

#include <trainer/synthetic_data.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

namespace pt = proxytask;
namespace tr = proxytask::trainer;
using tr::activation;

std::vector<float> iota_matrix(std::size_t n, float scale, float shift) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 7919) % 23) - shift;
  return v;
}

TEST(TrainerGemm, MatchesNaiveProductForEveryTransposition) {
  tr::set_blas_threads(1);
  std::size_t const m = 5, n = 4, k = 3;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      auto const a = iota_matrix(m * k, 0.25f, 2.0f);
      auto const b = iota_matrix(k * n, 0.5f, 3.0f);
      std::vector<float> c(m * n, 1.0f);
      tr::gemm(pt::backend::cpu, ta ? tr::transpose::yes : tr::transpose::no,
               tb ? tr::transpose::yes : tr::transpose::no, m, n, k, 2.0f, a, b, 0.5f, c);
      for (std::size_t i = 0; i < m; ++i) {
        for (std::size_t j = 0; j < n; ++j) {
          double expected = 0.5;
          for (std::size_t p = 0; p < k; ++p) {
            double const aip = ta ? a[p * m + i] : a[i * k + p];
            double const bpj = tb ? b[j * k + p] : b[p * n + j];
            expected += 2.0 * aip * bpj;
          }
          EXPECT_NEAR(c[i * n + j], expected, 1e-4) << "ta " << ta << " tb " << tb;
        }
      }
    }
  }
}

TEST(TrainerGemm, RejectsSpansSmallerThanTheirMatrices) {
  std::vector<float> a(5), b(6), c(6);
  EXPECT_THROW(tr::gemm(pt::backend::cpu, tr::transpose::no, tr::transpose::no, 2, 3, 3, 1.0f, a, b,
                        0.0f, c),
               pt::logic_error);
}

TEST(TrainerActivation, DerivativesMatchFiniteDifferencesInDouble) {
  for (activation act : tr::all_activations) {
    for (float z : {-3.0f, -1.2f, -0.3f, 0.2f, 0.9f, 2.5f}) {
      std::vector<float> zs = {z - 1e-2f, z + 1e-2f};
      std::vector<float> b = {0.0f, 0.0f};
      std::vector<float> a(2);
      tr::bias_activation_forward(pt::backend::cpu, act, 1, 2, zs, b, a);
      double const numeric = (static_cast<double>(a[1]) - a[0]) / (zs[1] - zs[0]);
      std::vector<float> z1 = {z}, one = {1.0f}, dz(1);
      tr::activation_backward(pt::backend::cpu, act, z1, {}, one, dz);
      EXPECT_NEAR(dz[0], numeric, 2e-3 * (1.0 + std::abs(numeric)))
          << tr::to_string(act) << " at " << z;
    }
  }
}

TEST(TrainerActivation, ForwardAddsTheBiasAndAppliesTheMask) {
  std::vector<float> z = {-1.0f, 0.5f, 2.0f, -0.25f};
  std::vector<float> const b = {0.5f, -1.0f};
  std::vector<float> const mask = {2.0f, 0.0f, 0.0f, 2.0f};
  std::vector<float> a(4);
  tr::bias_activation_forward(pt::backend::cpu, activation::relu, 2, 2, z, b, a, mask);
  EXPECT_EQ(z, (std::vector<float>{-0.5f, -0.5f, 2.5f, -1.25f}));
  EXPECT_EQ(a, (std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f}));
  z = {1.0f, 0.5f, 2.0f, 1.25f};
  tr::bias_activation_forward(pt::backend::cpu, activation::relu, 2, 2, z, b, a, mask);
  EXPECT_EQ(a, (std::vector<float>{3.0f, 0.0f, 0.0f, 0.5f}));
  // GELU (tanh form) at 1: 0.5 (1 + tanh(sqrt(2/pi) (1 + 0.044715))) = 0.841192
  std::vector<float> g = {1.0f}, zero = {0.0f}, ga(1);
  tr::bias_activation_forward(pt::backend::cpu, activation::gelu, 1, 1, g, zero, ga);
  EXPECT_NEAR(ga[0], 0.841192, 1e-6);
}

TEST(TrainerSoftmaxCrossEntropy, MatchesTheClosedFormAndIsStableForHugeLogits) {
  std::vector<float> const logits = {1.0f, 2.0f, 3.0f, 1000.0f, 1000.0f, -1000.0f};
  std::vector<std::uint8_t> const labels = {2, 0};
  std::vector<float> d(6);
  double const loss = tr::softmax_cross_entropy(pt::backend::cpu, 2, 3, logits, labels, d);
  double const z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  double const row0 = std::log(z) - 3.0;
  double const row1 = std::log(2.0);
  EXPECT_NEAR(loss, (row0 + row1) / 2.0, 1e-6);
  EXPECT_NEAR(d[0], std::exp(1.0) / z / 2.0, 1e-7);
  EXPECT_NEAR(d[2], (std::exp(3.0) / z - 1.0) / 2.0, 1e-7);
  EXPECT_NEAR(d[3], (0.5 - 1.0) / 2.0, 1e-7);
  EXPECT_NEAR(d[4], 0.5 / 2.0, 1e-7);
  EXPECT_EQ(d[5], 0.0f);
  for (std::size_t r = 0; r < 2; ++r)
    EXPECT_NEAR(d[3 * r] + d[3 * r + 1] + d[3 * r + 2], 0.0, 1e-7) << "row " << r;
}

TEST(TrainerSoftmaxCrossEntropy, ReturnsNanForNonFiniteLogitsAndThrowsForBadLabels) {
  std::vector<float> logits = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  std::vector<std::uint8_t> labels = {0};
  std::vector<float> d(2);
  EXPECT_TRUE(std::isnan(tr::softmax_cross_entropy(pt::backend::cpu, 1, 2, logits, labels, d)));
  logits = {std::numeric_limits<float>::infinity(), 0.0f};
  EXPECT_FALSE(std::isfinite(tr::softmax_cross_entropy(pt::backend::cpu, 1, 2, logits, labels, d)));
  labels = {2};
  EXPECT_THROW(tr::softmax_cross_entropy(pt::backend::cpu, 1, 2, logits, labels, d),
               pt::logic_error);
}

TEST(TrainerReductions, ColumnSumsSumOfSquaresAndFiniteCheck) {
  std::vector<float> const x = {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f};
  std::vector<float> sums(3, 99.0f);
  tr::column_sums(pt::backend::cpu, 2, 3, x, sums);
  EXPECT_EQ(sums, (std::vector<float>{5.0f, 7.0f, 9.0f}));
  EXPECT_DOUBLE_EQ(tr::sum_of_squares(pt::backend::cpu, x), 91.0);
  EXPECT_TRUE(tr::all_finite(pt::backend::cpu, x));
  std::vector<float> bad = x;
  bad[4] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(tr::all_finite(pt::backend::cpu, bad));
  bad[4] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(tr::all_finite(pt::backend::cpu, bad));
  EXPECT_TRUE(std::isnan(tr::sum_of_squares(pt::backend::cpu, bad)));
  std::vector<std::uint8_t> arg(2);
  tr::argmax_rows(pt::backend::cpu, 2, 3, std::vector<float>{0, 3, 3, 9, 1, 2}, arg);
  EXPECT_EQ(arg, (std::vector<std::uint8_t>{1, 0}));
}

TEST(TrainerDropout, MaskIsKeyedBySeedStepAndLayerWithTheRightRateAndScale) {
  std::vector<float> a(10000), b(10000), c(10000), d(10000);
  tr::dropout_mask(pt::backend::cpu, 7, 3, 1, 0.3, a);
  tr::dropout_mask(pt::backend::cpu, 7, 3, 1, 0.3, b);
  tr::dropout_mask(pt::backend::cpu, 7, 4, 1, 0.3, c);
  tr::dropout_mask(pt::backend::cpu, 7, 3, 2, 0.3, d);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a, d);
  std::size_t dropped = 0;
  for (float v : a) {
    if (v == 0.0f) {
      ++dropped;
    } else {
      EXPECT_FLOAT_EQ(v, static_cast<float>(1.0 / 0.7));
    }
  }
  EXPECT_NEAR(static_cast<double>(dropped) / 10000.0, 0.3, 0.02);
  // A shorter mask is a prefix of a longer one with the same key (the element index is the
  // counter), and p = 0 keeps everything.
  std::vector<float> prefix(4999);
  tr::dropout_mask(pt::backend::cpu, 7, 3, 1, 0.3, prefix);
  EXPECT_TRUE(std::equal(prefix.begin(), prefix.end(), a.begin()));
  tr::dropout_mask(pt::backend::cpu, 7, 3, 1, 0.0, prefix);
  for (float v : prefix) ASSERT_EQ(v, 1.0f);
}

TEST(TrainerOptimizer, SgdMomentumAndAdamMatchTheirFormulas) {
  std::vector<float> w = {1.0f, -2.0f}, g = {0.5f, 0.25f}, v = {0.1f, 0.0f};
  tr::sgd_momentum_step(pt::backend::cpu, w, g, v, 0.1f, 0.9f, 0.01f, 2.0f);
  // g' = 2 g + 0.01 w = {1.01, 0.48}; v = 0.9 v + g' = {1.1, 0.48}; w -= 0.1 v
  EXPECT_NEAR(v[0], 1.1, 1e-6);
  EXPECT_NEAR(v[1], 0.48, 1e-6);
  EXPECT_NEAR(w[0], 1.0 - 0.11, 1e-6);
  EXPECT_NEAR(w[1], -2.0 - 0.048, 1e-6);

  // Adam's first step moves every weight by about lr sign(g) (bias correction), plus the
  // decoupled weight decay.
  std::vector<float> aw = {1.0f, -2.0f, 0.5f}, ag = {0.3f, -4.0f, 1e-3f}, m(3), s(3);
  tr::adam_parameters const p{.lr = 0.01f, .weight_decay = 0.1f, .t = 1};
  tr::adam_step(pt::backend::cpu, aw, ag, m, s, p, 1.0f);
  EXPECT_NEAR(aw[0], 1.0 - 0.01 * (1.0 + 0.1 * 1.0), 1e-6);
  EXPECT_NEAR(aw[1], -2.0 - 0.01 * (-1.0 + 0.1 * -2.0), 1e-6);
  EXPECT_NEAR(aw[2], 0.5 - 0.01 * (1e-3 / (1e-3 + 1e-8) + 0.05), 1e-6);
  EXPECT_NEAR(m[1], 0.1 * -4.0, 1e-6);
  EXPECT_NEAR(s[1], 0.001 * 16.0, 1e-6);
}

TEST(TrainerOptimizer, EmaUpdateAndClipFactor) {
  std::vector<float> e = {1.0f, 0.0f}, w = {3.0f, -1.0f};
  tr::ema_update(pt::backend::cpu, e, w, 0.75f);
  EXPECT_FLOAT_EQ(e[0], 1.5f);
  EXPECT_FLOAT_EQ(e[1], -0.25f);
  EXPECT_DOUBLE_EQ(tr::clip_factor(10.0, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(tr::clip_factor(10.0, 20.0), 1.0);
  EXPECT_DOUBLE_EQ(tr::clip_factor(10.0, 2.5), 0.25);
}

// --- the whole backward pass against central finite differences ------------------------------

struct gradient_case {
  activation act;
  double dropout;
};

class TrainerGradient : public ::testing::TestWithParam<gradient_case> {};

TEST_P(TrainerGradient, MatchesCentralFiniteDifferencesForEveryParameter) {
  tr::set_blas_threads(1);
  auto const [act, dropout] = GetParam();
  tr::mlp_spec const spec{.hidden = {6, 5}, .act = act, .dropout = dropout};
  std::size_t const features = 7, classes = 4, rows = 5;
  tr::training_config const config{.total_steps = 10, .seed = 11};
  tr::mlp_trainer t(spec, features, config, classes);
  auto const data = pt::testing::make_synthetic(rows, features, classes, 5);
  // Centred inputs and larger weights than the initialisation give pre-activations away from
  // ReLU's kink at the finite-difference scale, and gradients well above float noise.
  std::vector<float> x = data.images;
  for (float& v : x) v = 4.0f * (v - 0.5f);
  auto params = t.parameters();
  for (float& p : params) p *= 1.5f;

  t.compute_gradients(x, data.labels);
  std::vector<float> const analytic(t.gradients().begin(), t.gradients().end());

  auto const& layout = t.layout();
  float const eps = 1e-3f;
  std::size_t checked = 0;
  for (std::size_t l = 0; l < layout.layers(); ++l) {
    for (bool const weights : {true, false}) {
      std::size_t const begin = weights ? layout.weight_offset(l) : layout.bias_offset(l);
      std::size_t const count = weights ? layout.fan_in(l) * layout.fan_out(l) : layout.fan_out(l);
      for (std::size_t i = begin; i < begin + count; ++i) {
        float const saved = params[i];
        params[i] = saved + eps;
        double const up = t.compute_gradients(x, data.labels);
        params[i] = saved - eps;
        double const down = t.compute_gradients(x, data.labels);
        params[i] = saved;
        double const numeric = (up - down) / (2.0 * static_cast<double>(eps));
        double const a = analytic[i];
        EXPECT_NEAR(a, numeric, 1e-2 * std::max(std::abs(a), std::abs(numeric)) + 5e-4)
            << tr::to_string(act) << " dropout " << dropout << (weights ? " W" : " b") << l
            << " element " << i - begin;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, layout.parameter_count());
}

INSTANTIATE_TEST_SUITE_P(
    EveryActivation, TrainerGradient,
    ::testing::Values(gradient_case{activation::relu, 0.0}, gradient_case{activation::tanh, 0.0},
                      gradient_case{activation::gelu, 0.0}, gradient_case{activation::relu, 0.3},
                      gradient_case{activation::tanh, 0.3}, gradient_case{activation::gelu, 0.3}),
    [](auto const& info) {
      return std::string(tr::to_string(info.param.act)) +
             (info.param.dropout > 0 ? "WithDropout" : "");
    });

}  // namespace
