"""An OpenCLIP-free demo (the first main job; scripts/main_job.sh now trains OpenCLIP): CLIP vs CLIP +
modgap gap terms on real data that ships with scikit-learn, the 8x8 handwritten digits paired with
varied captions.

Two small encoders (an MLP over the 64 pixels; a bag-of-words caption encoder) are trained from the
same initialisation twice, once with the CLIP loss alone and once with eq. 21,
CLIP + lambda1 * L_ATP + lambda2 * L_CU, with the losses computed by torch.ops.modgap. Both runs are
evaluated on held-out digits before and after training: ATP, CU, gap (eq. 2), Cos TP (eq. 3),
retrieval R@1 in both directions (instance-wise) and, group-wise, the V-measure of k-means on the
union of both modalities' embeddings (k = 10) and kNN accuracy, all from modgap.evaluate (the
evaluation operators in C++).
"""
from __future__ import annotations

import argparse
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import modgap

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a photo of the digit {w}", "handwritten {w}", "the number {w}", "a {w} written by hand",
             "digit {d}", "an image of a {w}", "a scanned {w}", "the handwritten digit {d}", "{w}",
             "a small picture of the number {w}"]


class CaptionTokenizer:
    def __init__(self) -> None:
        vocab = sorted({tok for tpl in TEMPLATES for w, d in zip(WORDS, range(10))
                        for tok in tpl.format(w=w, d=d).split()})
        self.index = {tok: i for i, tok in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.index)

    def encode(self, captions):
        tokens = [torch.tensor([self.index[t] for t in c.split()]) for c in captions]
        offsets = torch.tensor([0] + [len(t) for t in tokens[:-1]]).cumsum(0)
        return torch.cat(tokens), offsets


def caption(label: int, rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(w=WORDS[label], d=label)


class ImageEncoder(torch.nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.GELU(), torch.nn.Linear(256, dim))

    def forward(self, x):
        return F.normalize(self.net(x), dim=-1)


class TextEncoder(torch.nn.Module):
    def __init__(self, vocab: int, dim: int) -> None:
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(vocab, 64, mode="mean")
        self.net = torch.nn.Sequential(torch.nn.GELU(), torch.nn.Linear(64, 128), torch.nn.GELU(), torch.nn.Linear(128, dim))

    def forward(self, tokens, offsets):
        return F.normalize(self.net(self.embed(tokens, offsets)), dim=-1)


def clip_loss(image, text, temperature):
    logits = image @ text.t() / temperature
    target = torch.arange(image.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


@torch.no_grad()
def evaluate(image_enc, text_enc, images, tokens, offsets, labels, seed):
    img = image_enc(images)
    txt = text_enc(tokens, offsets)
    # One call: gap statistics, Recall@K both ways, joint k-means V-measure (k = 10 classes, k-means++,
    # 1 initialisation, as scikit-learn's default) and kNN accuracy, all computed by torch.ops.modgap.
    result = modgap.evaluate({"image": img, "text": txt}, torch.as_tensor(labels), ks=(1, 5), seed=seed)
    pair = result["pairs"]["image-text"]
    return {
        "ATP": modgap.atp_loss([img, txt]).item(),
        "CU": modgap.centroid_uniformity([img, txt]).item(),
        "gap": pair["gap"],                                                      # eq. 2
        "CosTP": pair["cos_tp_mean"],                                            # eq. 3
        "RMG": pair["rmg"],
        "R@1 i2t": 100 * pair["recall"]["image->text"]["R@1"],
        "R@1 t2i": 100 * pair["recall"]["text->image"]["R@1"],
        "V-measure": 100 * result["clustering"]["v_measure"],
        "kNN acc": 100 * result["knn"]["accuracy"]["joint"],
    }


def train(run_name, loss_kind, data, args, tokenizer):
    torch.manual_seed(args.seed)
    image_enc, text_enc = ImageEncoder(args.dim), TextEncoder(len(tokenizer), args.dim)
    params = list(image_enc.parameters()) + list(text_enc.parameters())
    optimizer = torch.optim.Adam(params, lr=args.lr)
    gap_loss = modgap.nn.GapLoss(lambda1=args.lambda1, lambda2=args.lambda2, t=args.t)
    x_train, y_train = data["train"]
    eval_args = data["eval"]
    before = evaluate(image_enc, text_enc, *eval_args, seed=args.seed)
    rng = random.Random(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(x_train), generator=generator)
        for batch in order.split(args.batch_size):
            if len(batch) < 2:
                continue
            tokens, offsets = tokenizer.encode([caption(int(y_train[i]), rng) for i in batch])
            img = image_enc(x_train[batch])
            txt = text_enc(tokens, offsets)
            loss = clip_loss(img, txt, args.temperature)
            if loss_kind == "ours":
                loss = loss + gap_loss([img, txt])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % max(1, args.epochs // 5) == 0 or epoch == args.epochs:
            m = evaluate(image_enc, text_enc, *eval_args, seed=args.seed)
            print(f"  [{run_name}] epoch {epoch:3d}/{args.epochs}  loss {loss.item():.3f}  gap {m['gap']:.3f}  "
                  f"V-measure {m['V-measure']:.1f}  ({time.time() - start:.1f}s)", flush=True)
    after = evaluate(image_enc, text_enc, *eval_args, seed=args.seed)
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dim", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--temperature", type=float, default=0.1, help="fixed CLIP temperature (reference code: 0.1)")
    parser.add_argument("--lambda1", type=float, default=1.0)
    parser.add_argument("--lambda2", type=float, default=1.0)
    parser.add_argument("--t", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    digits = load_digits()
    x = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    y = digits.target
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, random_state=args.seed, stratify=y)
    tokenizer = CaptionTokenizer()
    eval_rng = random.Random(args.seed + 1)
    tokens, offsets = tokenizer.encode([caption(int(y[i]), eval_rng) for i in idx_test])
    data = {"train": (x[idx_train], y[idx_train]), "eval": (x[idx_test], tokens, offsets, y[idx_test])}
    print(f"modgap {modgap.__version__} ({modgap.library_path()}), digits: {len(idx_train)} train / "
          f"{len(idx_test)} held-out pairs, D={args.dim}, CLIP temperature {args.temperature} (fixed), "
          f"lambda1={args.lambda1}, lambda2={args.lambda2}, t={args.t}")
    results = {}
    for run_name, kind in (("CLIP", "clip"), ("CLIP+ATP+CU", "ours")):
        print(f"training {run_name} ...", flush=True)
        results[run_name] = train(run_name, kind, data, args, tokenizer)

    keys = list(results["CLIP"][0])
    print("\nheld-out digits, before -> after training (same initialisation and seed for both runs)")
    print(f"{'metric':<10}" + "".join(f" | {name:>24}" for name in results))
    for key in keys:
        cells = "".join(f" | {results[name][0][key]:>10.3f} -> {results[name][1][key]:>8.3f}" for name in results)
        print(f"{key:<10}{cells}")
    clip_after, ours_after = results["CLIP"][1], results["CLIP+ATP+CU"][1]
    print(f"\ngap: CLIP {clip_after['gap']:.3f} vs ours {ours_after['gap']:.3f}; "
          f"V-measure: CLIP {clip_after['V-measure']:.1f} vs ours {ours_after['V-measure']:.1f}; "
          f"R@1 i2t: CLIP {clip_after['R@1 i2t']:.1f} vs ours {ours_after['R@1 i2t']:.1f}")


if __name__ == "__main__":
    main()
