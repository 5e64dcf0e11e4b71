// IDX files (Fashion-MNIST), gzip'd or plain: any bytes read as images or as
// labels, or fail with a qkv::Error; what reads holds exactly prod(dims) bytes.
#include "fuzz/fuzz.h"
#include "tools/data/idx.h"

using namespace qkv;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::limit_memory();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* buf, size_t size) {
  const std::string in = fuzz::bytes(buf, size);
  for (int ndim : {1, 3}) {
    fuzz::refuse_ok([&] {
      const data::IdxArray a = data::idx_parse(in, "input", ndim);
      size_t n = 1;
      for (int64_t d : a.dims) n *= size_t(d);
      fuzz::require(int(a.dims.size()) == ndim && a.data.size() == n);
    });
  }
  return 0;
}
