// Training progress on stderr: on a terminal, one bar redrawn in place (epoch,
// step, loss, examples/s, ETA), at most ~10 times a second; otherwise plain
// log lines every log_every steps. Other lines (evaluations) go through line(),
// which clears the bar first. Not here: colours, multi-line dashboards.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace qkv::runner {

class Progress {
 public:
  // tty: draw a bar (else plain lines); total_steps > 0.
  Progress(bool tty, int64_t total_steps, int64_t log_every);
  // After update `step` (1-based count of updates done); seconds: training time so far.
  void update(int64_t step, int64_t epoch, double loss, double lr, double examples_per_s,
              double seconds);
  void line(const std::string& text);  // one full line
  void finish();                       // ends the bar's line

  // "1m05s", "12s", "1h02m".
  static std::string format_seconds(double s);

 private:
  bool tty_;
  int64_t total_, log_every_;
  bool bar_shown_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace qkv::runner
