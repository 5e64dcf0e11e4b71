// qkv: the command-line program: experiments (train / eval / predict),
// the interop door (forward), model summaries (inspect) and micro-benchmarks.
// Each command and flag is declared once (CLI11): its type, range, default and
// help line come from that one declaration. Exit codes: 0 ok, 1 runtime
// failure, 2 usage or config error, 130 interrupted (Ctrl-C; train saves first).
// Under mpirun every rank runs the same command; rank 0 alone prints results,
// and a rank that fails ends the whole job naming itself (dist/comm.h).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "dist/comm.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/simd.h"
#include "engine/threads.h"
#include "nn/builder.h"
#include "qkv_version.h"
#include "tools/plot.h"
#include "tools/runner/confusion.h"
#include "tools/runner/experiment.h"
#include "tools/runner/forward.h"
#include "tools/runner/inspect.h"
#include "tools/runner/predict.h"
#include "tools/runner/train.h"

namespace {

struct UsageError : qkv::Error {
  using qkv::Error::Error;
};

// ---- help lines and value checks ----------------------------------------------------
// Help as "  --beam K   beam width, 1 = greedy (an integer in [1, 1024]; default: 1)":
// the label, the range and the default all come from the option's declaration
// (CLI11 joins a validator's description to the type name after a ':').
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* o) const override {
    if (o->get_expected_max() == 0) return "";  // a switch
    const std::string t = o->get_type_name(), label = t.substr(0, t.find(':'));
    return label.empty() ? "" : " " + label;
  }
  std::string make_option_desc(const CLI::Option* o) const override {
    std::vector<std::string> notes;
    const std::string t = o->get_type_name();
    if (const auto c = t.find(':'); c != std::string::npos) notes.push_back(t.substr(c + 1));
    const std::string def = o->get_default_str();
    if (o->get_required())
      notes.push_back("required");
    else if (!def.empty())
      notes.push_back("default: " + def);
    std::string d = o->get_description();
    for (size_t i = 0; i < notes.size(); ++i) d += (i ? "; " : " (") + notes[i];
    return notes.empty() ? d : d + ")";
  }
};

// Integers in [lo, hi] (hi = max: no upper bound); CLI11 prefixes the flag's name.
CLI::Validator integer_in(long long lo, long long hi) {
  const std::string range =
      hi == std::numeric_limits<long long>::max()
          ? "an integer >= " + std::to_string(lo)
          : "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [=](std::string& v) {
        long long n = 0;
        if (!CLI::detail::lexical_cast(v, n) || n < lo || n > hi)
          return "expected " + range + ", got '" + v + "'";
        return std::string();
      },
      range);
}

CLI::Validator number_at_least(double lo) {
  const std::string range = "a number >= " + CLI::detail::to_string(lo);
  return CLI::Validator(
      [=](std::string& v) {
        double x = 0;
        if (!CLI::detail::lexical_cast(v, x) || !(x >= lo) || std::isinf(x))
          return "expected " + range + ", got '" + v + "'";
        return std::string();
      },
      range);
}

CLI::Validator one_of(const std::vector<std::string>& names, const std::string& what) {
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : " ") + n;
  return CLI::Validator(
      [=](std::string& v) {
        for (const auto& n : names)
          if (n == v) return std::string();
        return "unknown " + what + " '" + v + "' (one of: " + list + ")";
      },
      "one of: " + list);
}

// A switch, its default shown from the variable it sets.
CLI::Option* add_switch(CLI::App& cmd, const std::string& name, bool& on, const std::string& what) {
  return cmd.add_flag(name, on, what)->default_str(on ? "on" : "off");
}

// ---- the commands' arguments --------------------------------------------------------
struct ConfigArgs {
  std::string path;               // CONFIG.json
  std::vector<std::string> sets;  // --set path=value, in order
};

struct TrainArgs {
  ConfigArgs cfg;
  qkv::runner::RunOptions run;
};

struct EvalArgs {
  ConfigArgs cfg;
  std::string checkpoint;
  std::string split = "test";
  bool by_length = false;
  int64_t bucket_width = 1;
  std::string confusion;  // OUT.svg
};

struct PredictArgs {
  ConfigArgs cfg;
  std::string checkpoint, input, input_file, attention;
  qkv::runner::PredictOptions opt;
};

struct PlotArgs {
  std::vector<std::string> evals;  // `qkv eval --by-length` outputs
  std::vector<std::string> labels, metrics, panels;  // none, or one per EVAL.json (metrics: or one)
  std::string out, title = "quality against source length", y_label;
};

struct DataArgs {
  ConfigArgs cfg;
  std::string out;
};

struct BenchArgs {
  std::vector<std::string> suites;  // empty: all
  qkv::bench::Options opt;
  CLI::Option* threads = nullptr;  // opt.threads comes from the environment unless given
};

void declare_config(CLI::App& cmd, ConfigArgs& a, const std::string& what) {
  cmd.add_option("CONFIG.json", a.path, what)->type_name("")->required();
  cmd.add_option("--set", a.sets,
                 "override a config field, e.g. train.optimizer.lr=0.003 (repeatable; VALUE "
                 "is parsed as JSON, else a string)")
      ->type_name("PATH=VALUE")
      ->allow_extra_args(false)
      ->default_str("none");
}

CLI::App* declare_train(CLI::App& app, TrainArgs& a) {
  CLI::App* c = app.add_subcommand("train", "train an experiment described in JSON");
  c->footer(
      "Progress goes to stderr (a bar on a terminal); DIR gets config.json, metrics.jsonl,\n"
      "model.safetensors (last), best.safetensors and curves.svg, and a one-line JSON\n"
      "summary goes to stdout. Ctrl-C saves a checkpoint and exits with 130.");
  declare_config(*c, a.cfg, "the experiment");
  c->add_option("--out", a.run.out_dir, "run directory")
      ->type_name("DIR")
      ->default_str("the config's output, else runs/NAME");
  add_switch(*c, "--resume", a.run.resume,
             "continue from DIR/model.safetensors exactly where it stopped");
  return c;
}

CLI::App* declare_eval(CLI::App& app, EvalArgs& a) {
  CLI::App* c =
      app.add_subcommand("eval", "evaluate a checkpoint on a split; one JSON line of metrics");
  declare_config(*c, a.cfg, "the experiment");
  c->add_option("--checkpoint", a.checkpoint,
                "model weights (a qkv checkpoint or a PyTorch state_dict as safetensors)")
      ->type_name("FILE")
      ->required();
  c->add_option("--split", a.split, "the split to evaluate")
      ->type_name("S")
      ->check(one_of({"valid", "test"}, "split"));
  add_switch(*c, "--by-length", a.by_length,
             "also every metric per source-length bucket (\"by_length\": [...])");
  c->add_option("--bucket-width", a.bucket_width, "source lengths per bucket with --by-length")
      ->type_name("N")
      ->check(integer_in(1, 1 << 20));
  c->add_option("--confusion", a.confusion,
                "classification: draw the confusion matrix (rows true, columns predicted) "
                "into this SVG; its counts also go into the JSON line (\"confusion\")")
      ->type_name("OUT.svg")
      ->default_str("none");
  return c;
}

CLI::App* declare_predict(CLI::App& app, PredictArgs& a) {
  CLI::App* c =
      app.add_subcommand("predict", "decode one input with a checkpoint (and draw its attention)");
  c->footer("On a terminal the attention matrix is also printed as shaded characters.");
  declare_config(*c, a.cfg, "the experiment");
  c->add_option("--checkpoint", a.checkpoint, "model weights")->type_name("FILE")->required();
  CLI::Option* one =
      c->add_option("--input", a.input, "the source, as the data set's examples are written")
          ->type_name("TEXT")
          ->default_str("none");
  CLI::Option* file =
      c->add_option("--input-file", a.input_file,
                    "decode every line of FILE (in batches); prints input<TAB>prediction<TAB>score")
          ->type_name("FILE")
          ->default_str("none");
  one->excludes(file);
  c->add_option("--batch-size", a.opt.batch, "inputs decoded together with --input-file")
      ->type_name("N")
      ->check(integer_in(1, 1 << 20));
  c->add_option("--attention", a.attention, "write the attention heatmap as SVG")
      ->type_name("FILE")
      ->default_str("none");
  c->add_option("--beam", a.opt.beam, "beam width, 1 = greedy")
      ->type_name("K")
      ->check(integer_in(1, 1024));
  c->add_option("--length", a.opt.length,
                "language models: tokens to add, 0 = what the context allows, at most 200")
      ->type_name("N")
      ->check(integer_in(0, std::numeric_limits<long long>::max()));
  c->add_option("--temperature", a.opt.temperature,
                "language models: 0 = greedy, > 0 samples softmax(logits/T), config's seed")
      ->type_name("T")
      ->check(number_at_least(0));
  return c;
}

CLI::App* declare_plot(CLI::App& app, PlotArgs& a) {
  CLI::App* c =
      app.add_subcommand("plot", "draw several runs' metric against source length on one SVG");
  c->footer(
      "Each EVAL.json is the output of 'qkv eval ... --by-length' (one JSON line); each\n"
      "becomes one line of the chart (metric at each bucket's middle length), named by\n"
      "--label or else by the experiment's name. Runs of different tasks go in panels\n"
      "(--panel, one per EVAL.json: files with the same panel share it; panels stack in\n"
      "order of first use, each with its own axes) and may plot different metrics\n"
      "(--metric, one per EVAL.json). 1-NAME plots one minus NAME, so G2P's word\n"
      "accuracy (1-wer) and reversal's exact_match are the same quantity: the share of\n"
      "sources decoded entirely right. Attention vs none on both tasks in one picture:\n"
      "  qkv plot rev_att.json rev_none.json g2p_att.json g2p_none.json \\\n"
      "    --metric exact_match --metric exact_match --metric 1-wer --metric 1-wer \\\n"
      "    --panel 'reverse sequences' --panel 'reverse sequences' --panel G2P --panel G2P \\\n"
      "    --label attention --label none --label attention --label none \\\n"
      "    --y-label 'sequence accuracy' --out docs/length.svg");
  c->add_option("EVAL.json", a.evals, "evaluations by length")->type_name("")->required();
  c->add_option("--out", a.out, "the SVG to write")->type_name("FILE")->required();
  c->add_option("--metric", a.metrics,
                "the metric to draw: one for all, or one per EVAL.json in order (repeatable); "
                "1-NAME: one minus NAME")
      ->type_name("NAME")
      ->default_str("exact_match");
  c->add_option("--label", a.labels, "a line's name, one per EVAL.json in order (repeatable)")
      ->type_name("TEXT")
      ->default_str("the experiment names");
  c->add_option("--panel", a.panels,
                "the panel (its title) of each EVAL.json in order (repeatable)")
      ->type_name("TITLE")
      ->default_str("one untitled panel");
  c->add_option("--y-label", a.y_label, "the y axis's label")
      ->type_name("TEXT")
      ->default_str("the metrics, ' / '-separated");
  c->add_option("--title", a.title, "the chart's title")->type_name("TEXT")->capture_default_str();
  return c;
}

CLI::App* declare_forward(CLI::App& app, qkv::runner::ForwardOptions& o) {
  CLI::App* c = app.add_subcommand(
      "forward", "run one module from JSON on named tensors (parity with PyTorch)");
  c->footer(
      "Builds one module from JSON, loads its weights by PyTorch name (strict), runs it on\n"
      "the input tensors named as PyTorch's forward arguments and writes its outputs.\n"
      "With --grad, also the gradients of sum(output * grad_output) (upstreams from the\n"
      "input file: grad_output, grad_h_n, ...) w.r.t. every input (grad.NAME) and\n"
      "parameter (its name).");
  c->add_option("MODULE.json", o.module_json, "the module")->type_name("")->required();
  c->add_option("--weights", o.weights, "parameters")
      ->type_name("FILE")
      ->default_str("none, the module's seeded initialisation");
  c->add_option("--input", o.input, "input tensors (safetensors)")->type_name("FILE")->required();
  c->add_option("--output", o.output, "where to write the outputs")->type_name("FILE")->required();
  add_switch(*c, "--grad", o.grad, "also write the gradients of every input and parameter");
  return c;
}

CLI::App* declare_inspect(CLI::App& app, ConfigArgs& a) {
  CLI::App* c =
      app.add_subcommand("inspect", "model summary: layers, parameters per module, FLOPs per step");
  declare_config(*c, a, "an experiment, or a module's JSON (then no FLOPs)");
  return c;
}

CLI::App* declare_data(CLI::App& app, DataArgs& a) {
  CLI::App* c =
      app.add_subcommand("data", "export the experiment's data splits as TSV (for peer scripts)");
  c->footer(
      "Writes DIR/train.tsv, DIR/valid.tsv and DIR/test.tsv (\"source<TAB>target\" per line)\n"
      "exactly as qkv trains on them, so a peer script sees the same examples and splits,\n"
      "and DIR/export.json: the resolved experiment (\"config\", --set applied) and how\n"
      "sources and targets split into tokens (\"source_tokens\", \"target_tokens\": chars|words).");
  declare_config(*c, a.cfg, "the experiment");
  c->add_option("--out", a.out, "where to write the files")->type_name("DIR")->required();
  return c;
}

CLI::App* declare_bench(CLI::App& app, BenchArgs& a) {
  CLI::App* c = app.add_subcommand("bench", "run micro-benchmarks");
  c->footer(
      "Each case is first checked against the scalar reference, then timed; the median\n"
      "of repeats is reported.");
  c->add_option("SUITE", a.suites, "suites to run")
      ->type_name("")
      ->check(one_of(qkv::bench::suite_names(), "suite"))
      ->default_str("all");
  add_switch(*c, "--json", a.opt.json,
             "one JSON object per line: suite, case, threads, ms, gflops, gbps");
  a.threads = c->add_option("--threads", a.opt.threads, "threads to run at")
                  ->type_name("N")
                  ->check(integer_in(1, 1024))
                  ->default_str("QKV_THREADS, else OMP_NUM_THREADS, else all cores");
  add_switch(*c, "--quick", a.opt.quick, "small sizes and few repeats, for smoke tests");
  return c;
}

// ---- usage errors: one line each, naming the command ------------------------------------
std::string see_help(const CLI::App& cmd) {
  return cmd.get_parent() ? " (see 'qkv " + cmd.get_name() + " --help')" : " (see 'qkv --help')";
}

// Arguments no command declares (CLI11 keeps them when extras are allowed).
void check_extras(const CLI::App& cmd) {
  for (const std::string& a : cmd.remaining()) {
    const std::string what = a.rfind("-", 0) == 0 ? "option"
                             : cmd.get_parent()   ? "argument"
                                                  : "command";
    const std::string name = a.substr(0, a.find('='));
    const std::string prefix = cmd.get_parent() ? cmd.get_name() + ": " : "";
    throw UsageError(prefix + (what == "argument" ? "unexpected " : "unknown ") + what + " '" +
                     (what == "option" ? name : a) + "'" + see_help(cmd));
  }
}

// CLI11's message, or ours where it names a missing piece better.
std::string usage_message(const CLI::App& app, const CLI::ParseError& e) {
  const CLI::App& cmd = app.get_subcommands().empty() ? app : *app.get_subcommands().front();
  // CLI11 names each error's class (e.get_name()), so no cast is needed to tell them apart.
  if (e.get_name() == "RequiredError") {
    for (const CLI::Option* o : cmd.get_options())
      if (o->get_required() && o->count() == 0)
        return cmd.get_name() + ": missing " + o->get_name() + see_help(cmd);
  }
  const std::string m = e.what();
  // "--threads: 1 required N missing": the flag was last, with no value.
  if (e.get_name() == "ArgumentMismatch" && m.find(" required ") != std::string::npos)
    return m.substr(0, m.find(':')) + ": missing value";
  return m;
}

// ---- loading an experiment ---------------------------------------------------------------
// Everything that goes wrong here is a config error (exit 2): unreadable or
// invalid JSON, bad --set, unknown keys, bad values, missing data files.
qkv::runner::Experiment load_experiment(const ConfigArgs& a) {
  try {
    qkv::Json root = qkv::runner::load_config_file(a.path, a.sets);
    return qkv::runner::make_experiment(
        qkv::runner::parse_config(root, std::filesystem::path(a.path).stem().string()));
  } catch (const qkv::Error& e) {
    throw UsageError(e.what());
  }
}

// ---- commands -------------------------------------------------------------------------
void on_sigint(int) { qkv::runner::stop_flag().store(true); }

int cmd_train(TrainArgs a) {
  if (qkv::dist::launched_size() > 1 && !qkv::dist::built_with_mpi())
    throw UsageError("train: launched as " + std::to_string(qkv::dist::launched_size()) +
                     " processes, but this qkv was built without MPI (install libopenmpi-dev, "
                     "reconfigure and rebuild); each would train alone");
  qkv::runner::Experiment ex = load_experiment(a.cfg);
  a.run.tty = isatty(2);
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sa.sa_flags = SA_RESETHAND;  // a second Ctrl-C kills at once
  sigaction(SIGINT, &sa, nullptr);
  const qkv::runner::TrainResult r = qkv::runner::train(ex, a.run);
  if (!qkv::dist::writer()) return r.interrupted ? 130 : 0;
  std::printf("%s\n", r.summary.dump().c_str());
  std::fflush(stdout);
  if (r.interrupted) {
    std::fprintf(stderr, "qkv: interrupted at step %lld; checkpoint saved (resume with --resume)\n",
                 (long long)r.steps);
    return 130;
  }
  return 0;
}

int cmd_eval(const EvalArgs& a) {
  qkv::runner::Experiment ex = load_experiment(a.cfg);
  qkv::runner::load_model(ex, a.checkpoint);
  const auto s = a.split == "valid" ? qkv::data::Split::valid : qkv::data::Split::test;
  const int64_t batch = ex.cfg.train.batch_size;
  const qkv::runner::Metrics m = qkv::runner::evaluate(*ex.task, *ex.data, s, 0, batch);
  qkv::Json out = {{"name", ex.cfg.name}, {"checkpoint", a.checkpoint}, {"split", a.split}};
  out["metrics"] = qkv::runner::metrics_json(m);
  if (a.by_length)
    out["by_length"] = qkv::runner::length_buckets_json(
        qkv::runner::evaluate_by_length(*ex.task, *ex.data, s, a.bucket_width, batch));
  if (!a.confusion.empty()) {
    const qkv::runner::Confusion c = qkv::runner::confusion_matrix(*ex.model, *ex.data, s, batch);
    out["confusion"] = qkv::runner::confusion_json(c);
    char acc[32];
    std::snprintf(acc, sizeof acc, "%.3f",
                  double(c.correct()) / double(std::max<int64_t>(1, c.total())));
    const std::string title = ex.cfg.name + ", " + a.split + " split: accuracy " + acc + " on " +
                              std::to_string(c.total()) + " examples";
    if (qkv::dist::writer())
      qkv::plot::write_file(a.confusion, qkv::plot::confusion_svg(c.counts, c.classes, title));
  }
  if (qkv::dist::writer()) std::printf("%s\n", out.dump().c_str());
  return 0;
}

// Prints the prediction; the attention as text on a terminal, as SVG into `svg` if given.
void show_prediction(const qkv::runner::Prediction& p, const std::string& input,
                     const std::string& svg) {
  std::printf("%s\n", p.text.c_str());
  if (!p.attention.defined()) {
    if (!svg.empty()) throw qkv::Error("predict: the model has no attention to draw");
    return;
  }
  if (isatty(1) && p.attention.dim() >= 2) {
    qkv::Tensor w =
        p.attention.dim() == 3
            ? p.attention.narrow_rows(0, 1).reshape({p.attention.size(1), p.attention.size(2)})
            : p.attention;
    std::fputs(qkv::plot::attention_text(w, p.src_tokens, p.out_tokens).c_str(), stdout);
  }
  if (!svg.empty())
    qkv::plot::write_file(svg, qkv::plot::attention_svg(p.attention, p.src_tokens, p.out_tokens,
                                                        input + " -> " + p.text));
}

int cmd_predict(const PredictArgs& a) {
  if (a.input.empty() == a.input_file.empty())
    throw UsageError("predict: give --input TEXT or --input-file FILE (see 'qkv predict --help')");
  if (!a.input_file.empty() && !a.attention.empty())
    throw UsageError("predict: --attention draws one input's attention; not with --input-file");
  qkv::runner::Experiment ex = load_experiment(a.cfg);
  qkv::runner::load_model(ex, a.checkpoint);
  if (!a.input_file.empty()) {
    const std::vector<std::string> inputs = qkv::runner::read_inputs(a.input_file);
    std::fputs(
        qkv::runner::predictions_tsv(inputs, qkv::runner::predict_all(ex, inputs, a.opt)).c_str(),
        stdout);
    return 0;
  }
  show_prediction(qkv::runner::predict(ex, a.input, a.opt), a.input, a.attention);
  return 0;
}

// One line of a length chart from a `qkv eval --by-length` output: the metric (1-NAME:
// one minus NAME) at each bucket's middle length.
qkv::plot::Series length_series(const std::string& path, const std::string& metric) {
  std::ifstream f(path);
  if (!f.good()) throw qkv::Error(path + ": cannot read");
  qkv::Json j;
  try {
    j = qkv::Json::parse(f);
  } catch (const std::exception& e) {
    throw qkv::Error(path + ": not JSON (" + e.what() + ")");
  }
  if (!j.is_object() || !j.contains("by_length") || !j["by_length"].is_array())
    throw qkv::Error(path + ": no \"by_length\" list (write it with 'qkv eval ... --by-length')");
  const bool complement = metric.rfind("1-", 0) == 0;
  const std::string name = complement ? metric.substr(2) : metric;
  qkv::plot::Series s;
  s.name = j.value("name", path);
  for (const qkv::Json& b : j["by_length"]) {
    if (!b.contains("metrics") || !b["metrics"].contains(name))
      throw qkv::Error(path + ": no metric '" + name + "' in by_length");
    const qkv::Json& v = b["metrics"][name];
    const double y = v.is_number() ? v.get<double>() : std::nan("");
    s.x.push_back((b.value("min_len", 0.0) + b.value("max_len", 0.0)) / 2);
    s.y.push_back(complement ? 1 - y : y);
  }
  return s;
}

int cmd_plot(const PlotArgs& a) {
  const size_t n = a.evals.size();
  auto per_file = [&](const std::vector<std::string>& v, const char* flag, bool one_for_all) {
    if (!v.empty() && v.size() != n && !(one_for_all && v.size() == 1))
      throw UsageError("plot: " + std::to_string(v.size()) + " " + flag + " for " +
                       std::to_string(n) + " EVAL.json files");
  };
  per_file(a.labels, "--label", false);
  per_file(a.metrics, "--metric", true);
  per_file(a.panels, "--panel", false);
  std::vector<qkv::plot::Panel> panels;
  std::vector<std::string> metrics;  // distinct, in order: the default y label
  for (size_t i = 0; i < n; ++i) {
    const std::string metric =
        a.metrics.empty() ? "exact_match" : a.metrics[a.metrics.size() == 1 ? 0 : i];
    if (std::find(metrics.begin(), metrics.end(), metric) == metrics.end())
      metrics.push_back(metric);
    const std::string panel = a.panels.empty() ? "" : a.panels[i];
    auto it = std::find_if(panels.begin(), panels.end(),
                           [&](const qkv::plot::Panel& p) { return p.title == panel; });
    if (it == panels.end()) it = panels.insert(panels.end(), {panel, {}});
    it->series.push_back(length_series(a.evals[i], metric));
    if (!a.labels.empty()) it->series.back().name = a.labels[i];
  }
  std::string y_label = a.y_label;
  if (y_label.empty())
    for (size_t i = 0; i < metrics.size(); ++i) y_label += (i ? " / " : "") + metrics[i];
  qkv::plot::write_file(a.out, qkv::plot::line_chart_svg(panels, a.title, "source length", y_label));
  return 0;
}

int cmd_data(const DataArgs& a) {
  const qkv::runner::Experiment ex = load_experiment(a.cfg);
  std::filesystem::create_directories(a.out);
  for (auto s : {qkv::data::Split::train, qkv::data::Split::valid, qkv::data::Split::test})
    qkv::data::export_tsv(
        *ex.data, s,
        (std::filesystem::path(a.out) / (std::string(qkv::data::split_name(s)) + ".tsv")).string());
  // A peer script trains from this alone: the same model, optimizer, schedule and evaluation.
  auto level = [](const qkv::data::Vocab* v) {
    return v->level() == qkv::data::Vocab::Level::chars ? "chars" : "words";
  };
  qkv::Json meta = {{"config", ex.cfg.resolved}};
  const qkv::data::Vocab* src = ex.data->src_vocab();
  const qkv::data::Vocab* tgt = ex.data->tgt_vocab() ? ex.data->tgt_vocab() : src;
  if (src) meta["source_tokens"] = level(src);
  if (tgt && ex.data->task() == qkv::data::Task::seq2seq) meta["target_tokens"] = level(tgt);
  qkv::plot::write_file((std::filesystem::path(a.out) / "export.json").string(),
                        meta.dump(2) + "\n");
  return 0;
}

int cmd_inspect(const ConfigArgs& a) {
  qkv::Json root;
  try {
    root = qkv::runner::load_config_file(a.path, a.sets);
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
  const qkv::runner::Experiment ex = load_experiment(a);
  std::fputs(qkv::runner::inspect_text(ex).c_str(), stdout);
  return 0;
}

void print_info() {
  std::printf("qkv %s\n", QKV_VERSION);
  std::printf("simd: %s (%d float lanes)\n", qkv::simd::arch_name(), qkv::simd::W);
  std::printf("threads: %d\n", qkv::num_threads());
  std::fflush(stdout);
}

int cmd_bench(BenchArgs a) {
  if (a.suites.empty()) a.suites = qkv::bench::suite_names();
  if (a.threads->count() == 0) a.opt.threads = qkv::num_threads();
  qkv::set_num_threads(a.opt.threads);
  for (const auto& s : a.suites) qkv::bench::run_suite(s, a.opt);
  return 0;
}

// The main job: the default experiment end to end, from the repository root.
int cmd_main() {
  if (qkv::dist::writer()) print_info();
  TrainArgs train;
  train.cfg.path = "configs/dates_luong.json";
  if (!std::filesystem::exists(train.cfg.path))
    throw UsageError(train.cfg.path +
                     ": not found (run qkv from the repository root, or see 'qkv --help')");
  const int rc = cmd_train(train);
  if (rc != 0 || !qkv::dist::writer()) return rc;  // rank 0 alone predicts and writes
  qkv::runner::Experiment ex = load_experiment(train.cfg);
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

// ---- the command line ------------------------------------------------------------------
int run(int argc, char** argv) {
  CLI::App app("qkv " QKV_VERSION
               " - a from-scratch engine for attention models\n\n"
               "With no command, runs the main job: prints version, SIMD and threads, trains\n"
               "configs/dates_luong.json (to 99% exact match), then predicts one date and\n"
               "writes runs/dates_luong/attention.svg.",
               "qkv");
  app.formatter(std::make_shared<HelpFormatter>());
  app.option_defaults()->always_capture_default();  // every default shown from its variable
  app.set_help_flag("-h,--help", "this text ('qkv COMMAND --help' for a command)");
  app.set_version_flag("--version", std::string("qkv ") + QKV_VERSION, "print the version");
  app.allow_extras();  // unknown arguments are reported by check_extras, in our words
  app.require_subcommand(0, 1);
  app.footer("environment:\n  QKV_THREADS  thread count (else OMP_NUM_THREADS, else all cores)");

  TrainArgs train;
  EvalArgs eval;
  PredictArgs predict;
  qkv::runner::ForwardOptions forward;
  ConfigArgs inspect;
  DataArgs data;
  PlotArgs plot;
  BenchArgs bench;
  CLI::App* train_cmd = declare_train(app, train);
  CLI::App* eval_cmd = declare_eval(app, eval);
  CLI::App* predict_cmd = declare_predict(app, predict);
  CLI::App* forward_cmd = declare_forward(app, forward);
  CLI::App* inspect_cmd = declare_inspect(app, inspect);
  CLI::App* data_cmd = declare_data(app, data);
  CLI::App* plot_cmd = declare_plot(app, plot);
  CLI::App* info_cmd = app.add_subcommand("info", "print version, SIMD architecture and threads");
  CLI::App* bench_cmd = declare_bench(app, bench);
  CLI::App* help_cmd = app.add_subcommand("help", "this text");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    throw UsageError(usage_message(app, e));
  }
  check_extras(app);
  for (const CLI::App* c : app.get_subcommands()) check_extras(*c);

  if (*train_cmd) return cmd_train(train);
  if (*eval_cmd) return cmd_eval(eval);
  if (*predict_cmd) return cmd_predict(predict);
  if (*forward_cmd) return qkv::runner::run_forward(forward), 0;
  if (*inspect_cmd) return cmd_inspect(inspect);
  if (*data_cmd) return cmd_data(data);
  if (*plot_cmd) return cmd_plot(plot);
  if (*bench_cmd) return cmd_bench(bench);
  if (*info_cmd) return print_info(), 0;
  if (*help_cmd)
    return std::fputs(
               app.get_formatter()->make_help(&app, "qkv", CLI::AppFormatMode::Normal).c_str(),
               stdout),
           0;
  return cmd_main();
}

}  // namespace

// One line on stderr; over several ranks it names the rank and ends the whole
// job (the others may be waiting for this one in a collective).
int fail_with(int code, const char* what) {
  if (qkv::dist::size() > 1) {
    std::fprintf(stderr, "qkv: rank %d of %d: %s\n", qkv::dist::rank(), qkv::dist::size(), what);
    std::fflush(stderr);
    qkv::dist::abort_job(code);
  }
  std::fprintf(stderr, "qkv: %s\n", what);
  return code;
}

int main(int argc, char** argv) {
  int rc = 0;
  try {
    qkv::dist::init(&argc, &argv);
    rc = run(argc, argv);
  } catch (const UsageError& e) {
    return fail_with(2, e.what());
  } catch (const std::exception& e) {
    return fail_with(1, e.what());
  }
  qkv::dist::finalize();
  return rc;
}
