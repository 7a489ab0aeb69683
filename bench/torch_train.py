"""PyTorch's training steps for the "Training" section of BENCHMARKS.md: the twin of
bench/train_worker.ts, step for step (train-mode forward, cross-entropy against class indices,
zero_grad, backward, SGD with momentum 0.9 and weight decay 1e-4), eager mode as a training
loop runs, torch.set_num_threads(threads) and one inter-op thread.

    /usr/bin/python3 bench/torch_train.py '<task JSON>'

The task is bench/train_worker.ts's TrainTask. Prints one JSON line: {"timesMs", "cpuCores",
"version", "numThreads"} or {"error"}. The CIFAR ResNets (resnet20 …) are the common PyTorch
implementation of He et al. 2015 §4.2 as test/fixtures/cifar/make_cifar.py defines it.
"""

import json
import os
import sys
import time
import traceback


def build(torch, torchvision, arch, channels, classes):
    """`arch` for `channels`-channel images and `classes` classes: torchvision's, or a CIFAR ResNet."""
    if hasattr(torchvision.models, arch):
        model = getattr(torchvision.models, arch)(weights=None, num_classes=classes)
        if channels != 3:
            model.conv1 = torch.nn.Conv2d(channels, model.conv1.out_channels, 7, 2, 3, bias=False)
        return model
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "cifar"))
    import make_cifar  # noqa: E402  (defines the CIFAR ResNets without running anything on import)

    return make_cifar.CifarResNet(make_cifar.DEPTHS[arch], num_classes=classes, in_channels=channels)


def main(task):
    import numpy as np
    import torch
    import torchvision

    torch.set_num_threads(task["threads"])
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    torch.manual_seed(0)
    model = build(torch, torchvision, task["arch"], task["input"][0], task["classes"]).train()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (task["batch"], *task["input"])).astype(np.float32))
    target = torch.from_numpy(np.random.default_rng(1).integers(0, task["classes"], task["batch"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        loss = loss_fn(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(task["warmup"]):
        step()
    times = []
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    while len(times) < task["minIterations"] or (time.perf_counter() - wall_start) * 1000 < task["minTimeMs"]:
        if len(times) >= 50:
            break
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
        print(f"  {task['arch']} train batch {task['batch']} on pytorch: measure {len(times)}: {times[-1]:.0f} ms", file=sys.stderr)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    return {"timesMs": times, "cpuCores": cpu / wall, "version": torch.__version__, "numThreads": torch.get_num_threads()}


def run_task(main):
    """Prints main(the task JSON of argv[1]) as the last stdout line, or {"error"} and exits with 1."""
    try:
        print(json.dumps(main(json.loads(sys.argv[1]))))
    except Exception:  # noqa: BLE001
        print(json.dumps({"error": traceback.format_exc()}))
        sys.exit(1)


if __name__ == "__main__":
    run_task(main)
