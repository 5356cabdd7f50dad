#pragma once
/// @file
/// The upper median, as the reference tool takes it: sorted(valid)[len // 2].

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>
#include <vector>

namespace proxytask::stats {

/// The upper median of the non-NaN values: the element at index n / 2 of the sorted values (for
/// an even count, the larger of the two middle values; it is always one of the inputs, so the
/// model that scored it can be found). NaN when there is no value.
template <class Real>
double upper_median(std::span<Real const> values) {
  std::vector<Real> valid;
  valid.reserve(values.size());
  for (Real v : values)
    if (!std::isnan(v)) valid.push_back(v);
  if (valid.empty()) return std::numeric_limits<double>::quiet_NaN();
  auto middle = valid.begin() + static_cast<std::ptrdiff_t>(valid.size() / 2);
  std::nth_element(valid.begin(), middle, valid.end());
  return static_cast<double>(*middle);
}

}  // namespace proxytask::stats
