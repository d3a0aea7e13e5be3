"""The GRAM / VAST patch (modgap.patches.gram) against a stand-in of GRAM's model and evaluation modules.

GRAM and VAST are not installable (pretrained EVA-CLIP / BEATs / BERT weights, cluster paths), so CI
uses a stand-in with the contract upstreams.md §2.3-2.6 reads off ispamm/GRAM: ``forward_ret(batch, task,
compute_loss)`` returns a loss dict (summed and logged by the pipeline) or an evaluation dict with the
``feat_*`` rows; ``batch_get(batch, 'feat_x')`` computes a normalised feature once and caches it in the
batch; ``evaluation.evaluation_mm.evaluate_ret(model, tasks, val_loader, global_step)`` returns a log dict.
The added terms are checked against the float64 formulas (reference.py) and VAST's cosine ITC formula."""
from __future__ import annotations

import json
import sys
import textwrap
import types
import uuid

import pytest
import torch
import torch.nn.functional as F

import modgap
from modgap.patches import gram
from modgap.patches.gram import launcher
from reference import atp_formula, centroid_uniformity_formula

MODEL = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class GRAM(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.heads = nn.ModuleDict({m: nn.Linear(7, 5, dtype=torch.float64) for m in "tvas"})
        self.contra_temp = nn.Parameter(torch.tensor(0.07, dtype=torch.float64))
        self.calls = 0

    def batch_get(self, batch, key):
        if key in batch:
            return batch[key]
        if key.startswith("feat_") and f"raw_{key[5:]}" in batch:
            self.calls += 1
            batch[key] = F.normalize(self.heads[key[5:]](batch[f"raw_{key[5:]}"]), dim=-1)
            return batch[key]
        return None

    def forward(self, batch, task, compute_loss=True):
        return self.forward_ret(batch, task, compute_loss=compute_loss)

    def forward_ret(self, batch, task, compute_loss=True):
        feats = {m: self.batch_get(batch, f"feat_{m}") for m in "tva"}
        if compute_loss:
            volume = (feats["t"] * feats["v"] * feats["a"]).sum(-1).mean()
            return {"loss_itc": torch.tensor(0.0), "loss_area": volume}
        return {f"feat_{m}": f for m, f in feats.items()}
'''

EVALUATION = '''
def evaluate_ret(model, tasks, val_loader, global_step):
    rows = 0
    for batch in val_loader:
        rows += model(dict(batch), tasks, compute_loss=False)["feat_t"].shape[0]
    return {"cosine_TV": {"forward_r1": 0.0, "rows": rows}}
'''


@pytest.fixture
def gram_code_base(tmp_path, monkeypatch):
    root = tmp_path / f"gram_{uuid.uuid4().hex[:8]}"
    for package, text in (("model", MODEL), ("evaluation", EVALUATION)):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "model" / "gram.py").write_text(textwrap.dedent(MODEL))
    (root / "evaluation" / "evaluation_mm.py").write_text(textwrap.dedent(EVALUATION))
    (root / "run.py").write_text("")
    for name in ("model", "model.gram", "evaluation", "evaluation.evaluation_mm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(root))
    import model.gram as model_module
    import evaluation.evaluation_mm as evaluation_module
    originals = (model_module.GRAM.forward_ret, evaluation_module.evaluate_ret)
    yield model_module, evaluation_module, originals
    gram.uninstall()
    gram.uninstall_evaluation()
    for name in ("model", "model.gram", "evaluation", "evaluation.evaluation_mm"):
        sys.modules.pop(name, None)


def make_batch(n=24, seed=0, ids=None):
    g = torch.Generator().manual_seed(seed)
    batch = {f"raw_{m}": torch.randn(n, 7, generator=g, dtype=torch.float64) for m in "tvas"}
    batch["ids"] = ids if ids is not None else [f"video{i}" for i in range(n)]
    return batch


def test_loss_dict_gains_atp_and_cu_of_the_cached_features(gram_code_base):
    model_module, _, _ = gram_code_base
    gram.install("gram", lambda1=0.4, lambda2=1.5, t=2.0)
    model = model_module.GRAM(types.SimpleNamespace())
    batch = make_batch()
    out = model(batch, "ret%tv%ta", compute_loss=True)
    assert model.calls == 3  # the patch reused the features forward_ret cached, computed nothing twice
    feats = [batch[f"feat_{m}"] for m in "tva"]
    torch.testing.assert_close(out["loss_modgap_atp"], 0.4 * atp_formula(feats, 0), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["loss_modgap_cu"], 1.5 * centroid_uniformity_formula(feats, 2.0), rtol=1e-10,
                               atol=1e-12)
    total = sum(out.values())  # what GRAM's pipeline optimises
    total.backward()
    assert all(model.heads[m].weight.grad is not None for m in "tva") and model.heads["s"].weight.grad is None


def test_model_config_keys_win_and_modalities_are_chosen_there(gram_code_base):
    model_module, _, _ = gram_code_base
    gram.install("gram", lambda1=1.0, lambda2=1.0)
    model = model_module.GRAM(types.SimpleNamespace(modgap_lambda1=0.0, modgap_lambda2=2.0, modgap_modalities="tvas"))
    batch = make_batch(seed=1)
    out = model(batch, "ret%tvas", compute_loss=True)
    assert "loss_modgap_atp" not in out  # lambda1 = 0 in model_cfg: no term
    assert model.calls == 4  # feat_s computed by the patch (VAST's fused tasks need this)
    feats = [batch[f"feat_{m}"] for m in "tvas"]
    torch.testing.assert_close(out["loss_modgap_cu"], 2.0 * centroid_uniformity_formula(feats), rtol=1e-10, atol=1e-12)


def test_cosine_itc_replaces_the_volume_loss(gram_code_base):
    model_module, _, _ = gram_code_base
    gram.install("gram", lambda1=0.0, lambda2=0.0, itc="cosine")
    model = model_module.GRAM(types.SimpleNamespace())
    batch = make_batch(seed=2)
    out = model(batch, "ret%tv%ta", compute_loss=True)
    t, v, a = (batch[f"feat_{m}"] for m in "tva")
    targets = torch.arange(t.shape[0])
    expected = 0.0
    for other in (v, a):  # VAST: (CE(m @ t^T / temp) + CE(t @ m^T / temp)) / 2 with label smoothing 0.1
        logits = other @ t.t() / model.contra_temp
        expected = expected + (F.cross_entropy(logits, targets, label_smoothing=0.1)
                               + F.cross_entropy(logits.t(), targets, label_smoothing=0.1)) / 2
    torch.testing.assert_close(out["loss_area"], expected / 2, rtol=1e-12, atol=1e-12)
    out["loss_area"].backward()
    assert model.contra_temp.grad is not None  # the learnable divisor trains, as in VAST


def test_validation_log_gains_gap_measures_and_group_wise_scores(gram_code_base, tmp_path):
    model_module, evaluation_module, _ = gram_code_base
    gram.install("gram")
    categories = tmp_path / "categories.json"
    ids = [f"video{i}" for i in range(60)]
    categories.write_text(json.dumps({name: i % 3 for i, name in enumerate(ids)}))
    gram.install_evaluation(str(categories))
    model = model_module.GRAM(types.SimpleNamespace())
    full = make_batch(60, seed=3, ids=ids)
    with torch.no_grad():  # three well separated categories in every modality: e_c + noise, c = category
        for m in "tva":
            model.heads[m].weight.zero_()[:, :5] = torch.eye(5, dtype=torch.float64)
            model.heads[m].bias.zero_()
            full[f"raw_{m}"][torch.arange(60), torch.arange(60) % 3] += 30.0
    loader = [{key: value[i:i + 20] for key, value in full.items()} for i in range(0, 60, 20)]
    val_log = evaluation_module.evaluate_ret(model, "ret%tva", loader, 0)
    assert val_log["cosine_TV"]["rows"] == 60  # the original's own log is untouched
    log = val_log["modgap"]
    assert log["modalities"] == "tva" and log["rows"] == 60 and log["labelled_rows"] == 60
    with torch.no_grad():
        feats = {m: F.normalize(model.heads[m](full[f"raw_{m}"]), dim=-1) for m in "tva"}
    for pair in ("tv", "ta", "va"):
        gap = (feats[pair[0]].mean(0) - feats[pair[1]].mean(0)).norm().item()
        cos_tp = (feats[pair[0]] * feats[pair[1]]).sum(-1).mean().item()
        assert log[f"gap_{pair}"] == pytest.approx(gap, abs=2e-6)
        assert log[f"cos_tp_mean_{pair}"] == pytest.approx(cos_tp, abs=2e-6)
    assert log["v_measure"] == pytest.approx(1.0)
    assert log["knn_accuracy_joint"] == pytest.approx(1.0)


def test_errors_and_uninstall(gram_code_base):
    model_module, evaluation_module, (original_forward, original_evaluate) = gram_code_base
    with pytest.raises(ValueError, match="`model` must be one of"):
        gram.install("clip")
    with pytest.raises(TypeError, match="unknown option"):
        gram.install("gram", lambda3=1.0)
    gram.install("gram", modalities=("t", "d"))
    with pytest.raises(ValueError, match=r"batch_get\(batch, 'feat_d'\) gave NoneType"):
        model_module.GRAM(types.SimpleNamespace())(make_batch(), "ret%tv", compute_loss=True)
    gram.install("gram", itc="area")
    with pytest.raises(ValueError, match="`itc` must be 'volume' or 'cosine'"):
        model_module.GRAM(types.SimpleNamespace())(make_batch(), "ret%tv", compute_loss=True)
    gram.install_evaluation()
    gram.uninstall()
    gram.uninstall_evaluation()
    changed = model_module.GRAM.forward_ret
    model_module.GRAM.forward_ret = lambda self, batch: None  # an upstream whose hook changed
    with pytest.raises(RuntimeError, match=r"GRAM.forward_ret takes \('self', 'batch'\), the patch expects"):
        gram.install("gram")
    model_module.GRAM.forward_ret = changed
    del evaluation_module.evaluate_ret
    with pytest.raises(RuntimeError, match="evaluation.evaluation_mm has no `evaluate_ret`"):
        gram.install_evaluation()
    evaluation_module.evaluate_ret = original_evaluate
    assert model_module.GRAM.forward_ret is original_forward
    assert evaluation_module.evaluate_ret is original_evaluate


def test_launcher_keeps_run_py_arguments_and_checks_the_checkout(tmp_path):
    args, run_args = launcher.parse(["--root", str(tmp_path), "--model", "vast", "--itc", "cosine", "--",
                                     "--config", "x.json", "--learning_rate", "2e-5"])
    assert args.model == "vast" and args.itc == "cosine" and args.modalities == "tva"
    assert run_args == ["--config", "x.json", "--learning_rate", "2e-5"]
    with pytest.raises(SystemExit, match="no run.py"):
        launcher.main(["--root", str(tmp_path)])


def test_msrvtt_experiment_gives_the_torchrun_commands():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for loss, weight in (("clip_lt", 0.0), ("ours", 1.0)):
        cfg = modgap.config.compose(root / "configs", "train", [
            "+experiment=msrvtt", "gram.root=/src/GRAM", "gram.pretrain_dir=/ckpt/gram", f"loss={loss}",
            "data.categories=/data/cat.json", "gram.nproc_per_node=8"])
        argv = launcher.gram_arguments(cfg, "/out")
        assert argv[:4] == ["torchrun", "--nproc-per-node=8", "-m", "modgap.patches.gram"]
        args, run_args = launcher.parse(argv[4:])
        assert (args.root, args.model, args.itc, args.modalities) == ("/src/GRAM", "gram", "cosine", "tva")
        assert args.lambda1 == weight and args.lambda2 == weight and args.categories == "/data/cat.json"
        assert args.normalize is True
        assert run_args[run_args.index("--config") + 1] == "./config/gram/finetune_cfg/retrieval-msrvtt.json"
        assert run_args[run_args.index("--pretrain_dir") + 1] == "/ckpt/gram"
        assert run_args[run_args.index("--output_dir") + 1] == f"/out/msrvtt_{loss}_seed50"
        assert run_args[run_args.index("--learning_rate") + 1] == "2e-05"


def test_msrvtt_commands_refuse_a_loss_the_patch_does_not_implement():
    # loss=notagap used to give the CLIP baseline's command (lambda1 = lambda2 = 0) under notagap's name
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for loss, dropped in (("notagap", "'alignment', 'uniformity'"), ("ours_no_infonce", "'contrastive'"),
                          ("ours_scheduled", "'schedule'"), ("clip_ts", "'temperature_schedule'")):
        cfg = modgap.config.compose(root / "configs", "train", [
            "+experiment=msrvtt", "gram.root=/src/GRAM", "gram.pretrain_dir=/ckpt/gram", f"loss={loss}",
            "data.root=/data"])
        with pytest.raises(ValueError, match=rf"modgap's GRAM/VAST patch: loss={loss} sets \[{dropped}\], which "
                                             r"modgap's GRAM/VAST patch does not implement"):
            launcher.gram_arguments(cfg, "/out")
    cfg = modgap.config.compose(root / "configs", "train", [
        "+experiment=msrvtt", "gram.root=/src/GRAM", "gram.pretrain_dir=/ckpt/gram", "loss=ours", "data.root=/data",
        "loss.normalize=false"])
    args, _ = launcher.parse(launcher.gram_arguments(cfg, "/out")[4:])
    assert args.normalize is False                                     # eq. 9 as printed reaches the patch
    cfg = modgap.config.compose(root / "configs", "train", [
        "+experiment=msrvtt", "gram.root=/src/GRAM", "gram.pretrain_dir=/ckpt/gram", "loss=ours", "data.root=/data",
        "loss.anchor=1"])
    with pytest.raises(ValueError, match=r"loss=ours sets \['anchor'\]"):  # the text is GRAM's anchor
        launcher.gram_arguments(cfg, "/out")


def test_msrvtt_categories_from_videodatainfo(tmp_path):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "msrvtt_categories", Path(__file__).resolve().parents[2] / "scripts" / "msrvtt_categories.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train = tmp_path / "train_val_videodatainfo.json"
    test = tmp_path / "test_videodatainfo.json"
    train.write_text(json.dumps({"videos": [{"video_id": "video0", "category": 9}, {"video_id": "video1", "category": 16}]}))
    test.write_text(json.dumps({"videos": [{"video_id": "video7020", "category": 0}]}))
    assert module.categories([str(train), str(test)]) == {"video0": 9, "video1": 16, "video7020": 0}
    test.write_text(json.dumps({"videos": [{"video_id": "video0", "category": 3}]}))
    with pytest.raises(SystemExit, match="video0 has categories 9 and 3"):
        module.categories([str(train), str(test)])
    test.write_text(json.dumps({"sentences": []}))
    with pytest.raises(SystemExit, match="no 'videos' list"):
        module.categories([str(test)])


def _cosine_itc_worker(rank, world_size, init_file, out_dir, sizes):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    g = torch.Generator().manual_seed(0)
    t, v = (F.normalize(torch.randn(sum(sizes), 4, generator=g, dtype=torch.float64), dim=-1) for _ in range(2))
    start = sum(sizes[:rank])
    rows = slice(start, start + sizes[rank])
    local_t, local_v = t[rows].clone().requires_grad_(True), v[rows].clone().requires_grad_(True)
    loss = gram.cosine_itc(local_t, [local_v], torch.tensor(0.07, dtype=torch.float64))
    loss.backward()
    torch.save({"loss": loss.detach(), "grad_t": local_t.grad, "t": t, "v": v, "start": start},
               f"{out_dir}/rank{rank}.pt")
    dist.destroy_process_group()


def test_cosine_itc_across_ranks_with_unequal_batches(tmp_path):
    """gloo, 2 processes, 3 and 5 local rows: each rank's InfoNCE is its rows against all gathered rows,
    targets at its own offset (VAST's rank * bs for equal batches), gradient through its own rows only."""
    import torch.multiprocessing as mp
    sizes = [3, 5]
    mp.spawn(_cosine_itc_worker, args=(2, str(tmp_path / "init"), str(tmp_path), sizes), nprocs=2)
    for rank, size in enumerate(sizes):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        t, v, start = out["t"], out["v"], out["start"]
        local_t = t[start:start + size].clone().requires_grad_(True)
        targets = torch.arange(start, start + size)
        # other ranks' rows are constants; the gathered copy of this rank's rows carries the gradient
        t_all = torch.cat([t[:start], local_t, t[start + size:]])
        expected = (F.cross_entropy(v[start:start + size] @ t_all.t() / 0.07, targets, label_smoothing=0.1)
                    + F.cross_entropy(local_t @ v.t() / 0.07, targets, label_smoothing=0.1)) / 2
        expected.backward()
        torch.testing.assert_close(out["loss"], expected.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out["grad_t"], local_t.grad, rtol=1e-10, atol=1e-12)
