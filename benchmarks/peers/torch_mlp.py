#!/usr/bin/env python3
"""PyTorch's training throughput for the reference trainer's target model, on the GPU.

The model and the loop of benchmarks/trainer/epoch_cuda_bench.cu, written as a PyTorch user
writes them: nn.Sequential(Linear(784, 256), ReLU(), Linear(256, 10)), cross-entropy, Adam at
1e-3 with a cosine learning-rate schedule (CosineAnnealingLR, stepped every batch), batch 256,
the 60,000 training images of Fashion-MNIST resident on the GPU (a torch.randperm per epoch on
the device, batches by indexing), no host sync inside an epoch. After warm-up epochs, each
epoch is timed with torch.cuda.synchronize() before and after; samples/s is 60,000 over the
median epoch time. FP32 throughout (TF32 matmuls off, PyTorch's default, and ours: cuBLAS's
default FP32 math).

Variants (each reported when it runs):
  eager          torch.optim.Adam with its default implementation (foreach on CUDA)
  eager_fused    torch.optim.Adam(fused=True)
  compiled       the training step under torch.compile (Inductor; needs Triton and a C
                 compiler, offline is fine); skipped with a note when compilation fails

Data: $PROXYTASK_FASHION_MNIST_DIR (or --data_dir) holding train-images-idx3-ubyte.gz and
train-labels-idx1-ubyte.gz, else synthetic data of the same shape (noted in the output).

Usage:
  python3 benchmarks/peers/torch_mlp.py [--epochs 5] [--warmup 2] [--json out.json]
Prints one JSON object on stdout: {"device": ..., "data": ..., "results": {variant:
{"samples_per_second": ..., "epoch_ms": ..., "final_loss": ...} or {"error": ...}}}.
"""

import argparse
import gzip
import json
import math
import os
import statistics
import struct
import sys
import time

N_TRAIN = 60000
FEATURES = 784
CLASSES = 10
BATCH = 256


def load_images(path):
    with gzip.open(path, "rb") as f:
        magic, n, rows, cols = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise ValueError(f"{path}: not an IDX image file")
        return n, rows * cols, f.read(n * rows * cols)


def load_labels(path):
    with gzip.open(path, "rb") as f:
        magic, n = struct.unpack(">II", f.read(8))
        if magic != 2049:
            raise ValueError(f"{path}: not an IDX label file")
        return n, f.read(n)


def training_data(torch, data_dir, device):
    """(images, labels, description) on the device: pixels / 255 as float32, labels int64."""
    images = os.path.join(data_dir, "train-images-idx3-ubyte.gz") if data_dir else None
    labels = os.path.join(data_dir, "train-labels-idx1-ubyte.gz") if data_dir else None
    if images and os.path.exists(images) and os.path.exists(labels):
        n, features, pixels = load_images(images)
        m, ys = load_labels(labels)
        if n == N_TRAIN and m == N_TRAIN and features == FEATURES:
            x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).to(device)
            x = x.view(N_TRAIN, FEATURES).float().div_(255.0)
            y = torch.frombuffer(bytearray(ys), dtype=torch.uint8).to(device).long()
            return x, y, "fashion-mnist"
    g = torch.Generator(device="cpu").manual_seed(1)
    x = torch.randint(0, 256, (N_TRAIN, FEATURES), generator=g).float().div_(255.0).to(device)
    y = torch.randint(0, CLASSES, (N_TRAIN,), generator=g).to(device)
    return x, y, "synthetic (no Fashion-MNIST found)"


def run_variant(torch, name, x, y, epochs, warmup):
    nn = torch.nn
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(FEATURES, 256), nn.ReLU(), nn.Linear(256, CLASSES)).cuda()
    steps_per_epoch = math.ceil(N_TRAIN / BATCH)
    total_steps = steps_per_epoch * (epochs + warmup)
    adam_kwargs = {"lr": 1e-3}
    if name == "eager_fused":
        adam_kwargs["fused"] = True
    optimizer = torch.optim.Adam(model.parameters(), **adam_kwargs)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    loss_fn = nn.CrossEntropyLoss()

    def step(xb, yb):
        loss = loss_fn(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss

    if name == "compiled":
        # The forward + backward under Inductor; the optimizer step stays eager (compiling it
        # with a scheduler-driven learning rate recompiles on every new rate).
        forward = torch.compile(lambda xb, yb: loss_fn(model(xb), yb))

        def step(xb, yb):  # noqa: F811
            loss = forward(xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return loss

    def epoch():
        perm = torch.randperm(N_TRAIN, device=x.device)
        loss = None
        for begin in range(0, N_TRAIN, BATCH):
            idx = perm[begin:begin + BATCH]
            loss = step(x[idx], y[idx])
            schedule.step()
        return loss

    for _ in range(warmup):
        epoch()
    torch.cuda.synchronize()
    times = []
    loss = None
    for _ in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = epoch()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "samples_per_second": N_TRAIN / seconds,
        "epoch_ms": seconds * 1000.0,
        "epochs_timed": epochs,
        "final_loss": float(loss.item()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed epochs first")
    parser.add_argument("--data_dir", default=os.environ.get("PROXYTASK_FASHION_MNIST_DIR"))
    parser.add_argument("--variants", default="eager,eager_fused,compiled")
    parser.add_argument("--json", help="also write the JSON object to this file")
    args = parser.parse_args()

    try:
        import torch
    except ImportError as e:
        print(json.dumps({"error": f"PyTorch is not importable: {e}"}))
        return 1
    if not torch.cuda.is_available():
        print(json.dumps({"error": "torch.cuda.is_available() is false: no CUDA device"}))
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    device = torch.device("cuda")
    x, y, source = training_data(torch, args.data_dir, device)
    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "data": source,
        "model": "784-256-10 relu, Adam 1e-3 cosine, batch 256, fp32",
        "results": {},
    }
    status = 0
    for name in [v for v in args.variants.split(",") if v]:
        started = time.perf_counter()
        try:
            out["results"][name] = run_variant(torch, name, x, y, args.epochs, args.warmup)
        except Exception as e:  # a variant that cannot run here (no Triton, no compiler, ...)
            out["results"][name] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            if name == "eager":
                status = 1
        out["results"][name]["wall_s"] = round(time.perf_counter() - started, 1)
        print(f"torch_mlp: {name}: {out['results'][name]}", file=sys.stderr, flush=True)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
