"""``python -m modgap.patches.gram``: run GRAM's or VAST's own ``run.py`` with the modgap terms and gap log.

    torchrun --nproc-per-node 1 -m modgap.patches.gram --root /path/to/GRAM [--model gram|vast] \\
        [--lambda1 1.0] [--lambda2 1.0] [--t 2.0] [--modalities tva] [--itc volume|cosine] \\
        [--categories msrvtt_categories.json] \\
        -- --learning_rate 2e-5 --checkpointing true --first_eval true --save_best true \\
           --config ./config/gram/finetune_cfg/retrieval-msrvtt.json --pretrain_dir $CKPT --output_dir $OUT

Everything after ``--`` is run.py's command line, unchanged. run.py needs a distributed launcher (it
reads LOCAL_RANK and initialises NCCL), hence torchrun even on one GPU. ``modgap_*`` keys in the JSON
``model_cfg`` win over the flags. The code base is imported from ``--root`` and never copied.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from . import evaluation as gram_evaluation
from . import loss as gram_loss
from .._upstream import check_loss_config, run_as_main, split_at_double_dash, true_or_false


def parse(argv: List[str]) -> tuple[argparse.Namespace, List[str]]:
    own, run_args = split_at_double_dash(argv)
    parser = argparse.ArgumentParser(prog="python -m modgap.patches.gram", allow_abbrev=False,
                                     description="GRAM / VAST with modgap's L_ATP + L_CU and gap measures")
    parser.add_argument("--root", required=True, help="a checkout of github.com/ispamm/GRAM (or of VAST)")
    parser.add_argument("--model", choices=sorted(gram_loss.MODEL_CLASSES), default="gram")
    parser.add_argument("--lambda1", type=float, default=gram_loss.DEFAULTS["lambda1"], help="weight of L_ATP (eq. 7)")
    parser.add_argument("--lambda2", type=float, default=gram_loss.DEFAULTS["lambda2"], help="weight of L_CU (eq. 8/9)")
    parser.add_argument("--t", type=float, default=gram_loss.DEFAULTS["t"], help="L_CU's t")
    parser.add_argument("--normalize", type=true_or_false, default=gram_loss.DEFAULTS["normalize"],
                        help="true: L_CU on normalised centroids (reference code); false: eq. 9 as printed")
    parser.add_argument("--modalities", default="".join(gram_loss.DEFAULTS["modalities"]),
                        help="feature letters, text (the anchor) first: t v a s d")
    parser.add_argument("--itc", choices=("volume", "cosine"), default=gram_loss.DEFAULTS["itc"],
                        help="GRAM's volume loss as shipped, or the pairwise cosine InfoNCE (CLIP baseline)")
    parser.add_argument("--categories", default=None,
                        help="JSON {video_id: category} for V-measure / kNN in the validation log")
    parser.add_argument("--no-gap-log", action="store_true", help="leave evaluate_ret alone")
    return parser.parse_args(own), run_args


def gram_arguments(config: dict, output_dir: str) -> List[str]:
    """The torchrun command of one run for a composed config (configs/train.yaml + ``+experiment=msrvtt``)."""
    loss, gram, data = config["loss"], config["gram"], config["data"]
    # the GRAM/VAST patch adds lambda1 L_ATP (anchor: the text) + lambda2 L_CU (t, normalize) to GRAM's
    # loss and nothing else of a loss config; its temperature is GRAM's own
    check_loss_config(loss, "modgap's GRAM/VAST patch", ("lambda1", "lambda2", "normalize"))
    argv = ["torchrun", f"--nproc-per-node={int(gram['nproc_per_node'])}", "-m", "modgap.patches.gram",
            "--root", str(gram["root"]), "--model", str(gram["model"]),
            "--lambda1", str(float(loss.get("lambda1", 0.0))), "--lambda2", str(float(loss.get("lambda2", 0.0))),
            "--t", str(float(loss.get("t", 2.0))), "--normalize", str(bool(loss.get("normalize", True))).lower(),
            "--modalities", str(gram["modalities"]), "--itc", str(gram["itc"])]
    if data.get("categories"):
        argv += ["--categories", str(data["categories"])]
    return argv + ["--", "--learning_rate", str(gram["learning_rate"]), "--checkpointing", "true",
                   "--first_eval", "true", "--save_best", "true", "--config", str(gram["config"]),
                   "--pretrain_dir", str(gram["pretrain_dir"]), "--output_dir",
                   f"{output_dir}/{config['run_name']}"]


def main(argv: Optional[List[str]] = None) -> int:
    args, run_args = parse(list(sys.argv[1:] if argv is None else argv))
    root = os.path.abspath(args.root)
    script = os.path.join(root, "run.py")
    module_file = os.path.join(root, *gram_loss.MODEL_CLASSES[args.model][0].split(".")) + ".py"
    if not os.path.isfile(script) or not os.path.isfile(module_file):
        raise SystemExit(f"modgap.patches.gram: {root} has no run.py and {os.path.relpath(module_file, root)} "
                         f"(is it a {args.model.upper()} checkout?)")
    if not set(args.modalities) <= set("tvasd") or not args.modalities.startswith("t"):
        raise SystemExit(f"modgap.patches.gram: --modalities must be letters of tvasd starting with t, got "
                         f"{args.modalities!r}")
    sys.path.insert(0, root)
    os.chdir(root)  # run.py reads ./config and ./pretrained_weights relative to the checkout
    gram_loss.install(args.model, lambda1=args.lambda1, lambda2=args.lambda2, t=args.t, normalize=args.normalize,
                      modalities=tuple(args.modalities), itc=args.itc)
    if not args.no_gap_log:
        gram_evaluation.install(args.categories and os.path.abspath(args.categories))
    run_as_main(script, run_args)
    return 0
