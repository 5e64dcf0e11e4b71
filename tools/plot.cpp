// Pictures as plain SVG 1.1 text (no dependencies): attention heatmaps in the
// style of Bahdanau et al.'s alignment figures (white = 0, black = 1, source
// tokens along the top, output tokens down the left), the same matrix as
// shaded terminal characters, stacked line plots of training curves, and a
// classifier's confusion matrix.
#include "tools/plot.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "engine/error.h"

namespace qkv::plot {
namespace {

// ---- text helpers -------------------------------------------------------------

// Length of the valid UTF-8 sequence starting at s[i] (0: invalid).
size_t utf8_len(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return 0;
  }
  return n;
}

// A token made visible: space as "␣", newline "⏎", tab "⇥", other control
// characters and invalid UTF-8 bytes as \xNN.
std::string visible(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_len(s, i);
    if (c == ' ')
      out += "\u2423";
    else if (c == '\n')
      out += "\u23ce";
    else if (c == '\t')
      out += "\u21e5";
    else if (n == 0 || c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(c));
      out += buf;
      i += 1;
      continue;
    } else {
      out.append(s, i, n);
      i += n;
      continue;
    }
    i += 1;
  }
  return out;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Display width in characters (code points) of a UTF-8 string.
int64_t text_width(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c >> 6) != 2;
  return n;
}

std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}
std::string px(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

const char* kSvgHead = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// The document's opening: the <svg> element (W x H, the given font
// attributes), a white background and the centred title at baseline title_y.
void svg_open(std::ostringstream& o, double W, double H, const char* font, const char* title_y,
              const std::string& title) {
  o << kSvgHead << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << px(W)
    << "\" height=\"" << px(H) << "\" viewBox=\"0 0 " << px(W) << ' ' << px(H) << "\" " << font
    << ">\n";
  o << "<rect x=\"0\" y=\"0\" width=\"" << px(W) << "\" height=\"" << px(H)
    << "\" fill=\"#ffffff\"/>\n";
  o << "<text x=\"" << px(W / 2) << "\" y=\"" << title_y
    << "\" font-size=\"15\" text-anchor=\"middle\">" << xml_escape(title) << "</text>\n";
}

// ---- attention ------------------------------------------------------------------

// weights as [NH,T,S] whatever its rank (2 or 3), checked against the labels.
Tensor as_heads(const Tensor& w, size_t S, size_t T, const char* op) {
  check(w.defined() && (w.dim() == 2 || w.dim() == 3), op,
        ": weights must be [T,S] or [NH,T,S], got ", w.defined() ? w.shape() : Shape{});
  const Tensor h = w.dim() == 2 ? w.view({1, w.size(0), w.size(1)}) : w;
  check(h.size(1) == int64_t(T) && h.size(2) == int64_t(S), op, ": weights ", w.shape(), " vs ", T,
        " output and ", S, " source tokens");
  check(h.size(0) >= 1 && T >= 1 && S >= 1, op, ": empty weights ", w.shape());
  return h;
}

// Grey level of a weight: 255 for 0 (white), 0 for 1 (black).
std::string cell_fill(float w) {
  if (!std::isfinite(w)) return "#e0302a";  // not a weight: flag it in red
  const int g = int(std::lround(255.0 * (1.0 - std::clamp(double(w), 0.0, 1.0))));
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", g, g, g);
  return buf;
}

}  // namespace

std::string attention_svg(const Tensor& weights, const std::vector<std::string>& src_tokens,
                          const std::vector<std::string>& out_tokens, const std::string& title) {
  const Tensor w = as_heads(weights, src_tokens.size(), out_tokens.size(), "attention_svg");
  const int64_t NH = w.size(0), T = w.size(1), S = w.size(2);
  std::vector<std::string> src, out;
  int64_t src_w = 1, out_w = 1;
  for (const auto& t : src_tokens)
    src_w = std::max(src_w, text_width(src.emplace_back(visible(t))));
  for (const auto& t : out_tokens)
    out_w = std::max(out_w, text_width(out.emplace_back(visible(t))));

  // Geometry: square cells of 8..22 px, so a 60-token sentence still fits a page.
  const double cell = std::clamp(440.0 / double(std::max(S, T)), 8.0, 22.0);
  const double font = std::min(12.0, cell * 0.8), char_w = font * 0.62;
  const bool rotate = src_w > 1;  // single characters stand upright, words are turned
  const double top = 8 + (rotate ? double(src_w) * char_w + 6 : font + 6);
  const double left = 8 + double(out_w) * char_w + 6;
  const double pw = left + double(S) * cell + 16,
               ph = top + double(T) * cell + 16 + (NH > 1 ? 18 : 0);
  const int64_t cols = int64_t(std::ceil(std::sqrt(double(NH)))), rows = (NH + cols - 1) / cols;
  const double title_h = 28, W = double(cols) * pw, H = title_h + double(rows) * ph;

  std::ostringstream o;
  svg_open(o, W, H, "font-family=\"DejaVu Sans Mono, monospace\"", "19", title);
  for (int64_t h = 0; h < NH; ++h) {
    const double ox = double(h % cols) * pw,
                 oy = title_h + double(h / cols) * ph + (NH > 1 ? 18 : 0);
    o << "<g transform=\"translate(" << px(ox) << ',' << px(oy) << ")\" font-size=\"" << px(font)
      << "\">\n";
    if (NH > 1) {
      o << "<text x=\"" << px(left + double(S) * cell / 2)
        << "\" y=\"-4\" font-size=\"13\" text-anchor=\"middle\">head " << h << "</text>\n";
    }
    for (int64_t s = 0; s < S; ++s) {  // source tokens along the top
      const double x = left + (double(s) + 0.5) * cell, y = top - 4;
      if (rotate) {
        o << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" transform=\"rotate(-90 " << px(x)
          << ' ' << px(y) << ")\" dominant-baseline=\"middle\">" << xml_escape(src[size_t(s)])
          << "</text>\n";
      } else {
        o << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" text-anchor=\"middle\">"
          << xml_escape(src[size_t(s)]) << "</text>\n";
      }
    }
    for (int64_t t = 0; t < T; ++t) {  // output tokens down the left
      o << "<text x=\"" << px(left - 4) << "\" y=\"" << px(top + (double(t) + 0.5) * cell)
        << "\" text-anchor=\"end\" dominant-baseline=\"middle\">" << xml_escape(out[size_t(t)])
        << "</text>\n";
    }
    const float* p = w.data() + h * T * S;
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t s = 0; s < S; ++s) {
        o << "<rect x=\"" << px(left + double(s) * cell) << "\" y=\"" << px(top + double(t) * cell)
          << "\" width=\"" << px(cell) << "\" height=\"" << px(cell) << "\" fill=\""
          << cell_fill(p[t * S + s]) << "\"/>\n";
      }
    }
    o << "<rect x=\"" << px(left) << "\" y=\"" << px(top) << "\" width=\"" << px(double(S) * cell)
      << "\" height=\"" << px(double(T) * cell)
      << "\" fill=\"none\" stroke=\"#808080\" stroke-width=\"1\"/>\n";
    o << "</g>\n";
  }
  o << "</svg>\n";
  return o.str();
}

std::string attention_text(const Tensor& weights, const std::vector<std::string>& src_tokens,
                           const std::vector<std::string>& out_tokens) {
  const Tensor w = as_heads(weights, src_tokens.size(), out_tokens.size(), "attention_text");
  const int64_t NH = w.size(0), T = w.size(1), S = w.size(2);
  static const char kShades[] = " .:-=+*#%@";
  std::vector<std::string> src, out;
  int64_t src_w = 1, out_w = 1;
  for (const auto& t : src_tokens)
    src_w = std::max(src_w, text_width(src.emplace_back(visible(t))));
  for (const auto& t : out_tokens)
    out_w = std::max(out_w, text_width(out.emplace_back(visible(t))));
  src_w = std::min<int64_t>(src_w, 12);  // long words are cut in the vertical header

  // Code points of a label, for writing source tokens vertically.
  auto code_points = [](const std::string& s) {
    std::vector<std::string> cps;
    for (size_t i = 0; i < s.size(); ++i) {
      if ((static_cast<unsigned char>(s[i]) >> 6) != 2) cps.emplace_back();
      cps.back() += s[i];
    }
    return cps;
  };
  std::ostringstream o;
  for (int64_t h = 0; h < NH; ++h) {
    if (NH > 1) o << "head " << h << '\n';
    for (int64_t line = 0; line < src_w; ++line) {  // the source tokens, one column each
      o << std::string(size_t(out_w) + 2, ' ');
      for (int64_t s = 0; s < S; ++s) {
        auto cps = code_points(src[size_t(s)]);
        o << (line < int64_t(cps.size()) ? cps[size_t(line)] : " ");
      }
      o << '\n';
    }
    for (int64_t t = 0; t < T; ++t) {
      o << std::string(size_t(out_w - text_width(out[size_t(t)])), ' ') << out[size_t(t)] << " |";
      for (int64_t s = 0; s < S; ++s) {
        const float x = w.data()[(h * T + t) * S + s];
        o << (std::isfinite(x) ? kShades[std::clamp(int(x * 10.f), 0, 9)] : '?');
      }
      o << "|\n";
    }
  }
  return o.str();
}

// ---- curves ---------------------------------------------------------------------

namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#17becf"};

// A 1-2-5 step giving about `n` intervals over [lo, hi] (hi > lo).
double nice_step(double lo, double hi, int n) {
  const double raw = (hi - lo) / n, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

struct Range {
  double lo = INFINITY, hi = -INFINITY;
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  bool empty() const { return !(lo <= hi); }
  // Widened so a single value or a constant series still has a span; then
  // snapped outwards to whole ticks.
  void finish() {
    if (empty()) lo = 0, hi = 1;
    if (hi - lo <= 1e-12 * std::max(1.0, std::fabs(hi))) {
      const double pad = std::max(std::fabs(lo) * 0.1, 1.0);
      lo -= pad, hi += pad;
    }
    const double step = nice_step(lo, hi, 5);
    lo = std::floor(lo / step) * step, hi = std::ceil(hi / step) * step;
  }
};

bool ok_point(const Series& s, size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y[i]); }

void check_series(const Series& s) {
  check(s.x.size() == s.y.size(), "curves_svg: series '", s.name, "' has ", s.x.size(),
        " x values but ", s.y.size(), " y values");
}

// Plot geometry shared by the charts: one panel is kPanelH tall.
constexpr double kWidth = 720, kPlotW = 480, kLeft = 70, kPanelH = 240, kPlotH = 180, kTitleH = 30;

// One panel at height `top`: frame, ticks, the series (markers: a dot at every point) and
// their legend; x over xr, y over the panel's own range.
void draw_panel(std::ostringstream& o, const std::vector<Series>& panel, const Range& xr,
                double top, const std::string& x_label, const std::string& y_label, bool markers) {
  Range yr;
  for (const auto& s : panel) {
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (ok_point(s, i)) yr.add(s.y[i]);
    }
  }
  const bool no_data = yr.empty();
  yr.finish();
  auto X = [&](double x) { return kLeft + (x - xr.lo) / (xr.hi - xr.lo) * kPlotW; };
  auto Y = [&](double y) { return top + kPlotH - (y - yr.lo) / (yr.hi - yr.lo) * kPlotH; };
  o << "<g>\n<rect x=\"" << px(kLeft) << "\" y=\"" << px(top) << "\" width=\"" << px(kPlotW)
    << "\" height=\"" << px(kPlotH) << "\" fill=\"none\" stroke=\"#404040\"/>\n";
  // Ticks and grid lines at nice numbers.
  const double ys = nice_step(yr.lo, yr.hi, 5), xs = nice_step(xr.lo, xr.hi, 6);
  for (double v = yr.lo; v <= yr.hi + ys * 1e-6; v += ys) {
    const double y = Y(v), shown = std::fabs(v) < ys * 1e-9 ? 0.0 : v;
    o << "<line x1=\"" << px(kLeft) << "\" y1=\"" << px(y) << "\" x2=\"" << px(kLeft + kPlotW)
      << "\" y2=\"" << px(y) << "\" stroke=\"#e4e4e4\"/>\n<text x=\"" << px(kLeft - 6) << "\" y=\""
      << px(y + 4) << "\" text-anchor=\"end\">" << fmt(shown) << "</text>\n";
  }
  for (double v = xr.lo; v <= xr.hi + xs * 1e-6; v += xs) {
    const double x = X(v), shown = std::fabs(v) < xs * 1e-9 ? 0.0 : v;
    o << "<line x1=\"" << px(x) << "\" y1=\"" << px(top + kPlotH) << "\" x2=\"" << px(x)
      << "\" y2=\"" << px(top + kPlotH + 4) << "\" stroke=\"#404040\"/>\n<text x=\"" << px(x)
      << "\" y=\"" << px(top + kPlotH + 16) << "\" text-anchor=\"middle\">" << fmt(shown)
      << "</text>\n";
  }
  o << "<text x=\"" << px(kLeft + kPlotW / 2) << "\" y=\"" << px(top + kPlotH + 32)
    << "\" text-anchor=\"middle\">" << xml_escape(x_label) << "</text>\n";
  if (!y_label.empty())
    o << "<text transform=\"translate(" << px(kLeft - 46) << ',' << px(top + kPlotH / 2)
      << ") rotate(-90)\" text-anchor=\"middle\">" << xml_escape(y_label) << "</text>\n";
  if (no_data) {
    o << "<text x=\"" << px(kLeft + kPlotW / 2) << "\" y=\"" << px(top + kPlotH / 2)
      << "\" text-anchor=\"middle\" fill=\"#808080\">no data</text>\n";
  }
  for (size_t k = 0; k < panel.size(); ++k) {
    const Series& s = panel[k];
    const char* color = kColors[k % (sizeof(kColors) / sizeof(kColors[0]))];
    // A polyline per run of finite points; a run of one point is a dot.
    std::vector<std::pair<double, double>> run;
    auto flush = [&] {
      if (run.size() == 1 && !markers) {  // (markers draw it below)
        o << "<circle cx=\"" << px(run[0].first) << "\" cy=\"" << px(run[0].second)
          << "\" r=\"2.5\" fill=\"" << color << "\"/>\n";
      } else if (run.size() > 1) {
        o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
        for (size_t i = 0; i < run.size(); ++i)
          o << (i ? " " : "") << px(run[i].first) << ',' << px(run[i].second);
        o << "\"/>\n";
      }
      run.clear();
    };
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (ok_point(s, i))
        run.emplace_back(X(s.x[i]), Y(s.y[i]));
      else
        flush();
    }
    flush();
    if (markers)  // every measured point, so sparse buckets show where they are
      for (size_t i = 0; i < s.x.size(); ++i)
        if (ok_point(s, i))
          o << "<circle cx=\"" << px(X(s.x[i])) << "\" cy=\"" << px(Y(s.y[i]))
            << "\" r=\"2.5\" fill=\"" << color << "\"><title>" << xml_escape(s.name)
            << ": x=" << fmt(s.x[i]) << ", y=" << fmt(s.y[i]) << "</title></circle>\n";
    const double ly = top + 12 + double(k) * 16, lx = kLeft + kPlotW + 14;
    o << "<line x1=\"" << px(lx) << "\" y1=\"" << px(ly) << "\" x2=\"" << px(lx + 18) << "\" y2=\""
      << px(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2\"/>\n<text x=\"" << px(lx + 24)
      << "\" y=\"" << px(ly + 4) << "\">" << xml_escape(s.name) << "</text>\n";
  }
  o << "</g>\n";
}

}  // namespace

std::string curves_svg(const std::vector<std::vector<Series>>& panels, const std::string& title) {
  const double H = kTitleH + double(std::max<size_t>(panels.size(), 1)) * kPanelH + 10;
  Range xr;  // one x range for all panels, so steps line up
  for (const auto& panel : panels) {
    for (const auto& s : panel) {
      check_series(s);
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (ok_point(s, i)) xr.add(s.x[i]);
      }
    }
  }
  xr.finish();
  std::ostringstream o;
  svg_open(o, kWidth, H, "font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\"", "20", title);
  for (size_t p = 0; p < panels.size(); ++p)
    draw_panel(o, panels[p], xr, kTitleH + double(p) * kPanelH + 10, "step", "", false);
  o << "</svg>\n";
  return o.str();
}

std::string line_chart_svg(const std::vector<Panel>& panels, const std::string& title,
                           const std::string& x_label, const std::string& y_label) {
  constexpr double kPanelTitleH = 18;  // room for a panel's title above its frame
  const double H =
      kTitleH + double(std::max<size_t>(panels.size(), 1)) * (kPanelH + kPanelTitleH) + 10;
  std::ostringstream o;
  svg_open(o, kWidth, H, "font-family=\"DejaVu Sans, sans-serif\" font-size=\"11\"", "20", title);
  for (size_t p = 0; p < panels.size(); ++p) {
    Range xr;  // each panel its own: the tasks' lengths need not overlap
    for (const auto& s : panels[p].series) {
      check_series(s);
      for (size_t i = 0; i < s.x.size(); ++i)
        if (ok_point(s, i)) xr.add(s.x[i]);
    }
    xr.finish();
    const double top = kTitleH + kPanelTitleH + double(p) * (kPanelH + kPanelTitleH) + 10;
    if (!panels[p].title.empty())
      o << "<text x=\"" << px(kLeft) << "\" y=\"" << px(top - 6) << "\" font-weight=\"bold\">"
        << xml_escape(panels[p].title) << "</text>\n";
    draw_panel(o, panels[p].series, xr, top, x_label, y_label, true);
  }
  o << "</svg>\n";
  return o.str();
}

// ---- confusion matrix -------------------------------------------------------------

namespace {

// Shade of a row share in [0,1]: white to a dark blue, so the diagonal of a
// good classifier stands out and a class that leaks into another shows as a
// second dark cell in its row.
std::string share_fill(double f) {
  const double t = std::clamp(f, 0.0, 1.0);
  const int r = int(std::lround(255 - t * (255 - 33))), g = int(std::lround(255 - t * (255 - 102))),
            b = int(std::lround(255 - t * (255 - 172)));
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
}

}  // namespace

std::string confusion_svg(const std::vector<int64_t>& counts,
                          const std::vector<std::string>& classes, const std::string& title) {
  const int64_t K = int64_t(classes.size());
  check(K >= 1 && int64_t(counts.size()) == K * K, "confusion_svg: ", counts.size(), " counts vs ",
        K, " classes (", K * K, " expected)");
  for (int64_t c : counts) check(c >= 0, "confusion_svg: negative count ", c);
  std::vector<std::string> names;
  int64_t name_w = 1;
  for (const auto& c : classes)
    name_w = std::max(name_w, text_width(names.emplace_back(visible(c))));

  // Geometry: cells wide enough for a five-digit count; class names turned along the top.
  const double cell = std::clamp(440.0 / double(K), 40.0, 64.0), char_w = 12 * 0.62;
  const double title_h = 28, axis = 20, label = double(name_w) * char_w + 8;
  const double top = title_h + axis + label, left = axis + label;
  const double W = left + double(K) * cell + 16, H = top + double(K) * cell + 16;

  std::ostringstream o;
  svg_open(o, W, H, "font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\"", "19", title);
  o << "<text x=\"" << px(left + double(K) * cell / 2) << "\" y=\"" << px(title_h + 14)
    << "\" font-size=\"13\" text-anchor=\"middle\">predicted</text>\n";
  o << "<text x=\"14\" y=\"" << px(top + double(K) * cell / 2) << "\" transform=\"rotate(-90 14 "
    << px(top + double(K) * cell / 2)
    << ")\" font-size=\"13\" text-anchor=\"middle\">true</text>\n";
  for (int64_t k = 0; k < K; ++k) {
    const double x = left + (double(k) + 0.5) * cell, y = top - 4;
    o << "<text x=\"" << px(x) << "\" y=\"" << px(y) << "\" transform=\"rotate(-90 " << px(x) << ' '
      << px(y) << ")\" dominant-baseline=\"middle\">" << xml_escape(names[size_t(k)])
      << "</text>\n";
    o << "<text x=\"" << px(left - 4) << "\" y=\"" << px(top + (double(k) + 0.5) * cell)
      << "\" text-anchor=\"end\" dominant-baseline=\"middle\">" << xml_escape(names[size_t(k)])
      << "</text>\n";
  }
  for (int64_t t = 0; t < K; ++t) {  // rows: the true class; shaded by its share of the row
    int64_t row = 0;
    for (int64_t p = 0; p < K; ++p) row += counts[size_t(t * K + p)];
    for (int64_t p = 0; p < K; ++p) {
      const int64_t n = counts[size_t(t * K + p)];
      const double f = row > 0 ? double(n) / double(row) : 0.0;
      const double x = left + double(p) * cell, y = top + double(t) * cell;
      o << "<rect x=\"" << px(x) << "\" y=\"" << px(y) << "\" width=\"" << px(cell)
        << "\" height=\"" << px(cell) << "\" fill=\"" << share_fill(f) << "\"><title>"
        << xml_escape(names[size_t(t)]) << " as " << xml_escape(names[size_t(p)]) << ": " << n
        << " of " << row << " (" << fmt(std::round(1000 * f) / 10) << "%)</title></rect>\n";
      o << "<text class=\"count\" x=\"" << px(x + cell / 2) << "\" y=\"" << px(y + cell / 2)
        << "\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\""
        << (f > 0.55 ? "#ffffff" : "#000000") << "\">" << n << "</text>\n";
    }
  }
  o << "<rect x=\"" << px(left) << "\" y=\"" << px(top) << "\" width=\"" << px(double(K) * cell)
    << "\" height=\"" << px(double(K) * cell)
    << "\" fill=\"none\" stroke=\"#808080\" stroke-width=\"1\"/>\n";
  o << "</svg>\n";
  return o.str();
}

std::string line_chart_svg(const std::vector<Series>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label) {
  return line_chart_svg(std::vector<Panel>{{"", series}}, title, x_label, y_label);
}

// ---- files ----------------------------------------------------------------------

void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    fail("write_file: cannot create '", tmp, "' (to write '", path, "'): ", std::strerror(err));
  }
  int err = 0;
  for (size_t done = 0; done < text.size() && !err;) {
    const ssize_t r = ::write(fd, text.data() + done, text.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0)
      err = errno;
    else
      done += size_t(r);
  }
  if (!err && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && !err) err = errno;
  if (!err && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    fail("write_file: cannot write '", path, "': ", std::strerror(err));
  }
}

}  // namespace qkv::plot
