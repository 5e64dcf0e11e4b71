// The pictures: SVG structure (tags balance, one <rect> per cell, labels
// escaped, spaces visible), cell shades, panels per head, the terminal
// rendering, curves with NaN / one point / constant series, nice ticks, line
// charts (a metric against source length, panels with their own x ranges), the
// confusion matrix, and the atomic file write.
#include <regex>
#include <string>

#include "tests/test_utils.h"
#include "tests/tools/temp_dir.h"
#include "tools/plot.h"

namespace qkv::plot {
namespace {

// A small XML well-formedness check: every tag closes in order, attribute
// values are quoted, and '&' only starts an entity. Returns "" or the problem.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> open;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '&') {
      const size_t semi = s.find(';', i);
      if (semi == std::string::npos || semi - i > 6) return "bare & at " + std::to_string(i);
      continue;
    }
    if (s[i] == '>') return "stray > at " + std::to_string(i);
    if (s[i] != '<') continue;
    const size_t end = s.find('>', i);
    if (end == std::string::npos) return "unclosed tag at " + std::to_string(i);
    std::string tag = s.substr(i + 1, end - i - 1);
    i = end;
    if (tag.front() == '?') continue;  // the XML declaration
    if (std::count(tag.begin(), tag.end(), '"') % 2) return "odd quotes in <" + tag + ">";
    if (tag.find('<') != std::string::npos) return "< inside <" + tag + ">";
    if (tag.front() == '/') {
      if (open.empty() || open.back() != tag.substr(1))
        return "mismatched </" + tag.substr(1) + ">";
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find(' ')));
    }
  }
  return open.empty() ? "" : "unclosed <" + open.back() + ">";
}

int64_t count(const std::string& s, const std::string& what) {
  int64_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// The fill colours of the heat-map cells (every <rect> with a width equal to its height), in order.
std::vector<std::string> cell_fills(const std::string& svg) {
  std::vector<std::string> out;
  std::regex cell(
      "<rect x=\"[^\"]*\" y=\"[^\"]*\" width=\"([^\"]*)\" height=\"([^\"]*)\" "
      "fill=\"(#[0-9a-f]{6})\"/>");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), cell); it != std::sregex_iterator();
       ++it) {
    if ((*it)[1] == (*it)[2]) out.push_back((*it)[3]);
  }
  return out;
}

TEST_SUITE("tools/plot") {
  TEST_CASE("attention_svg: structure, cells, escaping") {
    Tensor w = Tensor::from({3, 4}, {1, 0, 0, 0, 0, 0.5f, 0.5f, 0, 0, 0, 0.25f, 0.75f});
    const std::string svg =
        attention_svg(w, {"a", "<", " ", "&"}, {"x", "\"", "</s>"}, "dates <attention> & co");
    CHECK(xml_problem(svg) == "");
    CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "
                    "xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\"",
                    0) == 0);
    CHECK(count(svg, "<rect") == 1 + 12 + 1);  // background, cells, frame
    CHECK(cell_fills(svg) == std::vector<std::string>{"#000000", "#ffffff", "#ffffff", "#ffffff",
                                                      "#ffffff", "#808080", "#808080", "#ffffff",
                                                      "#ffffff", "#ffffff", "#bfbfbf", "#404040"});
    CHECK(svg.find(">&lt;</text>") != std::string::npos);
    CHECK(svg.find(">&amp;</text>") != std::string::npos);
    CHECK(svg.find(">\u2423</text>") != std::string::npos);  // the space, visible
    CHECK(svg.find(">&quot;</text>") != std::string::npos);
    CHECK(svg.find(">&lt;/s&gt;</text>") != std::string::npos);
    CHECK(svg.find("dates &lt;attention&gt; &amp; co") != std::string::npos);
    CHECK(test::error_of([&] {
            attention_svg(w, {"a", "b"}, {"x", "y", "z"}, "");
          }) == "attention_svg: weights [3,4] vs 3 output and 2 source tokens");
  }

  TEST_CASE("attention_svg: one panel per head, long tokens rotated, odd bytes") {
    Tensor w = test::rand_tensor({3, 2, 5}, 1, 0, 1);
    const std::string svg =
        attention_svg(w, {"the", "cat", "sat", "\x01", "\xff"}, {"le", "chat"}, "heads");
    CHECK(xml_problem(svg) == "");
    CHECK(count(svg, "<rect") == 1 + 3 * 10 + 3);
    CHECK(cell_fills(svg).size() == 30);
    CHECK(count(svg, ">head ") == 3);
    CHECK(count(svg, "rotate(-90") == 3 * 5);
    CHECK(svg.find("\\x01") !=
          std::string::npos);  // control and invalid UTF-8 bytes written as \xNN
    CHECK(svg.find("\\xff") != std::string::npos);
    CHECK(svg.find('\x01') == std::string::npos);
  }

  TEST_CASE("attention_text: one shaded character per weight") {
    Tensor w = Tensor::from({2, 3}, {0.f, 0.55f, 1.f, 0.05f, NAN, 0.31f});
    CHECK(attention_text(w, {"a", " ", "c"}, {"x", "yz"}) ==
          "    a\u2423c\n"
          " x | +@|\n"
          "yz | ?-|\n");
  }

  TEST_CASE("curves_svg: panels, NaN gaps, one point, constant series, ticks") {
    Series loss{"train <loss>", {0, 10, 20, 30, 40}, {2.0, 1.5, NAN, 0.8, 0.6}};
    Series valid{"valid loss", {20}, {1.1}};
    Series flat{"valid exact_match", {0, 100}, {0.5, 0.5}};
    Series none{"nothing", {1, 2}, {INFINITY, NAN}};
    const std::string svg = curves_svg({{loss, valid}, {flat}, {none}}, "run & curves");
    CHECK(xml_problem(svg) == "");
    CHECK(count(svg, "<polyline") == 2 + 1);  // loss split by its NaN; the flat line
    CHECK(count(svg, "<circle") == 1);        // the one-point series
    CHECK(svg.find("nan") == std::string::npos);
    CHECK(svg.find("inf") == std::string::npos);
    CHECK(svg.find("train &lt;loss&gt;") != std::string::npos);
    CHECK(svg.find(">no data</text>") != std::string::npos);
    // Nice ticks: steps of 20 along x (0..100), 0.5 on the loss panel (0.5..2).
    for (const char* tick :
         {">0</text>", ">20</text>", ">100</text>", ">0.5</text>", ">2</text>"}) {
      CHECK(svg.find(tick) != std::string::npos);
    }
    CHECK(test::error_of([] {
            curves_svg({{Series{"bad", {1, 2}, {1}}}}, "");
          }) == "curves_svg: series 'bad' has 2 x values but 1 y values");
    CHECK(xml_problem(curves_svg({}, "empty")) == "");
  }

  TEST_CASE("line_chart_svg: one line per run, a dot per point, legend and axis labels") {
    // exact_match against source length (Bahdanau et al.'s Fig. 2): attention holds, none falls.
    Series att{"attention", {5, 15, 25, 35}, {1.0, 0.99, 0.98, 0.97}};
    Series none{"no <attention>", {5, 15, 25, 35}, {0.9, 0.4, NAN, 0.0}};
    const std::string svg = line_chart_svg({att, none}, "reverse", "source length", "exact_match");
    CHECK(xml_problem(svg) == "");
    CHECK(count(svg, "<polyline") == 1 + 1);  // none: its NaN leaves one point alone
    CHECK(count(svg, "<circle") == 4 + 3);    // every finite point
    CHECK(svg.find(">source length</text>") != std::string::npos);
    CHECK(svg.find("rotate(-90)\" text-anchor=\"middle\">exact_match</text>") != std::string::npos);
    CHECK(svg.find(">no &lt;attention&gt;</text>") != std::string::npos);
    CHECK(svg.find(">attention</text>") != std::string::npos);
    for (const char* tick : {">0</text>", ">1</text>", ">35</text>"})
      CHECK(svg.find(tick) != std::string::npos);
    CHECK(test::error_of([] {
            line_chart_svg({Series{"bad", {1}, {1, 2}}}, "", "x", "y");
          }).find("series 'bad' has 1 x values but 2 y values") != std::string::npos);
  }

  TEST_CASE("confusion_svg: a count and a row-share shade per cell, class names, errors") {
    // rows true, columns predicted; row 1 is row 0 times ten, so its shades are the same
    const std::vector<int64_t> counts = {3, 1, 0, 30, 10, 0, 0, 0, 0};
    const std::string svg = confusion_svg(counts, {"de", "<en>", "sv"}, "lid & co");
    CHECK(xml_problem(svg) == "");
    std::vector<int64_t> cells;
    std::regex num("<text class=\"count\"[^>]*>([0-9]+)</text>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), num); it != std::sregex_iterator();
         ++it)
      cells.push_back(std::stoll((*it)[1]));
    CHECK(cells == counts);
    std::vector<std::string> fills;
    std::regex cell("<rect [^>]*fill=\"(#[0-9a-f]{6})\"><title>");
    for (auto it = std::sregex_iterator(svg.begin(), svg.end(), cell); it != std::sregex_iterator();
         ++it)
      fills.push_back((*it)[1]);
    REQUIRE(fills.size() == 9);
    CHECK(fills[0] == fills[3]);  // 3 of 4 and 30 of 40
    CHECK(fills[1] == fills[4]);
    CHECK(fills[0] != fills[1]);
    CHECK(fills[2] == "#ffffff");  // none predicted
    CHECK(fills[6] == "#ffffff");  // an empty row stays white
    CHECK(svg.find("<title>de as &lt;en&gt;: 1 of 4 (25%)</title>") != std::string::npos);
    CHECK(count(svg, ">&lt;en&gt;</text>") == 2);  // a row and a column label
    CHECK(svg.find(">predicted</text>") != std::string::npos);
    CHECK(svg.find(">true</text>") != std::string::npos);
    CHECK(svg.find("lid &amp; co") != std::string::npos);
    CHECK(test::error_of([] { confusion_svg({1, 2, 3}, {"a", "b"}, ""); }) ==
          "confusion_svg: 3 counts vs 2 classes (4 expected)");
    CHECK(test::error_of([] { confusion_svg({1, -2, 3, 4}, {"a", "b"}, ""); }) ==
          "confusion_svg: negative count -2");
  }

  TEST_CASE("line_chart_svg: panels stacked, each with its title and its own x range") {
    // Attention vs none on two tasks whose lengths do not overlap (reversal 1-60, G2P 1-20).
    Panel rev{"reverse sequences",
              {Series{"attention", {5, 55}, {1.0, 0.95}}, Series{"none", {5, 55}, {1.0, 0.0}}}};
    Panel g2p{"G2P",
              {Series{"attention", {2, 18}, {0.8, 0.6}}, Series{"none", {2, 18}, {0.7, 0.2}}}};
    const std::string svg = line_chart_svg({rev, g2p}, "Fig. 2", "source length", "accuracy");
    CHECK(xml_problem(svg) == "");
    CHECK(svg.find(">reverse sequences</text>") != std::string::npos);
    CHECK(svg.find(">G2P</text>") != std::string::npos);
    CHECK(svg.find(">Fig. 2</text>") != std::string::npos);
    CHECK(count(svg, "<polyline") == 4);
    CHECK(count(svg, "<rect x=") == 1 + 2);  // the background and two frames
    // Each panel's x ticks span its own lengths: 60 only on the first, 18 near the end of
    // the second (a shared range would squeeze G2P into the first third).
    CHECK(svg.find(">60</text>") != std::string::npos);
    CHECK(svg.find(">20</text>") != std::string::npos);
    // A point's tooltip names its line and values; the second panel sits below the first.
    const size_t a = svg.find("<title>none: x=55, y=0</title>");
    const size_t b = svg.find("<title>none: x=18, y=0.2</title>");
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    CHECK(a < b);
    // G2P's longest words sit at the right of their panel (x 70..550), not at a third of it.
    const size_t cx = svg.rfind("<circle cx=\"", b);
    REQUIRE(cx != std::string::npos);
    CHECK(std::stod(svg.substr(cx + 12, 8)) > 450);
  }

  TEST_CASE("write_file: atomic replace, clear errors") {
    test::TempDir dir;
    write_file(dir / "a.svg", "one");
    write_file(dir / "a.svg", "two");
    CHECK(test::read_text(dir / "a.svg") == "two");
    int64_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path))
      files += bool(e.is_regular_file());
    CHECK(files == 1);  // no temporary left behind
    const std::string e = test::error_of([&] { write_file(dir / "no/such/a.svg", "x"); });
    CHECK(e.rfind("write_file: cannot create '" + (dir / "no/such/a.svg") + ".tmp.", 0) == 0);
    CHECK(e.find("(to write '" + (dir / "no/such/a.svg") + "')") != std::string::npos);
  }
}

}  // namespace
}  // namespace qkv::plot
