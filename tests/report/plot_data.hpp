#pragma once
/// @file
/// Reading back what report/plot.hpp drew, for the tests of the tools' plots: every datum is in
/// a data-* attribute (see plot.hpp's file comment), so a test compares it with the exact
/// doubles of the state it plotted.

#include <gtest/gtest.h>

#include <charconv>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "report/xml_check.hpp"

namespace proxytask::testing {

/// A number as plot.hpp writes it (fails the test when the text is not one).
inline double plot_number(std::string_view text) {
  double v = std::numeric_limits<double>::quiet_NaN();
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  EXPECT_TRUE(ec == std::errc() && end == text.data() + text.size()) << text;
  return v;
}

/// The series of a plot by their full data-name.
inline std::map<std::string, xml_node const*> series_by_name(xml_node const& root) {
  std::map<std::string, xml_node const*> out;
  for (auto const* g : root.find_by_attr("class", "series")) out[g->attr("data-name").value()] = g;
  return out;
}

/// Every datum a series draws, in order: a line's (x, y), a band's (x, low, high), from its
/// pieces' data-points, and its markers' (lone points') data-x / data-y.
inline std::vector<std::vector<double>> series_data(xml_node const& series) {
  std::vector<std::vector<double>> out;
  for (auto const* n : series.find_all()) {
    if (auto const points = n->attr("data-points")) {
      std::string_view rest(*points);
      while (!rest.empty()) {
        auto const space = rest.find(' ');
        std::string_view tuple = rest.substr(0, space);
        rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
        std::vector<double> values;
        for (;;) {
          auto const comma = tuple.find(',');
          values.push_back(plot_number(tuple.substr(0, comma)));
          if (comma == std::string_view::npos) break;
          tuple = tuple.substr(comma + 1);
        }
        out.push_back(values);
      }
    } else if (auto const x = n->attr("data-x")) {
      out.push_back({plot_number(*x), plot_number(n->attr("data-y").value())});
    }
  }
  return out;
}

/// The tooltips of a series' markers, in order.
inline std::vector<std::string> series_tooltips(xml_node const& series) {
  std::vector<std::string> out;
  for (auto const* n : series.find_all())
    if (n->attr("data-x") && !n->find_all("title").empty())
      out.push_back(n->find_all("title").front()->all_text());
  return out;
}

}  // namespace proxytask::testing
