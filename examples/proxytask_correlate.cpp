// proxytask-correlate: rank correlation of proxy scores with reference scores, step by step, from
// a CSV table (one row per model). It shows the stats API end to end: read_csv, one
// correlate_over_steps call (optionally with bootstrap intervals and permutation p-values, on a
// chosen number of threads), and the results printed and written atomically as JSON and CSV.

#include <proxytask/core/atomic_file.hpp>
#include <proxytask/core/backend.hpp>
#include <proxytask/core/csv.hpp>
#include <proxytask/core/error.hpp>
#include <proxytask/core/json.hpp>
#include <proxytask/core/matrix_view.hpp>
#include <proxytask/stats/bootstrap.hpp>
#include <proxytask/stats/correlation.hpp>
#include <proxytask/stats/over_steps.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pt = proxytask;

namespace {

constexpr int exit_success = 0;
constexpr int exit_data_error = 1;
constexpr int exit_usage_error = 2;

constexpr char const* program_name = "proxytask-correlate";

constexpr std::string_view usage_text =
    R"(Usage: proxytask-correlate FILE [options]

Rank correlation between proxy scores and reference (full-training) scores, one
coefficient per step. FILE is a CSV table with a header line and one row per
model. By default the first column is the model id, the second the reference
score, and every further column one step (its header is the step's label).
An empty field or NaN (any case) is a missing value.

Options:
  --model-column C        the model id column (default: the first column)
  --reference-column C    the reference score column (default: the first column
                          that is not the model column)
  --score-columns C1,C2   the step columns, in this order (default: every other
                          column, in file order)
  --method M              kendall (tau-b, default) or spearman
  --alternative A         two-sided (default), greater or less
  --min-pairs N           a step needs at least N valid pairs (default 5, N >= 2)
  --min-fraction F        ... and at least this share of the models (default 0.7)
  --resamples B           bootstrap every step B times (default 0: no bootstrap;
                          B <= 10000000) for a confidence interval and
                          bootstrap p-values
  --ci M                  the interval: bca (default) or percentile
  --confidence L          its confidence level, in (0, 1) (default 0.95)
  --threshold C           also the bootstrap p-value of "coefficient <= C", for
                          a C in [-1, 1] (e.g. 0.65: does the proxy reach it?)
  --permutations P        a permutation p-value per step from P random pairings
                          (default 0: none; P <= 10000000); a step with n <= 8
                          valid pairs uses all n! pairings instead (exact)
  --seed S                seed of the resamples and pairings (default 0)
  --threads T             threads to use (default 1, 0: all hardware threads,
                          T <= 1024); the results are the same for every T
  --json OUT              also write the results as JSON to OUT
  --csv OUT               also write the results as CSV to OUT
  -h, --help              print this help and exit

Columns are named by their header text (exact match). A step whose coefficient
cannot be computed shows NaN and a reason: too_few_pairs, too_few_valid_models
or constant_input.

--ci, --confidence and --threshold need --resamples. The bootstrap resamples a
step's valid pairs with replacement; p(<=c) is (#{replicates <= c} + 1) /
(defined replicates + 1), and a resample without a coefficient (constant) is
left out and counted as undefined. p_perm follows --alternative, like p.
Resample r of step s is drawn from Philox keyed by (S, s, r): the same seed
gives the same results on any number of threads.

Exit status: 0 success, 1 bad data (unreadable or malformed file, a field that
is not a number, an unknown column), 2 usage error.
)";

// ------------------------------------------------------------------------------------------------
// Arguments.

struct arguments {
  std::string file;
  std::optional<std::string> model_column;
  std::optional<std::string> reference_column;
  std::optional<std::vector<std::string>> score_columns;
  pt::stats::over_steps_options options;
  unsigned threads = 1;  // 0: all hardware threads
  std::optional<std::string> json_out;
  std::optional<std::string> csv_out;
};

constexpr std::size_t max_resamples = 10'000'000;
constexpr std::size_t max_permutations = 10'000'000;
constexpr unsigned max_threads = 1024;

struct help_requested {};
struct usage_error {
  std::string message;
};
using parsed_arguments = std::variant<arguments, help_requested, usage_error>;

std::optional<std::vector<std::string>> split_names(std::string_view list) {
  std::vector<std::string> names;
  for (;;) {
    auto const comma = list.find(',');
    names.emplace_back(list.substr(0, comma));
    if (names.back().empty()) return std::nullopt;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return names;
}

template <class Number>
std::optional<Number> parse_whole(std::string_view text) {
  Number value{};
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

parsed_arguments parse_arguments(std::span<char* const> argv) {
  arguments args;
  bool have_file = false;
  bool options_done = false;
  std::vector<std::string_view> bootstrap_only;  // given options that need --resamples
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      if (have_file)
        return usage_error{"more than one FILE: '" + args.file + "' and '" + std::string(arg) +
                           "'"};
      args.file = arg;
      have_file = true;
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    // --name value, or --name=value
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (auto const eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name == "-h" || name == "--help") return help_requested{};
    static constexpr std::string_view with_value[] = {
        "--model-column", "--reference-column", "--score-columns", "--method",
        "--alternative",  "--min-pairs",        "--min-fraction",  "--resamples",
        "--ci",           "--confidence",       "--threshold",     "--permutations",
        "--seed",         "--threads",          "--json",          "--csv"};
    if (std::find(std::begin(with_value), std::end(with_value), name) == std::end(with_value)) {
      return usage_error{"unknown option '" + std::string(name) + "'"};
    }
    if (!value) {
      // "--json --csv x" is a forgotten value, not a file called "--csv".
      if (i + 1 >= argv.size() || std::string_view(argv[i + 1]).starts_with("--"))
        return usage_error{"option " + std::string(name) + " needs a value"};
      value = std::string_view(argv[++i]);
    }
    std::string const v(*value);
    auto bad_value = [&](std::string_view expected) {
      return usage_error{"option " + std::string(name) + ": '" + v + "' is not " +
                         std::string(expected)};
    };

    if (name == "--model-column") {
      args.model_column = v;
    } else if (name == "--reference-column") {
      args.reference_column = v;
    } else if (name == "--score-columns") {
      auto names = split_names(v);
      if (!names) return bad_value("a comma-separated list of column names");
      for (std::size_t a = 0; a < names->size(); ++a)
        for (std::size_t b = 0; b < a; ++b)
          if ((*names)[a] == (*names)[b])
            return usage_error{"option --score-columns names '" + (*names)[a] + "' twice"};
      args.score_columns = std::move(*names);
    } else if (name == "--method") {
      auto const m = pt::stats::parse_correlation(v);
      if (!m) return bad_value("kendall or spearman");
      args.options.method = *m;
    } else if (name == "--alternative") {
      auto const h = pt::stats::parse_hypothesis(v);
      if (!h) return bad_value("two-sided, greater or less");
      args.options.alternative = *h;
    } else if (name == "--min-pairs") {
      auto const n = parse_whole<std::size_t>(v);
      if (!n || *n < 2) return bad_value("a whole number >= 2");
      args.options.min_valid_pairs = *n;
    } else if (name == "--min-fraction") {
      auto const f = parse_whole<double>(v);
      if (!f || !(*f >= 0.0 && *f <= 1.0)) return bad_value("a number in [0, 1]");
      args.options.min_valid_fraction = *f;
    } else if (name == "--resamples") {
      auto const b = parse_whole<std::size_t>(v);
      if (!b || *b > max_resamples) return bad_value("a whole number in [0, 10000000]");
      args.options.bootstrap_resamples = *b;
    } else if (name == "--ci") {
      auto const m = pt::stats::parse_interval_method(v);
      if (!m) return bad_value("bca or percentile");
      args.options.interval = *m;
      bootstrap_only.push_back(name);
    } else if (name == "--confidence") {
      auto const l = parse_whole<double>(v);
      if (!l || !(*l > 0.0 && *l < 1.0)) return bad_value("a number strictly between 0 and 1");
      args.options.confidence_level = *l;
      bootstrap_only.push_back(name);
    } else if (name == "--threshold") {
      auto const c = parse_whole<double>(v);
      if (!c || !(*c >= -1.0 && *c <= 1.0)) return bad_value("a number in [-1, 1]");
      args.options.threshold = *c;
      bootstrap_only.push_back(name);
    } else if (name == "--permutations") {
      auto const p = parse_whole<std::size_t>(v);
      if (!p || *p > max_permutations) return bad_value("a whole number in [0, 10000000]");
      args.options.permutations = *p;
    } else if (name == "--seed") {
      auto const s = parse_whole<std::uint64_t>(v);
      if (!s) return bad_value("a whole number in [0, 2^64)");
      args.options.seed = *s;
    } else if (name == "--threads") {
      auto const t = parse_whole<unsigned>(v);
      if (!t || *t > max_threads) return bad_value("a whole number in [0, 1024]");
      args.threads = *t;
    } else if (name == "--json") {
      if (v.empty()) return bad_value("a file name");
      args.json_out = v;
    } else if (name == "--csv") {
      if (v.empty()) return bad_value("a file name");
      args.csv_out = v;
    }
  }
  if (!have_file) return usage_error{"no FILE given"};
  if (!bootstrap_only.empty() && args.options.bootstrap_resamples == 0)
    return usage_error{"option " + std::string(bootstrap_only.front()) +
                       " sets up the bootstrap, which is off: add --resamples B (B > 0)"};
  if (args.model_column && args.reference_column && *args.model_column == *args.reference_column)
    return usage_error{"the model column and the reference column are both '" + *args.model_column +
                       "'"};
  return args;
}

// ------------------------------------------------------------------------------------------------
// Columns and values.

struct layout {
  std::size_t model = 0;
  std::size_t reference = 1;
  std::vector<std::size_t> scores;  // one per step
};

pt::result<layout> choose_columns(pt::csv_table const& table, arguments const& args) {
  layout cols;
  if (args.model_column) {
    auto i = table.find_column(*args.model_column);
    if (!i) return i.error();
    cols.model = *i;
  }
  if (args.reference_column) {
    auto i = table.find_column(*args.reference_column);
    if (!i) return i.error();
    cols.reference = *i;
  } else {
    cols.reference = cols.model == 0 ? 1 : 0;
    if (cols.reference >= table.header.size()) {
      return pt::make_error(pt::errc::malformed_file,
                            table.source +
                                ": only one column; need a model id, a reference "
                                "score and at least one step");
    }
  }
  if (args.score_columns) {
    for (auto const& name : *args.score_columns) {
      auto i = table.find_column(name);
      if (!i) return i.error();
      if (*i == cols.model) {
        return pt::make_error(pt::errc::invalid_argument,
                              table.source + ": score column '" + name + "' is the model column");
      }
      cols.scores.push_back(*i);
    }
  } else {
    for (std::size_t i = 0; i < table.header.size(); ++i)
      if (i != cols.model && i != cols.reference) cols.scores.push_back(i);
  }
  if (cols.scores.empty()) {
    return pt::make_error(pt::errc::malformed_file,
                          table.source +
                              ": no score columns: the file has only the model "
                              "and reference columns");
  }
  return cols;
}

struct score_data {
  std::vector<double> scores;     // models x steps, row-major, NaN = missing
  std::vector<double> reference;  // one per model, NaN = missing
};

pt::result<score_data> read_values(pt::csv_table const& table, layout const& cols) {
  std::size_t const models = table.rows.size();
  std::size_t const steps = cols.scores.size();
  score_data data;
  data.scores.resize(models * steps);
  data.reference.resize(models);
  for (std::size_t r = 0; r < models; ++r) {
    auto ref = pt::csv_number(table, r, cols.reference);
    if (!ref) return ref.error();
    data.reference[r] = *ref;
    for (std::size_t s = 0; s < steps; ++s) {
      auto v = pt::csv_number(table, r, cols.scores[s]);
      if (!v) return v.error();
      data.scores[r * steps + s] = *v;
    }
  }
  return data;
}

// ------------------------------------------------------------------------------------------------
// Output.

struct report {
  std::string file;
  pt::stats::over_steps_options options;
  std::string model_column;
  std::string reference_column;
  std::size_t models = 0;
  std::size_t reference_missing = 0;
  unsigned threads = 1;
  std::vector<std::string> steps;
  pt::stats::step_table table;
};

std::string method_name(pt::stats::correlation method) {
  return method == pt::stats::correlation::kendall_tau_b ? "kendall (tau-b)" : "spearman";
}

std::string format(char const* spec, double value) {
  if (std::isnan(value)) return "nan";
  char buffer[64];
  int const n = std::snprintf(buffer, sizeof buffer, spec, value);
  return std::string(buffer,
                     n > 0 ? static_cast<std::size_t>(std::min<int>(n, sizeof buffer - 1)) : 0);
}

// A p-value of exactly 0 is one below the smallest double (the normal tail underflows for
// thousands of models): say so rather than print a misleading 0.
std::string format_p(double p) { return p == 0.0 ? "<1e-308" : format("%.3g", p); }

std::string pad(std::string s, std::size_t width, bool right) {
  if (s.size() >= width) return s;
  return right ? std::string(width - s.size(), ' ') + s : s + std::string(width - s.size(), ' ');
}

// Shortest text that reads back to the same double; "" for NaN (a missing value).
std::string csv_number_text(double value) {
  if (std::isnan(value)) return "";
  char buffer[64];
  auto const [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return ec == std::errc{} ? std::string(buffer, end) : std::string();
}

bool bootstrap_on(report const& rep) { return rep.options.bootstrap_resamples > 0; }
bool permutations_on(report const& rep) { return rep.options.permutations > 0; }

// "p(<=0.65)": the heading of the bootstrap p-value for H0 "coefficient <= c".
std::string p_at_most(double c) { return "p(<=" + csv_number_text(c) + ")"; }

void print_table(report const& rep) {
  auto const& opt = rep.options;
  std::printf("%s: %zu models, reference '%s' (%zu missing)\n", rep.file.c_str(), rep.models,
              rep.reference_column.c_str(), rep.reference_missing);
  std::printf("method %s, %s p-value; a step counts when n >= %zu and n >= %s%% of the models\n",
              method_name(opt.method).c_str(),
              std::string(pt::stats::to_string(opt.alternative)).c_str(), opt.min_valid_pairs,
              format("%.4g", 100.0 * opt.min_valid_fraction).c_str());
  if (bootstrap_on(rep)) {
    std::printf(
        "bootstrap: %zu resamples, seed %llu, %s %s%% interval [ci_low, ci_high]; "
        "p(<=c): bootstrap p-value of H0 \"coefficient <= c\"\n",
        opt.bootstrap_resamples, static_cast<unsigned long long>(opt.seed),
        opt.interval == pt::stats::interval_method::bca ? "BCa" : "percentile",
        format("%.4g", 100.0 * opt.confidence_level).c_str());
  }
  if (permutations_on(rep)) {
    std::printf("permutation test: %zu permutations, seed %llu; p_perm: %s, like p\n",
                opt.permutations, static_cast<unsigned long long>(opt.seed),
                std::string(pt::stats::to_string(opt.alternative)).c_str());
  }
  std::printf("\n");

  // One column per statistic: a heading and one cell per step; labels and reasons left-aligned,
  // numbers (and their headings) right-aligned.
  struct column {
    std::string heading;
    bool right = true;
    std::vector<std::string> cells;
  };
  std::vector<column> columns;
  auto add = [&](std::string heading, bool right, auto cell) {
    column c{std::move(heading), right, {}};
    for (std::size_t s = 0; s < rep.table.size(); ++s) c.cells.push_back(cell(s, rep.table[s]));
    columns.push_back(std::move(c));
  };
  using row_t = pt::stats::step_row;
  add("step", false, [&](std::size_t s, row_t const&) { return rep.steps[s]; });
  add("n", true, [](std::size_t, row_t const& r) { return std::to_string(r.valid_pairs); });
  add("coefficient", true,
      [](std::size_t, row_t const& r) { return format("%.4f", r.coefficient); });
  add("p", true, [](std::size_t, row_t const& r) { return format_p(r.p_value); });
  bool any_undefined = false, any_exact = false, nan_interval = false;
  for (auto const& r : rep.table) {
    any_undefined |= r.bootstrap.undefined > 0;
    any_exact |= r.permutation.exact;
    nan_interval |=
        r.bootstrap.defined > 0 && (std::isnan(r.bootstrap.low) || std::isnan(r.bootstrap.high));
  }
  if (bootstrap_on(rep)) {
    add("ci_low", true,
        [](std::size_t, row_t const& r) { return format("%.4f", r.bootstrap.low); });
    add("ci_high", true,
        [](std::size_t, row_t const& r) { return format("%.4f", r.bootstrap.high); });
    add("p(<=0)", true,
        [](std::size_t, row_t const& r) { return format("%.3g", r.bootstrap.p_above_zero); });
    if (opt.threshold) {
      add(p_at_most(*opt.threshold), true, [](std::size_t, row_t const& r) {
        return format("%.3g", r.bootstrap.p_above_threshold);
      });
    }
    if (any_undefined) {
      add("undefined", true,
          [](std::size_t, row_t const& r) { return std::to_string(r.bootstrap.undefined); });
    }
  }
  if (permutations_on(rep)) {
    // Exact p-values carry a '*'; the others a space, so that the digits stay aligned.
    std::string const unmarked = any_exact ? " " : "";
    add("p_perm" + unmarked, true, [&](std::size_t, row_t const& r) {
      return format_p(r.permutation.p_value) + (r.permutation.exact ? "*" : unmarked);
    });
  }
  add("median_score", true,
      [](std::size_t, row_t const& r) { return format("%.6g", r.median_score); });
  add("reason", false,
      [](std::size_t, row_t const& r) { return std::string(pt::stats::to_string(r.reason)); });

  for (auto& c : columns) {
    std::size_t width = c.heading.size();
    for (auto const& cell : c.cells) width = std::max(width, cell.size());
    c.heading = pad(c.heading, width, c.right);
    for (auto& cell : c.cells) cell = pad(cell, width, c.right);
  }
  auto print_line = [&](auto text_of) {
    std::string out;
    for (std::size_t i = 0; i < columns.size(); ++i) out += (i ? "  " : "") + text_of(columns[i]);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  print_line([](column const& c) { return c.heading; });
  for (std::size_t s = 0; s < rep.table.size(); ++s)
    print_line([s](column const& c) { return c.cells[s]; });

  if (any_exact) std::printf("* exact: all n! pairings\n");
  if (any_undefined)
    std::printf("undefined: resamples without a coefficient (a constant side), left out\n");
  if (nan_interval && opt.interval == pt::stats::interval_method::bca)
    std::printf(
        "nan interval: BCa is undefined where the jackknife values are all equal or one is "
        "undefined; --ci percentile gives one\n");
}

std::string to_json(report const& rep) {
  boost::json::array steps;
  steps.reserve(rep.table.size());
  for (std::size_t s = 0; s < rep.table.size(); ++s) {
    auto const& row = rep.table[s];
    auto const& b = row.bootstrap;
    auto const& p = row.permutation;
    steps.push_back(boost::json::object{
        {"step", rep.steps[s]},
        {"n", static_cast<std::uint64_t>(row.valid_pairs)},
        {"coefficient", pt::json_number(row.coefficient)},
        {"p_value", pt::json_number(row.p_value)},
        {"reason", pt::stats::to_string(row.reason)},
        {"median_score", pt::json_number(row.median_score)},
        {"ci_low", pt::json_number(b.low)},
        {"ci_high", pt::json_number(b.high)},
        {"standard_error", pt::json_number(b.standard_error)},
        {"p_bootstrap_zero", pt::json_number(b.p_above_zero)},
        {"p_bootstrap_threshold", pt::json_number(b.p_above_threshold)},
        {"resamples_defined", static_cast<std::uint64_t>(b.defined)},
        {"resamples_undefined", static_cast<std::uint64_t>(b.undefined)},
        {"p_permutation", pt::json_number(p.p_value)},
        {"permutations", static_cast<std::uint64_t>(p.permutations)},
        {"permutation_exact", p.permutations > 0 ? boost::json::value(p.exact) : nullptr},
    });
  }
  auto const& opt = rep.options;
  boost::json::value bootstrap = nullptr;
  if (bootstrap_on(rep)) {
    bootstrap = boost::json::object{
        {"resamples", static_cast<std::uint64_t>(opt.bootstrap_resamples)},
        {"seed", opt.seed},
        {"interval", pt::stats::to_string(opt.interval)},
        {"confidence_level", opt.confidence_level},
        {"threshold", opt.threshold ? boost::json::value(*opt.threshold) : nullptr},
    };
  }
  boost::json::value permutations = nullptr;
  if (permutations_on(rep)) {
    permutations = boost::json::object{
        {"count", static_cast<std::uint64_t>(opt.permutations)},
        {"seed", opt.seed},
    };
  }
  boost::json::object doc{
      {"file", rep.file},
      {"method", pt::stats::to_string(opt.method)},
      {"alternative", pt::stats::to_string(opt.alternative)},
      {"model_column", rep.model_column},
      {"reference_column", rep.reference_column},
      {"models", static_cast<std::uint64_t>(rep.models)},
      {"min_valid_pairs", static_cast<std::uint64_t>(opt.min_valid_pairs)},
      {"min_valid_fraction", opt.min_valid_fraction},
      {"bootstrap", std::move(bootstrap)},
      {"permutations", std::move(permutations)},
      {"threads", rep.threads},
      {"steps", std::move(steps)},
  };
  return boost::json::serialize(doc) + "\n";
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + '"';
}

std::string to_csv(report const& rep) {
  // The JSON fields of a step, in the same order.
  std::string out =
      "step,n,coefficient,p_value,reason,median_score,ci_low,ci_high,standard_error,"
      "p_bootstrap_zero,p_bootstrap_threshold,resamples_defined,resamples_undefined,"
      "p_permutation,permutations,permutation_exact\n";
  for (std::size_t s = 0; s < rep.table.size(); ++s) {
    auto const& row = rep.table[s];
    auto const& b = row.bootstrap;
    auto const& p = row.permutation;
    out += csv_field(rep.steps[s]) + "," + std::to_string(row.valid_pairs) + "," +
           csv_number_text(row.coefficient) + "," + csv_number_text(row.p_value) + "," +
           std::string(pt::stats::to_string(row.reason)) + "," + csv_number_text(row.median_score) +
           "," + csv_number_text(b.low) + "," + csv_number_text(b.high) + "," +
           csv_number_text(b.standard_error) + "," + csv_number_text(b.p_above_zero) + "," +
           csv_number_text(b.p_above_threshold) + "," + std::to_string(b.defined) + "," +
           std::to_string(b.undefined) + "," + csv_number_text(p.p_value) + "," +
           std::to_string(p.permutations) + "," +
           (p.permutations > 0 ? (p.exact ? "true" : "false") : "") + "\n";
  }
  return out;
}

// ------------------------------------------------------------------------------------------------

int fail(pt::error const& e) {
  std::fprintf(stderr, "%s: %s\n", program_name, e.message().c_str());
  return exit_data_error;
}

int run(arguments const& args) {
  auto const table = pt::read_csv(args.file);
  if (!table) return fail(table.error());
  if (table->rows.empty())
    return fail(
        pt::make_error(pt::errc::malformed_file, table->source + ": no rows after the header"));
  auto const cols = choose_columns(*table, args);
  if (!cols) return fail(cols.error());
  auto const data = read_values(*table, *cols);
  if (!data) return fail(data.error());

  std::size_t const models = table->rows.size();
  std::size_t const steps = cols->scores.size();
  auto correlated = pt::stats::correlate_over_steps(
      pt::backend::cpu.with_threads(args.threads),
      pt::host_matrix_view<double const>(data->scores.data(), models, steps),
      std::span<double const>(data->reference), args.options);
  if (!correlated) return fail(correlated.error());

  report rep;
  rep.file = args.file;
  rep.options = args.options;
  rep.threads = args.threads;
  rep.model_column = table->header[cols->model];
  rep.reference_column = table->header[cols->reference];
  rep.models = models;
  rep.reference_missing = static_cast<std::size_t>(std::count_if(
      data->reference.begin(), data->reference.end(), [](double v) { return std::isnan(v); }));
  for (std::size_t c : cols->scores) rep.steps.push_back(table->header[c]);
  rep.table = std::move(*correlated);

  print_table(rep);
  std::fflush(stdout);
  if (args.json_out) {
    if (auto w = pt::write_file_atomically(*args.json_out, to_json(rep)); !w)
      return fail(w.error());
  }
  if (args.csv_out) {
    if (auto w = pt::write_file_atomically(*args.csv_out, to_csv(rep)); !w) return fail(w.error());
  }
  return exit_success;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    auto const parsed =
        parse_arguments(std::span<char* const>(argv, static_cast<std::size_t>(argc)));
    if (std::holds_alternative<help_requested>(parsed)) {
      std::fwrite(usage_text.data(), 1, usage_text.size(), stdout);
      return exit_success;
    }
    if (auto const* e = std::get_if<usage_error>(&parsed)) {
      std::fprintf(stderr, "%s: %s\nUsage: %s FILE [options]; run '%s --help' for the options\n",
                   program_name, e->message.c_str(), program_name, program_name);
      return exit_usage_error;
    }
    return run(std::get<arguments>(parsed));
  } catch (std::exception const& e) {
    std::fprintf(stderr, "%s: internal error: %s\n", program_name, e.what());
    return exit_data_error;
  } catch (...) {
    std::fprintf(stderr, "%s: internal error\n", program_name);
    return exit_data_error;
  }
}
