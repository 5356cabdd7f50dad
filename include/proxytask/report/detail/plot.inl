#pragma once
// Definitions for report/plot.hpp. Included only from there.

#include <proxytask/report/plot.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace proxytask::report {
namespace detail {

// Approximate glyph width of the sans-serif font, as a fraction of the font size: enough to
// reserve room for tick labels and the legend without measuring text.
constexpr double glyph_width = 0.6;
constexpr double tick_font_size = 11.0;
constexpr double legend_row = 18.0;
constexpr double legend_swatch = 20.0;
constexpr std::string_view axis_color = "#333333";
constexpr std::string_view grid_color = "#e6e6e6";
constexpr std::string_view reference_color = "#000000";
// Drawing coordinates are kept within this many pixels of the plot area: data far outside a
// fixed range is clipped from view either way, and huge coordinates would only bloat the file.
constexpr double max_pixel = 1e6;

/// The number of code points in UTF-8 text (for width estimates).
inline std::size_t code_points(std::string_view text) noexcept {
  std::size_t n = 0;
  for (char const c : text) n += (static_cast<unsigned char>(c) & 0xC0u) != 0x80u;
  return n;
}

inline double text_width(std::string_view text, double font_size) noexcept {
  return static_cast<double>(code_points(text)) * font_size * glyph_width;
}

/// Maps `v` in [lo, hi] to [0, 1] without overflow (halves: the ends may be +-1e308).
inline double fraction(double v, double lo, double hi) noexcept {
  double const t = (v / 2 - lo / 2) / (hi / 2 - lo / 2);
  return std::isnan(t) ? 0.0 : t;
}

inline double clamp_pixel(double p) noexcept { return std::clamp(p, -max_pixel, max_pixel); }

/// Pixel mapping of one axis onto [0, length] (reversed for y, whose pixels grow downwards).
struct scale {
  double lo;
  double hi;
  double length;
  bool reversed;
  double operator()(double v) const noexcept {
    double const t = fraction(v, lo, hi);
    return clamp_pixel((reversed ? 1.0 - t : t) * length);
  }
};

inline bool finite(double a, double b) noexcept { return std::isfinite(a) && std::isfinite(b); }

inline void append_point(std::string& out, double px, double py) {
  if (!out.empty()) out += ' ';
  append_fixed(out, px, 2);
  out += ',';
  append_fixed(out, py, 2);
}

inline void append_data(std::string& out, std::initializer_list<double> values) {
  if (!out.empty()) out += ' ';
  bool first = true;
  for (double const v : values) {
    if (!first) out += ',';
    first = false;
    append_number(out, v);
  }
}

/// Maximal runs [begin, end) of indices where `ok(i)` holds.
template <class Ok>
std::vector<std::pair<std::size_t, std::size_t>> runs(std::size_t n, Ok ok) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  std::size_t i = 0;
  while (i < n) {
    while (i < n && !ok(i)) ++i;
    std::size_t const begin = i;
    while (i < n && ok(i)) ++i;
    if (i > begin) out.emplace_back(begin, i);
  }
  return out;
}

inline element stroke_line(double x1, double y1, double x2, double y2, std::string_view color,
                           double width) {
  element e("line");
  e.attr("x1", x1).attr("y1", y1).attr("x2", x2).attr("y2", y2);
  e.attr("stroke", color).attr("stroke-width", width);
  return e;
}

inline element text_at(double x, double y, std::string_view anchor, std::string_view content) {
  element e("text");
  e.attr("x", x).attr("y", y);
  if (anchor != "start") e.attr("text-anchor", anchor);
  e.text(content);
  return e;
}

/// A marker of `look.shape` centred on (cx, cy).
inline element marker_at(double cx, double cy, style const& look) {
  double const r = look.marker_size;
  std::string d;
  auto const move = [&d](char op, double x, double y) {
    if (!d.empty()) d += ' ';
    d += op;
    append_fixed(d, x, 2);
    d += ',';
    append_fixed(d, y, 2);
  };
  element e("path");
  switch (look.shape) {
    case marker::circle:
      e = element("circle");
      e.attr("cx", cx).attr("cy", cy).attr("r", r);
      break;
    case marker::square: {
      double const half = r * 0.9;
      e = element("rect");
      e.attr("x", cx - half).attr("y", cy - half).attr("width", 2 * half).attr("height", 2 * half);
      break;
    }
    case marker::triangle: {
      double const k = r * 1.25;
      move('M', cx, cy - k);
      move('L', cx + 0.866 * k, cy + 0.5 * k);
      move('L', cx - 0.866 * k, cy + 0.5 * k);
      d += " Z";
      e.attr("d", d);
      break;
    }
    case marker::diamond: {
      double const k = r * 1.25;
      move('M', cx, cy - k);
      move('L', cx + k, cy);
      move('L', cx, cy + k);
      move('L', cx - k, cy);
      d += " Z";
      e.attr("d", d);
      break;
    }
    case marker::cross:
      move('M', cx - r, cy - r);
      move('L', cx + r, cy + r);
      move('M', cx - r, cy + r);
      move('L', cx + r, cy - r);
      e.attr("d", d);
      break;
  }
  bool const filled = !look.hollow && look.shape != marker::cross;
  e.attr("fill", filled ? std::string_view(look.color) : std::string_view("none"));
  e.attr("stroke", look.color).attr("stroke-width", look.stroke_width);
  return e;
}

inline void check_style(style const& s) {
  PROXYTASK_EXPECTS(std::isfinite(s.stroke_width) && s.stroke_width >= 0,
                    "report: style.stroke_width must be finite and >= 0");
  PROXYTASK_EXPECTS(std::isfinite(s.marker_size) && s.marker_size >= 0,
                    "report: style.marker_size must be finite and >= 0");
  PROXYTASK_EXPECTS(s.fill_opacity >= 0 && s.fill_opacity <= 1,
                    "report: style.fill_opacity must be in [0, 1]");
}

inline void check_range(std::optional<interval> const& r) {
  if (!r) return;
  PROXYTASK_EXPECTS(std::isfinite(r->lo) && std::isfinite(r->hi) && r->lo < r->hi,
                    "report: a fixed axis range needs finite ends with lo < hi");
}

/// The smallest interval holding every finite value pushed (NaN ends when none).
struct extent {
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();
  void add(double v) noexcept {
    if (!std::isfinite(v)) return;
    if (!(lo <= v)) lo = v;
    if (!(hi >= v)) hi = v;
  }
};

}  // namespace detail

inline plot::plot(plot_options options) : options_(std::move(options)) {
  PROXYTASK_EXPECTS(options_.width >= 160 && options_.width <= 20000,
                    "report: plot width must be in [160, 20000] pixels");
  PROXYTASK_EXPECTS(options_.height >= 120 && options_.height <= 20000,
                    "report: plot height must be in [120, 20000] pixels");
  detail::check_range(options_.x.range);
  detail::check_range(options_.y.range);
}

inline plot& plot::add(series s) {
  detail::check_style(s.look);
  if (s.look.color.empty()) {
    if (s.what == kind::hline || s.what == kind::vline) {
      s.look.color = detail::reference_color;
    } else {
      s.look.color = palette_color(next_color_++);
    }
  }
  series_.push_back(std::move(s));
  return *this;
}

inline plot& plot::line(std::string name, std::span<double const> x, std::span<double const> y,
                        style s) {
  PROXYTASK_EXPECTS(x.size() == y.size(), "report: line x and y must have the same size");
  return add(series{kind::line,
                    std::move(name),
                    {x.begin(), x.end()},
                    {y.begin(), y.end()},
                    {},
                    {},
                    std::move(s)});
}

inline plot& plot::scatter(std::string name, std::span<double const> x, std::span<double const> y,
                           style s, std::vector<std::string> point_labels) {
  PROXYTASK_EXPECTS(x.size() == y.size(), "report: scatter x and y must have the same size");
  PROXYTASK_EXPECTS(point_labels.empty() || point_labels.size() == x.size(),
                    "report: scatter point_labels must be empty or one per point");
  return add(series{kind::scatter,
                    std::move(name),
                    {x.begin(), x.end()},
                    {y.begin(), y.end()},
                    {},
                    std::move(point_labels),
                    std::move(s)});
}

inline plot& plot::band(std::string name, std::span<double const> x, std::span<double const> low,
                        std::span<double const> high, style s) {
  PROXYTASK_EXPECTS(x.size() == low.size() && x.size() == high.size(),
                    "report: band x, low and high must have the same size");
  return add(series{kind::band,
                    std::move(name),
                    {x.begin(), x.end()},
                    {low.begin(), low.end()},
                    {high.begin(), high.end()},
                    {},
                    std::move(s)});
}

inline plot& plot::hline(double value, std::string label, style s) {
  return add(series{kind::hline, std::move(label), {}, {value}, {}, {}, std::move(s)});
}

inline plot& plot::vline(double value, std::string label, style s) {
  return add(series{kind::vline, std::move(label), {value}, {}, {}, {}, std::move(s)});
}

inline axis_ticks plot::x_ticks() const {
  if (options_.x.range) return fixed_ticks(*options_.x.range, options_.x.target_ticks);
  detail::extent e;
  for (auto const& s : series_) {
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      switch (s.what) {
        case kind::line:
        case kind::scatter:
          if (detail::finite(s.x[i], s.y[i])) e.add(s.x[i]);
          break;
        case kind::band:
          if (detail::finite(s.x[i], s.y[i]) && std::isfinite(s.high[i])) e.add(s.x[i]);
          break;
        case kind::vline: e.add(s.x[i]); break;
        case kind::hline: break;
      }
    }
  }
  return nice_ticks({e.lo, e.hi}, options_.x.target_ticks);
}

inline axis_ticks plot::y_ticks() const {
  if (options_.y.range) return fixed_ticks(*options_.y.range, options_.y.target_ticks);
  detail::extent e;
  for (auto const& s : series_) {
    switch (s.what) {
      case kind::line:
      case kind::scatter:
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (detail::finite(s.x[i], s.y[i])) e.add(s.y[i]);
        }
        break;
      case kind::band:
        for (std::size_t i = 0; i < s.x.size(); ++i) {
          if (detail::finite(s.x[i], s.y[i]) && std::isfinite(s.high[i])) {
            e.add(s.y[i]);
            e.add(s.high[i]);
          }
        }
        break;
      case kind::hline: e.add(s.y.front()); break;
      case kind::vline: break;
    }
  }
  return nice_ticks({e.lo, e.hi}, options_.y.target_ticks);
}

inline element plot::to_element() const {
  using detail::text_at;
  double const width = options_.width;
  double const height = options_.height;
  auto const xt = x_ticks();
  auto const yt = y_ticks();

  // Layout: margins sized from the text they hold, each capped so the plot area stays usable.
  double y_tick_width = 0;
  for (double const v : yt.values) {
    y_tick_width =
        std::max(y_tick_width, detail::text_width(format_number(v), detail::tick_font_size));
  }
  double legend_width = 0;
  std::size_t legend_entries = 0;
  if (options_.legend) {
    for (auto const& s : series_) {
      if (s.name.empty() || s.what == kind::hline || s.what == kind::vline) continue;
      ++legend_entries;
      legend_width =
          std::max(legend_width, 12 + detail::legend_swatch + 6 +
                                     detail::text_width(s.name, detail::tick_font_size) + 8);
    }
  }
  legend_width = std::min(legend_width, width / 3);
  double const left =
      std::min(8 + (options_.y.label.empty() ? 0 : 20) + y_tick_width + 8, width / 3);
  double const right = 16 + legend_width;
  double const top = options_.title.empty() ? 14 : 34;
  double const bottom = options_.x.label.empty() ? 30 : 50;
  double const area_w = std::max(width - left - right, 10.0);
  double const area_h = std::max(height - top - bottom, 10.0);
  detail::scale const sx{xt.lo, xt.hi, area_w, false};
  detail::scale const sy{yt.lo, yt.hi, area_h, true};

  element svg("svg");
  svg.attr("xmlns", svg_namespace)
      .attr("width", options_.width)
      .attr("height", options_.height)
      .attr("viewBox",
            "0 0 " + std::to_string(options_.width) + " " + std::to_string(options_.height))
      .attr("font-family", "sans-serif")
      .attr("font-size", 11)
      .attr("role", "img");
  if (!options_.title.empty()) {
    svg.attr("aria-label", options_.title);
    svg.add(element("title")).text(options_.title);
  }
  svg.add(element("rect"))
      .attr("class", "background")
      .attr("width", options_.width)
      .attr("height", options_.height)
      .attr("fill", "#ffffff");

  // Axes: grid lines, tick marks and labels, axis titles.
  {
    auto& ax = svg.add(element("g"));
    ax.attr("class", "axis").attr("data-axis", "x");
    ax.attr("data-min", format_number(xt.lo)).attr("data-max", format_number(xt.hi));
    for (double const v : xt.values) {
      double const px = left + sx(v);
      auto& tick = ax.add(element("g"));
      tick.attr("class", "tick").attr("data-value", format_number(v));
      tick.add(detail::stroke_line(px, top, px, top + area_h, detail::grid_color, 1))
          .attr("class", "grid");
      tick.add(detail::stroke_line(px, top + area_h, px, top + area_h + 4, detail::axis_color, 1));
      tick.add(text_at(px, top + area_h + 16, "middle", format_number(v)));
    }
    if (!options_.x.label.empty()) {
      ax.add(text_at(left + area_w / 2, top + area_h + 36, "middle", options_.x.label))
          .attr("class", "axis-label")
          .attr("font-size", 12);
    }
  }
  {
    auto& ax = svg.add(element("g"));
    ax.attr("class", "axis").attr("data-axis", "y");
    ax.attr("data-min", format_number(yt.lo)).attr("data-max", format_number(yt.hi));
    for (double const v : yt.values) {
      double const py = top + sy(v);
      auto& tick = ax.add(element("g"));
      tick.attr("class", "tick").attr("data-value", format_number(v));
      tick.add(detail::stroke_line(left, py, left + area_w, py, detail::grid_color, 1))
          .attr("class", "grid");
      tick.add(detail::stroke_line(left - 4, py, left, py, detail::axis_color, 1));
      tick.add(text_at(left - 6, py + 4, "end", format_number(v)));
    }
    if (!options_.y.label.empty()) {
      double const cy = top + area_h / 2;
      auto& label = ax.add(text_at(14, cy, "middle", options_.y.label));
      std::string rotate = "rotate(-90 14 ";
      append_fixed(rotate, cy, 2);
      rotate += ')';
      label.attr("class", "axis-label").attr("font-size", 12).attr("transform", rotate);
    }
  }

  // Lines, bands and reference lines, clipped to the plot area (a nested <svg> clips to its
  // viewport, which needs no id: ids would clash between plots inlined into one page).
  auto& area = svg.add(element("svg"));
  area.attr("class", "plot-area")
      .attr("x", left)
      .attr("y", top)
      .attr("width", area_w)
      .attr("height", area_h)
      .attr("overflow", "hidden");
  auto start_series = [](element& parent, series const& s, std::string_view kind_name) -> element& {
    auto& g = parent.add(element("g"));
    g.attr("class", "series").attr("data-kind", kind_name).attr("data-name", s.name);
    return g;
  };
  for (auto const& s : series_) {
    if (s.what == kind::line) {
      auto& g = start_series(area, s, "line");
      auto const pieces =
          detail::runs(s.x.size(), [&s](std::size_t i) { return detail::finite(s.x[i], s.y[i]); });
      std::size_t drawn = 0;
      for (auto const& [b, e] : pieces) {
        drawn += e - b;
        if (e - b == 1) {
          auto& c = g.add(element("circle"));
          c.attr("class", "lone-point")
              .attr("cx", sx(s.x[b]))
              .attr("cy", sy(s.y[b]))
              .attr("r", std::max(s.look.stroke_width, 1.5))
              .attr("fill", s.look.color)
              .attr("data-x", format_number(s.x[b]))
              .attr("data-y", format_number(s.y[b]));
          continue;
        }
        std::string points;
        std::string data;
        for (std::size_t i = b; i < e; ++i) {
          detail::append_point(points, sx(s.x[i]), sy(s.y[i]));
          detail::append_data(data, {s.x[i], s.y[i]});
        }
        auto& p = g.add(element("polyline"));
        p.attr("class", "line-piece")
            .attr("points", points)
            .attr("fill", "none")
            .attr("stroke", s.look.color)
            .attr("stroke-width", s.look.stroke_width)
            .attr("stroke-linejoin", "round");
        if (s.look.dashed) p.attr("stroke-dasharray", "6 4");
        p.attr("data-points", data);
      }
      g.attr("data-skipped", static_cast<int>(s.x.size() - drawn));
    } else if (s.what == kind::band) {
      auto& g = start_series(area, s, "band");
      auto const pieces = detail::runs(s.x.size(), [&s](std::size_t i) {
        return detail::finite(s.x[i], s.y[i]) && std::isfinite(s.high[i]);
      });
      std::size_t drawn = 0;
      for (auto const& [b, e] : pieces) {
        drawn += e - b;
        std::string data;
        for (std::size_t i = b; i < e; ++i) detail::append_data(data, {s.x[i], s.y[i], s.high[i]});
        if (e - b == 1) {
          double const px = sx(s.x[b]);
          g.add(detail::stroke_line(px, sy(s.y[b]), px, sy(s.high[b]), s.look.color, 2))
              .attr("class", "lone-band")
              .attr("stroke-opacity", s.look.fill_opacity)
              .attr("data-points", data);
          continue;
        }
        std::string points;
        for (std::size_t i = b; i < e; ++i) detail::append_point(points, sx(s.x[i]), sy(s.high[i]));
        for (std::size_t i = e; i-- > b;) detail::append_point(points, sx(s.x[i]), sy(s.y[i]));
        g.add(element("polygon"))
            .attr("class", "band-piece")
            .attr("points", points)
            .attr("fill", s.look.color)
            .attr("fill-opacity", s.look.fill_opacity)
            .attr("stroke", "none")
            .attr("data-points", data);
      }
      g.attr("data-skipped", static_cast<int>(s.x.size() - drawn));
    }
  }
  for (auto const& s : series_) {
    bool const horizontal = s.what == kind::hline;
    if (!horizontal && s.what != kind::vline) continue;
    double const value = horizontal ? s.y.front() : s.x.front();
    if (!std::isfinite(value)) continue;
    auto& g = area.add(element("g"));
    g.attr("class", "reference")
        .attr("data-axis", horizontal ? "y" : "x")
        .attr("data-value", format_number(value));
    element rule = horizontal ? detail::stroke_line(0, sy(value), area_w, sy(value), s.look.color,
                                                    s.look.stroke_width)
                              : detail::stroke_line(sx(value), 0, sx(value), area_h, s.look.color,
                                                    s.look.stroke_width);
    if (s.look.dashed) rule.attr("stroke-dasharray", "6 4");
    g.add(std::move(rule));
    if (s.name.empty()) continue;
    if (horizontal) {
      double const py = sy(value);
      g.add(text_at(area_w - 4, py < 16 ? py + 13 : py - 4, "end", s.name))
          .attr("fill", s.look.color)
          .attr("font-size", 10);
    } else {
      double const px = sx(value);
      bool const near_right = px > area_w - 80;
      g.add(text_at(near_right ? px - 4 : px + 4, 12, near_right ? "end" : "start", s.name))
          .attr("fill", s.look.color)
          .attr("font-size", 10);
    }
  }

  // Scatter markers, in their own viewport grown by the largest marker, so that a point on the
  // axis' end is drawn whole.
  double pad = 1;
  for (auto const& s : series_) {
    if (s.what == kind::scatter)
      pad = std::max(pad, s.look.marker_size * 1.25 + s.look.stroke_width);
  }
  auto& markers = svg.add(element("svg"));
  markers.attr("class", "plot-markers")
      .attr("x", left - pad)
      .attr("y", top - pad)
      .attr("width", area_w + 2 * pad)
      .attr("height", area_h + 2 * pad)
      .attr("overflow", "hidden");
  for (auto const& s : series_) {
    if (s.what != kind::scatter) continue;
    auto& g = start_series(markers, s, "scatter");
    std::size_t drawn = 0;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!detail::finite(s.x[i], s.y[i])) continue;
      ++drawn;
      auto& m = g.add(detail::marker_at(pad + sx(s.x[i]), pad + sy(s.y[i]), s.look));
      m.attr("data-x", format_number(s.x[i])).attr("data-y", format_number(s.y[i]));
      if (!s.labels.empty() && !s.labels[i].empty()) m.add(element("title")).text(s.labels[i]);
    }
    g.attr("data-skipped", static_cast<int>(s.x.size() - drawn));
  }

  svg.add(element("rect"))
      .attr("class", "frame")
      .attr("x", left)
      .attr("y", top)
      .attr("width", area_w)
      .attr("height", area_h)
      .attr("fill", "none")
      .attr("stroke", detail::axis_color);

  if (!options_.title.empty()) {
    svg.add(text_at(width / 2, 22, "middle", options_.title))
        .attr("class", "title")
        .attr("font-size", 14)
        .attr("font-weight", "bold");
  }

  if (legend_entries > 0) {
    auto& legend = svg.add(element("g"));
    legend.attr("class", "legend");
    double const x0 = left + area_w + 12;
    double y = top + 8;
    for (auto const& s : series_) {
      if (s.name.empty() || s.what == kind::hline || s.what == kind::vline) continue;
      auto& entry = legend.add(element("g"));
      entry.attr("class", "legend-entry");
      switch (s.what) {
        case kind::line: {
          auto& l = entry.add(detail::stroke_line(x0, y, x0 + detail::legend_swatch, y,
                                                  s.look.color, s.look.stroke_width));
          if (s.look.dashed) l.attr("stroke-dasharray", "6 4");
          entry.attr("data-kind", "line");
          break;
        }
        case kind::band:
          entry.add(element("rect"))
              .attr("x", x0)
              .attr("y", y - 6)
              .attr("width", detail::legend_swatch)
              .attr("height", 12)
              .attr("fill", s.look.color)
              .attr("fill-opacity", s.look.fill_opacity);
          entry.attr("data-kind", "band");
          break;
        default:
          entry.add(detail::marker_at(x0 + detail::legend_swatch / 2, y, s.look));
          entry.attr("data-kind", "scatter");
          break;
      }
      entry.attr("data-name", s.name);
      entry.add(text_at(x0 + detail::legend_swatch + 6, y + 4, "start", s.name));
      y += detail::legend_row;
    }
  }
  return svg;
}

}  // namespace proxytask::report
