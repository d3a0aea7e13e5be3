"""The paper's AV-MNIST experiment (§4, Table 1 rows, Fig. 2 / 9): three modalities, image + audio + text.

Trains the encoders of Appendix A.2 from scratch (image: CNN with 32 and 64 filters, ReLU, max pooling
and an MLP; audio: CNN with 16, 32 and 64 filters on the log-Mel spectrogram and an MLP; text: a bag of
word embeddings and an MLP) once per loss in ``runs`` (default CLIP (LT), CLIP (FT), Ours), from the same
seed and initialisation, and scores the held-out pairs with modgap.evaluate (the evaluation operators in
C++): gap (eq. 2) per modality pair, Cos TP (eq. 3), V-measure of k-means on the union of the three
modalities (k = 10) and kNN accuracy. The contrastive term is InfoNCE averaged over the modality pairs;
Ours adds lambda1 * L_ATP + lambda2 * L_CU (eq. 21) from torch.ops.modgap over the three modalities.

Data: ``data=av_digits`` (default) needs no download (scikit-learn's digits + digits spoken by espeak-ng);
``data=av_mnist data.mnist_root=... data.audio_mnist_root=...`` runs on MNIST + AudioMNIST. See
scripts/av_mnist_data.py for the pairing protocol (ours: the paper's code is not released).

"TV R@1" and "TA R@1" (Table 1): with one text per class (the digit's name, as the paper), cross-modal
retrieval of the text is zero-shot classification: every held-out image (audio clip) retrieves among the
ten class texts, and R@1 is the fraction whose top text is its digit. The paper does not state its
retrieval protocol; instance-level R@K of every pair is in the JSON too.

    .venv/bin/python scripts/av_mnist.py [epochs=10 runs=[ours] loss.lambda2=0.5 embed_dim=3 ...]

Writes <data.root>/av_mnist_results.json, table1.md, embeddings_<run>.pt and plots/ (PCA per run, Fig. 2;
gap and V-measure over training; with embed_dim=3, the embeddings on the sphere, Fig. 9).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import modgap  # noqa: E402
from modgap.patches import check_loss_config  # noqa: E402
from av_mnist_data import WORDS, TEMPLATES, caption_texts, load_splits, pair_audio  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TITLES = {"clip_lt": "CLIP (LT)", "clip_ft": "CLIP (FT)", "ours": "Ours", "ours_no_infonce": "Ours w/o InfoNCE",
          "notagap": "NotAGap",
          "atp_uniformity": "ATP + uniformity"}
# Table 1, AV-MNIST (3 modal), as printed: gap, TV R@1, TA R@1, V-measure, kNN.
PAPER_TABLE1 = {"clip_lt": (0.20, 87.1, 84.2, 77.6, 87.0), "clip_ft": (0.24, 84.1, 80.4, 73.8, 85.0),
                "ours": (0.09, 88.7, 89.1, 82.7, 89.2)}
MODALITIES = ("image", "audio", "text")


def log(message: str) -> None:
    print(f"[av_mnist] {message}", flush=True)


# ---------------------------------------------------------------------------------------------------
# encoders (Appendix A.2); every encoder ends in an MLP to the shared space and L2-normalises
# ---------------------------------------------------------------------------------------------------
class ImageEncoder(torch.nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten())
        self.mlp = torch.nn.Sequential(torch.nn.Linear(64 * 7 * 7, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(self.features(x)), dim=-1)


class AudioEncoder(torch.nn.Module):
    def __init__(self, dim: int, hidden: int, n_mels: int, frames: int) -> None:
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten())
        flat = 64 * (n_mels // 8) * (frames // 8)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(flat, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(self.features(x)), dim=-1)


class TextEncoder(torch.nn.Module):
    def __init__(self, vocab: Dict[str, int], dim: int, hidden: int) -> None:
        super().__init__()
        self.vocab = vocab
        self.embed = torch.nn.EmbeddingBag(len(vocab), 64, mode="mean")
        self.mlp = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim))

    def forward(self, captions: List[str]) -> torch.Tensor:
        tokens = [torch.tensor([self.vocab[w] for w in c.split()]) for c in captions]
        offsets = torch.tensor([0] + [len(t) for t in tokens[:-1]]).cumsum(0)
        device = self.embed.weight.device
        return F.normalize(self.mlp(self.embed(torch.cat(tokens).to(device), offsets.to(device))), dim=-1)


def build_encoders(cfg: dict, spectrogram_shape) -> torch.nn.ModuleDict:
    texts, _ = caption_texts(cfg["data"])
    vocab = {w: i for i, w in enumerate(sorted({w for t in texts + WORDS for w in t.split()}))}
    torch.manual_seed(int(cfg["seed"]))  # the same initialisation for every run
    return torch.nn.ModuleDict({
        "image": ImageEncoder(int(cfg["embed_dim"]), int(cfg["hidden_dim"])),
        "audio": AudioEncoder(int(cfg["embed_dim"]), int(cfg["hidden_dim"]), *spectrogram_shape),
        "text": TextEncoder(vocab, int(cfg["embed_dim"]), int(cfg["hidden_dim"]))})


# ---------------------------------------------------------------------------------------------------
def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of one modality pair (CLIP's loss, OpenCLIP's ClipLoss)."""
    logits = scale * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def contrastive_loss(z: List[torch.Tensor], scale: torch.Tensor, pairs: str, anchor: int) -> torch.Tensor:
    """InfoNCE over the modality pairs: every pair (``all``) or the anchor against each other modality."""
    if pairs == "all":
        chosen = [(m, n) for m in range(len(z)) for n in range(m + 1, len(z))]
    elif pairs == "anchor":
        chosen = [(anchor, n) for n in range(len(z)) if n != anchor]
    else:
        raise ValueError(f"clip_pairs: expected 'all' or 'anchor', got {pairs!r}")
    return torch.stack([info_nce(z[m], z[n], scale) for m, n in chosen]).mean()


def captions_for(labels: torch.Tensor, cfg: dict, generator: torch.Generator) -> List[str]:
    if cfg["data"].get("captions", "name") == "name":
        return [WORDS[int(y)] for y in labels]
    choice = torch.randint(len(TEMPLATES), (len(labels),), generator=generator)
    return [TEMPLATES[int(c)].format(w=WORDS[int(y)], d=int(y)) for c, y in zip(choice, labels)]


class Standardise:
    """Scalar mean / std of the training split, applied to every split (images and spectrograms)."""

    def __init__(self, train: torch.Tensor) -> None:
        self.mean, self.std = float(train.mean()), float(train.std())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


@torch.no_grad()
def embed_split(encoders, split, audio_index, captions, image_norm, audio_norm) -> Dict[str, torch.Tensor]:
    was_training = encoders.training
    encoders.eval()
    out = {"image": encoders["image"](image_norm(split.images)),
           "audio": encoders["audio"](audio_norm(split.audio.spectrograms[audio_index][:, None])),
           "text": encoders["text"](captions)}
    out = {name: z.float().cpu() for name, z in out.items()}  # evaluation runs on the CPU
    encoders.train(was_training)
    return out


def evaluate_split(cfg: dict, encoders, embeddings, labels, per_epoch: bool = False) -> dict:
    """The held-out scores; ``per_epoch`` skips what the training history does not log (Fill the Gap,
    the linear probe and separability)."""
    ev = cfg["eval"]
    per_epoch_options = {"fill_gap_k": 0, "probe_max_iter": 0} if per_epoch else {}
    result = modgap.evaluate(embeddings, labels, **modgap.evaluation_options(ev, ignore=("repeats",),
                                                                             **per_epoch_options))
    with torch.no_grad():
        was_training = encoders.training
        encoders.eval()
        class_texts = encoders["text"](list(WORDS)).float().cpu()
        encoders.train(was_training)
    # Table 1's TV / TA R@1: each image (audio clip) retrieves among the ten class texts (zero-shot).
    result["class_text_retrieval"] = {
        f"{m}->class text": {f"R@{k}": float(r) for k, r in zip((1, 5), modgap.retrieval_recall(
            embeddings[m], class_texts, labels, [1, 5]).tolist())} for m in ("image", "audio")}
    pairs = result["pairs"].values()
    result["mean_over_pairs"] = {"gap": float(np.mean([p["gap"] for p in pairs])),
                                 "cos_tp_mean": float(np.mean([p["cos_tp_mean"] for p in pairs]))}
    return result


def repeated_evaluation(cfg: dict, embeddings, labels) -> dict:
    """Table 7's protocol, "each experiment is conducted 5 times": the split- and k-means-dependent scores
    over seeds eval.seed .. eval.seed + repeats - 1, as mean and sample standard deviation (ddof 1)."""
    ev = cfg["eval"]
    seeds = [int(ev["seed"]) + r for r in range(int(ev.get("repeats", 1)))]
    runs = [modgap.evaluate(embeddings, labels, **modgap.evaluation_options(ev, ignore=("repeats",), ks=(1,), seed=s,
                                                                            fill_gap_k=0)) for s in seeds]

    def spread(values):
        values = np.asarray(values, dtype=np.float64)
        return {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}

    names = list(embeddings) + ["joint"]
    return {"seeds": seeds,
            "knn": {m: spread([r["knn"]["accuracy"][m] for r in runs]) for m in names},
            "linear_probe": {m: spread([r["linear_probe"]["accuracy"][m] for r in runs]) for m in names},
            "v_measure": spread([r["clustering"]["v_measure"] for r in runs]),
            "linear_separability": {p: spread([r["pairs"][p]["linear_separability"] for r in runs]) for p in runs[0]["pairs"]}}


def train_run(cfg: dict, run: str, splits, image_norm, audio_norm, test_index, test_captions):
    loss_cfg = cfg["loss"]
    device = splits["train"].images.device
    encoders = build_encoders(cfg, tuple(splits["train"].audio.spectrograms.shape[1:])).to(device)
    log_scale = torch.nn.Parameter(torch.tensor(float(np.log(1.0 / float(loss_cfg["temperature"]))), device=device),
                                   requires_grad=bool(loss_cfg["learnable_temperature"]))
    params = list(encoders.parameters()) + ([log_scale] if loss_cfg["learnable_temperature"] else [])
    optimiser = torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg["wd"]))
    lambda1, lambda2 = float(loss_cfg.get("lambda1", 0.0)), float(loss_cfg.get("lambda2", 0.0))
    anchor = int(loss_cfg.get("anchor", 0))
    gap_loss = modgap.nn.GapLoss(lambda1, lambda2, float(loss_cfg.get("t", 2.0)), anchor,
                                 bool(loss_cfg.get("normalize", True))) if lambda1 or lambda2 else None
    train = splits["train"]
    history = []
    batch = int(cfg["batch_size"])
    for epoch in range(1, int(cfg["epochs"]) + 1):
        started = time.time()
        generator = torch.Generator().manual_seed(int(cfg["seed"]) * 100003 + epoch)
        audio_index = pair_audio(train.labels, train.audio, generator)  # a new spoken digit each epoch
        order = torch.randperm(len(train.labels), generator=generator)
        totals = {"loss": 0.0, "clip": 0.0, "gap_terms": 0.0}
        steps = 0
        for start in range(0, len(order) - batch + 1 if len(order) >= batch else 1, batch):  # drop the last partial batch
            rows = order[start:start + batch]
            z = [encoders["image"](image_norm(train.images[rows])),
                 encoders["audio"](audio_norm(train.audio.spectrograms[audio_index[rows]][:, None])),
                 encoders["text"](captions_for(train.labels[rows], cfg, generator))]
            scale = log_scale.exp().clamp(max=100.0)  # OpenCLIP clamps the logit scale at 100
            clip = float(loss_cfg.get("contrastive", 1.0)) * contrastive_loss(z, scale, cfg["clip_pairs"], anchor)
            extra = gap_loss(z) if gap_loss is not None else torch.zeros((), device=device)
            loss = clip + extra
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            totals["loss"] += loss.item()
            totals["clip"] += clip.item()
            totals["gap_terms"] += extra.item()
            steps += 1
        embeddings = embed_split(encoders, splits["test"], test_index, test_captions, image_norm, audio_norm)
        ev = evaluate_split(cfg, encoders, embeddings, splits["test"].labels, per_epoch=True)
        entry = {"epoch": epoch, **{k: v / max(steps, 1) for k, v in totals.items()},
                 "temperature": float(1.0 / log_scale.detach().exp().clamp(max=100.0)), "gap": ev["mean_over_pairs"]["gap"],
                 "cos_tp": ev["mean_over_pairs"]["cos_tp_mean"], "v_measure": ev["clustering"]["v_measure"],
                 "knn": ev["knn"]["accuracy"]["joint"], "seconds": time.time() - started}
        history.append(entry)
        log(f"{TITLES.get(run, run)} epoch {epoch}: loss {entry['loss']:.3f} (clip {entry['clip']:.3f}, gap terms "
            f"{entry['gap_terms']:+.3f}), held-out gap {entry['gap']:.3f}, Cos TP {entry['cos_tp']:.3f}, V-measure "
            f"{entry['v_measure']:.3f}, kNN {entry['knn']:.3f} ({entry['seconds']:.1f}s)")
    return encoders, history


def plots(results: dict, labels: torch.Tensor, out: Path) -> List[Path]:
    from training_plots import pca_scatter, sphere_scatter, training_curves
    panels = {run: ({m: r["embeddings"][m] for m in MODALITIES},
                    f"{TITLES.get(run, run)}: gap {r['evaluation']['mean_over_pairs']['gap']:.2f}, "
                    f"V-measure {r['evaluation']['clustering']['v_measure']:.2f}") for run, r in results.items()}
    curves = {TITLES.get(run, run): ([h["epoch"] for h in r["history"]], [h["gap"] for h in r["history"]],
                                     [h["v_measure"] for h in r["history"]]) for run, r in results.items()}
    # the text modality has ten distinct points (one text per class): drawn large, outlined, on top
    return [pca_scatter(panels, labels, out / "pca_embeddings.png", "Held-out AV-MNIST triples, PCA of the three "
                        "modalities (colour = digit; s image, ^ audio, o text)", "s^o", large=("text",)),
            training_curves(curves, out / "gap_vmeasure_training.png", gap_label="gap (eq. 2), mean over pairs")] + (
        # 3-dimensional embeddings (embed_dim=3) are drawn on the sphere itself: Fig. 9's semantic stripes
        [sphere_scatter(panels, labels, out / "sphere_embeddings.png", "Held-out AV-MNIST triples on the sphere "
                        "(colour = digit; s image, ^ audio, o text)", "s^o", large=("text",))]
        if next(iter(results.values()))["embeddings"]["image"].shape[1] == 3 else [])


def table(results: dict, n_test: int, cfg: dict) -> str:
    header = "| Method | Gap ↓ | TV R@1 | TA R@1 | V-Measure | kNN | paper (Gap, TV, TA, V, kNN) |"
    lines = [f"AV-MNIST ({cfg['data']['name']}, {n_test} held-out triples, {cfg['epochs']} epochs, seed {cfg['seed']}, "
             f"d = {cfg['embed_dim']}): gap = mean of the three modality pairs' gaps; TV / TA R@1 = image / audio "
             "-> the ten class texts; V-Measure = k-means (k = 10) on the union of the three modalities; "
             "kNN = joint accuracy on a seeded 80/20 split of the held-out triples.", "", header,
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for run, r in results.items():
        e = r["evaluation"]
        paper = PAPER_TABLE1.get(run)
        lines.append(f"| {TITLES.get(run, run)} | {e['mean_over_pairs']['gap']:.3f} "
                     f"| {100 * e['class_text_retrieval']['image->class text']['R@1']:.1f} "
                     f"| {100 * e['class_text_retrieval']['audio->class text']['R@1']:.1f} "
                     f"| {100 * e['clustering']['v_measure']:.1f} | {100 * e['knn']['accuracy']['joint']:.1f} "
                     f"| {', '.join(str(v) for v in paper) if paper else '-'} |")
    lines += ["", "| Method | " + " | ".join(f"gap {p}" for p in results[next(iter(results))]["evaluation"]["pairs"])
              + " | " + " | ".join(f"Cos TP {p}" for p in results[next(iter(results))]["evaluation"]["pairs"]) + " |",
              "| --- |" + " --- |" * (2 * len(results[next(iter(results))]["evaluation"]["pairs"]))]
    for run, r in results.items():
        pairs = r["evaluation"]["pairs"]
        lines.append(f"| {TITLES.get(run, run)} | " + " | ".join(f"{p['gap']:.3f}" for p in pairs.values()) + " | "
                     + " | ".join(f"{p['cos_tp_mean']:.3f}" for p in pairs.values()) + " |")
    first = results[next(iter(results))]["evaluation"]
    names = [m for m in MODALITIES if m in first["knn"]["accuracy"]]
    repeated = "repeated" in first
    how = (f"mean ± std over {len(first['repeated']['seeds'])} seeded 80/20 splits of the held-out triples"
           if repeated else "one seeded 80/20 split of the held-out triples")
    lines += ["", f"Intra-modal expressiveness (Table 7 style): kNN / linear-probe accuracy per modality (%), {how}; "
              "linear separability per pair (0.5: modalities inseparable).", "",
              "| Method | " + " | ".join(f"{m} kNN | {m} probe" for m in names) + " | "
              + " | ".join(f"separability {p}" for p in first["pairs"]) + " |",
              "| --- |" + " --- |" * (2 * len(names) + len(first["pairs"]))]

    def cell(e, family, name, scale=100.0, digits=1):
        if "repeated" in e:
            stat = e["repeated"][family][name]
            return f"{scale * stat['mean']:.{digits}f} ± {scale * stat['std']:.{digits}f}"
        value = e["pairs"][name]["linear_separability"] if family == "linear_separability" else e[family]["accuracy"][name]
        return f"{scale * value:.{digits}f}"

    for run, r in results.items():
        e = r["evaluation"]
        lines.append(f"| {TITLES.get(run, run)} | " + " | ".join(
            f"{cell(e, 'knn', m)} | {cell(e, 'linear_probe', m)}" for m in names) + " | "
            + " | ".join(cell(e, "linear_separability", p, 1.0, 3) for p in e["pairs"]) + " |")
    return "\n".join(lines) + "\n"


def main(overrides: List[str]) -> dict:
    started = time.time()
    base = modgap.config.compose(ROOT / "configs", "av_mnist", overrides)
    if int(base["threads"]) > 0:
        torch.set_num_threads(int(base["threads"]))
    runs = list(base["runs"])
    unknown = [r for r in runs if not (ROOT / "configs" / "loss" / f"{r}.yaml").is_file()]
    if not runs or unknown:
        raise ValueError(f"runs: expected a non-empty list of loss options from configs/loss/, got {runs}"
                         + (f" ({unknown} not found)" if unknown else ""))
    configs = {run: modgap.config.compose(ROOT / "configs", "av_mnist", overrides + [f"loss={run}"]) for run in runs}
    for run, cfg in configs.items():  # refuse before any training starts
        # it trains contrastive * InfoNCE + lambda1 L_ATP + lambda2 L_CU (clip_lt, clip_ft, ours, ours_no_infonce)
        check_loss_config(cfg["loss"], "scripts/av_mnist.py", ("lambda1", "lambda2", "anchor", "normalize", "contrastive"))
    out = Path(base["data"]["root"])
    if not out.is_absolute():
        out = ROOT / out
    out.mkdir(parents=True, exist_ok=True)
    base["data"]["root"] = str(out)
    log(f"modgap {modgap.__version__}; configs/av_mnist.yaml {' '.join(overrides)}: data {base['data']['name']}, "
        f"runs {runs}, {base['epochs']} epochs, batch {base['batch_size']}, lr {base['lr']}, d {base['embed_dim']}")
    splits = load_splits(base["data"], int(base["seed"]))
    for name, s in splits.items():
        log(f"{name}: {len(s.labels)} images, {len(s.audio.digits)} clips by {len(set(s.audio.speakers.tolist()))} "
            f"speakers, spectrograms {tuple(s.audio.spectrograms.shape[1:])}")
    device = torch.device("cuda" if base["device"] == "auto" and torch.cuda.is_available() else
                          "cpu" if base["device"] == "auto" else base["device"])
    for split in splits.values():  # the pixels and spectrograms live on the training device; labels stay on the CPU
        split.images = split.images.to(device)
        split.audio.spectrograms = split.audio.spectrograms.to(device)
    log(f"training on {device}")
    image_norm = Standardise(splits["train"].images)
    audio_norm = Standardise(splits["train"].audio.spectrograms)
    test_generator = torch.Generator().manual_seed(int(base["seed"]) + 7)
    test_index = pair_audio(splits["test"].labels, splits["test"].audio, test_generator)  # fixed test triples
    test_captions = captions_for(splits["test"].labels, base, test_generator)

    results = {}
    for run, cfg in configs.items():
        cfg["data"]["root"] = str(out)
        log(f"training {TITLES.get(run, run)} (loss={run}: {json.dumps(cfg['loss'])})")
        encoders, history = train_run(cfg, run, splits, image_norm, audio_norm, test_index, test_captions)
        embeddings = embed_split(encoders, splits["test"], test_index, test_captions, image_norm, audio_norm)
        evaluation = evaluate_split(cfg, encoders, embeddings, splits["test"].labels)
        if int(cfg["eval"].get("repeats", 1)) > 1:
            evaluation["repeated"] = repeated_evaluation(cfg, embeddings, splits["test"].labels)
        torch.save({"embeddings": embeddings, "labels": splits["test"].labels, "loss": cfg["loss"]},
                   out / f"embeddings_{run}.pt")
        results[run] = {"loss": cfg["loss"], "evaluation": evaluation, "history": history, "embeddings": embeddings}

    text = table(results, len(splits["test"].labels), base)
    print("\n" + text)
    (out / "table1.md").write_text(text)
    summary = {"config": base, "runs": {r: {k: v for k, v in res.items() if k != "embeddings"} for r, res in results.items()}}
    (out / "av_mnist_results.json").write_text(json.dumps(summary, indent=2))
    if base["plots"]:
        written = plots(results, splits["test"].labels, out / "plots")
        print(f"plots: {', '.join(str(p) for p in written)}")
    print(f"results: {out / 'av_mnist_results.json'}, {out / 'table1.md'}; total {time.time() - started:.0f}s")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
