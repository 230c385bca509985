#!/usr/bin/env python3
"""SGEMM peer of `mode bench`: float32 matrix products through PyTorch's CPU BLAS (MKL in the official wheels).

For each shape MxNxK:XY (X, Y = N or T: op(A) is M x K, stored [K,M] when X is T; op(B) is K x N, stored [N,K]
when Y is T) it times torch.mm into a preallocated output: warm-up calls, then calls for --seconds, and
reports the median time and GFLOP/s (2*M*N*K per call). Prints one JSON object on stdout.

    python3 benchmarks/peers/torch_gemm.py --threads 2 2048x688x256:NT 688x256x2048:TN
"""
import argparse
import json
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shapes", nargs="+", help="MxNxK:XY, e.g. 2048x688x256:NT")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--warmup-seconds", type=float, default=0.5)
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per shape")
    p.add_argument("--min-runs", type=int, default=5)
    return p.parse_args()


def parse_shape(s):
    try:
        dims, ops = s.split(":")
        m, n, k = (int(x) for x in dims.split("x"))
        if len(ops) != 2 or any(o not in "NT" for o in ops) or min(m, n, k) < 1:
            raise ValueError
        return m, n, k, ops[0] == "T", ops[1] == "T"
    except ValueError:
        sys.exit(f"torch_gemm.py: '{s}' is not MxNxK:XY with X, Y in N, T and positive sizes")


def main():
    args = parse_args()
    shapes = [(s, parse_shape(s)) for s in args.shapes]
    import torch

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    results = {}
    for s, (m, n, k, ta, tb) in shapes:
        a = torch.rand((k, m) if ta else (m, k), generator=gen) - 0.5
        b = torch.rand((n, k) if tb else (k, n), generator=gen) - 0.5
        op_a, op_b = (a.t() if ta else a), (b.t() if tb else b)   # views: the BLAS call sees the transposes
        c = torch.empty(m, n)
        end = time.perf_counter() + args.warmup_seconds
        while time.perf_counter() < end:
            torch.mm(op_a, op_b, out=c)
        samples = []
        end = time.perf_counter() + args.seconds
        while time.perf_counter() < end or len(samples) < args.min_runs:
            t0 = time.perf_counter()
            torch.mm(op_a, op_b, out=c)
            samples.append(time.perf_counter() - t0)
        med = statistics.median(samples)
        results[s] = {"median_seconds": med, "gflops": 2.0 * m * n * k / med / 1e9, "runs": len(samples)}
    print(json.dumps({
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "results": results,
    }))


if __name__ == "__main__":
    main()
