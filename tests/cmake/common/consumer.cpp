// A user's program: the NAS-Bench-style question "does the proxy rank models like full training?"
#include <proxytask/stats/over_steps.hpp>

#include <cstdio>
#include <vector>

int main() {
  namespace pt = proxytask;
  // Proxy accuracy of 6 models (rows) at 2 evaluation steps (columns), and their accuracy
  // after full training.
  std::vector<double> const proxy{0.36, 0.48,   // model 0
                                  0.52, 0.66,   // model 1
                                  0.35, 0.51,   // model 2
                                  0.61, 0.69,   // model 3
                                  0.22, 0.30,   // model 4
                                  0.40, 0.58};  // model 5
  std::vector<double> const full{0.80, 0.88, 0.83, 0.90, 0.71, 0.86};
  auto const table = pt::stats::correlate_over_steps(
      pt::backend::cpu, pt::host_matrix_view<double const>(proxy.data(), 6, 2), full);
  if (!table) return 1;
  for (auto const& row : *table)
    std::printf("tau %.4f p %.4g n %zu\n", row.coefficient, row.p_value, row.valid_pairs);
  // At step 0 models 0 and 2 are swapped (tau = 13/15); at step 1 the proxy orders the models
  // exactly as full training does.
  return (*table)[1].coefficient == 1.0 ? 0 : 1;
}
