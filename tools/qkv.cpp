// qkv: the command-line program: experiments (train / eval / predict),
// the interop door (forward), model summaries (inspect) and micro-benchmarks.
// Every command has the same shape: parse flags, load and validate the config,
// build, run. Exit codes: 0 ok, 1 runtime failure, 2 usage or config error,
// 130 interrupted (Ctrl-C; train saves a checkpoint first).
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/simd.h"
#include "engine/threads.h"
#include "nn/builder.h"
#include "qkv_version.h"
#include "tools/plot.h"
#include "tools/runner/experiment.h"
#include "tools/runner/forward.h"
#include "tools/runner/inspect.h"
#include "tools/runner/predict.h"
#include "tools/runner/train.h"

namespace {

struct UsageError : qkv::Error {
  using qkv::Error::Error;
};

const char* kHelp =
    "qkv " QKV_VERSION
    " - a from-scratch engine for attention models\n"
    "\n"
    "usage: qkv [COMMAND] [ARGS]\n"
    "\n"
    "commands:\n"
    "  (none)            the main job: print version, SIMD and threads, train\n"
    "                    configs/dates_luong.json (to 99% exact match), then predict one\n"
    "                    date and write runs/dates_luong/attention.svg\n"
    "  train CONFIG      train an experiment described in JSON\n"
    "  eval CONFIG       evaluate a checkpoint on the valid or test split\n"
    "  predict CONFIG    decode one input with a checkpoint (and draw its attention)\n"
    "  forward MODULE    run one module from JSON on named tensors (parity with PyTorch)\n"
    "  inspect CONFIG    model summary: layers, parameters per module, FLOPs per step\n"
    "  data CONFIG       export the experiment's data splits as TSV (for peer scripts)\n"
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
    "suites: gemm softmax layernorm lstm attention transformer conv cbam optim\n"
    "\n"
    "options:\n"
    "  --json         one JSON object per line: suite, case, threads, ms, gflops, gbps\n"
    "                 (default: off, an aligned table)\n"
    "  --threads N    threads to run at (default: QKV_THREADS, else OMP_NUM_THREADS,\n"
    "                 else all cores)\n"
    "  --quick        small sizes and few repeats, for smoke tests (default: off)\n";

const char* kTrainHelp =
    "usage: qkv train CONFIG.json [--set path=value ...] [--out DIR] [--resume]\n"
    "\n"
    "Trains the experiment: progress on stderr (a bar on a terminal), DIR/config.json,\n"
    "DIR/metrics.jsonl, DIR/model.safetensors (last), DIR/best.safetensors,\n"
    "DIR/curves.svg, then a one-line JSON summary on stdout. Ctrl-C saves a\n"
    "checkpoint and exits with 130.\n"
    "\n"
    "options:\n"
    "  --set path=value  override a config field, e.g. train.optimizer.lr=0.003\n"
    "                    (repeatable; value parsed as JSON, else a string; default: none)\n"
    "  --out DIR         run directory (default: the config's output, else runs/NAME)\n"
    "  --resume          continue from DIR/model.safetensors exactly where it stopped\n"
    "                    (default: off, start afresh)\n";

const char* kEvalHelp =
    "usage: qkv eval CONFIG.json --checkpoint FILE [--split valid|test] [--set path=value ...]\n"
    "\n"
    "Evaluates a checkpoint on a whole split and prints one JSON line of metrics.\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE  model weights (a qkv checkpoint or a PyTorch state_dict\n"
    "                     as safetensors; required)\n"
    "  --split S          valid or test (default: test)\n"
    "  --set path=value   override a config field (repeatable; default: none)\n";

const char* kPredictHelp =
    "usage: qkv predict CONFIG.json --checkpoint FILE --input TEXT [--attention OUT.svg]\n"
    "                   [--beam K] [--length N] [--temperature T] [--set path=value ...]\n"
    "\n"
    "Decodes one input and prints the prediction; on a terminal also the attention\n"
    "matrix as shaded characters.\n"
    "\n"
    "options:\n"
    "  --checkpoint FILE  model weights (required)\n"
    "  --input TEXT       the source, as the data set's examples are written (required)\n"
    "  --attention FILE   write the attention heatmap as SVG (default: none)\n"
    "  --beam K           beam width, 1 = greedy (default: 1)\n"
    "  --length N         language models: tokens to add (default: as many as the\n"
    "                     context allows, at most 200)\n"
    "  --temperature T    language models: 0 = greedy, > 0 samples softmax(logits/T)\n"
    "                     with the config's seed (default: 0)\n"
    "  --set path=value   override a config field (repeatable; default: none)\n";

const char* kForwardHelp =
    "usage: qkv forward MODULE.json --weights W.safetensors --input X.safetensors\n"
    "                   --output Y.safetensors [--grad]\n"
    "\n"
    "Builds one module from JSON, loads its weights by PyTorch name (strict), runs it\n"
    "on the named input tensors and writes its outputs:\n"
    "  one-tensor modules: input -> output\n"
    "  lstm / gru: input [, h0, c0, lengths] -> output, h_n [, c_n]\n"
    "  multihead_attention: query [, key, value, key_lengths] -> output, weights\n"
    "\n"
    "options:\n"
    "  --weights FILE  parameters (default: none, the module's seeded initialisation)\n"
    "  --input FILE    input tensors (required)\n"
    "  --output FILE   where to write the outputs (required)\n"
    "  --grad          also write the gradients of sum(output * grad_output) (upstreams\n"
    "                  from the input file: grad_output, grad_h_n, ...) w.r.t. every\n"
    "                  input (grad.NAME) and parameter (its name) (default: off)\n";

const char* kInspectHelp =
    "usage: qkv inspect CONFIG.json|MODULE.json [--set path=value ...]\n"
    "\n"
    "Prints the model: one module per line with its parameter count, the total and,\n"
    "for an experiment config, an estimate of the FLOPs of one training step.\n"
    "\n"
    "options:\n"
    "  --set path=value  override a config field (repeatable; default: none)\n";

const char* kDataHelp =
    "usage: qkv data CONFIG.json --out DIR [--set path=value ...]\n"
    "\n"
    "Writes DIR/train.tsv, DIR/valid.tsv and DIR/test.tsv (\"source<TAB>target\" per line)\n"
    "from the experiment's data set, exactly as qkv trains on it, so a peer script\n"
    "(bench/peers/dates_torch.py) sees the same examples in the same splits.\n"
    "\n"
    "options:\n"
    "  --out DIR         where to write the files (required)\n"
    "  --set path=value  override a config field (repeatable; default: none)\n";

// ---- command-line parsing ---------------------------------------------------------
int parse_count(const std::string& flag, const char* v);

// One positional argument (the config) and long flags; `valued` flags take the
// next argument (or --flag=value), the others are switches.
struct Args {
  std::string positional;
  std::map<std::string, std::string> values;
  std::vector<std::string> sets;
  std::map<std::string, bool> switches;

  std::string get(const std::string& flag, const std::string& def = "") const {
    auto it = values.find(flag);
    return it == values.end() ? def : it->second;
  }
  bool on(const std::string& flag) const { return switches.count(flag) > 0; }
};

// Returns false when --help was asked (help printed).
bool parse_args(const std::string& cmd, const std::vector<std::string>& args,
                const std::vector<std::string>& valued, const std::vector<std::string>& flags,
                const char* help, Args& out) {
  auto is = [](const std::vector<std::string>& v, const std::string& x) {
    for (const auto& e : v)
      if (e == x) return true;
    return false;
  };
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    bool has_value = false;
    if (a == "--help" || a == "-h") {
      std::fputs(help, stdout);
      return false;
    }
    if (a.rfind("--", 0) != 0) {
      if (!out.positional.empty())
        throw UsageError(cmd + ": unexpected argument '" + a + "' (see 'qkv " + cmd + " --help')");
      out.positional = a;
      continue;
    }
    if (const auto eq = a.find('='); eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      has_value = true;
    }
    if (a == "--set" || is(valued, a)) {
      if (!has_value) {
        if (i + 1 >= args.size()) throw UsageError(a + ": missing value");
        value = args[++i];
      }
      if (a == "--set")
        out.sets.push_back(value);
      else
        out.values[a] = value;
    } else if (is(flags, a) && !has_value) {
      out.switches[a] = true;
    } else {
      throw UsageError(cmd + ": unknown option '" + a + "' (see 'qkv " + cmd + " --help')");
    }
  }
  return true;
}

std::string require(const Args& a, const std::string& cmd, const std::string& flag) {
  const std::string v = flag.empty() ? a.positional : a.get(flag);
  if (v.empty())
    throw UsageError(cmd + ": missing " + (flag.empty() ? "CONFIG.json" : flag) + " (see 'qkv " +
                     cmd + " --help')");
  return v;
}

// Loads and builds an experiment; everything that goes wrong here is a config
// error (exit 2): unreadable or invalid JSON, bad --set, unknown keys, bad
// values, missing data files.
qkv::runner::Experiment load_experiment(const Args& a, const std::string& cmd) {
  const std::string path = require(a, cmd, "");
  try {
    qkv::Json root = qkv::runner::load_config_file(path, a.sets);
    return qkv::runner::make_experiment(
        qkv::runner::parse_config(root, std::filesystem::path(path).stem().string()));
  } catch (const UsageError&) {
    throw;
  } catch (const qkv::Error& e) {
    throw UsageError(e.what());
  }
}

// ---- commands -------------------------------------------------------------------------
void on_sigint(int) { qkv::runner::stop_flag().store(true); }

int cmd_train(const std::vector<std::string>& args) {
  Args a;
  if (!parse_args("train", args, {"--out"}, {"--resume"}, kTrainHelp, a)) return 0;
  qkv::runner::Experiment ex = load_experiment(a, "train");
  qkv::runner::RunOptions opt;
  opt.out_dir = a.get("--out");
  opt.resume = a.on("--resume");
  opt.tty = isatty(2);
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C kills at once
  sigaction(SIGINT, &sa, nullptr);
  const qkv::runner::TrainResult r = qkv::runner::train(ex, opt);
  std::printf("%s\n", r.summary.dump().c_str());
  std::fflush(stdout);
  if (r.interrupted) {
    std::fprintf(stderr, "qkv: interrupted at step %lld; checkpoint saved (resume with --resume)\n",
                 (long long)r.steps);
    return 130;
  }
  return 0;
}

int cmd_eval(const std::vector<std::string>& args) {
  Args a;
  if (!parse_args("eval", args, {"--checkpoint", "--split"}, {}, kEvalHelp, a)) return 0;
  const std::string split = a.get("--split", "test");
  if (split != "valid" && split != "test")
    throw UsageError("--split: expected valid or test, got '" + split + "'");
  const std::string ckpt = require(a, "eval", "--checkpoint");
  qkv::runner::Experiment ex = load_experiment(a, "eval");
  qkv::runner::load_model(ex, ckpt);
  const auto s = split == "valid" ? qkv::data::Split::valid : qkv::data::Split::test;
  const qkv::runner::Metrics m =
      qkv::runner::evaluate(*ex.task, *ex.model, *ex.data, s, 0, ex.cfg.train.batch_size);
  qkv::Json out = {{"name", ex.cfg.name}, {"checkpoint", ckpt}, {"split", split}};
  out["metrics"] = qkv::runner::metrics_json(m);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int cmd_predict(const std::vector<std::string>& args) {
  Args a;
  if (!parse_args("predict", args,
                  {"--checkpoint", "--input", "--attention", "--beam", "--length", "--temperature"},
                  {}, kPredictHelp, a))
    return 0;
  qkv::runner::PredictOptions po;
  po.beam = parse_count("--beam", a.get("--beam", "1").c_str());
  if (!a.get("--length").empty()) po.length = parse_count("--length", a.get("--length").c_str());
  if (!a.get("--temperature").empty()) {
    const std::string t = a.get("--temperature");
    char* end = nullptr;
    po.temperature = std::strtof(t.c_str(), &end);
    if (end == t.c_str() || *end || !(po.temperature >= 0.f) || std::isinf(po.temperature))
      throw UsageError("--temperature: expected a number >= 0, got '" + t + "'");
  }
  const std::string ckpt = require(a, "predict", "--checkpoint");
  const std::string input = require(a, "predict", "--input");
  qkv::runner::Experiment ex = load_experiment(a, "predict");
  qkv::runner::load_model(ex, ckpt);
  const qkv::runner::Prediction p = qkv::runner::predict(ex, input, po);
  std::printf("%s\n", p.text.c_str());
  if (p.attention.defined()) {
    if (isatty(1) && p.attention.dim() >= 2) {
      qkv::Tensor w =
          p.attention.dim() == 3
              ? p.attention.narrow_rows(0, 1).reshape({p.attention.size(1), p.attention.size(2)})
              : p.attention;
      std::fputs(qkv::plot::attention_text(w, p.src_tokens, p.out_tokens).c_str(), stdout);
    }
    const std::string svg = a.get("--attention");
    if (!svg.empty())
      qkv::plot::write_file(svg, qkv::plot::attention_svg(p.attention, p.src_tokens, p.out_tokens,
                                                          input + " -> " + p.text));
  } else if (!a.get("--attention").empty()) {
    throw qkv::Error("predict: the model has no attention to draw");
  }
  return 0;
}

int cmd_forward(const std::vector<std::string>& args) {
  Args a;
  if (!parse_args("forward", args, {"--weights", "--input", "--output"}, {"--grad"}, kForwardHelp,
                  a))
    return 0;
  if (!a.sets.empty()) throw UsageError("forward: unknown option '--set'");
  qkv::runner::ForwardOptions o;
  o.module_json = require(a, "forward", "");
  o.weights = a.get("--weights");
  o.input = require(a, "forward", "--input");
  o.output = require(a, "forward", "--output");
  o.grad = a.on("--grad");
  qkv::runner::run_forward(o);
  return 0;
}

int cmd_data(const std::vector<std::string>& args) {
  Args a;
  if (!parse_args("data", args, {"--out"}, {}, kDataHelp, a)) return 0;
  const std::string out = require(a, "data", "--out");
  const qkv::runner::Experiment ex = load_experiment(a, "data");
  std::filesystem::create_directories(out);
  for (auto s : {qkv::data::Split::train, qkv::data::Split::valid, qkv::data::Split::test})
    qkv::data::export_tsv(
        *ex.data, s,
        (std::filesystem::path(out) / (std::string(qkv::data::split_name(s)) + ".tsv")).string());
  return 0;
}

int cmd_inspect(const std::vector<std::string>& args) {
  Args a;
  if (!parse_args("inspect", args, {}, {}, kInspectHelp, a)) return 0;
  const std::string path = require(a, "inspect", "");
  qkv::Json root;
  try {
    root = qkv::runner::load_config_file(path, a.sets);
  } catch (const qkv::Error& e) {
    throw UsageError(e.what());
  }
  if (root.contains("type")) {  // a bare module config
    qkv::Generator gen(0);
    qkv::Built b;
    try {
      b = qkv::build_module(root, gen, "module");
    } catch (const qkv::Error& e) {
      throw UsageError(e.what());
    }
    std::fputs(qkv::runner::inspect_text(*b.module).c_str(), stdout);
    return 0;
  }
  const qkv::runner::Experiment ex = load_experiment(a, "inspect");
  std::fputs(qkv::runner::inspect_text(ex).c_str(), stdout);
  return 0;
}

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

// The main job: the default experiment end to end, from the repository root.
int cmd_main() {
  print_info();
  const std::string config = "configs/dates_luong.json";
  if (!std::filesystem::exists(config))
    throw UsageError(config +
                     ": not found (run qkv from the repository root, or see 'qkv --help')");
  const int rc = cmd_train({config});
  if (rc != 0) return rc;
  Args a;
  a.positional = config;
  qkv::runner::Experiment ex = load_experiment(a, "predict");
  const std::string dir = ex.cfg.output;
  qkv::runner::load_model(ex, dir + "/best.safetensors");
  const std::string input = "Tue 27 Sep 1994", svg = dir + "/attention.svg";
  const qkv::runner::Prediction p = qkv::runner::predict(ex, input);
  std::printf("predict: %s -> %s\n", input.c_str(), p.text.c_str());
  if (isatty(1))
    std::fputs(qkv::plot::attention_text(p.attention, p.src_tokens, p.out_tokens).c_str(), stdout);
  qkv::plot::write_file(svg, qkv::plot::attention_svg(p.attention, p.src_tokens, p.out_tokens,
                                                      input + " -> " + p.text));
  std::printf("attention: %s\n", svg.c_str());
  return 0;
}

int run(const std::vector<std::string>& args) {
  if (args.empty()) return cmd_main();
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
  if (cmd == "train") return cmd_train(rest);
  if (cmd == "eval") return cmd_eval(rest);
  if (cmd == "predict") return cmd_predict(rest);
  if (cmd == "forward") return cmd_forward(rest);
  if (cmd == "inspect") return cmd_inspect(rest);
  if (cmd == "data") return cmd_data(rest);
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
