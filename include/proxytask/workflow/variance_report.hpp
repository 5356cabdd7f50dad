#pragma once
/// @file
/// What a variance measurement (workflow/variance_tool.hpp) shows people besides its state and
/// result files: a plot of the copies' training curves, as a pure function of the state. The
/// program (examples/measure_variance.cpp) writes it atomically into the run directory, next to
/// measurement_state.json, as variance_curves.svg:
///
///   - one line per successful copy (measured_copy::success()), in copy order, named
///     "copy <c> (seed <s>)" (c: the copy's index, as variance_and_smoothness.json's "copies"
///     numbers it; s: the successful attempt's seed), in the palette's colour c (cycling over
///     report::okabe_ito without its last colour, black, which the markers use): its validation
///     accuracy (y) against the training-step pct (x, on a fixed [0, 100] axis), through its
///     recorded curve (copy_attempt::curve) in pct order (stats::normalise_curve, as the tool
///     reads it: one point per pct; the curve as recorded when the trainer records in order). A
///     NaN accuracy is a gap in the line. Copies that are running or that failed have no curve
///     in the state and are absent;
///   - a scatter "final accuracy (<n>)": one black diamond per successful copy at its last pct
///     (x) and its final_accuracy (y), in copy order, with a tooltip naming the copy, its trial,
///     its seed and its final accuracy, so that the spread the coefficient of variation measures
///     is visible at the lines' end. It is left out when no copy has succeeded;
///   - a title: "Variance of <model_id>: <n> of <m> copies finished" while the copies train, and
///     once the measurement is done "Variance of <model_id>: <n> of <m> copies; CV <value>
///     (<verdict>), smoothness <value> (<verdict>)", where <model_id> is the workable try's spec's,
///     each value is variance_and_smoothness.json's variance_value / smoothness_value written by
///     report::format_number (the shortest text that reads back as the same double; "none" for
///     null), and each verdict is its variance_verdict / smoothness_verdict, followed by
///     ": <reason>" when the result gives one (variance_reason / smoothness_reason). Before a
///     model is workable: "Variance measurement: looking for a workable model (try <k> of
///     <max>)"; when none was: "Variance measurement: no workable model in <k> tries".
///
/// Every drawn number is the state's own value, written by report/plot.hpp as data-points
/// (lines) and data-x / data-y (markers), so a reader or a test recovers the exact doubles; the
/// title's numbers come from the same function that makes the tool's result
/// (variance_tool::result_of), so they equal variance_and_smoothness.json's. Any state (no try
/// yet, copies running, failed copies, a done measurement without a workable model) gives a
/// valid plot. The plot is 480 pixels high and 960 wide, or wider when the title needs it.

#include <proxytask/core/config.hpp>
#include <proxytask/workflow/variance_tool.hpp>

#include <string>
#include <string_view>

namespace proxytask::workflow {

/// The plot file, next to measurement_state.json.
inline constexpr std::string_view variance_curves_plot_file_name = "variance_curves.svg";

/// The copies' curves (see the file comment) as a standalone SVG document.
/// @param[in] s the measurement's state (measurement_state.json)
/// @param[in] o the tool's options: the number of tries allowed (in the title while looking for
///              a workable model) and the bootstrap settings the result is computed with (the
///              title uses none of the bootstrap's numbers, so any settings give the same plot)
/// @pre s.workable, when set, indexes s.tries
/// @throws proxytask::logic_error when the precondition fails
inline std::string variance_curves_svg(variance_state const& s, variance_options const& o = {});

}  // namespace proxytask::workflow

#include <proxytask/workflow/detail/variance_report.inl>
