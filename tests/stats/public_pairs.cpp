#include <stats/public_pairs.hpp>

#include <boost/json.hpp>

#include <cmath>
#include <fstream>
#include <stdexcept>
#include <string>

namespace proxytask::testing {

namespace {

std::vector<double> doubles(boost::json::value const* v) {
  std::vector<double> out;
  if (v == nullptr || !v->is_array()) return out;
  for (auto const& e : v->as_array()) {
    if (e.is_null() || (e.is_string() && e.as_string() == "nan"))
      out.push_back(std::nan(""));
    else if (e.is_number())
      out.push_back(e.to_number<double>());
  }
  return out;
}

}  // namespace

std::vector<public_pair_case> public_pair_cases() {
  std::vector<public_pair_case> cases;
  for (char const* name : {"scipy_spearman", "scipy_kendall", "scipy_bootstrap_ci"}) {
    std::string const path = std::string(PROXYTASK_TEST_DATA_DIR) + "/reference/" + name + ".jsonl";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    for (std::string line; std::getline(in, line);) {
      if (line.empty()) continue;
      auto const doc = boost::json::parse(line).as_object();
      auto const* input = doc.if_contains("input");
      if (input == nullptr || !input->is_object()) continue;
      public_pair_case c{std::string(doc.at("id").as_string()) + " (" + name + ")",
                         doubles(input->as_object().if_contains("x")),
                         doubles(input->as_object().if_contains("y"))};
      if (c.x.size() == c.y.size() && !c.x.empty()) cases.push_back(std::move(c));
    }
  }
  return cases;
}

}  // namespace proxytask::testing
