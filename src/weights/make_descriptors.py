#!/usr/bin/env python3
"""Writes src/weights/imagenet.generated.ts: torchvision's ImageNet weights for the ten ResNet
builders (URL, file name and SHA-256 prefix, preprocessing, categories, metadata), read from the
installed torchvision's *_Weights enums so that nothing in the file is typed by hand.

torchvision 0.14 publishes no "_ops" (GFLOPS) or "_file_size" (MB); 0.15 added them. They are
copied below (PUBLISHED_0_15) from torchvision 0.15+'s torchvision/models/resnet.py, keyed by the
weights' file name, and each is checked here against what this machine computes:
  gflops      must equal our own multiply-accumulate count at 1x3x224x224
              (`resnet summary <arch> --json`, src/tools/summary.ts), in billions, to 3 decimals
              (the same count torchvision's "_ops" is);
  fileSizeMB  the size in MiB of the hosted file. It must be within 0.1 MiB of the size of
              torch.save(model.state_dict()) of the float32 model under the installed torch
              (equal for every IMAGENET1K_V2 file; older torch versions wrote the V1 files), or,
              for the wide_resnet*_2 IMAGENET1K_V1 files, which hold float16 tensors, within
              1 MiB of half of it (they are 0.3-0.5 MiB over half: not every record is float16).

Run from the repository root after building (`npx tsc -p tsconfig.json`):
    python3 src/weights/make_descriptors.py           # rewrite the .ts file
    python3 src/weights/make_descriptors.py --check   # exit 1 if the committed file differs
Used with Debian's python3-torch 1.13 and python3-torchvision 0.14.
"""

import io
import json
import os
import subprocess
import sys

import torch
import torch.hub
import torchvision
from torchvision import models
from torchvision.models._meta import _IMAGENET_CATEGORIES
from torchvision.transforms import InterpolationMode

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
OUT = os.path.join(ROOT, 'src', 'weights', 'imagenet.generated.ts')

# Builder name → torchvision's weights enum, in torchvision's order.
ARCHS = {
    'resnet18': models.ResNet18_Weights,
    'resnet34': models.ResNet34_Weights,
    'resnet50': models.ResNet50_Weights,
    'resnet101': models.ResNet101_Weights,
    'resnet152': models.ResNet152_Weights,
    'resnext50_32x4d': models.ResNeXt50_32X4D_Weights,
    'resnext101_32x8d': models.ResNeXt101_32X8D_Weights,
    'resnext101_64x4d': models.ResNeXt101_64X4D_Weights,
    'wide_resnet50_2': models.Wide_ResNet50_2_Weights,
    'wide_resnet101_2': models.Wide_ResNet101_2_Weights,
}


def ts_string(s):
    return "'" + s.replace('\\', '\\\\').replace("'", "\\'") + "'"


def ts_value(v, indent):
    """A JSON-like value as TypeScript: single-quoted strings, quoted keys only where needed."""
    pad = '  ' * indent
    if isinstance(v, str):
        return ts_string(v)
    if isinstance(v, bool) or v is None:
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return '[' + ', '.join(ts_value(x, indent) for x in v) + ']'
    if isinstance(v, Raw):
        return v.text
    lines = []
    for key, value in v.items():
        name = key if key.isidentifier() else ts_string(key)
        lines.append(f'{pad}  {name}: {ts_value(value, indent + 1)},')
    return '{\n' + '\n'.join(lines) + f'\n{pad}}}'


class Raw:
    """TypeScript text emitted as is (a reference to another constant)."""

    def __init__(self, text):
        self.text = text


# torchvision >= 0.15's meta "_ops" and "_file_size" for each weights file (see the docstring).
PUBLISHED_0_15 = {
    'resnet18-f37072fd.pth': (1.814, 44.661),
    'resnet34-b627a593.pth': (3.664, 83.275),
    'resnet50-0676ba61.pth': (4.089, 97.781),
    'resnet50-11ad3fa6.pth': (4.089, 97.79),
    'resnet101-63fe2227.pth': (7.801, 170.511),
    'resnet101-cd907fc2.pth': (7.801, 170.53),
    'resnet152-394f9c45.pth': (11.514, 230.434),
    'resnet152-f82ba261.pth': (11.514, 230.474),
    'resnext50_32x4d-7cdf4587.pth': (4.23, 95.789),
    'resnext50_32x4d-1a0047aa.pth': (4.23, 95.833),
    'resnext101_32x8d-8ba56ff5.pth': (16.414, 339.586),
    'resnext101_32x8d-110c445d.pth': (16.414, 339.673),
    'resnext101_64x4d-173b62eb.pth': (15.46, 319.318),
    'wide_resnet50_2-95faca4d.pth': (11.398, 131.82),
    'wide_resnet50_2-9ba9bcbe.pth': (11.398, 263.124),
    'wide_resnet101_2-32ee1156.pth': (22.753, 242.896),
    'wide_resnet101_2-d733dc28.pth': (22.753, 484.747),
}

# Hosted files that hold float16 tensors (half the float32 size).
FLOAT16_FILES = {'wide_resnet50_2-95faca4d.pth', 'wide_resnet101_2-32ee1156.pth'}


def published_meta(file_name, gflops, saved_mb):
    """torchvision's published (gflops, file size), checked against our own figures."""
    ops, size = PUBLISHED_0_15[file_name]
    if ops != gflops:
        sys.exit(f'{file_name}: torchvision publishes {ops} GFLOPS, our summary counts {gflops}')
    half = file_name in FLOAT16_FILES
    expected = saved_mb / 2 if half else saved_mb
    if abs(size - expected) > (1.0 if half else 0.1):
        sys.exit(f'{file_name}: torchvision publishes {size} MB, torch.save here gives {expected:.3f}')
    return ops, size


def our_gflops(arch):
    summary = subprocess.run(
        ['node', os.path.join(ROOT, 'bin', 'resnet.js'), 'summary', arch, '--input', '3x224x224', '--json'],
        check=True, capture_output=True, text=True,
    ).stdout
    return round(json.loads(summary)['totalMacs'] / 1e9, 3)


def saved_size_mb(arch):
    buffer = io.BytesIO()
    torch.save(getattr(models, arch)().state_dict(), buffer)
    return round(len(buffer.getvalue()) / 1024 / 1024, 3)


def transforms_of(weights):
    t = weights.transforms()  # ImageClassification with the weights' settings
    assert t.interpolation == InterpolationMode.BILINEAR and len(t.resize_size) == 1 and len(t.crop_size) == 1
    return {
        'resizeSize': t.resize_size[0],
        'cropSize': t.crop_size[0],
        'interpolation': t.interpolation.value,
        'mean': list(t.mean),
        'std': list(t.std),
    }


def descriptor(arch, weights, gflops, saved_mb):
    meta = weights.meta
    assert meta['categories'] == _IMAGENET_CATEGORIES
    assert set(meta) == {'min_size', 'categories', 'num_params', 'recipe', '_metrics', '_docs'}, set(meta)
    file_name = os.path.basename(weights.url)
    gflops, file_size = published_meta(file_name, gflops, saved_mb)
    match = torch.hub.HASH_REGEX.search(file_name)  # what load_state_dict_from_url(check_hash=True) checks
    return {
        'arch': arch,
        'name': weights.name,
        'url': weights.url,
        'fileName': file_name,
        'sha256Prefix': match.group(1),
        'transforms': transforms_of(weights),
        'meta': {
            'categories': Raw('IMAGENET_CATEGORIES'),
            'numParams': meta['num_params'],
            'minSize': list(meta['min_size']),
            'recipe': meta['recipe'],
            'metrics': meta['_metrics'],
            'gflops': gflops,
            'fileSizeMB': file_size,
        },
    }


def generate():
    out = [
        f'// Generated by src/weights/make_descriptors.py from torchvision {torchvision.__version__} '
        f'(torch {torch.__version__}) — do not edit.',
        '// torchvision\'s ImageNet-1K weights for the ten ResNet builders. gflops and fileSizeMB are',
        '// torchvision 0.15+\'s "_ops" and "_file_size" (0.14 lacks them), each checked by the generator',
        '// against our own MAC count and torch.save size; see the generator.',
        '',
        "import type { ImageNetWeightsDescriptor } from './descriptor.js';",
        '',
        f'export const TORCHVISION_VERSION = {ts_string(torchvision.__version__)};',
        '',
        '/** The 1000 ImageNet-1K class names in output order (torchvision\'s _IMAGENET_CATEGORIES). */',
        'export const IMAGENET_CATEGORIES: readonly string[] = Object.freeze([',
        *(f'  {ts_string(c)},' for c in _IMAGENET_CATEGORIES),
        ']);',
        '',
    ]
    table = []
    for arch, enum in ARCHS.items():
        gflops, saved_mb = our_gflops(arch), saved_size_mb(arch)
        names = []
        for weights in enum:  # iterating an Enum skips the DEFAULT alias
            const = f'{arch}_{weights.name}'
            out.append(f'const {const}: ImageNetWeightsDescriptor = {ts_value(descriptor(arch, weights, gflops, saved_mb), 0)};')
            out.append('')
            names.append(f'{weights.name}: {const}')
        names.append(f'DEFAULT: {arch}_{enum.DEFAULT.name}')
        table.append(f'  {arch}: {{ {", ".join(names)} }},')
    out += [
        '/** Each builder\'s weights by torchvision\'s names; DEFAULT is the same object as the best of them. */',
        'export const IMAGENET_WEIGHTS = {',
        *table,
        '} as const;',
        '',
    ]
    return '\n'.join(out)


def main():
    text = generate()
    if '--check' in sys.argv[1:]:
        with open(OUT, encoding='utf-8') as f:
            if f.read() != text:
                sys.exit(f'{os.path.relpath(OUT, ROOT)} is out of date: run python3 src/weights/make_descriptors.py')
        return
    with open(OUT, 'w', encoding='utf-8') as f:
        f.write(text)


if __name__ == '__main__':
    main()
