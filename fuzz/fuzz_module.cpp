// Module JSON (the "model" object of an experiment, `qkv forward`'s module
// file, `qkv inspect`): built under a 256 MiB memory limit, so a size too
// large must be refused by the size checks with a qkv::Error, not allocated.
#include "engine/rng.h"
#include "fuzz/fuzz.h"
#include "nn/builder.h"

using namespace qkv;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  const Json config = Json::parse(fuzz::bytes(buf, size), nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;
  fuzz::refuse_ok([&] {
    Generator gen(0);
    const Built b = build_module(config, gen, "model");
    (void)b.module->describe();
    (void)b.module->num_parameters();
    (void)b.resolved.dump();
  });
  return 0;
}
