"""Writes tests/fixtures/torch_layers.safetensors: inputs, parameters, outputs and gradients of every
layer, loss, optimizer and schedule computed by PyTorch (Debian's python3-torch, 1.13), so the tests can
pin tshost's numerics without Python. Run once and commit the result:

    python3 scripts/make_fixtures.py

Each case is described in the file's metadata (JSON under "cases"); its tensors are named "<case>.<what>".
"""
import json
import math
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(1234)
tensors = {}
cases = {}


def put(case, what, t):
    tensors[f"{case}.{what}"] = t.detach().clone().contiguous()   # a copy: later in-place updates must not reach it


def conv_case(name, n, c, h, w, o, k, stride=1, padding=(0, 0, 0, 0), dilation=1, groups=1, bias=True):
    kh, kw = (k, k) if isinstance(k, int) else k
    x = torch.randn(n, c, h, w, requires_grad=True)
    weight = torch.randn(o, c // groups, kh, kw, requires_grad=True)
    b = torch.randn(o, requires_grad=True) if bias else None
    top, bottom, left, right = padding
    y = F.conv2d(F.pad(x, (left, right, top, bottom)), weight, b, stride, 0, dilation, groups)
    gy = torch.randn_like(y)
    y.backward(gy)
    cases[name] = dict(kind="conv2d", cin=c, cout=o, kernel=[kh, kw], stride=stride, padding=list(padding),
                       dilation=dilation, groups=groups, bias=bias)
    put(name, "x", x); put(name, "weight", weight); put(name, "y", y); put(name, "gy", gy)
    put(name, "gx", x.grad); put(name, "gweight", weight.grad)
    if bias:
        put(name, "bias", b); put(name, "gbias", b.grad)


conv_case("conv_basic", 2, 4, 7, 6, 6, 3, padding=(1, 1, 1, 1))
conv_case("conv_stride2_tfsame", 2, 3, 8, 8, 5, 3, stride=2, padding=(0, 1, 0, 1))
conv_case("conv_dilated", 2, 3, 9, 9, 4, 3, padding=(2, 2, 2, 2), dilation=2, bias=False)
conv_case("conv_groups", 2, 4, 6, 6, 6, 3, padding=(1, 1, 1, 1), groups=2)
conv_case("conv_depthwise", 2, 4, 6, 5, 4, 3, stride=2, padding=(1, 1, 1, 1), groups=4, bias=False)
conv_case("conv_pointwise", 3, 5, 4, 4, 7, 1)
conv_case("conv_rect", 2, 3, 7, 9, 4, (3, 5), stride=2, padding=(1, 1, 2, 2))


def bn_case(name, shape, training, eps=1e-5, momentum=0.1):
    c = shape[1]
    bn = nn.BatchNorm2d(c, eps=eps, momentum=momentum) if len(shape) == 4 else nn.BatchNorm1d(c, eps=eps, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(c))
        bn.bias.copy_(torch.randn(c))
        bn.running_mean.copy_(torch.randn(c))
        bn.running_var.copy_(torch.rand(c) + 0.5)
    put(name, "running_mean_before", bn.running_mean.clone())
    put(name, "running_var_before", bn.running_var.clone())
    bn.train(training)
    x = (torch.randn(*shape) * 2 + 0.5).requires_grad_()
    y = bn(x)
    gy = torch.randn_like(y)
    y.backward(gy)
    cases[name] = dict(kind="batchnorm", dims=len(shape), channels=c, training=training, eps=eps, momentum=momentum)
    put(name, "x", x); put(name, "weight", bn.weight); put(name, "bias", bn.bias); put(name, "y", y); put(name, "gy", gy)
    put(name, "gx", x.grad); put(name, "gweight", bn.weight.grad); put(name, "gbias", bn.bias.grad)
    put(name, "running_mean", bn.running_mean); put(name, "running_var", bn.running_var)


bn_case("bn2d_train", (4, 3, 5, 5), True)
bn_case("bn2d_eval", (4, 3, 5, 5), False, eps=1e-3)
bn_case("bn1d_train", (8, 6), True, momentum=0.3)


def pointwise_case(name, module, kind, param):
    x = torch.randn(3, 4, 5, requires_grad=True)
    y = module(x)
    gy = torch.randn_like(y)
    y.backward(gy)
    cases[name] = dict(kind=kind, param=param)
    put(name, "x", x); put(name, "y", y); put(name, "gy", gy); put(name, "gx", x.grad)


pointwise_case("relu", nn.ReLU(), "ReLU", None)
pointwise_case("leaky_relu", nn.LeakyReLU(0.2), "LeakyReLU", 0.2)
pointwise_case("elu", nn.ELU(0.7), "ELU", 0.7)


def pool_case(name, kind, k, stride, padding, ceil_mode=False, count_include_pad=True, shape=(2, 3, 9, 8)):
    x = torch.randn(*shape, requires_grad=True)
    if kind == "MaxPool2d":
        y = F.max_pool2d(x, k, stride, padding, ceil_mode=ceil_mode)
    elif kind == "AvgPool2d":
        y = F.avg_pool2d(x, k, stride, padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)
    else:
        y = F.adaptive_avg_pool2d(x, 1)
    gy = torch.randn_like(y)
    y.backward(gy)
    cases[name] = dict(kind=kind, kernel=k, stride=stride, padding=padding, ceil_mode=ceil_mode,
                       count_include_pad=count_include_pad)
    put(name, "x", x); put(name, "y", y); put(name, "gy", gy); put(name, "gx", x.grad)


pool_case("maxpool_2", "MaxPool2d", 2, 2, 0, shape=(2, 3, 8, 8))
pool_case("maxpool_3s2p1", "MaxPool2d", 3, 2, 1)
pool_case("maxpool_ceil", "MaxPool2d", 3, 2, 0, ceil_mode=True)
pool_case("avgpool_3s2p1", "AvgPool2d", 3, 2, 1)
pool_case("avgpool_nopad_count", "AvgPool2d", 3, 2, 1, count_include_pad=False)
pool_case("avgpool_ceil", "AvgPool2d", 2, 2, 0, ceil_mode=True, shape=(2, 2, 7, 7))
pool_case("global_avgpool", "GlobalAvgPool2d", 0, 0, 0)

x = torch.randn(5, 7, requires_grad=True)
lin = nn.Linear(7, 4)
y = lin(x)
gy = torch.randn_like(y)
y.backward(gy)
cases["linear"] = dict(kind="linear", nin=7, nout=4)
put("linear", "x", x); put("linear", "weight", lin.weight); put("linear", "bias", lin.bias)
put("linear", "y", y); put("linear", "gy", gy); put("linear", "gx", x.grad)
put("linear", "gweight", lin.weight.grad); put("linear", "gbias", lin.bias.grad)


def ce_case(name, weight, smoothing):
    logits = (torch.randn(6, 5) * 3).requires_grad_()
    target = torch.randint(0, 5, (6,))
    loss = F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)
    loss.backward()
    cases[name] = dict(kind="cross_entropy", smoothing=smoothing, weighted=weight is not None)
    put(name, "logits", logits); put(name, "target", target); put(name, "loss", loss.reshape(1))
    put(name, "glogits", logits.grad)
    if weight is not None:
        put(name, "weight", weight)


ce_case("ce_plain", None, 0.0)
ce_case("ce_smooth", None, 0.1)
ce_case("ce_weighted", torch.rand(5) + 0.2, 0.0)
ce_case("ce_weighted_smooth", torch.rand(5) + 0.2, 0.2)


def optim_case(name, make, opts):
    p = torch.randn(4, 3, requires_grad=True)
    put(name, "p0", p)
    opt = make([p], **opts)
    for step in range(3):
        g = torch.randn(4, 3)
        put(name, f"g{step}", g)
        p.grad = g.clone()
        opt.step()
    cases[name] = dict(kind="optim", optimizer=make.__name__, options=opts, steps=3)
    put(name, "p3", p)


optim_case("sgd_plain", torch.optim.SGD, dict(lr=0.1))
optim_case("sgd_momentum_wd", torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=0.01, dampening=0.1))
optim_case("sgd_nesterov", torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4))
optim_case("adam", torch.optim.Adam, dict(lr=0.01, weight_decay=0.01))
optim_case("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.99)))

# schedules: the lr after each of 20 updates
for name, make, opts in [
    ("onecycle", torch.optim.lr_scheduler.OneCycleLR, dict(max_lr=0.1, total_steps=20, pct_start=0.3)),
    ("steplr", torch.optim.lr_scheduler.StepLR, dict(step_size=6, gamma=0.5)),
]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = make(opt, **opts)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    cases[name] = dict(kind="schedule", options=opts)
    put(name, "lr", torch.tensor(lrs, dtype=torch.float64))


# the reference network's shape at a quarter of its widths (8/16/32 channels, 512-64-43 head, to keep the
# fixture small): a PyTorch state_dict, a batch, its logits, loss and a few gradients
def refcnn(w=(8, 16, 32), hidden=64):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*block(3, w[0]), *block(w[0], w[0]), nn.MaxPool2d(2), *block(w[0], w[1]),
                         *block(w[1], w[1]), nn.MaxPool2d(2), *block(w[1], w[2]), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(16 * w[2], hidden), nn.ReLU(), nn.Linear(hidden, 43))


net = refcnn()
for name, t in net.state_dict().items():
    put("refcnn", "state." + name, t)
net.train()
x = torch.randn(4, 3, 32, 32)
target = torch.randint(0, 43, (4,))
net[19].p = 0.0   # dropout off, so the comparison does not depend on the random mask
logits = net(x)
loss = F.cross_entropy(logits, target)
loss.backward()
cases["refcnn"] = dict(kind="network", widths=[8, 16, 32], hidden=64)
put("refcnn", "x", x); put("refcnn", "target", target); put("refcnn", "logits", logits)
put("refcnn", "loss", loss.reshape(1)); put("refcnn", "g0", net[0].weight.grad); put("refcnn", "g20", net[20].weight.grad)
put("refcnn", "running_mean1", net[1].running_mean)

# nearest-neighbour upsampling by whole factors (after every older case, so their random draws are unchanged)
for name, scale in (("upsample_2", (2, 2)), ("upsample_2x3", (2, 3))):
    x = torch.randn(2, 3, 5, 4, requires_grad=True)
    y = F.interpolate(x, scale_factor=scale, mode="nearest")
    gy = torch.randn_like(y)
    y.backward(gy)
    cases[name] = dict(kind="Upsample2d", scale=list(scale))
    put(name, "x", x); put(name, "y", y); put(name, "gy", gy); put(name, "gx", x.grad)

# metric learning (after every older case): F.normalize, TripletMarginLoss on given and on batch-hard triplets,
# the contrastive loss written out
x = torch.randn(6, 5)
x[2] = 1e-14   # a row shorter than eps: divided by eps
x.requires_grad_(True)
y = F.normalize(x, dim=1)
gy = torch.randn_like(y)
y.backward(gy)
cases["normalize"] = dict(kind="Normalize")
put("normalize", "x", x); put("normalize", "y", y); put("normalize", "gy", gy); put("normalize", "gx", x.grad)

k, margin = 7, 0.7
x = torch.randn(3 * k, 4, requires_grad=True)
loss = nn.TripletMarginLoss(margin=margin)(x[:k], x[k:2 * k], x[2 * k:])
loss.backward()
cases["triplet_given"] = dict(kind="triplet", margin=margin, triplets=k)
put("triplet_given", "x", x); put("triplet_given", "loss", loss.reshape(1)); put("triplet_given", "gx", x.grad)

x = torch.randn(12, 4, requires_grad=True)
labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1, 3, 0, 1, 2])   # class 3 has one row: no positive, left out
d = F.pairwise_distance(x.detach()[:, None, :], x.detach()[None, :, :], eps=1e-6)   # d[a, j] = ||x_a - x_j + eps||
anchors, positives, negatives = [], [], []
for a in range(12):
    same = [j for j in range(12) if j != a and labels[j] == labels[a]]
    other = [j for j in range(12) if labels[j] != labels[a]]
    if same and other:
        anchors.append(a)
        positives.append(max(same, key=lambda j: (d[a, j].item(), -j)))   # the farthest, the first of equals
        negatives.append(min(other, key=lambda j: (d[a, j].item(), j)))
loss = nn.TripletMarginLoss(margin=1.0)(x[anchors], x[positives], x[negatives])
loss.backward()
cases["triplet_batch_hard"] = dict(kind="triplet", margin=1.0)
put("triplet_batch_hard", "x", x); put("triplet_batch_hard", "labels", labels)
put("triplet_batch_hard", "positives", torch.tensor(positives)); put("triplet_batch_hard", "negatives", torch.tensor(negatives))
put("triplet_batch_hard", "anchors", torch.tensor(anchors))
put("triplet_batch_hard", "loss", loss.reshape(1)); put("triplet_batch_hard", "gx", x.grad)

x = torch.randn(9, 3, requires_grad=True)
labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2])
margin = 2.0
i, j = torch.triu_indices(9, 9, offset=1)
dist = (x[i] - x[j]).norm(dim=1)
same = (labels[i] == labels[j]).float()
loss = (same * dist ** 2 + (1 - same) * torch.clamp(margin - dist, min=0) ** 2).mean() / 2
loss.backward()
cases["contrastive"] = dict(kind="contrastive", margin=margin)
put("contrastive", "x", x); put("contrastive", "labels", labels); put("contrastive", "loss", loss.reshape(1))
put("contrastive", "gx", x.grad)

# the spatial transformer: theta from a Linear over the flattened input (near the identity warp, with enough
# rotation, shear, zoom and shift that some reads fall outside the image), an output of another size
x = torch.randn(2, 3, 5, 6, requires_grad=True)
loc = nn.Linear(90, 6)
with torch.no_grad():
    loc.weight.mul_(0.2)
    loc.bias.copy_(torch.tensor([0.9, 0.15, 0.1, -0.2, 1.1, -0.05]))
theta = loc(x.flatten(1)).view(-1, 2, 3)
grid = F.affine_grid(theta, (2, 3, 4, 7), align_corners=False)
y = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
gy = torch.randn_like(y)
y.backward(gy)
cases["spatial_transformer"] = dict(kind="spatial_transformer", size=[4, 7])
put("spatial_transformer", "x", x); put("spatial_transformer", "weight", loc.weight); put("spatial_transformer", "bias", loc.bias)
put("spatial_transformer", "theta", theta); put("spatial_transformer", "y", y); put("spatial_transformer", "gy", gy)
put("spatial_transformer", "gx", x.grad); put("spatial_transformer", "gweight", loc.weight.grad)
put("spatial_transformer", "gbias", loc.bias.grad)

DT = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
header, blobs, offset = {"__metadata__": {"cases": json.dumps(cases, sort_keys=True),
                                          "torch": torch.__version__}}, [], 0
for name in sorted(tensors):
    t = tensors[name]
    raw = t.numpy().tobytes()
    header[name] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
    blobs.append(raw)
    offset += len(raw)
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open("tests/fixtures/torch_layers.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
print(f"{len(tensors)} tensors, {len(cases)} cases")
