"""PyTorch peer of `qkv bench transformer` and of the SDPA cases of
`qkv bench attention`: the same case names and JSON schema (see torch_bench.py).

torch 1.13 has no F.scaled_dot_product_attention, so the SDPA cases are the
explicit math (matmul, masked softmax, matmul), materialising the T x S scores;
the layer is nn.TransformerEncoderLayer(batch_first=True) in training mode
(dropout 0), i.e. the autograd path (its fused inference path needs eval mode).
"""
import torch

SDPA = dict(B=32, NH=8, T=128, HD=32)
SDPA_DIMS = f"B{SDPA['B']} NH{SDPA['NH']} T{SDPA['T']} HD{SDPA['HD']}"
SDPA_LONG = (512, 1024)
SDPA_CASES = ([f"sdpa {SDPA_DIMS}{tag} {what}" for tag in ("", " causal")
               for what in ("fwd", "fwd+bwd")] +
              [f"sdpa B1 NH8 T{L} HD32 fwd causal" for L in SDPA_LONG])
LAYER = dict(B=32, T=128, D=256, NH=8, FF=1024)
LAYER_DIMS = f"B{LAYER['B']} T{LAYER['T']} D{LAYER['D']} NH{LAYER['NH']} FF{LAYER['FF']}"
TRANSFORMER_CASES = [f"encoder_layer {LAYER_DIMS} {what}" for what in ("fwd", "fwd+bwd")]
CASES = {"transformer": TRANSFORMER_CASES, "attention": SDPA_CASES}


def sdpa(q, k, v, causal):
    s = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5)
    if causal:
        T = q.shape[-2]
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


def sdpa_cases(tb):
    B, NH, T, HD = (SDPA[k] for k in ("B", "NH", "T", "HD"))
    g = torch.Generator().manual_seed(11)
    q, k, v = (torch.rand(B, NH, T, HD, generator=g) * 2 - 1 for _ in range(3))
    for causal in (False, True):
        tag = " causal" if causal else ""
        flops = 4.0 * B * NH * T * T * HD * (0.5 if causal else 1.0)
        name = f"sdpa {SDPA_DIMS}{tag} fwd"
        if not tb.FILTERS or name in tb.FILTERS:
            def fwd():
                with torch.no_grad():
                    sdpa(q, k, v, causal)
            fwd()
            ms = tb.median_ms(fwd)
            tb.report("attention", name, ms, gflops=flops / (ms * 1e6))
        name = f"sdpa {SDPA_DIMS}{tag} fwd+bwd"
        if not tb.FILTERS or name in tb.FILTERS:
            qg, kg, vg = (x.clone().requires_grad_() for x in (q, k, v))
            up = torch.rand(B, NH, T, HD, generator=g) * 2 - 1

            def fwd_bwd():
                with torch.enable_grad():
                    sdpa(qg, kg, vg, causal).backward(up)
                for x in (qg, kg, vg):
                    x.grad = None
            fwd_bwd()
            ms = tb.median_ms(fwd_bwd)
            tb.report("attention", name, ms, gflops=3.5 * flops / (ms * 1e6))
    for L in SDPA_LONG:
        name = f"sdpa B1 NH8 T{L} HD32 fwd causal"
        if tb.FILTERS and name not in tb.FILTERS:
            continue
        lq, lk, lv = (torch.rand(1, 8, L, 32, generator=g) for _ in range(3))

        def long_fwd():
            with torch.no_grad():
                sdpa(lq, lk, lv, True)
        long_fwd()
        ms = tb.median_ms(long_fwd)
        tb.report("attention", name, ms, gflops=2.0 * 8 * L * L * 32 / (ms * 1e6))


def layer_cases(tb):
    B, T, D, NH, FF = (LAYER[k] for k in ("B", "T", "D", "NH", "FF"))
    torch.manual_seed(21)
    layer = torch.nn.TransformerEncoderLayer(D, NH, FF, dropout=0.0, batch_first=True)
    layer.train()
    x = (torch.rand(B, T, D) * 2 - 1).requires_grad_()
    up = torch.rand(B, T, D) * 2 - 1
    flops = B * T * (8.0 * D * D + 4.0 * D * FF + 4.0 * T * D)
    name = f"encoder_layer {LAYER_DIMS} fwd"
    if not tb.FILTERS or name in tb.FILTERS:
        def fwd():
            with torch.no_grad():
                layer(x)
        fwd()
        ms = tb.median_ms(fwd)
        tb.report("transformer", name, ms, gflops=flops / (ms * 1e6))
    name = f"encoder_layer {LAYER_DIMS} fwd+bwd"
    if not tb.FILTERS or name in tb.FILTERS:
        def fwd_bwd():
            with torch.enable_grad():
                layer(x).backward(up)
            layer.zero_grad(set_to_none=True)
            x.grad = None
        fwd_bwd()
        ms = tb.median_ms(fwd_bwd)
        tb.report("transformer", name, ms, gflops=3.0 * flops / (ms * 1e6))


def run(suite, tb):
    if suite == "transformer":
        layer_cases(tb)
    elif suite == "attention":
        sdpa_cases(tb)
