"""The CoMM patch (modgap.patches.comm) against a stand-in of CoMM's loss module.

CoMM is not on PyPI (and has no license), so CI cannot import it. The stand-in below has CoMMLoss's
interface as upstreams.md §3.3 reads it off Duplums/CoMM: ``__init__(temperature=0.1, weights=None)``,
``forward(outputs)`` with ``aug1_embed`` / ``aug2_embed`` lists whose ``prototype`` entry is the fused
embedding, returning a dict with ``loss``. The patch's added terms are checked against the float64
formulas of eq. 7 and eq. 8/9 (reference.py); the patched run of CoMM's own main_multibench.py is a
manual check (see the README)."""
from __future__ import annotations

import sys
import textwrap
import uuid

import pytest
import torch
import torch.nn.functional as F

import modgap
from modgap.patches import comm
from modgap.patches.comm import launcher
from reference import atp_formula, centroid_uniformity_formula

STAND_IN = '''
import torch
import torch.nn as nn
import torch.nn.functional as func


class CoMMLoss(nn.Module):
    def __init__(self, temperature=0.1, weights=None):
        super().__init__()
        self.temperature = temperature
        self.weights = weights

    def forward(self, outputs):
        z1 = [func.normalize(z, p=2, dim=-1) for z in outputs["aug1_embed"]]
        z2 = [func.normalize(z, p=2, dim=-1) for z in outputs["aug2_embed"]]
        p = outputs["prototype"]
        loss = torch.stack([-(z1[i] * z2[p]).sum(-1).mean() / self.temperature for i in range(len(z1))]).mean()
        return {"loss": loss, "ssl_acc": torch.tensor(0.0)}
'''


@pytest.fixture
def comm_loss_class(tmp_path, monkeypatch):
    package = f"fake_comm_{uuid.uuid4().hex[:8]}"
    (tmp_path / package / "losses").mkdir(parents=True)
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "losses" / "__init__.py").write_text("")
    (tmp_path / package / "losses" / "comm_loss.py").write_text(textwrap.dedent(STAND_IN))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = f"{package}.losses.comm_loss"
    original = __import__(module, fromlist=["CoMMLoss"]).CoMMLoss
    original_forward = original.forward
    cls = comm.install(comm_loss_module=module)
    yield cls, original_forward
    comm.uninstall()
    sys.modules.pop(module, None)


def comm_outputs(n=48, d=16, modalities=2, seed=0, requires_grad=True):
    """CoMM.forward's dict: per view the modalities' head outputs, then the fused one (prototype -1)."""
    g = torch.Generator().manual_seed(seed)
    views = {}
    for view in ("aug1_embed", "aug2_embed"):
        views[view] = [torch.randn(n, d, generator=g, dtype=torch.float64).requires_grad_(requires_grad)
                       for _ in range(modalities + 1)]
    return {**views, "prototype": -1}


def expected_terms(outputs, lambda1, lambda2, t=2.0, views=("aug1_embed", "aug2_embed"), anchor=0):
    atp = cu = 0.0
    for view in views:
        zs = [F.normalize(z, dim=-1) for z in outputs[view][:-1]]
        atp = atp + atp_formula(zs, anchor)
        cu = cu + centroid_uniformity_formula(zs, t)
    return lambda1 * atp / len(views), lambda2 * cu / len(views)


@pytest.mark.parametrize("modalities", [2, 3])
def test_loss_gains_weighted_atp_and_cu_of_the_per_modality_embeddings(comm_loss_class, modalities):
    cls, original_forward = comm_loss_class
    loss = cls(temperature=0.2, lambda1=0.7, lambda2=1.5, t=3.0)
    assert loss.temperature == 0.2 and loss.modgap_options["lambda1"] == 0.7
    outputs = comm_outputs(modalities=modalities)
    out = loss(outputs)
    base = original_forward(loss, outputs)["loss"]
    atp, cu = expected_terms(outputs, 0.7, 1.5, t=3.0)
    torch.testing.assert_close(out["loss_atp"], atp, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["loss_cu"], cu, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(out["loss"], base + atp + cu, rtol=1e-10, atol=1e-12)
    assert {"ssl_acc", "gap"} <= set(out)  # CoMM's own keys survive; the batch gap is logged
    mu = [F.normalize(z, dim=-1).detach().mean(0) for z in outputs["aug1_embed"][:2]]
    assert out["gap"].item() == pytest.approx((mu[0] - mu[1]).norm().item(), rel=1e-9)
    assert not out["gap"].requires_grad


def test_gradients_are_those_of_the_formulas(comm_loss_class):
    cls, original_forward = comm_loss_class
    loss = cls(lambda1=1.0, lambda2=0.5)
    outputs = comm_outputs(n=20, d=8)
    leaves = outputs["aug1_embed"] + outputs["aug2_embed"]
    grads = torch.autograd.grad(loss(outputs)["loss"], leaves)
    atp, cu = expected_terms(outputs, 1.0, 0.5)
    expected = torch.autograd.grad(original_forward(loss, outputs)["loss"] + atp + cu, leaves)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_fused_embedding_is_left_out_and_options_apply(comm_loss_class):
    cls, _ = comm_loss_class
    outputs = comm_outputs(modalities=3)
    moved = dict(outputs, aug1_embed=outputs["aug1_embed"][:-1] + [outputs["aug1_embed"][-1] * 5 + 1],
                 aug2_embed=outputs["aug2_embed"][:-1] + [outputs["aug2_embed"][-1] - 2])
    terms = comm.modgap_terms(outputs, 1.0, 1.0)
    moved_terms = comm.modgap_terms(moved, 1.0, 1.0)
    torch.testing.assert_close(terms["loss_atp"], moved_terms["loss_atp"])
    torch.testing.assert_close(terms["loss_cu"], moved_terms["loss_cu"])
    # prototype at index 0: the fused embedding is the first entry
    first = {"aug1_embed": outputs["aug1_embed"][::-1], "aug2_embed": outputs["aug2_embed"][::-1], "prototype": 0}
    got = comm.modgap_terms(first, 1.0, 1.0, anchor=2, views="aug1")
    atp, cu = expected_terms(outputs, 1.0, 1.0, views=("aug1_embed",))
    torch.testing.assert_close(got["loss_atp"], atp)  # reversed order, anchor 2 = the original modality 0
    torch.testing.assert_close(got["loss_cu"], cu)
    # install()'s defaults apply when loss_kwargs do not name a key; loss_kwargs win
    comm.install(comm_loss_module=cls.__module__, lambda2=0.25)
    assert cls().modgap_options["lambda2"] == 0.25 and cls(lambda2=2.0).modgap_options["lambda2"] == 2.0
    with pytest.raises(TypeError):
        cls(not_a_comm_option=1)  # CoMM's own signature still checks the rest


def test_bad_outputs_and_options_raise_clear_errors(comm_loss_class):
    outputs = comm_outputs(modalities=1)
    with pytest.raises(ValueError, match="at least 2 modalities besides the fused embedding"):
        comm.modgap_terms(outputs, 1.0, 1.0)
    with pytest.raises(ValueError, match="prototype"):
        comm.modgap_terms(dict(comm_outputs(), prototype="last"), 1.0, 1.0)
    with pytest.raises(ValueError, match="views"):
        comm.modgap_terms(comm_outputs(), 1.0, 1.0, views="aug3")
    with pytest.raises(ValueError, match=r"outputs\['aug1_embed'\] must be a non-empty list"):
        comm.modgap_terms({"aug1_embed": torch.zeros(3, 2), "prototype": -1}, 1.0, 1.0, views="aug1")
    with pytest.raises(TypeError, match="unknown option"):
        comm.install(comm_loss_module="unused", lambda3=1.0)


def test_uninstall_restores_comm(comm_loss_class):
    cls, original_forward = comm_loss_class
    comm.uninstall()
    assert cls.forward is original_forward
    out = cls()(comm_outputs())
    assert "loss_atp" not in out and set(out) == {"loss", "ssl_acc"}


class _StandInCoMMModule(torch.nn.Module):
    """The attributes the gap callback uses: encoder(X, mask_modalities), head, gen_all_possible_masks."""

    def __init__(self, d_in=(6, 9), d=5):
        super().__init__()
        self.encoders = torch.nn.ModuleList(torch.nn.Linear(k, d, dtype=torch.float64) for k in d_in)
        self.head = torch.nn.Identity()

    @property
    def device(self):
        return torch.device("cpu")

    def gen_all_possible_masks(self, n_mod):
        return [[s == m for s in range(n_mod)] for m in range(n_mod)] + [[True] * n_mod]

    def encoder(self, X, mask_modalities):
        out = []
        for mask in mask_modalities:
            parts = [enc(x) for enc, x, on in zip(self.encoders, X, mask) if on]
            out.append(torch.stack(parts).mean(0))
        return out


def test_gap_evaluation_embeds_each_modality_and_summarizes():
    torch.manual_seed(0)
    module = _StandInCoMMModule()
    labels = torch.arange(60) % 3
    X = [torch.randn(60, 6, dtype=torch.float64) + labels[:, None] * 4, torch.randn(60, 9, dtype=torch.float64)]
    loader = [([X[0][i:i + 16], X[1][i:i + 16]], labels[i:i + 16].reshape(-1, 1, 1).float()) for i in range(0, 60, 16)]
    embeddings, y = comm.embed_modalities(module, loader)
    assert torch.equal(y, labels)
    with torch.no_grad():
        torch.testing.assert_close(embeddings["modality0"], module.encoders[0](X[0]).float())
        torch.testing.assert_close(embeddings["modality1"], module.encoders[1](X[1]).float())
    summary = comm.summarize(modgap.evaluate(embeddings, y))
    e = [F.normalize(embeddings[f"modality{i}"].double(), dim=-1).mean(0) for i in range(2)]
    assert summary["modgap_gap_modality0-modality1"] == pytest.approx((e[0] - e[1]).norm().item(), rel=1e-6)
    named, _ = comm.embed_modalities(module, loader, ["vision", "text"])  # CoMM's configured names
    assert list(named) == ["vision", "text"] and torch.equal(named["text"], embeddings["modality1"])
    assert 0.0 <= summary["modgap_v_measure"] <= 1.0 and "modgap_knn_accuracy_joint" in summary


def test_launcher_separates_its_options_from_comms_hydra_overrides(tmp_path):
    args, overrides = launcher.parse(["--comm-root", str(tmp_path), "--lambda2", "0.5", "--", "model=comm",
                                      "+model.model.loss_kwargs.lambda1=2"])
    assert args.lambda2 == 0.5 and args.lambda1 == comm.DEFAULTS["lambda1"] and args.gap_split == "test"
    assert overrides == ["model=comm", "+model.model.loss_kwargs.lambda1=2"]
    with pytest.raises(SystemExit, match="not a CoMM checkout"):
        launcher.main(["--comm-root", str(tmp_path), "--", "model=comm"])


def test_experiment_configs_give_the_table_6_commands():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    for experiment, comm_name, file in (("mosi", "mosi", "mosi_data.pkl"), ("urfunny", "humor", "humor.pkl"),
                                        ("mustard", "sarcasm", "sarcasm.pkl")):
        for loss, weight in (("comm", 0.0), ("ours", 1.0)):
            cfg = modgap.config.compose(root / "configs", "train", [
                f"+experiment={experiment}", "data.root=/data/multibench", "comm.root=/src/CoMM", f"loss={loss}",
                "comm.overrides=['trainer.devices=4']"])
            args, overrides = launcher.parse(launcher.comm_arguments(cfg, "/src/CoMM", "/out"))
            assert args.data_path == f"/data/multibench/{file}" and args.comm_root == "/src/CoMM"
            assert args.script == "main_multibench_all-mod.py"
            assert args.lambda1 == weight and args.lambda2 == weight and args.t == 2.0 and args.anchor == 0
            assert args.normalize is True
            assert overrides[:2] == [f"data.data_module.dataset={comm_name}", "model=comm"]
            assert {"trainer.max_epochs=100", "optim.lr=0.0001", "optim.weight_decay=0.01", "seed=42",
                    "data.data_module.batch_size=64", "trainer.default_root_dir=/out",
                    f"+exp_name={experiment}_{loss}_seed42"} <= set(overrides)
            assert overrides[-1] == "trainer.devices=4"


def test_table_6_commands_refuse_a_loss_the_patch_does_not_implement():
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    common = ["+experiment=mosi", "data.root=/data/multibench", "comm.root=/src/CoMM"]
    for overrides, dropped in ((["loss=notagap"], "'alignment', 'uniformity'"),
                               (["loss=ours", "+loss.sparsify_epochs=1"], "'sparsify_epochs'"),
                               (["loss=ours_no_infonce"], "'contrastive'")):
        cfg = modgap.config.compose(root / "configs", "train", [*common, *overrides])
        with pytest.raises(ValueError, match=rf"modgap's CoMM patch: loss=\w+ sets \[{dropped}\]"):
            launcher.comm_arguments(cfg, "/src/CoMM", "/out")
    # what the patch implements reaches its command line: eq. 9 as printed, another anchor
    cfg = modgap.config.compose(root / "configs", "train", [*common, "loss=ours", "loss.normalize=false", "loss.anchor=1"])
    args, _ = launcher.parse(launcher.comm_arguments(cfg, "/src/CoMM", "/out"))
    assert args.normalize is False and args.anchor == 1
    with pytest.raises(SystemExit):
        launcher.parse(["--comm-root", "/src/CoMM", "--normalize", "no"])


def test_data_path_redirects_comms_affect_data_set(tmp_path, monkeypatch):
    (tmp_path / "dataset" / "affect").mkdir(parents=True)
    (tmp_path / "dataset" / "__init__.py").write_text("")
    (tmp_path / "dataset" / "affect" / "__init__.py").write_text("")
    (tmp_path / "dataset" / "affect" / "get_data.py").write_text(textwrap.dedent('''
        class Affect:
            def __init__(self, data_path, dataset, split="train", modalities=("vision", "audio", "text")):
                self.data_path, self.dataset, self.split = data_path, dataset, split
        '''))
    for name in ("dataset", "dataset.affect", "dataset.affect.get_data"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        launcher.redirect_affect_data("/data/mosi_data.pkl")
        launcher.redirect_affect_data("/data/humor.pkl")  # a second call replaces the first, no nesting
        from dataset.affect.get_data import Affect
        data = Affect("/path/to/mosi/mosi_data.pkl", dataset="mosi", split="valid")
        assert (data.data_path, data.dataset, data.split) == ("/data/humor.pkl", "mosi", "valid")
    finally:
        for name in ("dataset", "dataset.affect", "dataset.affect.get_data"):
            sys.modules.pop(name, None)
