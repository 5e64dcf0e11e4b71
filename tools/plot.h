// Pictures for experiments: attention heatmaps (SVG, and shaded characters on
// a terminal, like the alignment figures of Bahdanau et al.), training curves,
// line charts and a classifier's confusion matrix.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace qkv::plot {

// weights: [T_out,S] (one panel) or [NH,T_out,S] (one panel per head, titled
// "head 0", ...). Rows are output tokens (out_tokens, T_out of them), columns
// source tokens (src_tokens, S of them); cell darkness = weight in [0,1].
std::string attention_svg(const Tensor& weights, const std::vector<std::string>& src_tokens,
                          const std::vector<std::string>& out_tokens, const std::string& title);
// The same matrix ([T_out,S]) as text: one row per output token, one shaded
// character (" .:-=+*#%@") per source token, labels escaped for a terminal.
std::string attention_text(const Tensor& weights, const std::vector<std::string>& src_tokens,
                           const std::vector<std::string>& out_tokens);

struct Series {
  std::string name;         // "train loss", "valid exact_match", ...
  std::vector<double> x;    // step
  std::vector<double> y;    // value (NaN/Inf points are skipped)
};
// One panel per entry of `panels` (e.g. {losses}, {metrics}), stacked
// vertically, each with its own y axis, ticks and a legend; x is the step.
std::string curves_svg(const std::vector<std::vector<Series>>& panels, const std::string& title);

// Panels of lines y(x), stacked top to bottom, one line per series with a legend and a
// dot at every point (hover: its name, x and y), each panel with its own x and y range
// and its title above it (e.g. a metric against source length on two tasks, one line
// per run: Bahdanau et al.'s Fig. 2 twice).
struct Panel {
  std::string title;  // "" for none
  std::vector<Series> series;
};
std::string line_chart_svg(const std::vector<Panel>& panels, const std::string& title,
                           const std::string& x_label, const std::string& y_label);
// One untitled panel.
std::string line_chart_svg(const std::vector<Series>& series, const std::string& title,
                           const std::string& x_label, const std::string& y_label);

// A classifier's confusion matrix: counts [K,K] row-major (counts[true * K + predicted]),
// rows the true classes, columns the predicted ones, labelled with the K class names.
// Each cell shows its count (as <text class="count">) and is shaded by its share of the
// row, so classes of different sizes compare; hovering a cell tells "a as b: n of m (x%)".
std::string confusion_svg(const std::vector<int64_t>& counts,
                          const std::vector<std::string>& classes, const std::string& title);

// Writes text to path atomically (temporary file + rename); throws qkv::Error naming the file.
void write_file(const std::string& path, const std::string& text);

}  // namespace qkv::plot
