#pragma once
/// @file
/// What a model selection (workflow/model_selection.hpp) shows people and leaves on disk besides
/// its state and result files, as pure functions of the state and the result; the program
/// (examples/select_models.cpp) writes them atomically next to the state:
///
///   - iteration_<i>.svg, one plot per iteration (the seed's figure of the models kept and
///     rejected): each model's accuracy at the iteration's pct (y) against its latency (x), or
///     against its accuracy rank (1 = best) when no model of the iteration has a latency. Each
///     fate is a scatter series of its own (report/plot.hpp: `<g class="series"
///     data-kind="scatter" data-name="kept (25)">`, one marker per model with data-x and data-y
///     and a `<title>` tooltip naming the trial, the model and its scores): kept (filled circles),
///     removed (hollow red circles), invalid (black crosses: failed, NaN, pct not reached, no
///     latency; replaced first-iteration failures too), reference (blue diamonds: the last
///     iteration's valid models), and, for an iteration not concluded, trained (valid, not pruned
///     yet). An invalid model without both coordinates cannot be drawn: the series' data-skipped
///     counts it, and its name says so. The title gives the iteration, its models and its pct.
///   - reference_models.csv, the reference table of MODEL_SELECTION_RESULT.json's
///     reference_models as CSV (RFC 4180 quoting; core/csv.hpp reads it back), one row per
///     reference model in the result's order, with the columns
///     model_index,model_id,trial_id,accuracy,latency,seed,trial_dir,spec: numbers in the
///     shortest text that reads back as the same double, an empty latency for null, and spec
///     the model spec as compact JSON (serialized as in the result).
///
/// And which checkpoints can go (discarded_trials): the trials that were removed by pruning,
/// invalid, or replaced by a fresh sample, and that the observation shows ended. No later trial
/// resumes from them (a kept model's next trial resumes from its kept trial; a reference model's
/// checkpoint is the fully trained model), so deleting their checkpoint files loses nothing the
/// selection needs. Kept and reference trials are never listed, nor are the trials of an aborted
/// first iteration (whose failures are to be investigated).

#include <proxytask/core/config.hpp>
#include <proxytask/workflow/model_selection.hpp>
#include <proxytask/workflow/tool.hpp>

#include <boost/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::workflow {

/// The reference table's CSV file, next to MODEL_SELECTION_RESULT.json.
inline constexpr std::string_view reference_models_csv_file_name = "reference_models.csv";

/// The columns of reference_models.csv, in order.
inline constexpr std::string_view reference_models_csv_columns[] = {
    "model_index", "model_id", "trial_id", "accuracy", "latency", "seed", "trial_dir", "spec"};

/// The plot file of an iteration: "iteration_<i>.svg".
inline std::string selection_plot_file_name(std::size_t iteration) {
  return "iteration_" + std::to_string(iteration) + ".svg";
}

/// Whether iteration `iteration`'s plot is final: the iteration is concluded, or the selection
/// has ended (an aborted first iteration is drawn as it stood).
/// @pre iteration < s.iterations.size()
inline bool selection_plot_final(model_selection_state const& s, std::size_t iteration);

/// Iteration `iteration`'s plot (see the file comment) as a standalone SVG document.
/// @pre iteration < s.iterations.size()
/// @throws proxytask::logic_error when the precondition fails
inline std::string selection_iteration_svg(model_selection_state const& s, std::size_t iteration);

/// The reference table as CSV text (see the file comment): a header line, then one line per
/// entry of result["reference_models"] (none when it is missing or empty, as in an aborted run).
/// @param[in] result MODEL_SELECTION_RESULT.json's document (model_selection_tool::result_of)
inline std::string reference_models_csv(boost::json::object const& result);

/// Appends `field` to `out` as one CSV field: quoted (with its quotes doubled) when it holds a
/// comma, a quote, a line break, or leading or trailing blanks; as is otherwise (RFC 4180).
inline void append_csv_field(std::string& out, std::string_view field);

/// The trials whose checkpoints may be deleted (see the file comment): in a concluded
/// iteration, of fate removed, invalid or replaced, and listed by `obs` in a terminal phase; in
/// state order.
inline std::vector<std::string> discarded_trials(model_selection_state const& s,
                                                 observation const& obs);

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/model_selection_report.inl>
