"""The OpenCLIP 3.3.0 patch: OpenCLIP's real main() in-process with a tiny model on a few real digit
images, the loss wrapper's gradients (both towers, gradient accumulation), the distributed form under
gloo (2 processes), the scheduled variant and the version guard."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")
pytest.importorskip("open_clip_train")

import modgap  # noqa: E402
from modgap.patches.open_clip import ModGapLoss, launcher  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TINY = modgap.config.compose(ROOT / "configs", "train", [])["model"]
OURS = modgap.config.compose(ROOT / "configs", "train", ["loss=ours"])["loss"]


@pytest.fixture(scope="module")
def digits_csv(tmp_path_factory):
    from PIL import Image
    from sklearn.datasets import load_digits
    root = tmp_path_factory.mktemp("digits")
    digits = load_digits()
    rows = []
    for i in range(96):
        path = root / f"{i}.png"
        gray = (digits.images[i] / 16 * 255).astype(np.uint8)
        Image.fromarray(gray).resize((32, 32)).convert("RGB").save(path)
        rows.append(f"{path}\thandwritten {digits.target[i]}")
    (root / "data.tsv").write_text("filepath\ttitle\n" + "\n".join(rows) + "\n")
    np.savetxt(root / "labels.txt", digits.target[:96], fmt="%d")
    return root


def _run_main(digits_csv, tmp_path, name, *extra):
    argv = ["--train-data", str(digits_csv / "data.tsv"), "--val-data", str(digits_csv / "data.tsv"),
            "--dataset-type", "csv", "--model", TINY["name"], "--epochs", "1", "--batch-size", "16", "--lr", "1e-3",
            "--warmup", "1", "--workers", "0", "--precision", "fp32", "--device", "cpu", "--name", name,
            "--modgap-logs", str(tmp_path), "--log-every-n-steps", "1", "--save-frequency", "0",
            "--modgap-config", str(ROOT / "configs" / "train.yaml"), "--modgap-val-labels", str(digits_csv / "labels.txt"),
            *extra]
    assert launcher.main(argv) != -1
    return tmp_path / name


def test_openclip_main_logs_our_loss_terms_and_metrics(digits_csv, tmp_path):
    run = _run_main(digits_csv, tmp_path, "ours", "--modgap-override", "loss.lambda2=0.5", "--accum-freq", "2")
    log = (run / "out.log").read_text()
    assert "Atp_loss:" in log and "Cu_loss:" in log and "Contrastive_loss:" in log
    values = [float(line.split("Atp_loss: ")[1].split()[0]) for line in log.splitlines() if "Atp_loss: " in line]
    assert values and all(math.isfinite(v) and v > 0 for v in values)
    assert "Logit Scale: 14.28" in log                                  # ours: fixed temperature 0.07
    results = [json.loads(line) for line in (run / "checkpoints" / "results.jsonl").read_text().splitlines()]
    for key in ("modgap_gap", "modgap_cos_tp", "modgap_rmg", "modgap_av_image", "modgap_av_text", "modgap_v_measure",
                "modgap_knn_accuracy", "image_to_text_R@1", "modgap_tmr", "modgap_imr", "modgap_fid"):
        assert key in results[-1] and math.isfinite(results[-1][key]), key
    assert results[-1]["modgap_itr"] >= 0 and results[-1]["modgap_tir"] >= 0  # inf when no neighbour crosses
    params = (run / "params.txt").read_text()
    assert "modgap:" in params and "'lambda2': 0.5" in params


def test_openclip_clip_lt_keeps_openclip_loss_and_learns_the_temperature(digits_csv, tmp_path):
    run = _run_main(digits_csv, tmp_path, "clip_lt", "--modgap-override", "loss=clip_lt", "--lr", "1e-2")
    log = (run / "out.log").read_text()
    assert "Atp_loss" not in log and "Cu_loss" not in log
    scales = [float(line.split("Logit Scale: ")[1].split()[0]) for line in log.splitlines() if "Logit Scale: " in line]
    assert scales[-1] != pytest.approx(14.2857, abs=1e-3)             # learnable: it moved


def _tiny_model():
    launcher._register_model_config({"model": TINY})
    torch.manual_seed(0)
    return open_clip.create_model(TINY["name"], output_dict=True)


def _batch(n=12):
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(n, 3, 32, 32, generator=generator)
    texts = open_clip.get_tokenizer(TINY["name"])([f"handwritten {i % 10}" for i in range(n)])
    return images, texts


def test_terms_reach_both_towers():
    model = _tiny_model()
    images, texts = _batch()
    out = model(images, texts)
    loss = ModGapLoss(open_clip.ClipLoss(), OURS)
    terms = loss(**out, output_dict=True)
    assert set(terms) == {"contrastive_loss", "atp_loss", "cu_loss"}
    (terms["atp_loss"] + terms["cu_loss"]).backward()
    visual = [p.grad for p in model.visual.parameters() if p.grad is not None]
    text = [p.grad for p in model.transformer.parameters() if p.grad is not None]
    assert visual and text
    assert sum(g.abs().sum() for g in visual) > 0 and sum(g.abs().sum() for g in text) > 0


def test_contrastive_weight_drops_infonce_for_table_8():
    model = _tiny_model()
    images, texts = _batch()
    out = model(images, texts)
    full = ModGapLoss(open_clip.ClipLoss(), OURS)(**out, output_dict=True)
    ablation = modgap.config.compose(ROOT / "configs", "train", ["loss=ours_no_infonce"])["loss"]
    assert ablation["contrastive"] == 0.0 and ablation["lambda1"] == ablation["lambda2"] == 1.0
    terms = ModGapLoss(open_clip.ClipLoss(), ablation)(**out, output_dict=True)
    assert terms["contrastive_loss"].item() == 0.0
    torch.testing.assert_close(terms["atp_loss"], full["atp_loss"])
    torch.testing.assert_close(terms["cu_loss"], full["cu_loss"])
    half = ModGapLoss(open_clip.ClipLoss(), {**OURS, "contrastive": 0.5})(**out, output_dict=True)
    torch.testing.assert_close(half["contrastive_loss"], 0.5 * full["contrastive_loss"])
    total = ModGapLoss(open_clip.ClipLoss(), ablation)(**out)
    total.backward()  # the logit scale stays in the graph with a zero gradient (no unused parameter under DDP)
    assert model.logit_scale.grad is not None and model.logit_scale.grad.item() == 0.0
    torch.testing.assert_close(total, full["atp_loss"] + full["cu_loss"])


def test_sparsify_epochs_train_on_joint_uniformity_first_then_the_configured_loss():
    """Fig. 8: during the first `sparsify_epochs` epochs the loss is Wang & Isola's lunif over the union of
    both modalities' embeddings (torch.pdist, as their code), the configured terms are off; afterwards the
    configured loss is back unchanged."""
    model = _tiny_model()
    images, texts = _batch()
    out = model(images, texts)
    config = {**OURS, "sparsify_epochs": 2}
    loss = ModGapLoss(open_clip.ClipLoss(), config)
    union = torch.cat([out["image_features"], out["text_features"]]).double()
    lunif = torch.pdist(union, p=2).pow(2).mul(-2.0).exp().mean().log()
    for epoch in (0, 1):
        loss.epoch = epoch
        terms = loss(**out, output_dict=True)
        assert set(terms) == {"contrastive_loss", "sparsify_loss"} and terms["contrastive_loss"].item() == 0.0
        torch.testing.assert_close(terms["sparsify_loss"].double(), lunif, rtol=1e-5, atol=1e-6)
    total = loss(**out)
    total.backward()  # logit_scale stays in the graph (zero gradient), the towers get lunif's gradient
    assert model.logit_scale.grad.item() == 0.0
    assert sum(p.grad.abs().sum() for p in model.visual.parameters() if p.grad is not None) > 0
    loss.epoch = 2
    after = loss(**out, output_dict=True)
    full = ModGapLoss(open_clip.ClipLoss(), OURS)(**out, output_dict=True)
    assert set(after) == set(full)
    for key in full:
        torch.testing.assert_close(after[key], full[key])


def test_accumulation_gives_the_full_batch_gradient():
    # open_clip_train.train with --accum-freq k: features of all k chunks are cached without grad, then
    # chunk j is recomputed with grad and the loss sees cat(cached[:j] + [fresh_j] + cached[j+1:]); the
    # k backward passes are summed (openclip.md §2.5). Our terms must then equal one full-batch step.
    model = _tiny_model().double()
    images, texts = _batch(12)
    images = images.double()
    loss = ModGapLoss(lambda **kw: {}, OURS)

    def terms(out):
        t = loss(image_features=out["image_features"], text_features=out["text_features"], output_dict=True)
        return t["atp_loss"] + t["cu_loss"]

    model.zero_grad()
    terms(model(images, texts)).backward()
    full = [p.grad.clone() for p in model.parameters() if p.grad is not None]

    model.zero_grad()
    chunks = [(images[:6], texts[:6]), (images[6:], texts[6:])]
    with torch.no_grad():
        cached = [model(i, t) for i, t in chunks]
    for j, (i, t) in enumerate(chunks):
        fresh = model(i, t)
        out = {key: torch.cat([cached[c][key] if c != j else fresh[key] for c in range(len(chunks))])
               for key in ("image_features", "text_features")}
        terms(out).backward()
    accumulated = [p.grad for p in model.parameters() if p.grad is not None]
    assert len(full) == len(accumulated)
    for a, b in zip(full, accumulated):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-12)


def _encoders_and_data(sizes):
    torch.manual_seed(0)
    encoders = (torch.nn.Linear(8, 6).double(), torch.nn.Linear(5, 6).double())
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(sum(sizes), 8, generator=generator, dtype=torch.float64)
    y = torch.randn(sum(sizes), 5, generator=generator, dtype=torch.float64)
    return encoders, x, y


def _flat_grads(encoders):
    return torch.cat([p.grad.flatten() for e in encoders for p in e.parameters()])


def _distributed_worker(rank, world_size, init_file, result_dir, sizes, gather_with_grad):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    (encoder_i, encoder_t), x, y = _encoders_and_data(sizes)
    start = sum(sizes[:rank])

    class Args:
        pass
    args = Args()
    args.world_size, args.rank, args.gather_with_grad, args.horovod = world_size, rank, gather_with_grad, False
    loss = ModGapLoss(lambda **kw: {}, OURS, args)
    img = F.normalize(encoder_i(x[start:start + sizes[rank]]), dim=-1)
    txt = F.normalize(encoder_t(y[start:start + sizes[rank]]), dim=-1)
    terms = loss(image_features=img, text_features=txt, output_dict=True)
    value = terms["atp_loss"] + terms["cu_loss"]
    value.backward()
    grads = _flat_grads((encoder_i, encoder_t))
    dist.all_reduce(grads)
    grads /= world_size                                                  # DDP averages gradients
    torch.save({"value": value.detach(), "grads": grads}, os.path.join(result_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def _single_process(sizes):
    (encoder_i, encoder_t), x, y = _encoders_and_data(sizes)
    img, txt = F.normalize(encoder_i(x), dim=-1), F.normalize(encoder_t(y), dim=-1)
    value = OURS["lambda1"] * modgap.atp_loss([img, txt]) + OURS["lambda2"] * modgap.centroid_uniformity([img, txt])
    value.backward()
    return value.detach(), _flat_grads((encoder_i, encoder_t))


@pytest.mark.parametrize("gather_with_grad", [True, False])
def test_two_process_gloo_matches_single_process(tmp_path, gather_with_grad):
    import torch.multiprocessing as mp
    sizes = [7, 7]
    mp.spawn(_distributed_worker, args=(2, str(tmp_path / "init"), str(tmp_path), sizes, gather_with_grad), nprocs=2)
    value, grads = _single_process(sizes)
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(result["value"], value, rtol=1e-12, atol=1e-12)
        # gather_with_grad: exactly the single-process gradient after DDP averaging (as ClipLoss);
        # without it, 1/world_size of it (as ClipLoss in that mode; documented).
        expected = grads if gather_with_grad else grads / 2
        torch.testing.assert_close(result["grads"], expected, rtol=1e-9, atol=1e-12)


def test_scheduled_weights_follow_the_reference_schedule():
    scheduled = modgap.config.compose(ROOT / "configs", "train", ["loss=ours_scheduled"])["loss"]
    loss = ModGapLoss(lambda **kw: {}, scheduled, epochs=100)
    expected = {0: (1.0, 1.0), 20: (1.0, 1.0), 45: (1.0, 0.5), 60: (1.2, 0.2), 80: (1.6, 0.0), 100: (2.0, 0.0)}
    for epoch, (alpha, beta) in expected.items():
        loss.epoch = epoch
        assert loss.weights() == pytest.approx((alpha, beta)), epoch


def test_notagap_terms():
    notagap = modgap.config.compose(ROOT / "configs", "train", ["loss=notagap", "loss.cross_uniformity=1.0"])["loss"]
    generator = torch.Generator().manual_seed(4)
    img = F.normalize(torch.randn(9, 4, generator=generator, dtype=torch.float64), dim=-1)
    txt = F.normalize(torch.randn(9, 4, generator=generator, dtype=torch.float64), dim=-1)
    terms = ModGapLoss(lambda **kw: {}, notagap)(image_features=img, text_features=txt, output_dict=True)
    lunif = lambda z: torch.pdist(z).pow(2).mul(-2).exp().mean().log()  # noqa: E731  Wang & Isola
    torch.testing.assert_close(terms["uniformity_loss"], 0.5 * (lunif(img) + lunif(txt)))
    torch.testing.assert_close(terms["alignment_loss"], (img - txt).pow(2).sum(1).mean())
    sq = torch.cdist(img, txt).pow(2)
    off = ~torch.eye(9, dtype=torch.bool)
    torch.testing.assert_close(terms["cross_uniformity_loss"], sq[off].mul(-2).exp().mean().log())


def test_atp_uniformity_terms():
    """Table 11's arm: ATP plus Wang & Isola's per-modality uniformity, no centroid term."""
    config = modgap.config.compose(ROOT / "configs", "train", ["loss=atp_uniformity"])["loss"]
    generator = torch.Generator().manual_seed(5)
    img = F.normalize(torch.randn(11, 6, generator=generator, dtype=torch.float64), dim=-1)
    txt = F.normalize(torch.randn(11, 6, generator=generator, dtype=torch.float64), dim=-1)
    terms = ModGapLoss(lambda **kw: {}, config)(image_features=img, text_features=txt, output_dict=True)
    lunif = lambda z: torch.pdist(z).pow(2).mul(-2).exp().mean().log()  # noqa: E731  Wang & Isola
    assert set(terms) == {"uniformity_loss", "alignment_loss"}
    torch.testing.assert_close(terms["uniformity_loss"], 0.5 * (lunif(img) + lunif(txt)))
    torch.testing.assert_close(terms["alignment_loss"], (img - txt).pow(2).sum(1).mean())
    assert config["temperature"] == 0.07 and config["learnable_temperature"] is False


def test_gap_metrics_match_the_ops_and_follow_the_eval_protocol():
    generator = torch.Generator().manual_seed(6)
    image = F.normalize(torch.randn(40, 8, generator=generator), dim=-1)
    text = F.normalize(torch.randn(40, 8, generator=generator) + 0.5, dim=-1)
    labels = torch.arange(40) % 4
    metrics = launcher.gap_metrics(image, text, labels)
    expected = modgap.fill_gap_stats(image, text, 1)
    for key in ("itr", "tir", "tmr", "imr", "fid"):
        assert metrics[f"modgap_{key}"] == expected[key], key
    assert metrics["modgap_gap"] == pytest.approx(modgap.gap_stats([image, text])["gap"][0, 1].item())
    assert 0 <= metrics["modgap_v_measure"] <= 1

    class Args:
        modgap = {"eval": {"fill_gap_k": 3}}
    with_k3 = launcher.gap_metrics(image, text, None, Args())
    assert with_k3["modgap_itr"] == modgap.fill_gap_stats(image, text, 3)["itr"] != metrics["modgap_itr"]
    Args.modgap = {"eval": {"fill_gap_k": 0}}
    assert not any(key.startswith(("modgap_itr", "modgap_tmr")) for key in launcher.gap_metrics(image, text, None, Args()))
    # every protocol key of the config reaches the V-measure and kNN scores, not only knn_k / n_init / seed
    protocol = {"test_fraction": 0.5, "knn_metric": "euclidean", "knn_k": 3, "n_clusters": 2, "seed": 4}
    Args.modgap = {"eval": protocol}
    chosen = launcher.gap_metrics(image, text, labels, Args())
    expected = modgap.evaluate({"image": image, "text": text}, labels, ks=(1,), fill_gap_k=0, probe_max_iter=0,
                               **protocol)
    assert chosen["modgap_knn_accuracy"] == expected["knn"]["accuracy"]["joint"]
    assert chosen["modgap_v_measure"] == expected["clustering"]["v_measure"]
    assert expected["protocol"]["test_fraction"] == 0.5 and expected["clustering"]["n_clusters"] == 2
    Args.modgap = {"eval": {"knn_k": 3, "seed": 4}}                    # the chosen protocol changes the scores
    assert launcher.gap_metrics(image, text, labels, Args())["modgap_knn_accuracy"] != chosen["modgap_knn_accuracy"]


def test_a_mistyped_eval_key_fails_at_launch(tmp_path):
    # before OpenCLIP reads data or builds a model, not after the first epoch's validation
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['knn_metrc'\] in the `eval` section"):
        launcher.main(["--logs", str(tmp_path), "--modgap-config", str(ROOT / "configs" / "train.yaml"),
                       "--modgap-override", "+eval.knn_metrc=euclidean"])


def test_version_guard(monkeypatch):
    monkeypatch.setattr(open_clip, "__version__", "3.2.0")
    with pytest.raises(RuntimeError, match=r"patches open_clip_torch==3.3.0 .* but open_clip_torch 3.2.0 is installed"):
        launcher._check_version()


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown option 'nope' for config group 'loss'"):
        launcher.compose_modgap_config(launcher.modgap_argument_parser().parse_args(
            ["--modgap-config", str(ROOT / "configs" / "train.yaml"), "--modgap-override", "loss=nope"]))


def test_shorthands_without_a_config_file():
    options = launcher.modgap_argument_parser().parse_args(
        ["--modgap-lambda2", "0.5", "--modgap-fixed-temperature", "0.1", "--modgap-logs", "/tmp/x"])
    loss = launcher.compose_modgap_config(options)["loss"]
    assert loss["name"] == "ours" and loss["lambda1"] == 1.0 and loss["lambda2"] == 0.5
    assert loss["learnable_temperature"] is False and loss["temperature"] == 0.1
    default = launcher.compose_modgap_config(launcher.modgap_argument_parser().parse_args([]))["loss"]
    assert default["learnable_temperature"] is True                   # OpenCLIP's own temperature by default


def test_a_loss_setting_the_patch_would_drop_is_refused(tmp_path):
    # every shipped loss config is accepted as it is
    for path in sorted((ROOT / "configs" / "loss").glob("*.yaml")):
        config = modgap.config.compose(ROOT / "configs", "train", [f"loss={path.stem}"])["loss"]
        ModGapLoss(lambda **kw: {}, config)
    notagap = modgap.config.compose(ROOT / "configs", "train", ["loss=notagap", "loss.lambda1=1"])["loss"]
    with pytest.raises(ValueError, match=r"loss=notagap sets \['lambda1'\], which modgap's OpenCLIP patch does not "
                                         r"implement for it .* the run would silently train another loss"):
        ModGapLoss(lambda **kw: {}, notagap)
    for extra, dropped in ((["+loss.alignment=1"], "alignment"), (["loss.normalize=false"], None),
                           (["+loss.schedule={alpha_end: 2}"], "schedule"), (["+loss.uniformity=0"], None)):
        config = modgap.config.compose(ROOT / "configs", "train", ["loss=ours", *extra])["loss"]
        if dropped is None:
            ModGapLoss(lambda **kw: {}, config)  # normalize=false is the patch's; a zero weight drops nothing
        else:
            with pytest.raises(ValueError, match=rf"loss=ours sets \['{dropped}'\]"):
                ModGapLoss(lambda **kw: {}, config)
    for override, message in (("loss.lambda1=abc", r"`loss.lambda1` must be a number, got 'abc'"),
                              ("loss.lambda2=true", r"`loss.lambda2` must be a number, got True")):
        config = modgap.config.compose(ROOT / "configs", "train", ["loss=ours", override])["loss"]
        with pytest.raises(ValueError, match=message):
            ModGapLoss(lambda **kw: {}, config)
    # at launch, before OpenCLIP reads data or builds a model
    for override, message in (("+loss.lamda1=1", r"unknown key\(s\) \['lamda1'\] in the `loss` section"),
                              ("loss.lambda2=1", r"loss=notagap sets \['lambda2'\]")):
        with pytest.raises(ValueError, match=message):
            launcher.main(["--logs", str(tmp_path), "--modgap-config", str(ROOT / "configs" / "train.yaml"),
                           "--modgap-override", "loss=notagap", "--modgap-override", override])


# ---- Yaras et al.'s temperature scheduling (loss=clip_ts) ----

def test_scheduled_temperature_rises_linearly():
    schedule = {"start": 0.01, "end": 0.05}
    values = [launcher.scheduled_temperature(schedule, step, 8) for step in range(9)]
    assert values == pytest.approx([0.01 + 0.005 * s for s in range(9)], abs=1e-15)
    assert launcher.scheduled_temperature(schedule, 20, 8) == pytest.approx(0.05)  # clamped at the end


def test_temperature_schedule_needs_a_frozen_temperature():
    model = _tiny_model()  # learnable logit_scale
    with pytest.raises(ValueError, match="loss.temperature_schedule needs a fixed temperature"):
        launcher.scheduled_temperature_step(model, {"start": 0.01, "end": 0.05}, 10, None)


def test_openclip_clip_ts_sets_the_scheduled_temperature_every_step(digits_csv, tmp_path):
    """Two epochs of 6 steps each (96 rows, batch 16): the logged logit scale of step s is 1 / T(s) with
    T rising linearly from 0.01 to 0.05 over the 12 steps."""
    config = modgap.config.compose(ROOT / "configs", "train", ["loss=clip_ts"])["loss"]
    assert config["temperature_schedule"] == {"start": 0.01, "end": 0.05} and not config["learnable_temperature"]
    run = _run_main(digits_csv, tmp_path, "clip_ts", "--modgap-override", "loss=clip_ts", "--epochs", "2")
    log = (run / "out.log").read_text()
    scales = [float(line.split("Logit Scale: ")[1].split()[0]) for line in log.splitlines() if "Logit Scale: " in line]
    expected = [1.0 / (0.01 + 0.04 * step / 12) for step in range(12)]
    assert scales == pytest.approx(expected, abs=1e-3)
    assert "Atp_loss" not in log and "Cu_loss" not in log
