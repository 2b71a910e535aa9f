"""Vendi score: the dual form (eigenvalues of XᵀX/n, d×d) against the O(n²) kernel form, then the
dual alone at scale.

    .venv/bin/python benchmarks/bench_vendi.py                        # 2k check + dual at 20k×384
    .venv/bin/python benchmarks/bench_vendi.py --large 100000         # the acceptance size

The two forms must agree to 1e-6 on 2k documents (q = 1 and q = 2). Vectors are 384-d topic
mixtures (as MiniLM's), unit-normalised; the dual reads float64 copies, as the metric does.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from synthdiv.metrics.embedding import unit_rows, vendi_dual, vendi_kernel

TOLERANCE = 1e-6


def topic_vectors(n: int, dim: int = 384, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((100, dim))
    x = topics[rng.integers(0, 100, n)] + 0.7 * rng.standard_normal((n, dim))
    return unit_rows(x.astype(np.float32))


def timed(fn, *args) -> tuple[float, float, float]:
    tracemalloc.start()
    started = time.perf_counter()
    value = fn(*args)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return value, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", type=int, default=2_000, help="documents for the dual-vs-kernel check"
    )
    parser.add_argument("--large", type=int, default=20_000, help="documents for the dual-only run")
    args = parser.parse_args()

    x = topic_vectors(args.check)
    worst = 0.0
    for q in (1, 2):
        dual, t_dual, m_dual = timed(vendi_dual, x, q)
        kernel, t_kernel, m_kernel = timed(vendi_kernel, x, q)
        worst = max(worst, abs(dual - kernel))
        print(
            f"n={args.check} q={q}: dual {dual:.9f} ({t_dual:.3f}s, {m_dual:.0f} MiB)  "
            f"kernel {kernel:.9f} ({t_kernel:.3f}s, {m_kernel:.0f} "
            f"MiB)  |diff| {abs(dual - kernel):.2e}"
        )
    print(
        f"agreement within {TOLERANCE:g}: "
        f"{'ok' if worst <= TOLERANCE else 'FAILED'} (max |diff| {worst:.2e})"
    )

    big = topic_vectors(args.large, seed=1)
    value, seconds, peak = timed(vendi_dual, big, 1)
    print(
        f"dual at {args.large}x{big.shape[1]}: {value:.4f} in {seconds:.3f}s, peak {peak:.0f} MiB "
        f"(the kernel form would need {args.large**2 * 8 / 2**30:.1f} GiB for K alone)"
    )


if __name__ == "__main__":
    main()
