"""PyTorch peer of `qkv bench conv` and `qkv bench cbam` (loaded by
torch_bench.py through its EXTERNAL table): the same cases, names and JSON
schema. conv: a 3x3 conv B64 C64->64 28x28, pad 1, no bias (oneDNN on CPU),
forward under no_grad, and forward + backward of sum(y * upstream) with the
input requiring a gradient. cbam: that conv followed by CBAM as the common
PyTorch code defines it (ratio 16, 7x7 spatial conv). FLOPs: the conv's only.
"""
import torch
import torch.nn as nn

B, C, H, W = 64, 64, 28, 28
DIMS = f"B{B} C{C}->{C} {H}x{W}"
CASES = {
    "conv": (f"conv3x3 fwd {DIMS}", f"conv3x3 fwd+bwd {DIMS}"),
    "cbam": (f"conv3x3+cbam fwd {DIMS}", f"conv3x3+cbam fwd+bwd {DIMS}"),
}
FLOPS = 2.0 * B * C * H * W * C * 9


class ChannelAttention(nn.Module):
    def __init__(self, c, ratio=16):
        super().__init__()
        self.avg_pool, self.max_pool = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Sequential(nn.Conv2d(c, c // ratio, 1, bias=False), nn.ReLU(),
                                nn.Conv2d(c // ratio, c, 1, bias=False))

    def forward(self, x):
        return torch.sigmoid(self.fc(self.avg_pool(x)) + self.fc(self.max_pool(x)))


class SpatialAttention(nn.Module):
    def __init__(self, k=7):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, x):
        a = torch.mean(x, dim=1, keepdim=True)
        m, _ = torch.max(x, dim=1, keepdim=True)
        return torch.sigmoid(self.conv1(torch.cat([a, m], dim=1)))


class ConvCBAM(nn.Module):
    def __init__(self, cbam):
        super().__init__()
        self.conv = nn.Conv2d(C, C, 3, padding=1, bias=False)
        self.ca = ChannelAttention(C) if cbam else None
        self.sa = SpatialAttention() if cbam else None

    def forward(self, x):
        x = self.conv(x)
        if self.ca is not None:
            x = x * self.ca(x)
            x = x * self.sa(x)
        return x


def run(suite, tb):
    torch.manual_seed(21)
    m = ConvCBAM(suite == "cbam")
    g = torch.Generator().manual_seed(22)
    x = torch.rand(B, C, H, W, generator=g) * 2 - 1
    up = torch.rand(B, C, H, W, generator=g) * 2 - 1
    with torch.no_grad():
        got = m.conv(x[:1])
        want = torch.nn.functional.conv2d(x[:1].double(), m.conv.weight.double(), padding=1)
    tb.check(f"{suite} conv3x3", got, want, 1e-4)
    fwd, fwdbwd = CASES[suite]

    def run_fwd():
        with torch.no_grad():
            m(x)

    def run_fwdbwd():
        with torch.enable_grad():
            xv = x.clone().requires_grad_()
            m(xv).backward(up)
        m.zero_grad(set_to_none=True)

    for name, fn, flops in ((fwd, run_fwd, FLOPS), (fwdbwd, run_fwdbwd, 3 * FLOPS)):
        if tb.FILTERS and name not in tb.FILTERS:
            continue
        ms = tb.median_ms(fn)
        tb.report(suite, name, ms, gflops=flops / (ms * 1e6))
