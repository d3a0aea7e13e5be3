"""``python -m modgap.patches.comm``: run CoMM's own entry point with the modgap terms and gap evaluation.

    python -m modgap.patches.comm --comm-root /path/to/CoMM [--script main_multibench.py] \\
        [--lambda1 1.0] [--lambda2 1.0] [--t 2.0] [--anchor 0] [--views both] [--gap-split test] \\
        [--data-path /data/mosi_data.pkl] \\
        -- data.data_module.dataset=mosi model=comm trainer.max_epochs=100 optim.lr=1e-3 optim.weight_decay=1e-2

Everything after ``--`` is CoMM's Hydra command line, unchanged. The loss options may instead come from
Hydra (``+model.model.loss_kwargs.lambda2=0.5``), which win over the flags. ``--gap-split none`` turns
the per-epoch gap evaluation off. ``--data-path`` reads a MultiBench affect pickle (MOSI, UR-FUNNY,
MuSTARD, MOSEI) from there instead of the path in CoMM's ``dataset/catalog.json`` (which CoMM otherwise
asks you to edit). CoMM's code is imported from ``--comm-root`` and never copied.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import List, Optional

from . import callback as gap_callback
from . import loss as comm_loss
from .._upstream import check_loss_config, check_signature, run_as_main, split_at_double_dash, true_or_false


def parse(argv: List[str]) -> tuple[argparse.Namespace, List[str]]:
    own, hydra_overrides = split_at_double_dash(argv)
    parser = argparse.ArgumentParser(prog="python -m modgap.patches.comm", allow_abbrev=False,
                                     description="CoMM with modgap's L_ATP + L_CU and gap evaluation")
    parser.add_argument("--comm-root", required=True, help="a checkout of github.com/Duplums/CoMM")
    parser.add_argument("--script", default="main_multibench.py",
                        help="CoMM entry point, relative to --comm-root (e.g. main_multibench_all-mod.py)")
    parser.add_argument("--lambda1", type=float, default=comm_loss.DEFAULTS["lambda1"], help="weight of L_ATP (eq. 7)")
    parser.add_argument("--lambda2", type=float, default=comm_loss.DEFAULTS["lambda2"], help="weight of L_CU (eq. 8/9)")
    parser.add_argument("--t", type=float, default=comm_loss.DEFAULTS["t"], help="L_CU's t")
    parser.add_argument("--normalize", type=true_or_false, default=comm_loss.DEFAULTS["normalize"],
                        help="true: L_CU on normalised centroids (reference code); false: eq. 9 as printed")
    parser.add_argument("--anchor", type=int, default=comm_loss.DEFAULTS["anchor"], help="L_ATP's anchor modality")
    parser.add_argument("--views", choices=("both", "aug1", "aug2"), default=comm_loss.DEFAULTS["views"])
    parser.add_argument("--data-path", default=None,
                        help="MultiBench affect pickle to read instead of dataset/catalog.json's path")
    parser.add_argument("--gap-split", choices=("train", "val", "test", "none"), default="test",
                        help="split of the labelled data module evaluated after each validation epoch")
    return parser.parse_args(own), hydra_overrides


def add_callback_to_trainers(make_callback) -> None:
    """Append a callback to every pytorch_lightning.Trainer built from now on (CoMM builds its list in main)."""
    import pytorch_lightning

    original = pytorch_lightning.Trainer.__init__
    if getattr(original, "_modgap_wrapped", False):
        return

    @functools.wraps(original)
    def __init__(self, *args, callbacks=None, **kwargs):
        callbacks = list(callbacks or []) + [make_callback()]
        original(self, *args, callbacks=callbacks, **kwargs)

    __init__._modgap_wrapped = True
    pytorch_lightning.Trainer.__init__ = __init__


def redirect_affect_data(path: str) -> None:
    """Make CoMM's ``Affect`` data set (dataset/affect/get_data.py) read ``path`` whatever the catalog says."""
    from dataset.affect.get_data import Affect

    check_signature(Affect, "__init__", ("self", "data_path"))
    original = Affect.__init__
    if getattr(original, "_modgap_wrapped", False):
        original = original.__wrapped__

    @functools.wraps(original)
    def __init__(self, data_path, *args, **kwargs):
        original(self, path, *args, **kwargs)

    __init__._modgap_wrapped = True
    Affect.__init__ = __init__


def comm_arguments(config: dict, comm_root: str, output_dir: str) -> List[str]:
    """This launcher's command line for a composed config (configs/train.yaml + ``+experiment=mosi`` ...)."""
    data, loss, comm = config["data"], config["loss"], config["comm"]
    # the CoMM patch adds lambda1 L_ATP (anchor) + lambda2 L_CU (t, normalize) to CoMM's own loss and
    # nothing else of a loss config; its temperature is CoMM's own
    check_loss_config(loss, "modgap's CoMM patch", ("lambda1", "lambda2", "anchor", "normalize"))
    data_path = str(data["path"])
    return ["--comm-root", str(comm_root), "--script", str(comm["script"]),
            "--lambda1", str(float(loss.get("lambda1", 0.0))), "--lambda2", str(float(loss.get("lambda2", 0.0))),
            "--t", str(float(loss.get("t", 2.0))), "--normalize", str(bool(loss.get("normalize", True))).lower(),
            "--anchor", str(int(loss.get("anchor", 0))),
            "--data-path", data_path, "--",
            f"data.data_module.dataset={data['comm_name']}", "model=comm",
            f"trainer.max_epochs={int(config['epochs'])}", f"optim.lr={config['lr']}",
            f"optim.weight_decay={config['wd']}", f"data.data_module.batch_size={int(config['batch_size'])}",
            f"seed={int(config['seed'])}", f"trainer.default_root_dir={output_dir}",
            f"+exp_name={config['run_name']}", *[str(o) for o in comm.get("overrides") or []]]


def main(argv: Optional[List[str]] = None) -> int:
    args, hydra_overrides = parse(list(sys.argv[1:] if argv is None else argv))
    root = os.path.abspath(args.comm_root)
    script = os.path.join(root, args.script)
    if not os.path.isfile(os.path.join(root, "losses", "comm_loss.py")) or not os.path.isfile(script):
        raise SystemExit(f"modgap.patches.comm: {root} is not a CoMM checkout with {args.script} "
                         "(expected losses/comm_loss.py beside it)")
    sys.path.insert(0, root)
    if args.data_path:
        if not os.path.isfile(args.data_path):
            raise SystemExit(f"modgap.patches.comm: --data-path {args.data_path} is not a file")
        redirect_affect_data(os.path.abspath(args.data_path))
    comm_loss.install(lambda1=args.lambda1, lambda2=args.lambda2, t=args.t, anchor=args.anchor,
                      normalize=args.normalize, views=args.views)
    if args.gap_split != "none":
        add_callback_to_trainers(lambda: gap_callback.make_gap_callback(split=args.gap_split))
    run_as_main(script, hydra_overrides)
    return 0
