"""A complete training script that adamtune can tune unchanged but for its printed lines.

It trains an MLP on scikit-learn's bundled 8x8 digits (no download) with Adam, reads its
hyperparameters from the command line, and prints one JSON line per evaluation:

    python examples/train_digits.py --lr 1e-3 --beta1 0.9 --seed 0
    adamtune run --budget 12 -- python examples/train_digits.py \\
        --lr {lr} --beta1 {beta1} --beta2 {beta2} --eps {eps} --seed {seed}
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.999)
    parser.add_argument("--eps", type=float, default=1e-8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=50)
    args = parser.parse_args()

    torch.set_num_threads(1)
    digits = load_digits()
    x = torch.as_tensor(digits.data / 16.0, dtype=torch.float32)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    # A fixed split (not the trial seed): every trial is judged on the same validation set.
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(1234))
    train, val = order[:1400], order[1400:]

    torch.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2), eps=args.eps)
    batches = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        batch = train[torch.randint(len(train), (64,), generator=batches)]
        loss = F.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            with torch.no_grad():
                logits = model(x[val])
                val_loss = F.cross_entropy(logits, y[val]).item()
                val_acc = (logits.argmax(1) == y[val]).float().mean().item()
            report = {"step": step, "train_loss": loss.item(), "val_loss": val_loss, "val_acc": val_acc}
            print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
