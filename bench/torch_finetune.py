"""PyTorch's side of the "Fine-tuning" section of BENCHMARKS.md (bench/finetune.ts): the recipe
of `resnet train --weights <file> [--freeze-backbone]` (src/train/trainer.ts, src/train/data.ts)
written with torch and torchvision, step for step:

- the model: `arch` built for the data's classes and channels with torch.manual_seed(seed), then
  every pretrained tensor but fc's loaded from the .pth (weights_only=True): a new fc, torch's
  default Linear init; with freezeBackbone only fc requires gradients and every BatchNorm stays
  in eval mode (its statistics as loaded) while fc trains;
- the data: torchvision's ImageFolder over <data>/train and <data>/val; training transforms
  [Grayscale(1)] RandomResizedCrop(imageSize), RandomHorizontalFlip, ToTensor, Normalize(mean,
  std); validation [Grayscale(1)] Resize(resize), CenterCrop(imageSize), ToTensor, Normalize;
  a DataLoader shuffled by a generator seeded with `seed`, the last short batch dropped when the
  set is larger than a batch, validation in order, no worker processes;
- the optimizer: SGD (momentum, Nesterov) over torchvision's set_weight_decay groups (weights at
  weightDecay; BatchNorm parameters and biases at 0), frozen parameters left out;
- the schedule: LinearLR from 1% over min(round(warmupEpochs × steps per epoch), total // 10)
  steps, then CosineAnnealingLR to 0 (SequentialLR), stepped every iteration;
- cross-entropy with labelSmoothing; validation accuracy and loss after every epoch.

    /usr/bin/python3 bench/torch_finetune.py '<task JSON>'

Prints one JSON line per epoch on stdout ({"epoch", "trainLoss", "trainAccuracy", "valLoss",
"valAccuracy", "lr", "seconds", "imagesPerSecond"}, the fields of resnet train --json), then
{"done": true, "version", "torchvision", "numThreads", "trainImages", "valImages", "classes"} — or
{"error"}. Progress goes to stderr.
"""

import json
import math
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import build, run_task  # noqa: E402  (the models of the training-step rows, and their way of answering)


def weight_decay_groups(torch, model, weight_decay):
    """torchvision's set_weight_decay(model, wd, norm_weight_decay=0, custom_keys_weight_decay=[("bias", 0)])."""
    other, norm, bias = [], [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            if name == "bias":
                bias.append(p)
            elif isinstance(module, torch.nn.BatchNorm2d):
                norm.append(p)
            else:
                other.append(p)
    groups = [{"params": other, "weight_decay": weight_decay}, {"params": norm, "weight_decay": 0.0}, {"params": bias, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def main(task):
    import torch
    import torchvision
    from torchvision import datasets, transforms as T

    # SequentialLR calls its schedulers' step(0) at a milestone, which torch 1.13 itself warns about.
    warnings.filterwarnings("ignore", message="The epoch parameter in `scheduler.step\(\)`")
    torch.set_num_threads(task["threads"])
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(task["seed"])

    grey = [T.Grayscale(1)] if task["grayscale"] else []
    normalize = T.Normalize(task["mean"], task["std"])
    size = task["imageSize"]
    train_set = datasets.ImageFolder(os.path.join(task["data"], "train"), T.Compose(grey + [T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(), normalize]))
    val_set = datasets.ImageFolder(os.path.join(task["data"], "val"), T.Compose(grey + [T.Resize(task["resize"]), T.CenterCrop(size), T.ToTensor(), normalize]))
    batch = task["batchSize"]
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=batch, shuffle=True, drop_last=len(train_set) > batch, generator=torch.Generator().manual_seed(task["seed"]),
    )
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=batch, shuffle=False)

    model = build(torch, torchvision, task["arch"], 1 if task["grayscale"] else 3, len(train_set.classes))
    state = torch.load(task["weights"], map_location="cpu", weights_only=True)
    result = model.load_state_dict({k: v for k, v in state.items() if not k.startswith("fc.")}, strict=False)
    if [k for k in result.missing_keys if not k.startswith("fc.")] or result.unexpected_keys:
        raise RuntimeError(f"the weights do not fit: {result}")
    frozen = task["freezeBackbone"]
    if frozen:
        model.requires_grad_(False)
        model.fc.requires_grad_(True)

    optimizer = torch.optim.SGD(
        weight_decay_groups(torch, model, task["weightDecay"]), lr=task["lr"], momentum=task["momentum"],
        nesterov=task["nesterov"] and task["momentum"] > 0, weight_decay=task["weightDecay"],
    )
    steps = len(train_loader)
    total = steps * task["epochs"]
    # JavaScript's Math.round (half up), as src/train/trainer.ts's buildSchedule rounds.
    warmup = min(math.floor(task["warmupEpochs"] * steps + 0.5), total // 10)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(1, total - warmup))
    if warmup < 1:
        schedule = cosine
    else:
        linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, total_iters=warmup)
        schedule = torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], [warmup])
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=task["labelSmoothing"])

    for epoch in range(task["epochs"]):
        model.train()
        if frozen:
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.eval()
        started = time.perf_counter()
        loss_sum, correct, images = 0.0, 0, 0
        for step, (x, y) in enumerate(train_loader, 1):
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            images += len(y)
            if step % 5 == 0 or step == steps:
                rate = images / (time.perf_counter() - started)
                print(f"  pytorch epoch {epoch + 1}/{task['epochs']} step {step}/{steps}: loss {loss_sum / images:.4f}, {rate:.0f} images/s", file=sys.stderr)
        train_seconds = time.perf_counter() - started
        model.eval()
        val_loss, val_correct, val_images = 0.0, 0, 0
        with torch.no_grad():
            for x, y in val_loader:
                logits = model(x)
                val_loss += float(torch.nn.functional.cross_entropy(logits, y)) * len(y)
                val_correct += int((logits.argmax(1) == y).sum())
                val_images += len(y)
        record = {
            "epoch": epoch + 1, "trainLoss": loss_sum / images, "trainAccuracy": correct / images,
            "valLoss": val_loss / val_images, "valAccuracy": val_correct / val_images,
            "lr": optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - started, "imagesPerSecond": images / train_seconds,
        }
        print(json.dumps(record), flush=True)
    return {
        "done": True, "version": torch.__version__, "torchvision": torchvision.__version__, "numThreads": torch.get_num_threads(),
        "trainImages": len(train_set), "valImages": len(val_set), "classes": train_set.classes,
    }


if __name__ == "__main__":
    run_task(main)
