"""PyTorch CPU throughput of the reference network, for the ratio printed by `make bench`.

Usage: python3 scripts/bench_torch.py [--batch 128] [--threads 2] [--steps 10] [--rounds 5]
Each figure is the median of `rounds` timings of `steps` steps, as scripts/bench.lua measures.
Prints two lines: `torch train <images/s>` and `torch infer <images/s>`.
"""
import argparse
import time

import torch
import torch.nn as nn


def refcnn():
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        *block(3, 32), *block(32, 32), nn.MaxPool2d(2),
        *block(32, 64), *block(64, 64), nn.MaxPool2d(2),
        *block(64, 128), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(2048, 256), nn.ReLU(), nn.Linear(256, 43))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    net = refcnn()
    assert sum(p.numel() for p in net.parameters()) == 675339
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(a.batch, 3, 32, 32)
    y = torch.randint(0, 43, (a.batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    def rate(fn):
        for _ in range(3):
            fn()
        rates = []
        for _ in range(a.rounds):
            t = time.perf_counter()
            for _ in range(a.steps):
                fn()
            rates.append(a.batch * a.steps / (time.perf_counter() - t))
        return sorted(rates)[(len(rates) - 1) // 2]

    net.train()
    train = rate(step)
    net.eval()
    with torch.no_grad():
        infer = rate(lambda: net(x))
    print(f"torch train {train:.1f}")
    print(f"torch infer {infer:.1f}")


if __name__ == "__main__":
    main()
