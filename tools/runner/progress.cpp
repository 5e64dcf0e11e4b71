// The progress bar and plain log lines.
#include "tools/runner/progress.h"

#include <cmath>
#include <cstdio>

namespace qkv::runner {

Progress::Progress(bool tty, int64_t total_steps, int64_t log_every)
    : tty_(tty), total_(total_steps), log_every_(log_every) {}

std::string Progress::format_seconds(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const int64_t t = int64_t(s + 0.5);
  if (t < 60)
    std::snprintf(buf, sizeof buf, "%llds", (long long)t);
  else if (t < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(t / 3600), (long long)(t / 60 % 60));
  return buf;
}

void Progress::update(int64_t step, int64_t epoch, double loss, double lr, double examples_per_s,
                      double seconds) {
  const double eta = step > 0 ? seconds / double(step) * double(total_ - step) : NAN;
  if (!tty_) {
    if (step % log_every_ != 0 && step != total_) return;
    std::fprintf(stderr, "step %lld/%lld  epoch %lld  loss %.4f  lr %.3g  %.0f ex/s  eta %s\n",
                 (long long)step, (long long)total_, (long long)epoch, loss, lr, examples_per_s,
                 format_seconds(eta).c_str());
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (bar_shown_ && step != total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  constexpr int kWidth = 24;
  const int filled = int(double(kWidth) * double(step) / double(total_));
  std::string bar(size_t(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r\033[K[%s] %lld/%lld  epoch %lld  loss %.4f  %.0f ex/s  eta %s",
               bar.c_str(), (long long)step, (long long)total_, (long long)epoch, loss,
               examples_per_s, format_seconds(eta).c_str());
  std::fflush(stderr);
  bar_shown_ = true;
}

void Progress::line(const std::string& text) {
  if (bar_shown_) std::fputs("\r\033[K", stderr);
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
  bar_shown_ = false;  // redrawn on the next update
}

void Progress::finish() {
  if (bar_shown_) std::fputs("\n", stderr);
  bar_shown_ = false;
}

}  // namespace qkv::runner
