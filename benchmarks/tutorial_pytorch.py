"""A PyTorch training loop as the tutorials write it, written apart from dlbench and from plain_pytorch.py.

    python benchmarks/tutorial_pytorch.py MODEL --steps N --threads T [--batch-size 128]

The second yardstick of benchmarks/fidelity_pytorch.py (``--loop tutorial``): the models as ``nn.Module``
classes with torch's default initialisation, ``torch.set_num_threads``, Adam(lr=1e-3) with its defaults, and
the loop of the "training a classifier" tutorial, epoch after epoch, the last short batch of an epoch
included, no warm-up of its own (``--evaluate-first``: the example's test loop over the held-out 10%, once before
training). Batches: a shuffled order every epoch, as the tutorial's
``DataLoader(shuffle=True)`` gives, drawn the way a loop over tensors in memory does (``torch.randperm``,
then indexing); ``--order slices``: consecutive slices, unshuffled.
Inference: ``model.eval()`` and ``model(batch)`` under ``torch.no_grad()`` on one batch of the test set.
It shares nothing with dlbench but ``dlbench.data.load_task`` (the same arrays) and the clock marks
(benchmarks/clock_marks.py) read after every step and every call, from which the fidelity protocol cuts
blocks. Prints one JSON line.
"""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F
from torch import nn

from clock_marks import Marks, loop_arguments, marked_calls

TASKS = {"cnn": "fashion_mnist", "mlp": "fashion_mnist", "lstm": "synthetic_text"}


class ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.pool = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(32 * 13 * 13, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.dropout = nn.Dropout(0.2)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(F.relu(self.fc1(torch.flatten(x, 1)))))


class TextLSTM(nn.Module):
    """Embedding, spatial dropout (whole embedding channels, as Keras' SpatialDropout1D), LSTM, one logit."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10000, 128)
        self.spatial_dropout = nn.Dropout1d(0.4)
        self.lstm = nn.LSTM(128, 100, batch_first=True)
        self.fc = nn.Linear(100, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embedding(tokens).permute(0, 2, 1)  # (N, C, L): Dropout1d drops channels
        x = self.spatial_dropout(x).permute(0, 2, 1)
        _, (hidden, _) = self.lstm(x)
        return self.fc(hidden[-1])


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, batch_size: int, shuffle: bool) -> Marks:
    """The tutorial's loop for ``steps`` steps, shuffled or over consecutive slices, a mark after each step."""
    criterion = nn.BCEWithLogitsLoss() if isinstance(model, TextLSTM) else nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    marks = Marks()
    marks.add(0, 0)
    while marks.steps < steps:
        order = torch.randperm(len(x)) if shuffle else None
        for start in range(0, len(x), batch_size):
            if order is None:
                inputs, labels = x[start:start + batch_size], y[start:start + batch_size]
            else:
                batch = order[start:start + batch_size]
                inputs, labels = x[batch], y[batch]
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            marks.add(1, len(inputs))
            if marks.steps == steps:
                break
    return marks


def evaluate(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> None:
    """The test loop of PyTorch's MNIST example (its test batch: 1,000) over the held-out split, before training
    (``--evaluate-first``: as after an epoch's validation)."""
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size])


def infer(model: nn.Module, batch: torch.Tensor, seconds: float) -> Marks:
    model.eval()
    with torch.no_grad():
        return marked_calls(lambda: model(batch), seconds, len(batch))


def main() -> None:
    args = loop_arguments(__doc__.splitlines()[0], TASKS)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from dlbench.data import load_task

    data = load_task(TASKS[args.model])
    if args.model == "lstm":
        x, y = torch.from_numpy(data.x_train).long(), torch.from_numpy(data.y_train).float().unsqueeze(1)
        x_test, x_val = torch.from_numpy(data.x_test).long(), torch.from_numpy(data.x_val).long()
        model: nn.Module = TextLSTM()
    else:  # the arrays are NHWC; torch wants NCHW
        x, y = torch.from_numpy(data.x_train).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(data.y_train)
        x_test = torch.from_numpy(data.x_test).permute(0, 3, 1, 2).contiguous()
        x_val = torch.from_numpy(data.x_val).permute(0, 3, 1, 2).contiguous()
        model = ConvNet() if args.model == "cnn" else MLP()
    if args.evaluate_first:
        evaluate(model, x_val)
    marks = train(model, x, y, args.steps, args.batch_size, args.order == "shuffled")
    infer_marks = infer(model, x_test[:args.batch_size], args.infer_seconds)
    warmup = max(5, args.steps // 10)  # the rates leave out the first steps (allocation, primitive creation)
    print(json.dumps({"model": args.model, "train_samples_per_s": marks.whole_rate(warmup),
                      "infer_samples_per_s": infer_marks.whole_rate(), "train_marks": marks,
                      "infer_marks": infer_marks, "steps": args.steps, "warmup": warmup, "threads": args.threads,
                      "batch_size": args.batch_size, "order": args.order, "evaluated_first": args.evaluate_first,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
