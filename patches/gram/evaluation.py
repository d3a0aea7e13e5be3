"""Gap measures in GRAM's / VAST's validation log, at run time.

``evaluation.evaluation_mm.evaluate_ret(model, tasks, val_loader, global_step)`` keeps the gathered
features in local variables (upstreams.md §2.6), so the patch records them where they are produced: the
patched ``forward_ret(..., compute_loss=False)`` hands each batch's ``feat_*`` and ``ids`` to
:func:`record`; the patched ``evaluate_ret`` clears the record, runs the original, gathers every rank's
rows and adds ``val_log["modgap"]``: per modality pair (letters, e.g. ``tv``) the gap (eq. 2), Cos TP
mean (eq. 3) and RMG, per modality the AV (Table 10), and with a category map (MSR-VTT's 20 categories
come from outside GRAM's annotations: a JSON {video_id: category}) the V-measure of joint k-means and the
kNN accuracy (modgap.evaluate). ``get_best_name`` ignores a dict without its retrieval keys, so model
selection is unchanged.
"""
from __future__ import annotations

import functools
import importlib
import json
from typing import Dict, List, Optional

import torch
import torch.distributed as dist

import modgap

from .._upstream import check_signature

_LETTERS = ("t", "v", "a", "s", "d")
_record: Dict[str, List] = {}
_state: Dict[str, object] = {}


def record(batch, evaluation_dict: dict) -> None:
    """Keep one evaluation batch's features (CPU, float32) and sample ids (only while installed)."""
    if "module" not in _state:
        return
    for letter in _LETTERS:
        feature = evaluation_dict.get(f"feat_{letter}")
        if isinstance(feature, torch.Tensor):
            _record.setdefault(letter, []).append(feature.detach().float().cpu())
    ids = batch.get("ids") if hasattr(batch, "get") else None
    if ids is not None:
        _record.setdefault("ids", []).extend(list(ids))


def _gathered() -> tuple[Dict[str, torch.Tensor], List]:
    local = {letter: torch.cat(parts) for letter, parts in _record.items() if letter != "ids"}
    ids = list(_record.get("ids", []))
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        everyone = [None] * dist.get_world_size()
        dist.all_gather_object(everyone, (local, ids))
        local = {letter: torch.cat([part[0][letter] for part in everyone]) for letter in local}
        ids = [i for part in everyone for i in part[1]]
    return local, ids


def gap_log(features: Dict[str, torch.Tensor], ids: List, categories: Optional[Dict[str, int]] = None,
            seed: int = 0) -> dict:
    """``val_log["modgap"]``: the measures of the modalities that have one row per sample."""
    rows = len(ids) if ids else max(f.shape[0] for f in features.values())
    letters = [letter for letter in _LETTERS if letter in features and features[letter].shape[0] == rows]
    out: dict = {"modalities": "".join(letters), "rows": rows}
    if len(letters) < 2:
        return out
    stats = modgap.gap_stats([features[letter] for letter in letters])
    for i, a in enumerate(letters):
        out[f"av_{a}"] = round(float(stats["angular_value"][i]), 6)
        for j in range(i + 1, len(letters)):
            pair = a + letters[j]
            for key in ("gap", "cos_tp_mean", "rmg"):
                out[f"{key}_{pair}"] = round(float(stats[key][i, j]), 6)
    if categories and ids:
        known = [k for k, sample in enumerate(ids) if str(sample) in categories]
        if known:
            index = torch.tensor(known)
            labels = torch.tensor([int(categories[str(ids[k])]) for k in known])
            result = modgap.evaluate({a: features[a].index_select(0, index) for a in letters}, labels, seed=seed,
                                     fill_gap_k=0, probe_max_iter=0)  # V-measure and kNN only
            out["v_measure"] = round(float(result["clustering"]["v_measure"]), 6)
            for name, accuracy in result["knn"]["accuracy"].items():
                out[f"knn_accuracy_{name}"] = round(float(accuracy), 6)
            out["labelled_rows"] = len(known)
    return out


def install(categories_file: Optional[str] = None, seed: int = 0) -> None:
    """Wrap ``evaluation.evaluation_mm.evaluate_ret`` (the code base's root on sys.path)."""
    module = importlib.import_module("evaluation.evaluation_mm")
    check_signature(module, "evaluate_ret", ("model", "tasks", "val_loader", "global_step"))
    uninstall()
    categories = None
    if categories_file:
        with open(categories_file) as f:
            categories = {str(k): int(v) for k, v in json.load(f).items()}
    original = module.evaluate_ret

    @functools.wraps(original)
    def evaluate_ret(model, tasks, val_loader, global_step):
        _record.clear()
        val_log = original(model, tasks, val_loader, global_step)
        features, ids = _gathered()
        if features:
            val_log["modgap"] = gap_log(features, ids, categories, seed)
        _record.clear()
        return val_log

    module.evaluate_ret = evaluate_ret
    _state.update(module=module, original=original)


def uninstall() -> None:
    if "module" in _state:
        _state.pop("module").evaluate_ret = _state.pop("original")
