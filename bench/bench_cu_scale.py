"""centroid_uniformity at CLIP scale (the scale-out issue's benchmark), for the GPU machine.

For every N, D and precision, each in a fresh subprocess (so an OOM is reported, not fatal):
  * forward+backward time (median) and peak extra memory of
      modgap      torch.ops.modgap.centroid_uniformity (tiled, never N x N)
      matmul_lse  a careful PyTorch version: G = u u^T, logsumexp of -t(2 - 2G) over the upper triangle
      seed        the authors' reference: torch.pdist(...).pow(2).mul(-t).exp().mean().log()
  * the ratios reference / modgap, measured in the same run;
  * the matrix-multiply floor: the time of one N x N x D product in that precision (measured as N/8192
    products of [N, D] x [D, 8192], so it fits in memory), times 1.5 (the op's multiply-adds per
    forward+backward), and the achieved fraction floor / modgap time;
  * the deviation of modgap's value from a float64 run of the same op on the same data.
Precisions: fp32 (full fp32 GEMMs), tf32 (torch.backends.cuda.matmul.allow_tf32 = True), bf16 (inputs
in bfloat16). Writes JSON and a markdown table (--out, default bench/results/gpu_centroid_uniformity).
With --vit-overhead it also times one training step of an OpenCLIP ViT-B/32 (random init) at batch 4096
with bf16 autocast, with and without lambda1 ATP + lambda2 CU, and reports the overhead.

  python bench/bench_cu_scale.py --device cuda [--sizes 4096 16384 32768 65536 262144] [--dims 512 1024]
  python bench/bench_cu_scale.py --device cpu --sizes 512 1024 --dims 64 --precisions fp32   # smoke run
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

T = 2.0


def _inputs(n: int, d: int, precision: str, device: str, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    z = [F.normalize(torch.randn(n, d, generator=generator), dim=-1).to(device=device, dtype=dtype) for _ in range(2)]
    return [x.requires_grad_(True) for x in z]


def _modgap(z):
    import modgap
    return modgap.centroid_uniformity(z, T)


def _matmul_lse(z):
    u = F.normalize((z[0] + z[1]) / 2, dim=-1)
    n = u.shape[0]
    logits = (-T) * (2 - 2 * (u @ u.T)).clamp_min(0)
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=u.device), 1)
    return torch.logsumexp(logits[upper], 0) - math.log(n * (n - 1) / 2)


def _seed(z):
    u = F.normalize((z[0] + z[1]) / 2, dim=-1)
    if u.dtype == torch.bfloat16:
        u = u.float()  # torch.pdist has no bfloat16 kernel; the reference runs in float32 then
    return torch.pdist(u, p=2).pow(2).mul(-T).exp().mean().log()


IMPLEMENTATIONS = {"modgap": _modgap, "matmul_lse": _matmul_lse, "seed": _seed}


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def worker(impl: str, n: int, d: int, precision: str, device: str, repeats: int) -> dict:
    import modgap  # noqa: F401  (loaded before measuring memory)
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    z = _inputs(n, d, precision, device)
    fn = IMPLEMENTATIONS[impl]

    def step():
        for x in z:
            x.grad = None
        loss = fn(z)
        loss.backward()
        return loss

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    loss = step()
    _sync(device)
    extra = (torch.cuda.max_memory_allocated() - base) if device == "cuda" else float("nan")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        _sync(device)
        times.append(time.perf_counter() - start)
    out = {"impl": impl, "n": n, "d": d, "precision": precision, "ms": 1e3 * statistics.median(times),
           "peak_extra_mib": extra / 2**20, "value": float(loss)}
    if impl == "modgap":
        # Accuracy against float64, and the matrix-multiply floor in this precision.
        z64 = [x.detach().double() for x in z]
        out["value_fp64"] = float(_modgap(z64))
        a = z[0].detach()
        b = torch.randn(8192, d, device=device, dtype=a.dtype)
        a.mm(b.T)
        _sync(device)
        start = time.perf_counter()
        for _ in range(3):
            a.mm(b.T)
        _sync(device)
        gemm = (time.perf_counter() - start) / 3 * (n / 8192)
        out["gemm_nnd_ms"] = 1e3 * gemm
        out["floor_ms"] = 1.5e3 * gemm
    return out


def run(impl, n, d, precision, device, repeats, timeout=None):
    cmd = [sys.executable, __file__, "--worker", impl, str(n), str(d), precision, device, str(repeats)]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"impl": impl, "n": n, "d": d, "precision": precision, "error": f"timeout ({timeout:.0f} s)"}
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["killed"])[-1]
        return {"impl": impl, "n": n, "d": d, "precision": precision,
                "error": "OOM" if "out of memory" in result.stderr.lower() else tail}
    return json.loads(result.stdout.strip().splitlines()[-1])


def vit_overhead(device: str, batch: int, repeats: int) -> dict:
    """One AdamW step of an OpenCLIP ViT-B/32 (random init, bf16 autocast) with and without the two gap
    terms. Batch 4096 does not fit an 80 GB H100 with every activation kept (seen 2026-11-23: OOM), so on
    OOM the step is retried with OpenCLIP's gradient checkpointing, then at half the batch; the result
    says which configuration ran."""
    import open_clip
    import modgap
    attempts = [(batch, False), (batch, True)]
    b = batch // 2
    while b >= 512:
        attempts.append((b, True))
        b //= 2
    failures = []
    for size, checkpointing in attempts:
        try:
            result = _vit_step_times(open_clip, modgap, device, size, checkpointing, repeats)
            result["oom_at"] = failures
            return result
        except torch.OutOfMemoryError:
            failures.append({"batch": size, "grad_checkpointing": checkpointing})
            torch.cuda.empty_cache()
    return {"batch": batch, "error": "OOM", "oom_at": failures}


def _vit_step_times(open_clip, modgap, device: str, batch: int, checkpointing: bool, repeats: int) -> dict:
    model = open_clip.create_model("ViT-B-32", output_dict=True).to(device)
    model.set_grad_checkpointing(checkpointing)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clip_loss = open_clip.ClipLoss()
    images = torch.randn(batch, 3, 224, 224, device=device)
    texts = torch.randint(0, 49408, (batch, 77), device=device)

    def step(with_terms: bool):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            out = model(images, texts)
            loss = clip_loss(out["image_features"], out["text_features"], out["logit_scale"])
        if with_terms:
            img, txt = out["image_features"].float(), out["text_features"].float()
            loss = loss + modgap.atp_loss([img, txt]) + modgap.centroid_uniformity([img, txt])
        loss.backward()
        optimizer.step()

    result = {"batch": batch, "grad_checkpointing": checkpointing}
    try:
        # Interleaved, so clock or thermal drift hits both configurations alike.
        times = {False: [], True: []}
        for flag in (False, True):
            step(flag)
        _sync(device)
        for _ in range(repeats):
            for flag in (False, True):
                start = time.perf_counter()
                step(flag)
                _sync(device)
                times[flag].append(time.perf_counter() - start)
    finally:
        del model, optimizer, images, texts
    result["clip_ms"] = 1e3 * statistics.median(times[False])
    result["clip_plus_gap_terms_ms"] = 1e3 * statistics.median(times[True])
    result["overhead_percent"] = 100 * (result["clip_plus_gap_terms_ms"] / result["clip_ms"] - 1)
    return result


def write_tables(result: dict, out: Path) -> list[str]:
    """JSON + markdown of what has been measured so far (written after every row, so a run cut off by a
    time limit still leaves its finished rows)."""
    rows = result["rows"]
    lines = [f"centroid_uniformity forward+backward on {result['device']}, torch {result['torch']}, t = {T}", "",
             "| N | D | precision | modgap ms | extra MiB | matmul+LSE ms (x) | seed ms (x) | floor ms | floor fraction | abs err vs fp64 |",
             "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in rows:
        ours = row.get("modgap", {})
        cell = lambda impl: (f"{row[impl]['ms']:.1f} ({row[impl + '_over_modgap']:.1f}x)" if "ms" in row.get(impl, {})
                             else row.get(impl, {}).get("error", "-"))  # noqa: E731
        if "ms" not in ours:
            lines.append(f"| {row['n']} | {row['d']} | {row['precision']} | {ours.get('error', '-')} | | | | | | |")
            continue
        lines.append(f"| {row['n']} | {row['d']} | {row['precision']} | {ours['ms']:.2f} | {ours['peak_extra_mib']:.0f} | "
                     f"{cell('matmul_lse')} | {cell('seed')} | {ours['floor_ms']:.2f} | {row['floor_fraction']:.2f} | "
                     f"{row['abs_error_vs_fp64']:.1e} |")
    if "vit_b32_step" in result:
        v = result["vit_b32_step"]
        lines += ["", f"ViT-B/32 training step, batch {v['batch']}"
                  f"{', gradient checkpointing' if v.get('grad_checkpointing') else ''}: " +
                  (v["error"] if "error" in v else
                   f"CLIP {v['clip_ms']:.1f} ms, CLIP + ATP + CU {v['clip_plus_gap_terms_ms']:.1f} ms "
                   f"({v['overhead_percent']:+.2f} %)") +
                  (f"; OOM first at {v['oom_at']}" if v.get("oom_at") else "")]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, n, d, precision, device, repeats = sys.argv[2:8]
        print(json.dumps(worker(impl, int(n), int(d), precision, device, int(repeats))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="*", default=[4096, 16384, 32768, 65536, 262144],
                        help="none: only --vit-overhead")
    parser.add_argument("--dims", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"])
    parser.add_argument("--impls", nargs="+", default=list(IMPLEMENTATIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-reference-n", type=int, default=65536, help="skip the references above this N")
    parser.add_argument("--max-seed-n", type=int, default=8192,
                        help="skip the seed reference above this N (torch.pdist's backward alone needs 32.8 GB "
                             "at N=4096, D=512)")
    parser.add_argument("--timeout", type=float, default=240, help="seconds per measurement process")
    parser.add_argument("--vit-overhead", action="store_true")
    parser.add_argument("--vit-batch", type=int, default=4096)
    parser.add_argument("--out", default="bench/results/gpu_centroid_uniformity")
    args = parser.parse_args()

    rows = []
    result = {"device": torch.cuda.get_device_name() if args.device == "cuda" and torch.cuda.is_available() else args.device,
              "torch": torch.__version__, "t": T, "rows": rows}
    for d in args.dims:
        for n in args.sizes:
            for precision in args.precisions:
                row = {"n": n, "d": d, "precision": precision}
                for impl in args.impls:
                    if impl != "modgap" and n > (args.max_seed_n if impl == "seed" else args.max_reference_n):
                        row[impl] = {"error": "skipped (N x N would not fit)"}
                        continue
                    row[impl] = run(impl, n, d, precision, args.device, args.repeats, args.timeout)
                ours = row.get("modgap", {})
                if "ms" in ours:
                    for impl in args.impls:
                        if impl != "modgap" and "ms" in row.get(impl, {}):
                            row[f"{impl}_over_modgap"] = row[impl]["ms"] / ours["ms"]
                    row["floor_fraction"] = ours["floor_ms"] / ours["ms"]
                    row["abs_error_vs_fp64"] = abs(ours["value"] - ours["value_fp64"])
                rows.append(row)
                print(json.dumps(row), flush=True)
                write_tables(result, Path(args.out))
    if args.vit_overhead:
        result["vit_b32_step"] = vit_overhead(args.device, args.vit_batch, args.repeats)
        print(json.dumps(result["vit_b32_step"]))

    lines = write_tables(result, Path(args.out))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
