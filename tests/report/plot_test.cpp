#include <proxytask/report/plot.hpp>
#include <proxytask/report/svg.hpp>
#include <proxytask/report/ticks.hpp>

#include <report/xml_check.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pt = proxytask;
namespace rp = proxytask::report;
using pt::testing::parse_xml;
using pt::testing::xml_document;
using pt::testing::xml_node;

namespace {

constexpr double qnan = std::numeric_limits<double>::quiet_NaN();
constexpr double inf_v = std::numeric_limits<double>::infinity();

using doubles = std::vector<double>;

/// Parses the whole of `text` as a double, failing the test when it is not one.
double parse_double(std::string_view text) {
  double v = qnan;
  auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  EXPECT_TRUE(ec == std::errc{} && end == text.data() + text.size())
      << "not a number: '" << text << "'";
  return v;
}

/// Splits on `sep`, dropping empty pieces.
std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// "x,y x,y ..." (or triples) -> one vector per point.
std::vector<doubles> parse_tuples(std::string_view text) {
  std::vector<doubles> out;
  for (auto const& point : split(text, ' ')) {
    doubles values;
    for (auto const& v : split(point, ',')) values.push_back(parse_double(v));
    out.push_back(values);
  }
  return out;
}

/// All text inside `node`, without the line breaks the writer puts between elements.
std::string text_of(xml_node const* node) {
  auto text = node->all_text();
  auto const first = text.find_first_not_of(" \n");
  if (first == std::string::npos) return {};
  return text.substr(first, text.find_last_not_of(" \n") - first + 1);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Parses an SVG produced by the plot and checks what must hold for every plot: well-formed,
/// an <svg> root in the SVG namespace, no NaN or infinity, every coordinate a finite number,
/// axes with lo < hi.
xml_node parse_plot(std::string const& svg) {
  auto doc = parse_xml(svg);
  EXPECT_TRUE(doc.ok) << doc.error << " at byte " << doc.offset << " of:\n" << svg;
  if (!doc.ok) return {};
  EXPECT_EQ(doc.root.name, "svg");
  EXPECT_EQ(doc.root.attr("xmlns"), std::string(rp::svg_namespace));
  auto const text = lower(svg);
  EXPECT_EQ(text.find("nan"), std::string::npos);
  EXPECT_EQ(text.find("inf"), std::string::npos);
  for (auto const* n : doc.root.find_all()) {
    for (auto const& [key, value] : n->attributes) {
      if (key == "x" || key == "y" || key == "x1" || key == "x2" || key == "y1" || key == "y2" ||
          key == "cx" || key == "cy" || key == "r" || key == "width" || key == "height") {
        EXPECT_TRUE(std::isfinite(parse_double(value))) << key << "=" << value;
      }
      if (key == "points" || key == "data-points") {
        for (auto const& p : parse_tuples(value)) {
          for (double const v : p) EXPECT_TRUE(std::isfinite(v)) << key << "=" << value;
        }
      }
    }
  }
  auto const axes = doc.root.find_by_attr("class", "axis");
  EXPECT_EQ(axes.size(), 2u);
  for (auto const* a : axes) {
    EXPECT_LT(parse_double(a->attr("data-min").value_or("")),
              parse_double(a->attr("data-max").value_or("")));
    EXPECT_GE(a->find_by_attr("class", "tick").size(), 2u);
  }
  return doc.root;
}

std::vector<xml_node const*> series_of(xml_node const& root, std::string_view kind) {
  std::vector<xml_node const*> out;
  for (auto const* g : root.find_by_attr("class", "series")) {
    if (g->attr("data-kind") == std::string(kind)) out.push_back(g);
  }
  return out;
}

xml_node const* axis_of(xml_node const& root, std::string_view which) {
  for (auto const* a : root.find_by_attr("class", "axis")) {
    if (a->attr("data-axis") == std::string(which)) return a;
  }
  ADD_FAILURE() << "no axis " << which;
  return &root;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Ticks

TEST(NiceTicks, KnownDataRangesGiveKnownTicks) {
  auto t = rp::nice_ticks({0.13, 0.87});
  EXPECT_EQ(t.values, (doubles{0, 0.2, 0.4, 0.6, 0.8, 1}));
  EXPECT_EQ(t.lo, 0);
  EXPECT_EQ(t.hi, 1);
  EXPECT_EQ(t.step, 0.2);

  EXPECT_EQ(rp::nice_ticks({3, 97}).values, (doubles{0, 20, 40, 60, 80, 100}));
  EXPECT_EQ(rp::nice_ticks({-0.37, 0.91}).values, (doubles{-0.5, 0, 0.5, 1}));
  EXPECT_EQ(rp::nice_ticks({1200, 1800}).values, (doubles{1200, 1400, 1600, 1800}));
  EXPECT_EQ(rp::nice_ticks({0, 5e-7}).values, (doubles{0, 1e-7, 2e-7, 3e-7, 4e-7, 5e-7}));
  EXPECT_EQ(rp::nice_ticks({0.3, 0.7}).values, (doubles{0.3, 0.4, 0.5, 0.6, 0.7}));
  // lo > hi is swapped.
  EXPECT_EQ(rp::nice_ticks({97, 3}).values, (doubles{0, 20, 40, 60, 80, 100}));
  // More ticks asked for, a finer step.
  EXPECT_EQ(rp::nice_ticks({0, 1}, 11).values,
            (doubles{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1}));
}

TEST(NiceTicks, FixedRangesKeepTheirEnds) {
  auto t = rp::fixed_ticks({-1, 1});
  EXPECT_EQ(t.values, (doubles{-1, -0.5, 0, 0.5, 1}));
  EXPECT_EQ(t.lo, -1);
  EXPECT_EQ(t.hi, 1);
  EXPECT_EQ(rp::fixed_ticks({0, 100}).values, (doubles{0, 20, 40, 60, 80, 100}));
  t = rp::fixed_ticks({0.05, 0.95});
  EXPECT_EQ(t.values, (doubles{0.2, 0.4, 0.6, 0.8}));
  EXPECT_EQ(t.lo, 0.05);
  EXPECT_EQ(t.hi, 0.95);
  // An end that is a multiple of the step is a tick, despite 0.3 / 0.1 < 3 in doubles.
  EXPECT_EQ(rp::fixed_ticks({0.3, 0.7}).values, (doubles{0.3, 0.4, 0.5, 0.6, 0.7}));
  EXPECT_THROW(rp::fixed_ticks({1, 1}), pt::logic_error);
  EXPECT_THROW(rp::fixed_ticks({1, 0}), pt::logic_error);
  EXPECT_THROW(rp::fixed_ticks({0, qnan}), pt::logic_error);
}

TEST(NiceTicks, TickLabelsAreShortDecimals) {
  std::vector<std::string> labels;
  for (double const v : rp::nice_ticks({0.13, 0.87}).values) labels.push_back(rp::format_number(v));
  EXPECT_EQ(labels, (std::vector<std::string>{"0", "0.2", "0.4", "0.6", "0.8", "1"}));
  EXPECT_EQ(rp::format_number(rp::nice_ticks({0, 5e-7}).values[1]), "1e-07");
  EXPECT_EQ(rp::format_number(rp::nice_ticks({0, 3e12}).values[1]), "1e+12");
}

TEST(NiceTicks, DegenerateRangesAreWidened) {
  auto const check = [](rp::axis_ticks const& t, double must_cover) {
    EXPECT_TRUE(std::isfinite(t.lo) && std::isfinite(t.hi));
    EXPECT_LT(t.lo, t.hi);
    EXPECT_GE(t.values.size(), 2u);
    EXPECT_EQ(t.values.front(), t.lo);
    EXPECT_EQ(t.values.back(), t.hi);
    EXPECT_TRUE(std::is_sorted(t.values.begin(), t.values.end()));
    EXPECT_EQ(std::adjacent_find(t.values.begin(), t.values.end()), t.values.end());
    if (std::isfinite(must_cover)) {
      EXPECT_LE(t.lo, must_cover);
      EXPECT_GE(t.hi, must_cover);
    }
  };
  check(rp::nice_ticks({5, 5}), 5);
  check(rp::nice_ticks({-3e-9, -3e-9}), -3e-9);
  check(rp::nice_ticks({1, 1 + 1e-15}), 1);
  check(rp::nice_ticks({1e15, 1e15 + 1}), 1e15);
  check(rp::nice_ticks({0, 0}), 0);
  EXPECT_EQ(rp::nice_ticks({0, 0}).values, (doubles{-1, -0.5, 0, 0.5, 1}));
  EXPECT_EQ(rp::nice_ticks({qnan, qnan}).values, (doubles{0, 0.2, 0.4, 0.6, 0.8, 1}));
  check(rp::nice_ticks({qnan, 7}), 7);
  check(rp::nice_ticks({-inf_v, inf_v}), qnan);
  check(rp::nice_ticks({-1e308, 1e308}), 0);
  check(rp::nice_ticks({-std::numeric_limits<double>::max(), 0}), qnan);
  check(rp::nice_ticks({0, 5e-324}), 0);
  check(rp::nice_ticks({1e-300, 1e-300}), qnan);
  check(rp::nice_ticks({0, 1}, 0), 0.5);
  check(rp::nice_ticks({0, 1}, 1'000'000), 0.5);
}

TEST(NiceTicks, CoverRandomRangesWithFewDistinctTicks) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::uniform_int_distribution<int> exponent(-12, 12);
  for (int i = 0; i < 2000; ++i) {
    double const scale = std::pow(10.0, exponent(rng));
    double const a = unit(rng) * scale;
    double const b = a + std::abs(unit(rng)) * scale * std::pow(10.0, -exponent(rng) % 4);
    auto const t = rp::nice_ticks({a, b});
    ASSERT_LE(t.lo, std::min(a, b)) << a << " " << b;
    ASSERT_GE(t.hi, std::max(a, b)) << a << " " << b;
    ASSERT_GE(t.values.size(), 2u);
    ASSERT_LE(t.values.size(), 13u) << a << " " << b;
    ASSERT_EQ(std::adjacent_find(t.values.begin(), t.values.end(),
                                 [](double x, double y) { return !(x < y); }),
              t.values.end());
    // The step is 1, 2 or 5 times a power of ten.
    double const mantissa = t.step / std::pow(10.0, std::floor(std::log10(t.step) + 1e-9));
    ASSERT_TRUE(std::abs(mantissa - 1) < 1e-9 || std::abs(mantissa - 2) < 1e-9 ||
                std::abs(mantissa - 5) < 1e-9)
        << t.step;
  }
}

// ---------------------------------------------------------------------------------------------
// The SVG writer

TEST(SvgWriter, EscapesTheFiveSpecialCharacters) {
  EXPECT_EQ(rp::escape(R"(a<b & "c" 'd' >)"), "a&lt;b &amp; &quot;c&quot; &apos;d&apos; &gt;");
  EXPECT_EQ(rp::escape("plain text, 0.5%"), "plain text, 0.5%");
  EXPECT_EQ(rp::escape("&amp;"), "&amp;amp;");
}

TEST(SvgWriter, ReplacesCharactersXmlCannotCarry) {
  EXPECT_EQ(rp::escape(std::string("a\0b", 3)),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(rp::escape("a\x01\x1F"
                       "b"),
            "a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(rp::escape("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
  EXPECT_EQ(rp::escape("\xC3\xA9 \xCF\x84 \xF0\x9F\x98\x80"), "\xC3\xA9 \xCF\x84 \xF0\x9F\x98\x80");
  EXPECT_EQ(rp::escape("bad \xFF \xC3 end"), "bad \xEF\xBF\xBD \xEF\xBF\xBD end");
  EXPECT_EQ(rp::escape("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                  // overlong '/'
  EXPECT_EQ(rp::escape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  // Whatever the bytes, the result is well-formed inside an element.
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  auto const doc = parse_xml("<t a=\"" + rp::escape(all) + "\">" + rp::escape(all) + "</t>");
  EXPECT_TRUE(doc.ok) << doc.error;
}

TEST(SvgWriter, WritesNumbersShortAndLocaleFree) {
  EXPECT_EQ(rp::format_number(0.1), "0.1");
  EXPECT_EQ(rp::format_number(25.0), "25");
  EXPECT_EQ(rp::format_number(-0.0), "0");
  EXPECT_EQ(rp::format_number(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(rp::format_number(1e21), "1e+21");
  EXPECT_EQ(rp::format_number(-2.5e-8), "-2.5e-08");
  EXPECT_THROW(rp::format_number(qnan), pt::logic_error);
  EXPECT_THROW(rp::format_number(-inf_v), pt::logic_error);

  EXPECT_EQ(rp::format_fixed(12.5, 2), "12.5");
  EXPECT_EQ(rp::format_fixed(3.0, 2), "3");
  EXPECT_EQ(rp::format_fixed(-0.001, 2), "0");
  EXPECT_EQ(rp::format_fixed(0.125, 2), "0.12");  // round half to even, as printf
  EXPECT_EQ(rp::format_fixed(1234567.891, 1), "1234567.9");
  EXPECT_EQ(rp::format_fixed(-7, 0), "-7");
  EXPECT_THROW(rp::format_fixed(inf_v, 2), pt::logic_error);
}

TEST(SvgWriter, BuildsElementsWithAttributesTextAndChildren) {
  rp::element root("svg");
  root.attr("xmlns", rp::svg_namespace).attr("width", 100).attr("height", 50.5);
  root.add(rp::element("text")).attr("x", 10.0).attr("class", "a&b").text("x < y");
  root.add(rp::element("circle")).attr("r", 2.125).attr("r", 3.0);  // replaced, not repeated
  EXPECT_EQ(root.to_string(),
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100\" height=\"50.5\">\n"
            "<text x=\"10\" class=\"a&amp;b\">x &lt; y</text>\n"
            "<circle r=\"3\"/>\n"
            "</svg>");
  EXPECT_EQ(*root.children()[1].find_attr("r"), "3");
  EXPECT_EQ(root.children()[0].find_attr("y"), nullptr);
  EXPECT_THROW(rp::element("1abc"), pt::logic_error);
  EXPECT_THROW(rp::element("a b"), pt::logic_error);
  EXPECT_THROW(rp::element("t").attr("a\"", "v"), pt::logic_error);
  EXPECT_THROW(rp::element("t").attr("x", qnan), pt::logic_error);
}

// ---------------------------------------------------------------------------------------------
// The checker itself

TEST(XmlCheck, AcceptsWellFormedDocumentsAndDecodesThem) {
  auto const doc = parse_xml(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE svg>\n<!-- a comment -->\n"
      "<a x='1' y = \"&lt;&amp;&gt;&quot;&apos;&#65;&#x42;\">"
      "t&amp;<b/><c k=\"v\">in<![CDATA[<raw&>]]></c><?pi data?></a>\n<!-- after -->\n");
  ASSERT_TRUE(doc.ok) << doc.error << " at " << doc.offset;
  EXPECT_EQ(doc.root.name, "a");
  EXPECT_EQ(doc.root.attr("x"), "1");
  EXPECT_EQ(doc.root.attr("y"), "<&>\"'AB");
  EXPECT_EQ(doc.root.text, "t&");
  ASSERT_EQ(doc.root.children.size(), 2u);
  EXPECT_EQ(doc.root.children[1].text, "in<raw&>");
  EXPECT_EQ(doc.root.find_all("c").size(), 1u);
  EXPECT_EQ(doc.root.find_by_attr("k", "v").size(), 1u);
  EXPECT_EQ(doc.root.all_text(), "t&in<raw&>");
}

TEST(XmlCheck, RejectsBrokenXml) {
  std::vector<std::string> const broken = {
      "",
      "just text",
      "<a>",
      "<a><b></a></b>",
      "<a></b>",
      "<a x=1/>",
      "<a x=\"1/>",
      "<a x=\"<\"/>",
      "<a x=\"1\" x=\"2\"/>",
      "<a x=\"1\"y=\"2\"/>",
      "<a x/>",
      "<a>&foo;</a>",
      "<a>& b</a>",
      "<a>&amp</a>",
      "<a>&#xD800;</a>",
      "<a>&#1;</a>",
      "<a>&#x110000;</a>",
      "<a>&#12a;</a>",
      "<a/><b/>",
      "<a/>text",
      "text<a/>",
      "<a><!-- x -- y --></a>",
      "<a>]]></a>",
      "<a>\x01</a>",
      "<a>\xFF</a>",
      "<a>\xC3</a>",
      "<a><![CDATA[ x </a>",
      "<1a/>",
      "< a/>",
      "<a></a >x",
      "<a><?xml version=\"1.0\"?></a>",
      "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
      "<a/><!DOCTYPE a>",
  };
  for (auto const& text : broken) {
    auto const doc = parse_xml(text);
    EXPECT_FALSE(doc.ok) << "accepted: " << text;
    EXPECT_FALSE(doc.error.empty()) << text;
  }
}

// ---------------------------------------------------------------------------------------------
// Plots

TEST(Plot, EscapesTitlesLabelsAndNames) {
  std::string const nasty = "Kendall \xCF\x84 <0.65> & \"x\" 'y'";
  rp::plot p({.title = nasty, .x = {.label = "x & <steps>"}, .y = {.label = "\"y\" 'axis'"}});
  p.line(nasty, doubles{0, 1}, doubles{0, 1});
  p.scatter("s", doubles{0.5}, doubles{0.5}, {}, {"model <7> & \"best\""});
  p.hline(0.25, "thr <0.25> &");
  auto const svg = p.to_svg();
  EXPECT_EQ(svg.find("<0.65>"), std::string::npos);
  auto const root = parse_plot(svg);
  EXPECT_EQ(root.attr("aria-label"), nasty);
  ASSERT_FALSE(root.find_all("title").empty());
  EXPECT_EQ(root.find_all("title").front()->text, nasty);
  EXPECT_EQ(root.find_by_attr("class", "title").at(0)->text, nasty);
  auto const labels = root.find_by_attr("class", "axis-label");
  ASSERT_EQ(labels.size(), 2u);
  EXPECT_EQ(labels[0]->text, "x & <steps>");
  EXPECT_EQ(labels[1]->text, "\"y\" 'axis'");
  EXPECT_EQ(series_of(root, "line").at(0)->attr("data-name"), nasty);
  auto const legend = root.find_by_attr("class", "legend-entry");
  ASSERT_EQ(legend.size(), 2u);
  EXPECT_EQ(legend[0]->attr("data-name"), nasty);
  EXPECT_EQ(text_of(legend[0]), nasty);
  auto const point = series_of(root, "scatter").at(0)->children.at(0);
  EXPECT_EQ(point.find_all("title").at(0)->text, "model <7> & \"best\"");
  EXPECT_EQ(text_of(root.find_by_attr("class", "reference").at(0)), "thr <0.25> &");
}

TEST(Plot, LinesBreakAtNonFinitePoints) {
  rp::plot p;
  p.line("l", doubles{0, 1, 2, 3, 4, 5, 6, qnan, 8}, doubles{0, 1, qnan, 3, 4, inf_v, 6, 7, 8});
  auto const root = parse_plot(p.to_svg());
  auto const g = series_of(root, "line").at(0);
  EXPECT_EQ(g->attr("data-skipped"), "3");
  auto const pieces = g->find_by_attr("class", "line-piece");
  ASSERT_EQ(pieces.size(), 2u);
  EXPECT_EQ(parse_tuples(pieces[0]->attr("data-points").value()),
            (std::vector<doubles>{{0, 0}, {1, 1}}));
  EXPECT_EQ(parse_tuples(pieces[1]->attr("data-points").value()),
            (std::vector<doubles>{{3, 3}, {4, 4}}));
  EXPECT_EQ(parse_tuples(pieces[0]->attr("points").value()).size(), 2u);
  // Single finite points between gaps stay visible, as lone points.
  auto const lone = g->find_by_attr("class", "lone-point");
  ASSERT_EQ(lone.size(), 2u);
  EXPECT_EQ(lone[0]->attr("data-x"), "6");
  EXPECT_EQ(lone[1]->attr("data-x"), "8");
  EXPECT_EQ(lone[1]->attr("data-y"), "8");
}

TEST(Plot, ScatterSkipsNonFinitePointsAndKeepsOrder) {
  rp::plot p;
  p.scatter("kept", doubles{1, qnan, 3, 4}, doubles{10, 20, -inf_v, 40},
            {.shape = rp::marker::square}, {"a", "b", "c", ""});
  auto const root = parse_plot(p.to_svg());
  auto const g = series_of(root, "scatter").at(0);
  EXPECT_EQ(g->attr("data-skipped"), "2");
  ASSERT_EQ(g->children.size(), 2u);
  EXPECT_EQ(g->children[0].name, "rect");
  EXPECT_EQ(g->children[0].attr("data-x"), "1");
  EXPECT_EQ(g->children[0].find_all("title").at(0)->text, "a");
  EXPECT_EQ(g->children[1].attr("data-y"), "40");
  EXPECT_TRUE(g->children[1].find_all("title").empty());  // an empty label: no tooltip
}

TEST(Plot, EveryMarkerShapeIsDrawn) {
  rp::plot p;
  int i = 0;
  for (auto shape : {rp::marker::circle, rp::marker::square, rp::marker::triangle,
                     rp::marker::diamond, rp::marker::cross}) {
    p.scatter("m" + std::to_string(i), doubles{double(i)}, doubles{double(i)},
              {.shape = shape, .hollow = i % 2 == 1});
    ++i;
  }
  auto const root = parse_plot(p.to_svg());
  auto const groups = series_of(root, "scatter");
  ASSERT_EQ(groups.size(), 5u);
  std::vector<std::string> names;
  for (auto const* g : groups) names.push_back(g->children.at(0).name);
  EXPECT_EQ(names, (std::vector<std::string>{"circle", "rect", "path", "path", "path"}));
  EXPECT_EQ(groups[1]->children[0].attr("fill"), "none");  // hollow
  EXPECT_EQ(groups[4]->children[0].attr("fill"), "none");  // a cross has no inside
  EXPECT_EQ(root.find_by_attr("class", "legend-entry").size(), 5u);
}

TEST(Plot, BandsArePolygonsBrokenAtNonFinitePoints) {
  rp::plot p({.y = {.range = rp::interval{-1, 1}}});
  p.band("ci", doubles{0, 1, 2, 3, 4, 5}, doubles{-0.5, -0.25, qnan, 0.25, 0, 0.1},
         doubles{0.5, 0.75, 0.8, inf_v, 0.5, 0.9});
  auto const root = parse_plot(p.to_svg());
  auto const g = series_of(root, "band").at(0);
  EXPECT_EQ(g->attr("data-skipped"), "2");
  auto const polys = g->find_by_attr("class", "band-piece");
  ASSERT_EQ(polys.size(), 2u);
  EXPECT_EQ(parse_tuples(polys[0]->attr("data-points").value()),
            (std::vector<doubles>{{0, -0.5, 0.5}, {1, -0.25, 0.75}}));
  EXPECT_EQ(parse_tuples(polys[1]->attr("data-points").value()),
            (std::vector<doubles>{{4, 0, 0.5}, {5, 0.1, 0.9}}));
  // Upper curve forwards, then lower curve backwards: x0 x1 x1 x0, high above low (smaller y).
  auto const px = parse_tuples(polys[0]->attr("points").value());
  ASSERT_EQ(px.size(), 4u);
  EXPECT_LT(px[0][0], px[1][0]);
  EXPECT_EQ(px[1][0], px[2][0]);
  EXPECT_EQ(px[0][0], px[3][0]);
  EXPECT_LT(px[0][1], px[3][1]);
  EXPECT_LT(px[1][1], px[2][1]);
  // y = 0 is the middle of the fixed [-1, 1] axis; y = 0.5 is a quarter from the top.
  double const h =
      parse_double(root.find_by_attr("class", "plot-area").at(0)->attr("height").value());
  EXPECT_NEAR(px[0][1], h / 4, 0.01);
  EXPECT_NEAR(px[3][1], h * 3 / 4, 0.01);
  // x = 2 (low NaN) and x = 3 (high inf) drop out together, so no lone point is left over.
  EXPECT_TRUE(g->find_by_attr("class", "lone-band").empty());

  rp::plot single;
  single.band("one", doubles{1}, doubles{0}, doubles{2});
  auto const lone = series_of(parse_plot(single.to_svg()), "band").at(0)->children;
  ASSERT_EQ(lone.size(), 1u);
  EXPECT_EQ(lone[0].attr("class"), "lone-band");
  EXPECT_EQ(lone[0].attr("data-points"), "1,0,2");
}

TEST(Plot, ReferenceLinesAreDrawnAndWidenTheRange) {
  rp::plot p;
  p.line("tau", doubles{0, 1}, doubles{0.1, 0.3});
  p.hline(0.65, "threshold", {.dashed = true});
  p.vline(2, "budget");
  p.hline(qnan, "never drawn");
  auto const root = parse_plot(p.to_svg());
  auto const refs = root.find_by_attr("class", "reference");
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0]->attr("data-axis"), "y");
  EXPECT_EQ(refs[0]->attr("data-value"), "0.65");
  EXPECT_EQ(refs[0]->find_all("line").at(0)->attr("stroke-dasharray"), "6 4");
  EXPECT_EQ(refs[0]->find_all("line").at(0)->attr("stroke"), "#000000");
  EXPECT_EQ(refs[1]->attr("data-axis"), "x");
  EXPECT_EQ(text_of(refs[1]), "budget");
  EXPECT_GE(p.y_ticks().hi, 0.65);
  EXPECT_GE(p.x_ticks().hi, 2);
  // Reference lines are labelled in place, not in the legend.
  EXPECT_EQ(root.find_by_attr("class", "legend-entry").size(), 1u);
}

TEST(Plot, AxesShowTheTicksAndRanges) {
  rp::plot p({.x = {.label = "step (%)", .range = rp::interval{0, 100}},
              .y = {.label = "tau", .range = rp::interval{-1, 1}}});
  p.line("a", doubles{0, 50, 100}, doubles{-1, 0, 1});
  auto const root = parse_plot(p.to_svg());
  auto const* x = axis_of(root, "x");
  EXPECT_EQ(x->attr("data-min"), "0");
  EXPECT_EQ(x->attr("data-max"), "100");
  std::vector<std::string> values;
  std::vector<std::string> texts;
  for (auto const* t : x->find_by_attr("class", "tick")) {
    values.push_back(t->attr("data-value").value());
    texts.push_back(text_of(t));
  }
  EXPECT_EQ(values, (std::vector<std::string>{"0", "20", "40", "60", "80", "100"}));
  EXPECT_EQ(texts, values);
  values.clear();
  for (auto const* t : axis_of(root, "y")->find_by_attr("class", "tick")) {
    values.push_back(text_of(t));
  }
  EXPECT_EQ(values, (std::vector<std::string>{"-1", "-0.5", "0", "0.5", "1"}));
  // The line's pixels: (0, -1) at the bottom left, (50, 0) in the middle, (100, 1) top right.
  auto const* area = root.find_by_attr("class", "plot-area").at(0);
  double const w = parse_double(area->attr("width").value());
  double const h = parse_double(area->attr("height").value());
  auto const px =
      parse_tuples(root.find_by_attr("class", "line-piece").at(0)->attr("points").value());
  ASSERT_EQ(px.size(), 3u);
  EXPECT_NEAR(px[0][0], 0, 0.01);
  EXPECT_NEAR(px[0][1], h, 0.01);
  EXPECT_NEAR(px[1][0], w / 2, 0.01);
  EXPECT_NEAR(px[1][1], h / 2, 0.01);
  EXPECT_NEAR(px[2][0], w, 0.01);
  EXPECT_NEAR(px[2][1], 0, 0.01);
}

TEST(Plot, DataAttributesRoundTripTheNumbersExactly) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::uniform_int_distribution<int> exponent(-30, 30);
  doubles x;
  doubles y;
  for (int i = 0; i < 500; ++i) {
    x.push_back(unit(rng) * std::pow(10.0, exponent(rng)));
    y.push_back(unit(rng));
  }
  // Values whose shortest text is long, or that are at the edges of double.
  doubles const special = {0.1,
                           1.0 / 3.0,
                           2.0 / 3.0,
                           1e-300,
                           5e-324,
                           1.7976931348623157e308,
                           -2.2250738585072014e-308,
                           0.30000000000000004,
                           123456789.123456789};
  for (double const v : special) {
    x.push_back(v);
    y.push_back(-v);
  }
  rp::plot p;
  p.scatter("s", x, y);
  p.line("l", x, y);
  auto const root = parse_plot(p.to_svg());
  auto const points = series_of(root, "scatter").at(0)->children;
  ASSERT_EQ(points.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(parse_double(points[i].attr("data-x").value()), x[i]) << i;
    EXPECT_EQ(parse_double(points[i].attr("data-y").value()), y[i]) << i;
  }
  auto const line = parse_tuples(series_of(root, "line")
                                     .at(0)
                                     ->find_by_attr("class", "line-piece")
                                     .at(0)
                                     ->attr("data-points")
                                     .value());
  ASSERT_EQ(line.size(), x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(line[i], (doubles{x[i], y[i]})) << i;
  }
}

TEST(Plot, DegenerateInputsGiveValidPlots) {
  std::vector<rp::plot> plots;
  plots.emplace_back();  // nothing at all
  plots.emplace_back(rp::plot_options{.title = "t", .x = {.label = "x"}, .y = {.label = "y"}});
  plots.back().line("empty", doubles{}, doubles{}).scatter("empty", doubles{}, doubles{});
  plots.back().band("empty", doubles{}, doubles{}, doubles{});
  plots.emplace_back();
  plots.back().line("one", doubles{3}, doubles{4}).scatter("one", doubles{3}, doubles{4});
  plots.emplace_back();
  plots.back().line("equal", doubles{1, 1, 1}, doubles{2, 2, 2});
  plots.emplace_back();
  plots.back().line("zero", doubles{0, 0}, doubles{0, 0});
  plots.emplace_back();
  plots.back().line("missing", doubles{qnan, qnan}, doubles{qnan, inf_v});
  plots.back().scatter("missing", doubles{qnan}, doubles{1});
  plots.back().band("missing", doubles{qnan}, doubles{qnan}, doubles{qnan});
  plots.back().hline(inf_v).vline(qnan);
  plots.emplace_back();
  plots.back().line("huge", doubles{-1.7976931348623157e308, 1.7976931348623157e308},
                    doubles{1e308, -1e308});
  plots.back().scatter("tiny", doubles{5e-324, 0}, doubles{0, 5e-324});
  plots.emplace_back(
      rp::plot_options{.x = {.range = rp::interval{0, 1}}, .y = {.range = rp::interval{0, 1}}});
  plots.back().line("outside", doubles{-1e300, 0.5, 1e300}, doubles{1e300, 0.5, -1e300});
  plots.back().scatter("outside", doubles{-1e300, 1e300}, doubles{5, -5});
  plots.emplace_back(rp::plot_options{
      .title = "a very long title that does not fit at all", .width = 160, .height = 120});
  plots.back().line(std::string(300, 'n'), doubles{0, 1e15}, doubles{-1e-15, 1e15});
  for (std::size_t i = 0; i < plots.size(); ++i) {
    SCOPED_TRACE("plot " + std::to_string(i));
    auto const svg = plots[i].to_svg();
    auto const root = parse_plot(svg);
    EXPECT_FALSE(root.find_by_attr("class", "plot-area").empty());
  }
}

TEST(Plot, ColoursComeFromThePaletteUnlessGiven) {
  rp::plot p;
  p.line("a", doubles{0, 1}, doubles{0, 1});
  p.band("b", doubles{0, 1}, doubles{0, 1}, doubles{1, 2});
  p.line("c", doubles{0, 1}, doubles{0, 1}, {.color = "rebeccapurple"});
  p.scatter("d", doubles{0}, doubles{0});
  auto const root = parse_plot(p.to_svg());
  EXPECT_EQ(series_of(root, "line")[0]->children.at(0).attr("stroke"),
            std::string(rp::palette_color(0)));
  EXPECT_EQ(series_of(root, "band")[0]->children.at(0).attr("fill"),
            std::string(rp::palette_color(1)));
  EXPECT_EQ(series_of(root, "line")[1]->children.at(0).attr("stroke"), "rebeccapurple");
  EXPECT_EQ(series_of(root, "scatter")[0]->children.at(0).attr("fill"),
            std::string(rp::palette_color(2)));
  EXPECT_EQ(rp::palette_color(8), rp::palette_color(0));
}

TEST(Plot, OutputIsDeterministic) {
  auto const make = [] {
    rp::plot p({.title = "same", .y = {.range = rp::interval{-1, 1}}});
    p.band("ci", doubles{0, 25, 50}, doubles{0.1, 0.2, qnan}, doubles{0.3, 0.4, 0.5});
    p.line("tau", doubles{0, 25, 50}, doubles{0.2, 0.3, 0.45});
    p.scatter("kept", doubles{1, 2}, doubles{0.5, 0.6}, {.shape = rp::marker::diamond},
              {"m1", "m2"});
    p.hline(0.65, "threshold");
    return p;
  };
  auto const a = make();
  EXPECT_EQ(a.to_svg(), a.to_svg());
  EXPECT_EQ(a.to_svg(), make().to_svg());
  rp::plot copy = a;
  EXPECT_EQ(copy.to_svg(), a.to_svg());
}

TEST(Plot, RejectsContractViolations) {
  rp::plot p;
  EXPECT_THROW(p.line("l", doubles{1, 2}, doubles{1}), pt::logic_error);
  EXPECT_THROW(p.scatter("s", doubles{1}, doubles{1}, {}, {"a", "b"}), pt::logic_error);
  EXPECT_THROW(p.band("b", doubles{1}, doubles{1, 2}, doubles{1}), pt::logic_error);
  EXPECT_THROW(p.line("l", doubles{1}, doubles{1}, {.stroke_width = qnan}), pt::logic_error);
  EXPECT_THROW(p.band("b", doubles{1}, doubles{1}, doubles{1}, {.fill_opacity = 2}),
               pt::logic_error);
  EXPECT_THROW(rp::plot({.width = 10}), pt::logic_error);
  EXPECT_THROW(rp::plot({.x = {.range = rp::interval{1, 1}}}), pt::logic_error);
  EXPECT_THROW(rp::plot({.y = {.range = rp::interval{0, inf_v}}}), pt::logic_error);
}
