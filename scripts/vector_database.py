"""The paper's Fig. 4: one vector database holding both modalities, queried with a caption and an image.

For each run of the main job (CLIP (LT) and Ours, their held-out embeddings with the image path and caption
of every row in <data.root>/embeddings_{clip_lt,ours}.pt), the images and the captions of the held-out pairs go into one
database, and every entry is a query for its k nearest entries (cosine similarity, the query itself left
out). The paper's point: with a gap, a caption's nearest entries are all captions (the space is organised
by modality); with the gap closed they mix images and captions of the same concept.

Prints per run the gap (eq. 2), the share of the other modality among the k nearest entries of caption
queries and of image queries (modgap.fill_gap_stats' neighbour counts; 50 % when the modalities are
fully mixed), and the share of the query's own digit among them; draws the k nearest entries of one
caption query and one image query per run (--query picks the held-out pair).

    .venv/bin/python scripts/vector_database.py                      # after bash scripts/main_job.sh
    .venv/bin/python scripts/vector_database.py --k 10 --query 5 data.root=build/digits
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

import torch
import torch.nn.functional as F

import modgap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gap_shift import load_embeddings  # noqa: E402
from openclip_digits import ROOT, RUNS  # noqa: E402

MODALITY_COLOURS = {"image": "tab:blue", "text": "tab:orange"}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """(image path, caption) of every row of an embeddings file, as the main job stores them beside the
    embeddings (val.tsv is no guide: a later run with another seed rewrites it)."""
    data = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(data, dict) or "images" not in data or "captions" not in data:
        raise SystemExit(f"{path} does not list the images and captions of its rows (written by an older main job: "
                         "run bash scripts/main_job.sh again)")
    return list(zip(data["images"], data["captions"]))


def nearest_entries(image: torch.Tensor, text: torch.Tensor, k: int) -> torch.Tensor:
    """[2N, k] indices into the database [images; captions] (entry i < N is image i, N + i caption i) of
    every entry's k most cosine-similar other entries, most similar first."""
    database = F.normalize(torch.cat([image, text]).double(), dim=1)
    similarity = database @ database.t()
    similarity.fill_diagonal_(-float("inf"))
    return similarity.topk(k, dim=1).indices


def summarise(image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, k: int,
              neighbours: torch.Tensor | None = None) -> dict:
    """Gap and neighbour composition of the mixed database (percentages over all queries of a modality)."""
    n = image.shape[0]
    counts = modgap.fill_gap_stats(image, text, k)["neighbour_counts"].double()  # [query, neighbour modality]
    neighbours = nearest_entries(image, text, k) if neighbours is None else neighbours
    entry_labels = torch.cat([labels, labels])
    same_digit = (entry_labels[neighbours] == entry_labels[:, None]).double()
    return {
        "gap": float(modgap.gap_stats([image, text])["gap"][0, 1]),
        "images_among_caption_neighbours": 100 * float(counts[1, 0] / counts[1].sum()),
        "captions_among_image_neighbours": 100 * float(counts[0, 1] / counts[0].sum()),
        "same_digit_caption_queries": 100 * float(same_digit[n:].mean()),
        "same_digit_image_queries": 100 * float(same_digit[:n].mean()),
    }


def draw(runs: dict, pairs: list[tuple[str, str]], query: int, k: int, out: Path) -> Path:
    """One row per run and query modality: the query, then its k nearest entries framed by modality."""
    from PIL import Image

    from training_plots import _pyplot, save
    plt = _pyplot()
    n = len(pairs)
    rows = [(title, kind) for title in runs for kind in ("text", "image")]
    fig, axes = plt.subplots(len(rows), k + 1, figsize=(1.45 * (k + 1), 1.6 * len(rows)), squeeze=False)
    for r, (title, kind) in enumerate(rows):
        neighbours = runs[title]["neighbours"]
        entries = [query + (n if kind == "text" else 0)] + neighbours[query + (n if kind == "text" else 0)].tolist()
        for c, entry in enumerate(entries):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            modality = "text" if entry >= n else "image"
            path, caption = pairs[entry % n]
            if modality == "image":
                ax.imshow(Image.open(path).convert("L"), cmap="gray_r")
            else:
                ax.text(0.5, 0.5, "\n".join(textwrap.wrap(caption, 12)), ha="center", va="center", fontsize=7,
                        transform=ax.transAxes)
            for spine in ax.spines.values():
                spine.set_edgecolor(MODALITY_COLOURS[modality])
                spine.set_linewidth(3 if c == 0 else 1.5)
            if c == 0:
                ax.set_ylabel(f"{title}\ngap {runs[title]['summary']['gap']:.2f}\n{kind} query", fontsize=7)
            else:
                ax.set_title(f"#{c}", fontsize=7)
    fig.suptitle("Nearest entries of a mixed image + caption database (blue: image, orange: caption)", fontsize=9)
    return save(fig, out)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="nearest entries per query")
    parser.add_argument("--query", type=int, default=0, help="held-out pair whose caption and image are drawn")
    parser.add_argument("overrides", nargs="*", help="config overrides (data.root=...)")
    args = parser.parse_args(argv)
    cfg = modgap.config.compose(ROOT / "configs", "train", args.overrides)
    root = (ROOT / cfg["data"]["root"]).resolve()
    runs, pairs = {}, None
    for title, loss_name in RUNS:
        path = root / f"embeddings_{loss_name}.pt"
        if not path.exists():
            raise SystemExit(f"{path} does not exist (run the main job first: bash scripts/main_job.sh)")
        embeddings, labels = load_embeddings(path)
        image, text = embeddings["image"], embeddings["text"]
        run_pairs = read_pairs(path)
        if pairs is not None and run_pairs != pairs:
            raise SystemExit(f"{path} holds other held-out pairs than the first run's (both runs must come from one "
                             "main job)")
        pairs = run_pairs
        if not 0 <= args.query < len(pairs):
            raise SystemExit(f"--query must index one of the {len(pairs)} held-out pairs, got {args.query}")
        if not 1 <= args.k < 2 * image.shape[0]:
            raise SystemExit(f"--k must be in [1, {2 * image.shape[0] - 1}], got {args.k}")
        neighbours = nearest_entries(image, text, args.k)
        runs[title] = {"summary": summarise(image, text, labels, args.k, neighbours), "neighbours": neighbours}
    print(f"Mixed database of {len(pairs)} held-out images + {len(pairs)} captions, {args.k} nearest entries per query "
          "(Fig. 4; 50 % of the other modality = fully mixed):\n")
    print("| run | gap | images among a caption's nearest | captions among an image's nearest "
          "| same digit (caption / image queries) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for title, run in runs.items():
        s = run["summary"]
        print(f"| {title} | {s['gap']:.3f} | {s['images_among_caption_neighbours']:.1f} % | "
              f"{s['captions_among_image_neighbours']:.1f} % | {s['same_digit_caption_queries']:.1f} % / "
              f"{s['same_digit_image_queries']:.1f} % |")
    try:
        written = draw(runs, pairs, args.query, args.k, root / "plots" / "vector_database.png")
        print(f"\nplot: {written}")
    except ImportError:
        print("\n(matplotlib is not installed: no plot)")


if __name__ == "__main__":
    main(sys.argv[1:])
