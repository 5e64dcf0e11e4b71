// One Luong and one Bahdanau decoder step against the same step written with
// plain torch ops (tests/fixtures/make_seq2seq.py): logits, attention weights,
// new states, and the gradients of the encoder outputs, the incoming states
// and every decoder / output-layer parameter.
#include "autograd/ops.h"
#include "nn/json_config.h"
#include "nn/safetensors.h"
#include "nn/seq2seq.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

const Tensor& get(const TensorFile& f, const std::string& name) {
  auto it = f.floats.find(name);
  REQUIRE_MESSAGE(it != f.floats.end(), "fixture lacks ", name);
  return it->second;
}

void check_step(const std::string& kase) {
  TensorFile f = load_safetensors(test::fixture_path("seq2seq/" + kase + ".safetensors"));
  const Json cfg = Json::parse(f.metadata.at("config"));
  Seq2SeqOptions o;
  o.src_vocab = cfg["src_vocab"];
  o.tgt_vocab = cfg["tgt_vocab"];
  o.embed = cfg["embed"];
  o.hidden = cfg["hidden"];
  o.rnn = enum_parse<RNNKind>(cfg["rnn"].get<std::string>(), "rnn");
  o.attention = enum_parse<Seq2SeqAttention>(cfg["attention"].get<std::string>(), "attention");
  o.score = score_from_name(cfg["score"]);
  o.input_feeding = cfg["input_feeding"];
  Generator gen(1);
  Seq2Seq model(o, gen);

  std::map<std::string, Tensor> params;
  for (const auto& [n, t] : f.floats)
    if (n.rfind("param.", 0) == 0) params[n.substr(6)] = t;
  LoadReport rep = model.load_state_dict(params, /*strict=*/false);
  INFO("unexpected: ", rep.unexpected.size(), " mis-shaped: ",
       rep.mismatched.empty() ? "" : rep.mismatched[0]);
  REQUIRE(rep.unexpected.empty());
  REQUIRE(rep.mismatched.empty());
  for (const auto& m : rep.missing) CHECK(m.rfind("decoder.", 0) != 0);  // only encoder/bridge

  const IntTensor& tokens = f.ints.at("input.tokens");
  const IntTensor& lengths = f.ints.at("input.lengths");
  Var enc(get(f, "input.enc_out").clone(), true), h(get(f, "input.h").clone(), true),
      c(get(f, "input.c").clone(), true);
  const bool luong = kase == "luong";
  Var feed = luong ? Var(get(f, "input.feed").clone(), true) : Var();
  EncoderMemory mem;
  mem.outputs = enc;
  mem.keys = model.decoder->attention->prepare(enc, &lengths);
  DecoderState st{h, c, feed};
  DecoderStep step = model.decoder->step(tokens, st, mem, *model.out);

  std::vector<std::pair<std::string, Var>> outs = {
      {"logits", step.logits}, {"weights", step.weights}, {"h", st.h}, {"c", st.c}};
  if (luong) outs.emplace_back("feed", st.feed);
  Var loss;
  for (auto& [name, v] : outs) {
    test::expect_close(v.value(), get(f, "output." + name), 1e-4, kase + " output " + name);
    Var term = sum(v * Var(get(f, "upstream." + name)));
    loss = loss.defined() ? loss + term : term;
  }
  backward(loss);
  test::expect_close(enc.grad(), get(f, "grad.enc_out"), 1e-4, kase + " grad enc_out");
  test::expect_close(h.grad(), get(f, "grad.h"), 1e-4, kase + " grad h");
  test::expect_close(c.grad(), get(f, "grad.c"), 1e-4, kase + " grad c");
  if (luong) test::expect_close(feed.grad(), get(f, "grad.feed"), 1e-4, kase + " grad feed");
  int checked = 0;
  for (auto& [n, v] : model.named_parameters()) {
    auto it = f.floats.find("grad.param." + n);
    if (it == f.floats.end()) continue;
    REQUIRE_MESSAGE(v.has_grad(), n, " got no gradient");
    test::expect_close(v.grad(), it->second, 1e-4, kase + " grad " + n);
    ++checked;
  }
  CHECK(checked == int(params.size()));
}

TEST_SUITE("nn/seq2seq_parity") {
  TEST_CASE("Luong decoder step matches torch") { check_step("luong"); }
  TEST_CASE("Bahdanau decoder step matches torch") { check_step("bahdanau"); }
}

}  // namespace
}  // namespace qkv
