"""PyTorch's side of `cargo run --release --example matmul_layouts`: GFLOP/s
of the same products (the fine-tune's linear layers at 1,024 tokens, forward
x·wᵀ, dx = g·w, dw = gᵀ·x) on the same number of threads, so the two f32
matrix-product libraries can be compared on one machine.

    ~/.cache/slm-vs-llm/venv-bench/bin/python benches/python/matmul_layouts.py [THREADS]
"""
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)


def seconds(f):
    for _ in range(3):
        f()
    start = time.perf_counter()
    for _ in range(20):
        f()
    return (time.perf_counter() - start) / 20


tokens = 1024
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS: "
      f"{'MKL' if torch.backends.mkl.is_available() else 'other'}")
print("layer (in -> out): forward x·wᵀ | dx = g·w | dw = gᵀ·x, GFLOP/s")
with torch.inference_mode():
    for name, inp, out in [("qkv", 576, 960), ("o", 576, 576), ("gate_up", 576, 3072), ("down", 1536, 576)]:
        x, g, w = torch.randn(tokens, inp), torch.randn(tokens, out), torch.randn(out, inp)
        gflop = 2 * tokens * inp * out / 1e9
        forward = seconds(lambda: x @ w.t())
        dx = seconds(lambda: g @ w)
        dw = seconds(lambda: g.t() @ x)
        print(f"{name} ({inp} -> {out}): {gflop / forward:.0f} | {gflop / dx:.0f} | {gflop / dw:.0f}")
