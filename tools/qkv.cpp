// qkv: the command-line program. Today: version/info and micro-benchmarks;
// the experiment runner (train / eval / predict / forward / inspect) plugs in
// here as its issues land. Exit codes: 0 ok, 1 runtime failure, 2 usage error.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "engine/error.h"
#include "engine/simd.h"
#include "engine/threads.h"
#include "qkv_version.h"

namespace {

struct UsageError : qkv::Error {
  using qkv::Error::Error;
};

const char* kHelp =
    "qkv " QKV_VERSION " - a from-scratch engine for attention models\n"
    "\n"
    "usage: qkv [COMMAND] [ARGS]\n"
    "\n"
    "commands:\n"
    "  (none)            print version, SIMD architecture and threads, then run 'bench gemm'\n"
    "  info              print version, SIMD architecture and thread count\n"
    "  bench [SUITE...]  run micro-benchmarks (see 'qkv bench --help')\n"
    "\n"
    "options:\n"
    "  --help            this text ('qkv COMMAND --help' for a command)\n"
    "  --version         print the version\n"
    "\n"
    "environment:\n"
    "  QKV_THREADS       thread count (else OMP_NUM_THREADS, else all cores)\n";

const char* kBenchHelp =
    "usage: qkv bench [SUITE ...] [--json] [--threads N] [--quick]\n"
    "\n"
    "Runs micro-benchmark suites (default: all). Each case is first checked against\n"
    "the scalar reference, then timed; the median of repeats is reported.\n"
    "\n"
    "suites: gemm softmax layernorm lstm attention transformer conv cbam\n"
    "\n"
    "options:\n"
    "  --json         one JSON object per line: suite, case, threads, ms, gflops, gbps\n"
    "                 (default: off, an aligned table)\n"
    "  --threads N    threads to run at (default: QKV_THREADS, else OMP_NUM_THREADS,\n"
    "                 else all cores)\n"
    "  --quick        small sizes and few repeats, for smoke tests (default: off)\n";

void print_info() {
  std::printf("qkv %s\n", QKV_VERSION);
  std::printf("simd: %s (%d float lanes)\n", qkv::simd::arch_name(), qkv::simd::W);
  std::printf("threads: %d\n", qkv::num_threads());
  std::fflush(stdout);
}

int parse_count(const std::string& flag, const char* v) {
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  if (end == v || *end || n < 1 || n > 1024)
    throw UsageError(flag + ": expected a count >= 1, got '" + v + "'");
  return int(n);
}

int cmd_bench(const std::vector<std::string>& args) {
  qkv::bench::Options opt;
  opt.threads = qkv::num_threads();
  std::vector<std::string> suites;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kBenchHelp, stdout);
      return 0;
    } else if (a == "--json") {
      opt.json = true;
    } else if (a == "--quick") {
      opt.quick = true;
    } else if (a == "--threads") {
      if (i + 1 >= args.size()) throw UsageError("--threads: missing value");
      opt.threads = parse_count(a, args[++i].c_str());
    } else if (a.rfind("--threads=", 0) == 0) {
      opt.threads = parse_count("--threads", a.c_str() + 10);
    } else if (a.rfind("--", 0) == 0) {
      throw UsageError("bench: unknown option '" + a + "' (see 'qkv bench --help')");
    } else {
      bool known = false;
      for (const auto& n : qkv::bench::suite_names()) known |= (n == a);
      if (!known) throw UsageError("bench: unknown suite '" + a + "' (see 'qkv bench --help')");
      suites.push_back(a);
    }
  }
  if (suites.empty()) suites = qkv::bench::suite_names();
  qkv::set_num_threads(opt.threads);
  for (const auto& s : suites) qkv::bench::run_suite(s, opt);
  return 0;
}

int run(const std::vector<std::string>& args) {
  if (args.empty()) {  // the main job, until the experiment runner exists
    print_info();
    return cmd_bench({"gemm"});
  }
  const std::string& cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (cmd == "--version") {
    std::printf("qkv %s\n", QKV_VERSION);
    return 0;
  }
  if (cmd == "info") {
    print_info();
    return 0;
  }
  if (cmd == "bench") return cmd_bench(rest);
  throw UsageError("unknown command '" + cmd + "' (see 'qkv --help')");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const UsageError& e) {
    std::fprintf(stderr, "qkv: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "qkv: %s\n", e.what());
    return 1;
  }
}
