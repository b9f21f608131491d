"""How fast is the offline renderer, relative to this machine?

Prints the median time LocalGenerator takes to render a 1024x1024 image beside the median time Pillow takes to
encode a 1024x1024 PNG of random pixels, measured in the same run, as a ratio (target <= 4), and the peak
memory of one render under tracemalloc (target < 150 MB). tracemalloc sees Python and numpy allocations; the
few Pillow images a render holds (3 MB per 1024x1024 RGB copy) live in Pillow's C allocator outside it.

Run: python benchmarks/local_generator.py [--runs N]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a checkout without installing

from studio_core.adapters.local_generator import LocalGenerator  # noqa: E402
from studio_core.ports import GenerationRequest  # noqa: E402

SIZE = 1024
RATIO_TARGET = 4.0
PEAK_TARGET_MB = 150.0
PROMPTS = [
    "a misty mountain landscape at sunset",
    "cyberpunk city street at night with neon signs",
    "portrait of a woman, golden hour",
    "a calm ocean beach at dawn",
    "an enchanted pine forest in winter",
    "spiral galaxy and a lonely planet",
    "abstract dreams in teal and coral",
]


def _request(i: int) -> GenerationRequest:
    return GenerationRequest(prompt=PROMPTS[i % len(PROMPTS)], negative_prompt="", width=SIZE, height=SIZE,
                             steps=30, guidance=7.0, seed=1000 + i)


def render_once(i: int) -> float:
    gen = LocalGenerator()  # a fresh generator: nothing cached
    started = time.perf_counter()
    status = gen.poll(gen.submit(_request(i)))
    elapsed = time.perf_counter() - started
    assert status.state == "succeeded" and status.image_bytes
    return elapsed


def encode_once(rng: np.random.Generator) -> float:
    img = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
    started = time.perf_counter()
    img.save(io.BytesIO(), format="PNG")
    return time.perf_counter() - started


def traced_peak_mb() -> float:
    tracemalloc.start()
    render_once(len(PROMPTS) + 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    render_once(0)
    encode_once(rng)  # warm-up: imports, font loading, allocator
    # Interleave the two so that both see the same machine conditions.
    renders, encodes = [], []
    for i in range(args.runs):
        renders.append(render_once(i))
        encodes.append(encode_once(rng))
    render_s, encode_s = statistics.median(renders), statistics.median(encodes)
    ratio = render_s / encode_s
    traced_mb = traced_peak_mb()

    print(f"LocalGenerator 1024x1024 render (median of {args.runs}): {render_s * 1000:8.1f} ms")
    print(f"Pillow PNG encode of 1024x1024 random RGB (median of {args.runs}): {encode_s * 1000:8.1f} ms")
    print(f"render / encode ratio: {ratio:.2f}  (target <= {RATIO_TARGET:g}: "
          f"{'met' if ratio <= RATIO_TARGET else 'NOT met'})")
    print(f"peak traced memory of one render (tracemalloc): {traced_mb:.1f} MB  (target < {PEAK_TARGET_MB:g} MB: "
          f"{'met' if traced_mb < PEAK_TARGET_MB else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
