"""PyTorch throughput of the reference network, for the ratios printed by `make bench`.

Usage: python3 scripts/bench_torch.py [--batch 128] [--threads 2] [--steps 10] [--rounds 5]
                                     [--model refcnn|baseline] [--device cpu|cuda]
                                     [--precision fp32|bf16] [--layout nchw|channels_last] [--layers]
bf16 runs the forward pass and the loss under torch.autocast with bfloat16 (PyTorch's mixed precision).
channels_last puts the network and the batch in that memory format (oneDNN's preferred layout on the CPU).
Each figure is the median of `rounds` timings of `steps` steps, as scripts/bench.lua measures.
Prints two lines: `torch train <images/s>` and `torch infer <images/s>`; with --layers also one line per
layer of a training step, `layer <index> <name> <forward ms> <backward ms>`, timed by module hooks (the first
layer's backward is not seen by them: nan).
"""
import argparse
import time

import torch
import torch.nn as nn


def refcnn(stage3=1, widths=(32, 64, 128)):
    """ts.models.refcnn (stage3=1, 675,339 parameters), ts.models.baseline (stage3=2, 823,051) and the
    baseline at the widths experiments/baseline.lua trains (48, 96, 192: 1,443,195)"""
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    w1, w2, w3 = widths
    third = block(w2, w3) + sum((block(w3, w3) for _ in range(stage3 - 1)), [])
    return nn.Sequential(
        *block(3, w1), *block(w1, w1), nn.MaxPool2d(2),
        *block(w1, w2), *block(w2, w2), nn.MaxPool2d(2),
        *third, nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(16 * w3, 256), nn.ReLU(), nn.Linear(256, 43))


MODELS = {"refcnn": (1, (32, 64, 128), 675339), "baseline": (2, (32, 64, 128), 823051),
          "recipe": (2, (48, 96, 192), 1443195)}


def layer_times(net, step, steps, sync):
    """forward and backward milliseconds per top-level layer over `steps` training steps, from hooks: a layer's
    forward from its pre-hook to its hook, its backward from its backward pre-hook to its backward hook"""
    fwd, bwd, start = {}, {}, {}

    def clock():
        sync()
        return time.perf_counter()

    for i, m in enumerate(net):
        fwd[i] = bwd[i] = 0.0
        m.register_forward_pre_hook(lambda mod, inp, i=i: start.__setitem__(('f', i), clock()))
        m.register_forward_hook(lambda mod, inp, out, i=i: fwd.__setitem__(i, fwd[i] + clock() - start[('f', i)]))
        m.register_full_backward_pre_hook(lambda mod, g, i=i: start.__setitem__(('b', i), clock()))
        m.register_full_backward_hook(lambda mod, gi, go, i=i: bwd.__setitem__(i, bwd[i] + clock() - start[('b', i)]))
    for _ in range(3):
        step()
    for i in fwd:
        fwd[i] = bwd[i] = 0.0
    for _ in range(steps):
        step()
    # the first layer's input needs no gradient, so its backward hook fires before its weight gradient is made:
    # not measured (nan)
    return [(i, type(m).__name__, fwd[i] / steps * 1e3, float("nan") if i == 0 else bwd[i] / steps * 1e3)
            for i, m in enumerate(net)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--model", choices=sorted(MODELS), default="refcnn")
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--layout", choices=["nchw", "channels_last"], default="nchw")
    ap.add_argument("--layers", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    stage3, widths, parameters = MODELS[a.model]
    net = refcnn(stage3, widths).to(a.device)
    assert sum(p.numel() for p in net.parameters()) == parameters
    x = torch.randn(a.batch, 3, 32, 32, device=a.device)
    if a.layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    y = torch.randint(0, 43, (a.batch,), device=a.device)

    def sync():
        if a.device == "cuda":
            torch.cuda.synchronize()
    loss_fn = nn.CrossEntropyLoss()
    mixed = torch.autocast(a.device, dtype=torch.bfloat16, enabled=a.precision == "bf16")

    def step():
        opt.zero_grad()
        with mixed:
            loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    def forward():
        with mixed:
            net(x)

    def rate(fn):
        for _ in range(3):
            fn()
        rates = []
        for _ in range(a.rounds):
            sync()
            t = time.perf_counter()
            for _ in range(a.steps):
                fn()
            sync()
            rates.append(a.batch * a.steps / (time.perf_counter() - t))
        return sorted(rates)[(len(rates) - 1) // 2]

    net.train()
    train = rate(step)
    net.eval()
    with torch.no_grad():
        infer = rate(forward)
    print(f"torch train {train:.1f}")
    print(f"torch infer {infer:.1f}")
    if a.layers:
        import warnings
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        net.train()
        for i, name, f, b in layer_times(net, step, a.steps, sync):
            print(f"layer {i} {name} {f:.3f} {b:.3f}")


if __name__ == "__main__":
    main()
