"""Random calls of every public op with arguments that are often wrong (shapes, dtypes, NaN/Inf, empty,
out-of-range integers, unknown strings), for test_fuzz_errors.py. Run as a script in a child process so a
crash shows as a signal instead of killing the test session:

    python fuzz_calls.py SEED CALLS_PER_OP DEVICE      (DEVICE: cpu, meta or cuda)

Prints one JSON object: per op the number of calls that returned and that raised, every error that does not
come from modgap's own checks (its message does not name a modgap op), i.e. an unclear error, and the ops
whose returned result held a NaN (a silent wrong number: bad input must raise instead).
"""
from __future__ import annotations

import json
import random
import sys
import warnings

import torch

import modgap  # noqa: F401  (loads the operators)

ops = torch.ops.modgap
FLOATS = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


class Calls:
    def __init__(self, seed: int, device: str) -> None:
        self.rng = random.Random(seed)
        self.device = device

    def on_device(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device)

    def matrix(self, n=None, d=None, dtype=None) -> torch.Tensor:
        rng = self.rng
        n = rng.choice([0, 1, 2, 3, 7, 20]) if n is None else n
        d = rng.choice([0, 1, 3, 8]) if d is None else d
        if dtype is None:
            dtype = rng.choice(FLOATS * 2 + [torch.int64, torch.bool, torch.complex64])
        shape = rng.choice(["2d"] * 5 + ["1d", "3d", "transposed"])
        t = {"2d": lambda: torch.randn(n, d), "1d": lambda: torch.randn(n), "3d": lambda: torch.randn(n, d, 2),
             "transposed": lambda: torch.randn(d, n).t()}[shape]()
        if rng.random() < 0.1 and t.numel():
            t[(0,) * t.dim()] = rng.choice([float("nan"), float("inf"), -float("inf"), 1e30])
        if rng.random() < 0.15:
            t = torch.zeros_like(t)
        return self.on_device(t.to(dtype))

    def pair(self):
        """Two matrices that often agree in dtype and shape (so the calls get past the first check)."""
        rng = self.rng
        dtype = rng.choice(FLOATS)
        if rng.random() < 0.6:
            n, d = rng.choice([1, 2, 3, 7, 20]), rng.choice([1, 3, 8])
            return self.matrix(n, d, dtype), self.matrix(n, d, dtype)
        return self.matrix(dtype=dtype), self.matrix(dtype=dtype)

    def labels(self, n: int) -> torch.Tensor:
        kind = self.rng.choice(["ok"] * 4 + ["negative", "float", "2d", "wrong_length", "huge"])
        t = {"ok": lambda: torch.randint(0, 3, (n,)), "negative": lambda: torch.randint(-5, 3, (n,)),
             "float": lambda: torch.rand(n), "2d": lambda: torch.randint(0, 3, (n, 1)),
             "wrong_length": lambda: torch.randint(0, 3, (n + 1,)),
             "huge": lambda: torch.randint(0, 2 ** 62, (n,))}[kind]()
        return self.on_device(t)

    def rows(self, t: torch.Tensor) -> int:
        return t.shape[0] if t.dim() else 0

    def integer(self) -> int:
        return self.rng.choice([-1, 0, 1, 2, 3, 5, 10 ** 6, 2 ** 40])

    def real(self) -> float:
        return self.rng.choice([-1.0, 0.0, 1e-30, 0.5, 2.0, 30.0, 1e6, float("nan"), float("inf")])

    def ks(self):
        return self.rng.choice([[1], [1, 5], [0], [-1], [], [10 ** 6]])

    def table(self):
        r = self.rng

        def embeddings():
            if r.random() < 0.3:
                return [self.matrix() for _ in range(r.choice([0, 1, 2, 3]))]
            return list(self.pair())

        def with_labels(op):
            x, q = self.pair()
            return op(x, self.labels(self.rows(x)), q)

        return {
            "atp_loss": lambda: ops.atp_loss(embeddings(), self.integer()),
            "centroid_uniformity": lambda: ops.centroid_uniformity(embeddings(), self.real(), r.random() < 0.5),
            "cross_uniformity": lambda: ops.cross_uniformity(*self.pair(), self.real(), r.random() < 0.5),
            "gap_stats": lambda: ops.gap_stats(embeddings(), r.random() < 0.5),
            "fill_gap_stats": lambda: ops.fill_gap_stats(*self.pair(), self.integer()),
            "spectral_align": lambda: ops.spectral_align(*self.pair(), self.integer(),
                                                         r.choice(["clamp", "shift", "none", "bad"]),
                                                         r.choice([0, 1, 3, -1])),
            "shift_modalities": lambda: ops.shift_modalities(
                *self.pair(), self.real(),
                r.choice([None, self.matrix(1, 3), self.on_device(torch.randn(3)), self.on_device(torch.randn(8))])),
            "vmeasure": lambda: ops.vmeasure(self.labels(r.choice([0, 1, 5])), self.labels(r.choice([0, 1, 5])),
                                             self.real()),
            "kmeans": lambda: ops.kmeans(self.matrix(), self.integer(), r.choice([0, 1, 5, -1]), self.real(),
                                         r.choice([0, 1, 2, -1]), self.integer()),
            "knn_predict": lambda: with_labels(lambda x, y, q: ops.knn_predict(x, y, q, self.integer(),
                                                                               r.choice(["cosine", "euclidean", "bad"]))),
            "logistic_regression": lambda: (lambda x: ops.logistic_regression(
                x, self.labels(self.rows(x)), self.integer(), self.real(), r.choice([0, 1, 5, -1]), self.real()))(
                    self.matrix()),
            "linear_probe_predict": lambda: with_labels(lambda x, y, q: ops.linear_probe_predict(
                x, y, q, self.real(), r.choice([0, 1, 5, -1]), self.real())),
            "retrieval_recall": lambda: (lambda x, g: ops.retrieval_recall(x, g, self.labels(self.rows(x)), self.ks()))(
                *self.pair()),
            "retrieval_recall_any": lambda: (lambda x, g: ops.retrieval_recall_any(
                x, g, self.labels(self.rows(g)), self.ks()))(*self.pair()),
            "emd": lambda: ops.emd(
                self.on_device(r.choice([torch.empty(0), torch.rand(3), torch.rand(3).double(), -torch.rand(3).double()])),
                self.on_device(r.choice([torch.empty(0), torch.rand(4).double(), torch.rand(3).double()])),
                self.matrix(3, 4, r.choice([torch.float64, torch.float32])), r.choice([0, 1, 100000])),
            "emd_laplace": lambda: ops.emd_laplace(*self.pair(), self.real(), self.real(), self.integer() % 7 - 1,
                                                   r.choice(["pos", "disp", "bad"]), r.choice([0, 1, 5]), 1e-9,
                                                   100000, 1e-9),
            "ot_map_new_points": lambda: ops.ot_map_new_points(*self.pair(), self.matrix()),
        }


def flatten(result):
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (list, tuple)):
        return [t for item in result for t in flatten(item)]
    return []


def has_nan(t: torch.Tensor) -> bool:
    return t.is_floating_point() and bool(torch.isnan(t).any())


def main() -> None:
    seed, per_op, device = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    warnings.simplefilter("ignore")  # emd's "stopped after max_iter pivots" on max_iter = 1
    torch.manual_seed(seed)
    calls = Calls(seed, device)
    report = {"returned": {}, "raised": {}, "unclear": [], "nan_results": []}
    for name, call in calls.table().items():
        returned = raised = 0
        for _ in range(per_op):
            try:
                result = call()
                returned += 1
                if device != "meta" and any(has_nan(t) for t in flatten(result)):
                    report["nan_results"].append(name)
            except (ValueError, TypeError, RuntimeError, IndexError, NotImplementedError) as error:
                raised += 1
                message = str(error).splitlines()[0] if str(error) else ""
                if "modgap" not in message:
                    report["unclear"].append([name, type(error).__name__, message[:300]])
            except Exception as error:  # noqa: BLE001  anything else is unclear by definition
                raised += 1
                report["unclear"].append([name, type(error).__name__, str(error)[:300]])
        report["returned"][name] = returned
        report["raised"][name] = raised
    print(json.dumps(report))


if __name__ == "__main__":
    main()
