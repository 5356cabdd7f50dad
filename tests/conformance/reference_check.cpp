// proxytask-reference-check FUNC: reads one JSON input on stdin and writes the JSON output on
// stdout, in the formats of tests/data/reference/README.md. Exit status 0 for an answer (an
// {"error"} answer included), 2 for a usage error or unreadable input.

#include <conformance/reference_functions.hpp>

#include <proxytask/core/json.hpp>

#include <boost/json.hpp>

#include <iostream>
#include <iterator>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::cerr << "usage: proxytask-reference-check FUNC < input.json\nfunctions:";
    for (auto const& [name, _] : proxytask::conformance::functions()) std::cerr << ' ' << name;
    std::cerr << '\n';
    return 2;
  }
  std::string const text{std::istreambuf_iterator<char>(std::cin),
                         std::istreambuf_iterator<char>()};
  auto parsed = proxytask::parse_json(text, "stdin");
  if (!parsed) {
    std::cout << boost::json::serialize(proxytask::conformance::error_value(
                     "JSONDecodeError", parsed.error().message()))
              << '\n';
    return 2;
  }
  auto input = std::move(*parsed);
  // A vector line {"func", "input", ...} is accepted as well as the bare input.
  if (auto const* o = input.if_object(); o && o->contains("input") && o->contains("func"))
    input = o->at("input");
  std::cout << boost::json::serialize(proxytask::conformance::answer(argv[1], input)) << '\n';
  return 0;
}
