// LSTM / GRU: the fused sequence ops against a cell-by-cell composite of
// autograd primitives (values and all gradients, both directions, ragged
// lengths), gradient checks of whole modules (multi-layer, bidirectional,
// lengths), padding isolation, names, shapes and errors.
#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/rnn.h"
#include "tests/test_utils.h"

namespace qkv {
namespace {

Var rv(Shape s, uint64_t seed, float a = 0.5f) { return Var(test::rand_tensor(s, seed, -a, a), true); }

// Runs f (fused or composite) on fresh-gradient inputs with the same upstreams
// and returns outputs followed by every input gradient.
std::vector<Tensor> run(const std::function<std::vector<Var>(const std::vector<Var>&)>& f,
                        const std::vector<Var>& in, const std::vector<Tensor>& ups) {
  for (Var v : in) v.zero_grad();
  auto outs = f(in);
  Var loss = sum(outs[0] * Var(ups[0]));
  for (size_t k = 1; k < outs.size(); ++k) loss = loss + sum(outs[k] * Var(ups[k]));
  backward(loss);
  std::vector<Tensor> r;
  for (auto& o : outs) r.push_back(o.value());
  for (auto& v : in) r.push_back(v.grad());
  return r;
}

TEST_SUITE("nn/rnn") {
  TEST_CASE("fused LSTM and GRU layers equal their composites, values and gradients") {
    const int64_t T = 5, B = 3, I = 4, H = 6;
    IntTensor lens = IntTensor::from({3}, {5, 2, 4});
    for (bool gru : {false, true})
      for (bool reverse : {false, true})
        for (const IntTensor* L : {static_cast<const IntTensor*>(nullptr), static_cast<const IntTensor*>(&lens)}) {
          const int64_t G = (gru ? 3 : 4) * H;
          std::vector<Var> in = {rv({T, B, I}, 1, 1.f), rv({B, H}, 2), rv({B, H}, 3),
                                 rv({G, I}, 4), rv({G, H}, 5), rv({G}, 6), rv({G}, 7)};
          std::vector<Tensor> ups = {test::rand_tensor({T, B, H}, 8),
                                     test::rand_tensor({B, H}, 9), test::rand_tensor({B, H}, 10)};
          std::function<std::vector<Var>(const std::vector<Var>&)> fused, comp;
          if (!gru) {
            fused = [&](auto& v) { return lstm_layer(v[0], v[1], v[2], v[3], v[4], v[5], v[6], L, reverse); };
            comp = [&](auto& v) { return lstm_layer_ref(v[0], v[1], v[2], v[3], v[4], v[5], v[6], L, reverse); };
          } else {
            in.erase(in.begin() + 2);  // no c0
            ups.pop_back();
            fused = [&](auto& v) { return gru_layer(v[0], v[1], v[2], v[3], v[4], v[5], L, reverse); };
            comp = [&](auto& v) { return gru_layer_ref(v[0], v[1], v[2], v[3], v[4], v[5], L, reverse); };
          }
          auto a = run(fused, in, ups), b = run(comp, in, ups);
          REQUIRE(a.size() == b.size());
          for (size_t k = 0; k < a.size(); ++k)
            test::expect_close(a[k], b[k], 2e-6,
                               std::string(gru ? "gru" : "lstm") + (reverse ? " reverse" : "") +
                                   (L ? " lengths" : "") + " tensor " + std::to_string(k));
        }
  }

  TEST_CASE("the LSTM layer from made input gates equals it, values and gradients") {
    const int64_t T = 5, B = 3, I = 4, H = 6, G = 4 * H;
    IntTensor lens = IntTensor::from({3}, {5, 2, 4});
    for (bool reverse : {false, true})
      for (const IntTensor* L : {static_cast<const IntTensor*>(nullptr), static_cast<const IntTensor*>(&lens)}) {
        std::vector<Var> in = {rv({T, B, I}, 11, 1.f), rv({B, H}, 12), rv({B, H}, 13),
                               rv({G, I}, 14), rv({G, H}, 15), rv({G}, 16), rv({G}, 17)};
        std::vector<Tensor> ups = {test::rand_tensor({T, B, H}, 18),
                                   test::rand_tensor({B, H}, 19), test::rand_tensor({B, H}, 20)};
        auto gates = [&](auto& v) {
          return lstm_layer_gates(linear(v[0], v[3], v[5] + v[6]), v[1], v[2], v[4], L, reverse);
        };
        auto ref = [&](auto& v) { return lstm_layer_ref(v[0], v[1], v[2], v[3], v[4], v[5], v[6], L, reverse); };
        auto a = run(gates, in, ups), b = run(ref, in, ups);
        for (size_t k = 0; k < a.size(); ++k)
          test::expect_close(a[k], b[k], 2e-6, std::string("lstm gates") + (reverse ? " reverse" : "") +
                                                   (L ? " lengths" : "") + " tensor " + std::to_string(k));
      }
  }

  TEST_CASE("gradcheck: 2-layer bidirectional LSTM and GRU with ragged lengths") {
    for (RNNKind kind : {RNNKind::lstm, RNNKind::gru}) {
      Generator g(3);
      RNNOptions o{3, 4, 2, true, true, 0.f, true};
      RNNBase rnn(kind, o, g);
      IntTensor lens = IntTensor::from({2}, {3, 1});
      Var x = rv({2, 3, 3}, 11, 1.f), h0 = rv({4, 2, 4}, 12);
      std::vector<Var> in = {x, h0};
      for (Var p : rnn.parameters()) in.push_back(p);
      GradcheckOptions opt;
      opt.max_per_input = 24;
      auto r = gradcheck(
          [&](const std::vector<Var>& v) {
            RNNOutput out = rnn.forward(v[0], &lens, v[1]);
            return concat({reshape(out.output, {-1}), reshape(out.h_n, {-1})}, 0);
          },
          in, opt);
      INFO(r.report);
      CHECK(r.ok);
    }
  }

  TEST_CASE("padding never leaks into outputs, final states or gradients") {
    Generator g(4);
    LSTM lstm({3, 5, 2, true, true, 0.f, true}, g);
    IntTensor lens = IntTensor::from({2}, {4, 2});
    Tensor x = test::rand_tensor({2, 4, 3}, 13);
    Tensor x2 = x.clone();
    for (int64_t t = 2; t < 4; ++t)
      for (int64_t i = 0; i < 3; ++i) x2.at({1, t, i}) = 100.f;  // garbage in the padding
    Var xv(x, true);
    RNNOutput a = lstm.forward(xv, &lens), b = lstm.forward(Var(x2), &lens);
    CHECK(a.output.shape() == Shape{2, 4, 10});
    CHECK(a.h_n.shape() == Shape{4, 2, 5});
    CHECK(a.output.value().to_vector() == b.output.value().to_vector());
    CHECK(a.h_n.value().to_vector() == b.h_n.value().to_vector());
    CHECK(a.c_n.value().to_vector() == b.c_n.value().to_vector());
    for (int64_t j = 0; j < 10; ++j) CHECK(a.output.value().at({1, 3, j}) == 0.f);
    backward(sum(a.output) + sum(a.h_n) + sum(a.c_n));
    for (int64_t i = 0; i < 3; ++i) CHECK(xv.grad().at({1, 3, i}) == 0.f);
    // forward direction's final state is the state at the last valid step
    RNNOutput c = lstm.forward(Var(slice(x, 1, 0, 2)));
    for (int64_t j = 0; j < 5; ++j)
      CHECK(a.h_n.value().at({2, 1, j}) == doctest::Approx(c.h_n.value().at({2, 1, j})));
  }

  TEST_CASE("names, shapes and errors follow torch.nn.LSTM / GRU") {
    Generator g(5);
    LSTM lstm({3, 4, 2, true, false, 0.1f, true}, g);
    std::vector<std::string> names;
    for (auto& [n, v] : lstm.named_parameters()) names.push_back(n);
    CHECK(names.size() == 16);
    CHECK(names[0] == "weight_ih_l0");
    CHECK(names[4] == "weight_ih_l0_reverse");
    CHECK(names[11] == "bias_hh_l1");
    CHECK(lstm.named_parameters()[8].second.shape() == Shape{16, 8});  // layer 1 input = 2H
    CHECK(lstm.describe() == "LSTM(3, 4, num_layers=2, dropout=0.100000, bidirectional=true)");
    GRU gru({3, 4}, g);
    CHECK(gru.named_parameters()[1].second.shape() == Shape{12, 4});
    CHECK(gru.forward(Var(zeros({6, 2, 3}))).c_n.defined() == false);
    CHECK(test::error_of([&] { lstm.forward(Var(zeros({5, 2, 4}))); }) ==
          "LSTM: input has shape [5,2,4], expected [T,B,3]");
    IntTensor bad = IntTensor::from({2}, {3, 6});
    CHECK(test::error_of([&] { lstm.forward(Var(zeros({5, 2, 3})), &bad); }) ==
          "lstm: length 6 of sequence 1 out of range [1,5]");
    CHECK(test::error_of([&] { lstm.forward(Var(zeros({5, 2, 3})), nullptr, Var(zeros({2, 2, 4}))); }) ==
          "LSTM: h0 has shape [2,2,4], expected [4,2,4]");
  }

  TEST_CASE("cells equal one step of the sequence op") {
    Generator g(6);
    LSTMCell cell(3, 4, g);
    Var x = rv({2, 3}, 14), h = rv({2, 4}, 15), c = rv({2, 4}, 16);
    CellState s = cell.forward(x, {h, c});
    auto r = lstm_layer_ref(reshape(x, {1, 2, 3}), h, c, cell.weight_ih, cell.weight_hh,
                            cell.bias_ih, cell.bias_hh, nullptr, false);
    test::expect_close(s.h.value(), r[1].value(), 1e-6, "lstmcell h");
    test::expect_close(s.c.value(), r[2].value(), 1e-6, "lstmcell c");
    GRUCell gc(3, 4, g);
    Var hg = gc.forward(x, h);
    auto rg = gru_layer_ref(reshape(x, {1, 2, 3}), h, gc.weight_ih, gc.weight_hh, gc.bias_ih,
                            gc.bias_hh, nullptr, false);
    test::expect_close(hg.value(), rg[1].value(), 1e-6, "grucell h");
    tape_clear();
  }
}

}  // namespace
}  // namespace qkv
