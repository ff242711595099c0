"""Plain PyTorch, as a tutorial writes it: the yardstick dlbench's pytorch plugin is compared against.

    python benchmarks/plain_pytorch.py MODEL --steps N --threads T --batch-size 128 [--device cuda] [--task NAME]

No dlbench code except ``dlbench.data.load_task``, so both see identical arrays. The model is written
by hand with torch's default initialisation; training is the usual loop over shuffled index batches of
tensors held in memory (zero_grad, forward, loss, backward, step); inference is a loop of ``model(x)``
under ``torch.inference_mode()`` on one batch of the test set.
Prints one JSON line: {"train_samples_per_s": ..., "infer_samples_per_s": ..., "train_marks": ..., ...}; the
marks (benchmarks/clock_marks.py: wall and CPU clock, faults) are read after every step and every call, and
the fidelity protocol cuts them into blocks as long as dlbench's.
On ``--device cuda`` the data lives on the GPU, TF32 is off (as in dlbench's float32 cases) and the clock
is read after ``torch.cuda.synchronize()`` at ten block boundaries, as any careful CUDA script does.
"""

from __future__ import annotations

import argparse
import json
import os

from clock_marks import marked_calls, marked_steps

TASKS = {"softmax": "fashion_mnist", "mlp": "fashion_mnist", "mlp64": "fashion_mnist", "cnn": "fashion_mnist",
         "cnn_dropout": "fashion_mnist", "cnn3": "fashion_mnist", "cnn_bn": "fashion_mnist",
         "lstm": "synthetic_text", "cnn_lstm": "synthetic_text"}


def build(torch, name: str):
    nn = torch.nn

    class LSTMClassifier(nn.Module):
        def __init__(self, conv: bool) -> None:
            super().__init__()
            self.embedding = nn.Embedding(10000, 128)
            self.conv = nn.Conv1d(128, 64, 5) if conv else None
            self.pool = nn.MaxPool1d(4)
            self.dropout = nn.Dropout(0.25) if conv else nn.Dropout1d(0.4)
            self.lstm = nn.LSTM(64 if conv else 128, 70 if conv else 100, batch_first=True)
            self.fc = nn.Linear(70 if conv else 100, 1)

        def forward(self, tokens):
            x = self.embedding(tokens)  # (N, L, C)
            if self.conv is None:
                x = self.dropout(x.transpose(1, 2)).transpose(1, 2)  # SpatialDropout1D: whole channels
            else:
                x = self.dropout(x)
                x = self.pool(torch.relu(self.conv(x.transpose(1, 2)))).transpose(1, 2)
            _, (h, _) = self.lstm(x)
            return self.fc(h[-1])

    if name == "softmax":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))
    if name == "mlp64":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    if name == "cnn":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(32 * 13 * 13, 64), nn.ReLU(), nn.Linear(64, 10))
    if name == "cnn_dropout":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                             nn.Linear(32 * 13 * 13, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
    if name == "cnn3":
        return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
                             nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10))
    if name == "cnn_bn":
        return nn.Sequential(nn.Conv2d(1, 32, 3, bias=False), nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
                             nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 13 * 13, 64), nn.ReLU(),
                             nn.Linear(64, 10))
    if name in ("lstm", "cnn_lstm"):
        return LSTMClassifier(conv=name == "cnn_lstm")
    raise SystemExit(f"unknown model {name!r}; choose from {', '.join(TASKS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(TASKS))
    parser.add_argument("--steps", type=int, default=300, help="timed training batches")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--infer-batch-size", type=int, default=128)
    parser.add_argument("--infer-seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=int, default=0, help="batches before the clock (default: 10%% of steps, >= 5)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--task", help="data set (default: fashion_mnist for image models, synthetic_text for text)")
    args = parser.parse_args()

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)

    from dlbench.data import load_task

    task = args.task or TASKS[args.model]
    data = load_task(task)
    torch.manual_seed(0)
    binary = data.num_classes == 2
    device = torch.device(args.device)
    if device.type == "cuda":  # strict float32, like dlbench's float32 cases
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
    if binary:
        x_train = torch.from_numpy(data.x_train).long()
        y_train = torch.from_numpy(data.y_train).float().unsqueeze(1)
        x_test = torch.from_numpy(data.x_test).long()
        loss_fn = torch.nn.BCEWithLogitsLoss()
    else:
        x_train = torch.from_numpy(data.x_train).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        y_train = torch.from_numpy(data.y_train)
        x_test = torch.from_numpy(data.x_test).permute(0, 3, 1, 2).contiguous()
        loss_fn = torch.nn.CrossEntropyLoss()
    x_train, y_train, x_test = x_train.to(device), y_train.to(device), x_test.to(device)
    model = build(torch, args.model).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    bs = args.batch_size

    def batches():
        while True:
            perm = torch.randperm(len(x_train), device=device)
            for i in range(len(x_train) // bs):
                idx = perm[i * bs:(i + 1) * bs]
                yield x_train[idx], y_train[idx]

    def train(steps: int) -> None:
        for _, (xb, yb) in zip(range(steps), stream):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()

    stream = batches()
    model.train()
    warmup = args.warmup or max(5, args.steps // 10)  # marked too; the rates leave these steps out
    # A mark after every step on the CPU (no sync needed: the step has finished); on CUDA after a sync at
    # ten block boundaries, so the clock never interrupts the device's queue inside a block.
    every = 1 if device.type == "cpu" else max(1, args.steps // 10)
    marks = marked_steps(train, sync, warmup + args.steps, every, bs)
    model.eval()
    batch = x_test[:args.infer_batch_size]
    with torch.inference_mode():
        infer_marks = marked_calls(lambda: model(batch), args.infer_seconds, len(batch),
                                   1 if device.type == "cpu" else 64, sync)
    print(json.dumps({"model": args.model, "task": task, "train_samples_per_s": marks.whole_rate(warmup),
                      "infer_samples_per_s": infer_marks.whole_rate(), "train_marks": marks,
                      "infer_marks": infer_marks, "steps": args.steps, "warmup": warmup,
                      "threads": args.threads, "batch_size": bs, "infer_batch_size": len(batch),
                      "torch": torch.__version__, "device": args.device}))


if __name__ == "__main__":
    main()
