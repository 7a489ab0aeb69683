"""Writes the models the benchmarks run: torchvision's resnet18 and resnet50 with fixed seeded
weights, as ONNX (for onnxruntime), as safetensors (for resnet-ts and the TensorFlow.js graph) and as
a torch.save state dict (for PyTorch, and the cold-start rows), plus a check file with an input and
torch's logits for it.

Run with Debian's python3-torch 1.13 / python3-torchvision 0.14 (no internet, no `onnx` package
needed: torch.onnx.export serialises the protobuf itself):

    /usr/bin/python3 bench/export_onnx.py [--out bench/models] [--arch resnet18 resnet50]

Weights: torchvision's own initialisation under torch.manual_seed(SEED), then every BatchNorm
gets a random affine (γ ∈ [0.5, 1.5], β ∈ [-0.1, 0.1]) and running statistics calibrated on
seeded random inputs (cumulative average, momentum=None), so that eval-mode activations stay
normalised and the logits have a realistic scale. Outputs per arch:

    <arch>.onnx                opset 13, input "input" (N, 3, 224, 224), output "logits" (N, 1000), N dynamic
    <arch>.safetensors         the same state dict, torchvision's keys
    <arch>.pth                 the same state dict, torch.save (zip format)
    <arch>.check.safetensors   "input" (2, 3, 224, 224) and torch's eval-mode "logits" (2, 1000)
    export.json                torch and torchvision versions, seed, opset
"""

import argparse
import json
import os
import sys

import torch
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures"))
from fixture_io import write_safetensors  # noqa: E402

SEED = 20240601
OPSET = 13


def seeded_model(arch):
    torch.manual_seed(SEED)
    model = getattr(torchvision.models, arch)(weights=None)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.1, 0.1)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(4, 3, 224, 224))
    for bn in bns:
        bn.momentum = 0.1
    return model.eval()


def export(arch, out):
    model = seeded_model(arch)
    state = {k: v.detach().contiguous().numpy() for k, v in model.state_dict().items()}
    write_safetensors(os.path.join(out, f"{arch}.safetensors"), state)
    torch.save(model.state_dict(), os.path.join(out, f"{arch}.pth"))

    torch.manual_seed(SEED + 1)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        logits = model(x)
    write_safetensors(os.path.join(out, f"{arch}.check.safetensors"), {"input": x.numpy(), "logits": logits.numpy()})

    torch.onnx.export(
        model,
        torch.zeros(1, 3, 224, 224),
        os.path.join(out, f"{arch}.onnx"),
        opset_version=OPSET,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        do_constant_folding=True,
    )
    print(f"{arch}: wrote {arch}.onnx, {arch}.safetensors, {arch}.pth, {arch}.check.safetensors to {out} "
          f"(max |logit| {logits.abs().max().item():.4g})", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    parser.add_argument("--arch", nargs="+", default=["resnet18", "resnet50"])
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, seed {SEED}, opset {OPSET}", file=sys.stderr)
    for arch in args.arch:
        export(arch, args.out)
    with open(os.path.join(args.out, "export.json"), "w") as f:
        json.dump({"torch": torch.__version__, "torchvision": torchvision.__version__, "seed": SEED, "opset": OPSET}, f)


if __name__ == "__main__":
    main()
