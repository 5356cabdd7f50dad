#pragma once
/// @file
/// A 2-D plot written as a self-contained SVG: title, axis labels, linear axes with nice ticks
/// (ticks.hpp), lines, scatter markers, bands (a filled area between two curves, such as a
/// confidence interval), horizontal and vertical reference lines, and a legend. It needs nothing
/// but the standard library, and the SVG references no external resource, so it can be inlined
/// into an HTML page that works offline.
///
/// What the output promises (plot_test.cpp checks each):
/// - well-formed XML, the same bytes for the same input, no NaN or infinity anywhere;
/// - non-finite points are skipped: a line or band is broken into separate pieces at them;
/// - degenerate data (no series, empty series, one point, all values equal, all NaN) still gives
///   a valid plot, with the axis ranges widened as nice_ticks does;
/// - every drawn datum carries its value as written by format_number (shortest round trip), so a
///   reader recovers the exact double with std::from_chars:
///   - `<g class="series" data-kind="line|scatter|band" data-name="..." data-skipped="<count>">`
///     wraps each series; data-skipped counts the points left out for a non-finite value;
///   - a line piece is `<polyline class="line-piece" data-points="x,y x,y ...">`; a piece of one
///     point is `<circle class="lone-point" data-x=".." data-y="..">`;
///   - a scatter point is a marker (circle, rect, or path) with `data-x`, `data-y` and,
///     when the point has a label, a `<title>` child (a tooltip in browsers);
///   - a band piece is `<polygon class="band-piece" data-points="x,low,high ...">` (upper curve
///     forwards, lower curve backwards); a piece of one point is `<line class="lone-band" ...>`
///     with the same data-points;
///   - a reference line is `<g class="reference" data-axis="x|y" data-value="..">`;
///   - each axis is `<g class="axis" data-axis="x|y" data-min=".." data-max="..">` with one
///     `<g class="tick" data-value="..">` per tick, whose label text is format_number(value).
///
/// Data outside an axis range fixed by the caller is clipped from view (not from the data-*
/// attributes). Drawing coordinates are pixels rounded to 0.01.
///
/// @code
/// namespace rp = proxytask::report;
/// rp::plot p({.title = "Rank correlation over training",
///             .x = {.label = "training step (%)", .range = rp::interval{0, 100}},
///             .y = {.label = "Kendall tau", .range = rp::interval{-1, 1}}});
/// p.band("95% CI", pct, ci_low, ci_high, {.color = std::string(rp::palette_color(0))});
/// p.line("proxy A", pct, tau, {.color = std::string(rp::palette_color(0))});
/// p.hline(0.65, "threshold 0.65", {.dashed = true});
/// p.scatter("kept", latency, accuracy, {.shape = rp::marker::circle}, model_names);
/// std::string svg = p.to_svg();
/// @endcode

#include <proxytask/core/config.hpp>
#include <proxytask/report/svg.hpp>
#include <proxytask/report/ticks.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace proxytask::report {

/// The Okabe-Ito colour-blind-safe palette, in the order series take it (black, which reference
/// lines use by default, comes last; yellow, weak on white, next to last).
inline constexpr std::array<std::string_view, 8> okabe_ito = {
    "#E69F00",  // orange
    "#56B4E9",  // sky blue
    "#009E73",  // bluish green
    "#0072B2",  // blue
    "#D55E00",  // vermillion
    "#CC79A7",  // reddish purple
    "#F0E442",  // yellow
    "#000000",  // black
};

/// The palette's colour for series `index` (cycling).
inline std::string_view palette_color(std::size_t index) noexcept {
  return okabe_ito[index % okabe_ito.size()];
}

/// A scatter marker's shape.
enum class marker { circle, square, triangle, diamond, cross };

/// How a series is drawn. Each field says which kinds use it; the others ignore it.
struct style {
  /// Any SVG colour ("#0072B2", "red"). Empty: lines, scatters and bands take the palette's
  /// next colour, in the order they were added; reference lines are black.
  std::string color{};
  bool dashed = false;            ///< line, reference line: dashed stroke
  double stroke_width = 1.5;      ///< line, reference line, marker outline: in pixels
  marker shape = marker::circle;  ///< scatter
  double marker_size = 3.5;       ///< scatter: the marker's radius in pixels
  bool hollow = false;            ///< scatter: outline only (e.g. removed models)
  double fill_opacity = 0.25;     ///< band: opacity of the fill, in [0, 1]
};

/// One axis.
struct axis_options {
  std::string label{};              ///< the axis title; empty: none
  std::optional<interval> range{};  ///< a fixed range (lo < hi); nullopt: nice range from the data
  int target_ticks = 5;             ///< about how many ticks (clamped to [2, 50])
};

/// The whole plot.
struct plot_options {
  std::string title{};  ///< above the plot; empty: none
  axis_options x{};     ///< horizontal axis
  axis_options y{};     ///< vertical axis
  int width = 640;      ///< pixels, in [160, 20000]
  int height = 400;     ///< pixels, in [120, 20000]
  bool legend = true;   ///< a legend of the named lines, scatters and bands, right of the plot
};

/// A plot under construction: add series, then write it with to_svg. Series are drawn in the
/// order they were added: bands and lines first, then reference lines, then scatter markers
/// (so that markers stay visible over a band).
class plot {
 public:
  /// An empty plot.
  /// @pre options.width and options.height in range; fixed axis ranges finite with lo < hi
  /// @throws proxytask::logic_error otherwise
  explicit plot(plot_options options = {});

  /// The options given at construction.
  plot_options const& options() const noexcept { return options_; }

  /// Adds a line through (x[i], y[i]) in order, broken at points with a non-finite x or y.
  /// @param[in] name the legend entry; empty: not in the legend
  /// @pre x.size() == y.size()
  /// @returns *this, for chaining
  plot& line(std::string name, std::span<double const> x, std::span<double const> y, style s = {});

  /// Adds markers at (x[i], y[i]); points with a non-finite x or y are skipped.
  /// @param[in] point_labels empty, or one tooltip per point (an empty string: no tooltip)
  /// @pre x.size() == y.size(); point_labels is empty or of the same size
  /// @returns *this, for chaining
  plot& scatter(std::string name, std::span<double const> x, std::span<double const> y,
                style s = {}, std::vector<std::string> point_labels = {});

  /// Adds a filled band between low[i] and high[i] over x[i], broken at points where any of the
  /// three is non-finite.
  /// @pre x.size() == low.size() == high.size()
  /// @returns *this, for chaining
  plot& band(std::string name, std::span<double const> x, std::span<double const> low,
             std::span<double const> high, style s = {});

  /// Adds a horizontal reference line at y = `value` across the plot, with `label` above its
  /// right end. A non-finite value draws nothing. With an automatic y range, the range
  /// includes `value`.
  /// @returns *this, for chaining
  plot& hline(double value, std::string label = {}, style s = {});

  /// Adds a vertical reference line at x = `value`, with `label` at its top.
  /// @returns *this, for chaining
  plot& vline(double value, std::string label = {}, style s = {});

  /// The ticks the axes get (from the fixed ranges, or from the data and reference lines).
  axis_ticks x_ticks() const;
  /// @copydoc x_ticks
  axis_ticks y_ticks() const;

  /// The plot as an `<svg>` element, to embed into a larger document.
  element to_element() const;

  /// The plot as a standalone SVG document (no XML declaration, so that it can also be pasted
  /// into HTML as is).
  std::string to_svg() const { return to_element().to_string(); }

 private:
  enum class kind { line, scatter, band, hline, vline };
  struct series {
    kind what;
    std::string name;
    std::vector<double> x;
    std::vector<double> y;     // line, scatter: y; band: low
    std::vector<double> high;  // band only
    std::vector<std::string> labels;
    style look;
  };
  plot& add(series s);

  plot_options options_;
  std::vector<series> series_;
  std::size_t next_color_ = 0;
};

}  // namespace proxytask::report

#include <proxytask/report/detail/plot.inl>
