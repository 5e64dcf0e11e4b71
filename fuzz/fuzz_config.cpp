// Experiment configs: the file's text and its --set overrides, read into the
// typed config. Input: the config text, then any number of NUL-separated
// "--set" assignments (path=value).
#include "fuzz/fuzz.h"
#include "tools/runner/config.h"

using namespace qkv;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  const std::string in = fuzz::bytes(buf, size);
  const size_t nul = in.find('\0');
  std::vector<std::string> sets;
  for (size_t at = nul; at != std::string::npos && at < in.size();) {
    const size_t next = in.find('\0', at + 1);
    sets.push_back(in.substr(at + 1, next == std::string::npos ? next : next - at - 1));
    at = next;
  }
  fuzz::refuse_ok([&] {
    const Json root = runner::parse_config_text(std::string_view(in).substr(0, nul), "input", sets);
    const runner::ExperimentConfig c = runner::parse_config(root, "input");
    (void)runner::make_schedule(c.train.schedule, c.train.optimizer.lr(), 1000);
  });
  return 0;
}
