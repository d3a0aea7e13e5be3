"""The scripts behind the paper's Fig. 1 (scripts/gap_shift.py: a post-hoc gap sweep) and Table 9
(scripts/sweep.py: a multirun of the main job), checked against modgap.evaluate / the config composer."""
from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

import modgap

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import gap_shift  # noqa: E402


def _clustered_pairs(seed: int = 0, classes: int = 6, n: int = 240, dim: int = 24, offset: float = 0.8):
    g = torch.Generator().manual_seed(seed)
    centers = torch.nn.functional.normalize(torch.randn(classes, dim, generator=g), dim=1)
    labels = torch.arange(n) % classes
    shift = torch.nn.functional.normalize(torch.randn(dim, generator=g), dim=0)
    x = centers[labels] + 0.35 * torch.randn(n, dim, generator=g) + offset * shift
    y = centers[labels] + 0.35 * torch.randn(n, dim, generator=g) - offset * shift
    return x, y, labels


@pytest.mark.parametrize("target", [0.0, 0.05, 0.3, 0.9, 1.4])
def test_shift_to_gap_reaches_the_target(target):
    x, y, _ = _clustered_pairs()
    xs, ys, _ = gap_shift.shift_to_gap(x, y, target, tol=1e-4)
    assert abs(float(modgap.gap_stats([xs, ys])["gap"][0, 1]) - target) <= 1e-4
    # still unit rows, and each pair moved along one line: the row-wise cosine to the original stays high
    assert torch.allclose(xs.norm(dim=1), torch.ones(len(xs), dtype=xs.dtype), atol=1e-12)


def test_shift_to_gap_refuses_an_unreachable_gap():
    x, y, _ = _clustered_pairs()
    with pytest.raises(ValueError, match="above the largest reachable gap"):
        gap_shift.shift_to_gap(x, y, 2.5)


def test_gap_shift_rows_are_modgap_evaluate_on_the_shifted_embeddings(tmp_path, capsys):
    x, y, labels = _clustered_pairs()
    path = tmp_path / "emb.pt"
    torch.save({"embeddings": {"image": x, "text": y}, "labels": labels}, path)
    gap_shift.main(["--embeddings", str(path), "--max-gap", "1.0", "--steps", "4", "--n-init", "3"])
    result = json.loads((tmp_path / "emb_gap_shift.json").read_text())
    trained = float(modgap.gap_stats([x, y])["gap"][0, 1])
    assert abs(result["trained_gap"] - trained) < 1e-6
    assert [r["target_gap"] for r in result["rows"]] == sorted([0.0, 0.25, 0.5, 0.75, 1.0, round(trained, 6)])
    for row in result["rows"]:
        xs, ys, _ = (x, y, 0) if row["trained"] else gap_shift.shift_to_gap(x, y, row["target_gap"])
        expected = modgap.evaluate({"image": xs.float(), "text": ys.float()}, labels, n_init=3, fill_gap_k=0,
                                   probe_max_iter=0)
        assert abs(row["gap"] - row["target_gap"]) < 2e-4 or row["trained"]
        assert row["v_measure"] == pytest.approx(100 * expected["clustering"]["v_measure"], abs=1e-9)
        assert row["recall_1"]["image->text"] == pytest.approx(
            100 * expected["pairs"]["image-text"]["recall"]["image->text"]["R@1"], abs=1e-9)
    # the synthetic offset separates the modalities: closing the gap clusters by class (Fig. 1's claim)
    by_gap = {r["target_gap"]: r["v_measure"] for r in result["rows"]}
    assert by_gap[0.0] > by_gap[round(trained, 6)] + 10
    assert (tmp_path / "emb_gap_shift.md").exists()
    assert (tmp_path / "emb_gap_shift.png").exists() == (importlib.util.find_spec("matplotlib") is not None)
    assert "(trained)" in capsys.readouterr().out


def test_gap_shift_reads_a_flat_dict_and_names_bad_files(tmp_path):
    x, y, labels = _clustered_pairs(n=60)
    flat = tmp_path / "flat.pt"
    torch.save({"image": x, "text": y, "labels": labels}, flat)
    embeddings, read_labels = gap_shift.load_embeddings(flat)
    assert list(embeddings) == ["image", "text"] and torch.equal(read_labels, labels)
    no_labels = tmp_path / "nolabels.pt"
    torch.save({"image": x, "text": y}, no_labels)
    with pytest.raises(SystemExit, match="no integer tensor under 'labels'"):
        gap_shift.load_embeddings(no_labels)
    with pytest.raises(SystemExit, match="--pair must name two of"):
        gap_shift.main(["--embeddings", str(flat), "--pair", "image,audio"])


# ---- scripts/sweep.py (Table 9) ----

def _fake_results(jobs, scores):
    return [{"overrides": job, "scores": {"gap": 0.1, "cos_tp": 0.5, "recall_i2t": r, "recall_t2i": r, "v_measure": v,
                                          "knn_joint": 90.0, "average": (r + v) / 2}} for job, (r, v) in zip(jobs, scores)]


def test_sweep_table_is_table9s_grid():
    import sweep
    jobs = modgap.config.sweep(["loss.lambda1=0,1", "loss.lambda2=0,0.5,1", "epochs=3"])
    assert sweep.swept_keys(jobs) == ["loss.lambda1", "loss.lambda2"]
    scores = [(79.0, 61.0), (80.0, 62.0), (86.0, 66.0), (81.0, 66.0), (78.0, 61.0), (84.0, 71.0)]
    table = sweep.render_table(jobs, _fake_results(jobs, scores)).splitlines()
    assert table[0] == "| loss.lambda1 \\ loss.lambda2 | 0 | 0.5 | 1 |"
    assert table[2].startswith("| 0 | R@1: 79.00<br>V: 61.00<br>Avg: 70.00 |")
    assert "R@1: **86.00**" in table[2] and "R@1: <u>84.00</u>" in table[3]
    assert "V: **71.00**" in table[3] and table[3].count("V: <u>66.00</u>") == 1 and table[2].count("V: <u>66.00</u>") == 1
    assert "Avg: **77.50**" in table[3]


def test_sweep_table_lists_jobs_for_other_sweeps():
    import sweep
    jobs = modgap.config.sweep(["loss=clip_lt,ours"])
    table = sweep.render_table(jobs, _fake_results(jobs, [(80.0, 60.0), (82.0, 70.0)])).splitlines()
    assert len(table) == 4 and "| 1 | loss=ours |" in table[3] and "**82.00**" in table[3]


def test_sweep_trains_every_job_and_reuses_finished_ones(tmp_path, capsys):
    pytest.importorskip("open_clip_train")
    import sweep
    overrides = ["loss.lambda2=0,1", "epochs=1", f"data.root={tmp_path}", "eval.test_fraction=0.5",
                 "+eval.knn_metric=euclidean"]
    sweep.main(overrides)
    results = json.loads((tmp_path / "sweep" / "sweep_results.json").read_text())
    assert [r["overrides"] for r in results] == modgap.config.sweep(overrides)
    for result in results:
        # the config's whole eval protocol reaches the evaluation; the table's needs switch the rest off
        protocol = result["evaluation"]["protocol"]
        assert protocol["test_fraction"] == 0.5 and protocol["knn_metric"] == "euclidean"
        assert protocol["probe_max_iter"] == 0 and protocol["fill_gap_k"] == 0
        # each job's scores are its own evaluation, and its training used the job's lambda2
        assert result["scores"]["v_measure"] == pytest.approx(100 * result["evaluation"]["clustering"]["v_measure"])
        logged = [json.loads(line) for line in (Path(result["run_dir"]) / "checkpoints" / "results.jsonl").read_text().splitlines()]
        assert logged and "modgap_gap" in logged[-1]
        lambda2 = modgap.config.compose(ROOT / "configs", "train", result["overrides"])["loss"]["lambda2"]
        assert f"'lambda2': {lambda2}," in (Path(result["run_dir"]) / "params.txt").read_text()
    table = (tmp_path / "sweep" / "table.md").read_text()
    assert "loss=ours" not in table and "loss.lambda2=0" in table and "loss.lambda2=1" in table
    capsys.readouterr()
    sweep.main(overrides)  # both jobs are in the results file: nothing is trained again
    assert capsys.readouterr().out.count("already") == 2


# ---- scripts/ablations.py (Tables 2, 4, 8, 10, 11) ----

def test_ablation_jobs_run_every_arm_per_sweep_job_with_user_overrides_last():
    import ablations
    arms = [a for a in ablations.ARMS if a[0] in ("clip_lt", "ours_no_cu")]
    jobs = ablations.arm_jobs(arms, ["seed=0,1", "epochs=3"])
    assert jobs == [("clip_lt", ["loss=clip_lt", "seed=0", "epochs=3"]),
                    ("ours_no_cu", ["loss=ours", "loss.lambda2=0", "seed=0", "epochs=3"]),
                    ("clip_lt", ["loss=clip_lt", "seed=1", "epochs=3"]),
                    ("ours_no_cu", ["loss=ours", "loss.lambda2=0", "seed=1", "epochs=3"])]
    # every arm composes to the loss its paper table describes
    for key, _, overrides, _ in ablations.ARMS:
        loss = modgap.config.compose(ROOT / "configs", "train", overrides)["loss"]
        assert loss["name"] == {"ours_no_cu": "ours"}.get(key, key)
        if key == "ours_no_cu":
            assert loss["lambda2"] == 0 and loss["lambda1"] == 1.0
        if key == "ours_no_infonce":
            assert loss["contrastive"] == 0


def test_ablations_table_is_mean_and_std_of_each_arms_evaluations(tmp_path, capsys):
    """With every run already in the results file nothing trains: the tables are the mean and sample
    standard deviation of the stored modgap.evaluate results, per arm, best mean in bold."""
    import ablations
    overrides = ["seed=0,1,2", f"data.root={tmp_path}"]
    keys = ["clip_lt", "ours"]
    jobs = ablations.arm_jobs([a for a in ablations.ARMS if a[0] in keys], overrides)
    results, gaps = [], {}
    for index, (key, job) in enumerate(jobs):
        x, y, labels = _clustered_pairs(seed=index, offset=0.8 if key == "clip_lt" else 0.1)
        evaluation = modgap.evaluate({"image": x, "text": y}, labels, n_init=2)
        gaps.setdefault(key, []).append(evaluation["pairs"]["image-text"]["gap"])
        results.append({"overrides": job, "scores": {}, "evaluation": evaluation, "run_dir": ""})
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "ablation_results.json").write_text(json.dumps(results))
    ablations.main(["--arms", ",".join(keys), *overrides])
    out = capsys.readouterr().out
    assert out.count("already") == 6
    rows = {}  # the first table (space measures) has the gap
    for line in out.splitlines():
        if line.startswith(("| CLIP (LT) |", "| Ours |")):
            rows.setdefault(line.split(" | ")[0].lstrip("| "), line)
    for key, title in (("clip_lt", "CLIP (LT)"), ("ours", "Ours")):
        values = torch.tensor(gaps[key], dtype=torch.float64)
        expected = f"{values.mean():.3f} ± {values.std():.3f}"  # torch's std is the sample std
        assert f"| {title} | " in rows[title] and expected in rows[title]
        assert rows[title].split(" | ")[2] == "3"
    assert f"**{torch.tensor(gaps['ours'], dtype=torch.float64).mean():.3f}" in rows["Ours"]  # the lower gap is the best
    assert (tmp_path / "ablations" / "table.md").read_text().count("| Ours |") == 2


def test_ablations_name_an_unknown_arm():
    import ablations
    with pytest.raises(SystemExit, match="--arms: unknown arm.*clip_xx.*expected some of clip_lt"):
        ablations.main(["--arms", "clip_lt,clip_xx"])


# ---- scripts/sparsify_init.py (App. A.3, Fig. 8) ----

def test_sparsify_runs_compose_to_the_loss_with_the_uniformity_phase():
    import sparsify_init
    runs = sparsify_init.runs(2)
    assert [title for title, _, _ in runs] == ["InfoNCE", "InfoNCE, sparsified first", "Ours", "Ours, sparsified first"]
    for title, overrides, sparsified in runs:
        loss = modgap.config.compose(ROOT / "configs", "train", overrides)["loss"]
        assert loss["name"] == ("clip_lt" if title.startswith("InfoNCE") else "ours")
        assert loss.get("sparsify_epochs", 0) == (2 if sparsified else 0)


def test_sparsify_table_reads_the_gap_per_epoch_and_the_snapshots():
    import sparsify_init
    snap = {"gap": 1.2, "cos_tp": 0.1, "av_image": 0.9, "av_text": 0.7}
    result = {"title": "InfoNCE, sparsified first", "sparsified": True, "v_measure": 40.5, "recall_i2t": 1.9,
              "gap_per_epoch": [0.2 + 0.01 * e for e in range(12)],
              "snapshots": {"0": snap, "1": {**snap, "gap": 0.2, "av_image": 0.05, "av_text": 0.01}, "12": snap}}
    table = sparsify_init.render_table([result], 1, 12).splitlines()
    assert table[0].startswith("| Run | gap at init | epoch 1 | epoch 2 | epoch 3 | epoch 5 | epoch 10 | epoch 12 |")
    assert table[2] == ("| InfoNCE, sparsified first | 1.200 | 0.200 | 0.210 | 0.220 | 0.240 | 0.290 | 0.310 | "
                        "0.900 / 0.700 | 0.050 / 0.010 | 40.5 | 1.9 |")


def test_sparsify_refuses_a_phase_as_long_as_training():
    import sparsify_init
    with pytest.raises(SystemExit, match="--sparsify-epochs: expected 1 <= K < epochs \\(3\\), got 3"):
        sparsify_init.main(["--sparsify-epochs", "3", "epochs=3"])


# ---- scripts/loss_landscape.py (Fig. 3) ----

def test_landscape_terms_are_clip_loss_and_the_closed_forms():
    """Along the rings: InfoNCE is OpenCLIP's ClipLoss at logit scale s; matched pairs are at chord
    distance 2 sin(theta/2), so L_ATP without a swap is 4 sin^2(theta/2); L_CU does not depend on theta
    (the paper's dL_CU/dtheta = 0), with or without mismatched pairs."""
    import open_clip
    import loss_landscape as ll
    for theta in (0.0, 0.3, 1.2, 2.5):
        image, text = ll.rings(theta, 6, (0, 1))
        assert torch.allclose(image.norm(dim=1), torch.ones(6, dtype=torch.float64))
        for scale in (1.0, 1 / 0.07, 100.0):
            expected = open_clip.ClipLoss()(image, text, torch.tensor(scale, dtype=torch.float64))
            torch.testing.assert_close(ll.infonce(image, text, scale), expected)
        matched = ll.terms(*ll.rings(theta, 6, None), 5.0, 2.0)
        torch.testing.assert_close(matched["atp"], torch.tensor(4 * math.sin(theta / 2) ** 2, dtype=torch.float64))
    for swap in (None, (0, 1), (1, 3)):  # not antipodal pairs, whose centroids are the zero vector
        cu = [float(ll.terms(*ll.rings(theta, 6, swap), 5.0, 2.0)["cu"]) for theta in (0.0, 0.5, 1.5, 3.0)]
        assert max(cu) - min(cu) < 1e-12


def test_landscape_minima_and_lambda1_threshold(tmp_path, capsys):
    import loss_landscape as ll
    thetas = torch.deg2rad(torch.arange(0.0, 180.0, 1.0, dtype=torch.float64))
    # no mismatch: InfoNCE's minimum is at gap 0 (Liang et al.'s control)
    plain = ll.landscape(thetas, 6, None, 1 / 0.07, 1.0, 1.0, 2.0)
    assert ll.minimum(thetas, plain["infonce"])["theta_deg"] == 0.0
    # with two mismatched pairs InfoNCE keeps a gap; lambda1 at the threshold puts L_CLgap's minimum at 0
    swapped = ll.landscape(thetas, 6, (0, 2), 1 / 0.07, 1.0, 1.0, 2.0)
    assert ll.minimum(thetas, swapped["infonce"])["theta_deg"] > 90
    threshold = ll.lambda1_for_zero(swapped, 1.0)
    assert threshold is not None and threshold > 0
    for lam, at_zero in ((threshold + 0.01, True), (threshold - 0.01, False)):
        r = ll.landscape(thetas, 6, (0, 2), 1 / 0.07, lam, 1.0, 2.0)
        assert (ll.minimum(thetas, r["clgap"])["theta_deg"] == 0.0) is at_zero
    # the gradient each pair receives is autograd's on the ring embeddings
    image, text = ll.rings(float(thetas[30]), 6, (0, 2))
    image.requires_grad_(True)
    text.requires_grad_(True)
    values = ll.terms(image, text, 1 / 0.07, 2.0)
    g_image, g_text = torch.autograd.grad(values["infonce"] + values["atp"] + values["cu"], [image, text])
    torch.testing.assert_close(torch.tensor(swapped["pair_gradient"][30], dtype=torch.float64),
                               torch.cat([g_image, g_text], 1).norm(dim=1))
    ll.main(["--swap", "0,2", "--scales", "14.2857", "--step", "2", "--out", str(tmp_path)])
    assert "| 14.2857 |" in capsys.readouterr().out
    assert (tmp_path / "landscape_0-2.png").exists() and json.loads((tmp_path / "landscape_0-2.json").read_text())["setup"]["swap"] == [0, 2]


@pytest.mark.parametrize("argv, message", [(["--swap", "0"], "--swap: expected two pair indices"),
                                           (["--swap", "0,6"], r"--swap: expected two different pair indices in \[0, 6\)"),
                                           (["--swap", "1,1"], "--swap: expected two different"),
                                           (["--pairs", "2"], "--pairs: expected at least 3"),
                                           (["--scales", "0"], "--scales: expected positive finite"),
                                           (["--step", "0"], "--step: expected a grid step")])
def test_landscape_names_bad_arguments(argv, message):
    import loss_landscape as ll
    with pytest.raises(SystemExit, match=message):
        ll.main(argv)


def test_epoch_zero_embeddings_are_the_model_openclip_trains_from(tmp_path):
    """embed(epoch=0) (Fig. 8's initialisation) draws the model OpenCLIP's main draws: one epoch of
    OpenCLIP's training at learning rate 0 leaves the weights unchanged, and its checkpoint embeds the
    held-out digits exactly as the epoch-0 model does; the caller's random states are left as they were."""
    pytest.importorskip("open_clip_train")
    import random
    import openclip_digits
    overrides = ["loss=clip_lt", "epochs=1", "lr=0", f"data.root={tmp_path}"]
    cfg = modgap.config.compose(ROOT / "configs", "train", overrides)
    dataset = openclip_digits.write_dataset(cfg)
    run_dir = openclip_digits.train(cfg, "clip_lt", overrides, dataset, name="lr0")
    random.seed(123)
    torch.manual_seed(123)
    states = random.getstate(), torch.get_rng_state()
    initial = openclip_digits.embed(cfg, None, dataset, epoch=0)
    assert random.getstate() == states[0] and torch.equal(torch.get_rng_state(), states[1])  # the caller's left alone
    trained = openclip_digits.embed(cfg, run_dir, dataset, epoch=1)
    for modality in ("image", "text"):
        torch.testing.assert_close(initial[modality], trained[modality], rtol=0, atol=0)


# ---- scripts/training_plots.py: Fig. 9's sphere ----

def test_sphere_scatter_draws_three_dimensional_embeddings_and_refuses_others(tmp_path):
    from training_plots import sphere_scatter
    x, y, labels = _clustered_pairs(dim=3)
    out = sphere_scatter({"run": ({"image": x, "text": y}, "run")}, labels, tmp_path / "sphere.png", "title", "s^")
    assert out.exists() and out.stat().st_size > 10_000
    x4, y4, _ = _clustered_pairs(dim=4)
    with pytest.raises(ValueError, match="image embeddings have 4 dimensions, expected 3"):
        sphere_scatter({"run": ({"image": x4, "text": y4}, "run")}, labels, tmp_path / "bad.png", "title", "s^")


def test_sparsify_plots_write_the_gap_curve_and_one_pca_per_sparsified_run(tmp_path):
    import sparsify_init
    x, y, labels = _clustered_pairs(n=60)
    snap = {"gap": 1.0, "cos_tp": 0.2, "av_image": 0.1, "av_text": 0.1}
    results = [{"title": title, "sparsified": sparsified, "gap_per_epoch": [0.5, 0.4, 0.3],
                "snapshots": {"0": snap, "1": snap, "3": snap}}
               for title, sparsified in (("InfoNCE", False), ("InfoNCE, sparsified first", True))]
    embeddings = {(r["title"], epoch): {"image": x, "text": y} for r in results for epoch in (0, 1, 3)}
    written = sparsify_init.plots(results, embeddings, labels, 1, 3, tmp_path)
    assert [p.name for p in written] == ["gap_over_training.png", "pca_infonce_sparsified.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


# ---- Fig. 4: a vector database holding both modalities (scripts/vector_database.py) ----

def _digit_pairs(root: Path, n: int):
    """n held-out pairs as the main job stores them: PNG paths of scikit-learn digits and their captions."""
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    paths = []
    for i in range(n):
        path = root / f"{i}.png"
        Image.fromarray((digits.images[i] / 16 * 255).astype("uint8")).save(path)
        paths.append(str(path))
    return paths, [f"the digit {digits.target[i]}" for i in range(n)], torch.from_numpy(digits.target[:n].astype("int64"))


def test_vector_database_composition_and_plot(tmp_path, capsys):
    """A run with a wide gap (clip_lt) and one with none (ours): the printed shares are fill_gap_stats'
    neighbour counts and agree with a direct top-k over the mixed database; the plot is written."""
    import vector_database
    n = 60
    paths, captions, labels = _digit_pairs(tmp_path, n)
    g = torch.Generator().manual_seed(0)
    centers = torch.nn.functional.normalize(torch.randn(10, 16, generator=g), dim=1)
    for loss_name, offset in (("clip_lt", 3.0), ("ours", 0.0)):
        shift = torch.zeros(16)
        shift[0] = offset
        image = centers[labels] + 0.2 * torch.randn(n, 16, generator=g) + shift
        text = centers[labels] + 0.2 * torch.randn(n, 16, generator=g) - shift
        torch.save({"embeddings": {"image": image, "text": text}, "labels": labels, "images": paths, "captions": captions},
                   tmp_path / f"embeddings_{loss_name}.pt")
    vector_database.main(["--k", "5", "--query", "3", f"data.root={tmp_path}"])
    out = capsys.readouterr().out
    rows = {line.split(" | ")[0].lstrip("| "): line for line in out.splitlines() if line.startswith("| CLIP") or line.startswith("| Ours")}
    assert "| 0.0 % | 0.0 % |" in rows["CLIP (LT)"]  # a wide gap: every neighbour from the query's modality
    for title, loss_name in (("CLIP (LT)", "clip_lt"), ("Ours", "ours")):
        data = torch.load(tmp_path / f"embeddings_{loss_name}.pt", weights_only=False)
        image, text = data["embeddings"]["image"], data["embeddings"]["text"]
        neighbours = vector_database.nearest_entries(image, text, 5)
        summary = vector_database.summarise(image, text, labels, 5)
        # fill_gap_stats' counts = the modality composition of the direct top-k lists
        assert summary["images_among_caption_neighbours"] == pytest.approx(100 * (neighbours[n:] < n).double().mean().item())
        assert summary["captions_among_image_neighbours"] == pytest.approx(100 * (neighbours[:n] >= n).double().mean().item())
        assert f"{summary['images_among_caption_neighbours']:.1f} %" in rows[title]
    assert 20.0 < vector_database.summarise(image, text, labels, 5)["images_among_caption_neighbours"] < 80.0  # mixed
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "plots" / "vector_database.png").exists()


def test_vector_database_needs_the_main_jobs_files(tmp_path):
    import vector_database
    with pytest.raises(SystemExit, match="run the main job first"):
        vector_database.main([f"data.root={tmp_path}"])
    torch.save({"embeddings": {"image": torch.randn(4, 3), "text": torch.randn(4, 3)}, "labels": torch.arange(4)},
               tmp_path / "embeddings_clip_lt.pt")
    with pytest.raises(SystemExit, match="does not list the images and captions"):
        vector_database.main([f"data.root={tmp_path}"])


def test_ablations_latent_space_plot_uses_each_arms_first_run(tmp_path, monkeypatch):
    """Fig. 11: one panel per arm whose first run left its last checkpoint, embedded from that run folder."""
    import ablations
    import openclip_digits
    arms = [a for a in ablations.ARMS if a[0] in ("clip_lt", "ours", "notagap")]
    jobs = ablations.arm_jobs(arms, ["seed=0,1", "epochs=2", f"data.root={tmp_path}"])
    composed = [(job, modgap.config.compose(ROOT / "configs", "train", job)) for _, job in jobs]
    finished = []
    for index, (key, _) in enumerate(jobs):
        run_dir = tmp_path / f"run{index}"
        if key != "notagap":  # notagap's runs left no checkpoint: no panel
            (run_dir / "checkpoints").mkdir(parents=True)
            (run_dir / "checkpoints" / "epoch_2.pt").write_bytes(b"")
        finished.append({"run_dir": str(run_dir), "evaluation": {"pairs": {"image-text": {"gap": 0.1 * index}}}})
    embedded = []
    x, y, labels = _clustered_pairs()
    monkeypatch.setattr(openclip_digits, "write_dataset", lambda cfg: {"val_labels": labels})
    monkeypatch.setattr(openclip_digits, "embed", lambda cfg, run_dir, dataset: embedded.append(run_dir) or
                        {"image": x, "text": y})
    out = ablations.latent_space_plot(arms, jobs, composed, finished, tmp_path / "latent_spaces.png")
    first_runs = {key: tmp_path / f"run{jobs.index(next(j for j in jobs if j[0] == key))}" for key in ("clip_lt", "ours")}
    assert sorted(embedded) == sorted(first_runs.values())  # seed 0's run of each arm with a checkpoint
    if importlib.util.find_spec("matplotlib") is not None:
        assert out == tmp_path / "latent_spaces.png" and out.exists()


# ---- post-hoc gap closing (Liang et al., Fill the Gap) against training (scripts/post_hoc.py) ----

def test_post_hoc_rows_are_each_method_then_modgap_evaluate(tmp_path, capsys):
    """Every row is modgap.evaluate of the method's output on the same normalised pairs, computed here
    through the public ops; the trained comparison row reads its own file."""
    import post_hoc
    x, y, labels = _clustered_pairs(n=120)
    ours_x, ours_y, _ = _clustered_pairs(seed=1, n=120, offset=0.0)
    torch.save({"embeddings": {"image": x, "text": y}, "labels": labels}, tmp_path / "clip.pt")
    torch.save({"embeddings": {"image": ours_x, "text": ours_y}, "labels": labels}, tmp_path / "ours.pt")
    post_hoc.main(["--embeddings", str(tmp_path / "clip.pt"), "--trained", str(tmp_path / "ours.pt"),
                   "--spectral-k", "8", "--ot-fit-fraction", "0.5", "--n-init", "3"])
    result = json.loads((tmp_path / "clip_post_hoc.json").read_text())
    rows = result["rows"]
    assert [r["method"].split(": ")[1].split(" ")[0] for r in rows] == ["as", "shift", "spectral,", "optimal", "as"]
    assert rows[-1]["method"] == "ours: as trained"

    xn, yn = torch.nn.functional.normalize(x.double(), dim=1), torch.nn.functional.normalize(y.double(), dim=1)
    fitted = post_hoc.fit_rows(120, 0.5, 0)
    assert len(fitted) == 60 and len(fitted.unique()) == 60 and result["setup"]["ot_fit_rows"] == 60
    _, moved = modgap.emd_laplace(xn[fitted], yn[fitted])
    spectral = modgap.spectral_align(xn, yn, 8)
    expected_inputs = [(xn, yn), gap_shift.shift_to_gap(x, y, 0.0)[:2], spectral,
                       (modgap.ot_map_new_points(xn, xn[fitted], moved), yn),
                       (torch.nn.functional.normalize(ours_x.double(), dim=1),
                        torch.nn.functional.normalize(ours_y.double(), dim=1))]
    for row, (a, b) in zip(rows, expected_inputs):
        expected = modgap.evaluate({"image": a.float(), "text": b.float()}, labels, n_init=3, fill_gap_k=1)
        pair = expected["pairs"]["image-text"]
        assert row["dim"] == a.shape[1]
        assert row["gap"] == pytest.approx(pair["gap"], abs=1e-9)
        assert row["itr"] == pytest.approx(pair["fill_the_gap"]["itr"], abs=1e-9)
        assert row["fid"] == pytest.approx(pair["fill_the_gap"]["fid"], abs=1e-9)
        assert row["v_measure"] == pytest.approx(100 * expected["clustering"]["v_measure"], abs=1e-9)
        assert row["recall_1"]["text->image"] == pytest.approx(
            100 * pair["recall"]["text->image"]["R@1"], abs=1e-9)
    # the fitted rows go exactly where the coupling sends them (the out-of-sample map is exact on them)
    assert torch.allclose(modgap.ot_map_new_points(xn, xn[fitted], moved)[fitted], moved, atol=1e-12)
    as_trained, shifted, spectral_row, transported = rows[:4]
    assert shifted["gap"] < 2e-4 < as_trained["gap"]
    # the synthetic offset separates the modalities; each post-hoc method mixes them (ITR: image queries
    # whose nearest neighbour is an image, per one whose nearest is a text)
    for row in (shifted, spectral_row, transported):
        assert row["itr"] < as_trained["itr"]
    assert shifted["v_measure"] > as_trained["v_measure"] + 10  # Fig. 1's point, here post hoc
    out = capsys.readouterr().out
    assert "| clip: spectral, k = 8 (Fill the Gap) | 8 |" in out
    assert (tmp_path / "clip_post_hoc.md").read_text().startswith("| method | dim | gap |")


def test_post_hoc_reports_an_infinite_neighbour_ratio_for_a_full_gap(tmp_path, capsys):
    """With the modalities far apart every nearest neighbour is of the query's own modality: ITR = TIR =
    same / 0 (the main job's CLIP (LT) embeddings are such a case). modgap.evaluate returns it as inf and
    the table shows inf instead of failing on it."""
    import post_hoc
    x, y, labels = _clustered_pairs(n=60, offset=4.0)
    direct = modgap.fill_gap_stats(x, y, 1)
    assert direct["itr"] == float("inf") and direct["tir"] == float("inf")
    torch.save({"embeddings": {"image": x, "text": y}, "labels": labels}, tmp_path / "far.pt")
    post_hoc.main(["--embeddings", str(tmp_path / "far.pt"), "--spectral-k", "4", "--n-init", "1"])
    as_trained = json.loads((tmp_path / "far_post_hoc.json").read_text())["rows"][0]
    assert as_trained["itr"] == float("inf") and as_trained["tir"] == float("inf")
    assert "| far: as trained | 24 |" in capsys.readouterr().out
    assert " | inf | inf | " in (tmp_path / "far_post_hoc.md").read_text().splitlines()[2]
    row = post_hoc.scores(["image", "text"], x, y, labels, seed=0, n_init=1)
    assert row["itr"] == float("inf") and row["tir"] == float("inf") and isinstance(row["itr"], float)


def test_post_hoc_names_bad_arguments(tmp_path):
    import post_hoc
    x, y, labels = _clustered_pairs(n=30)
    torch.save({"embeddings": {"image": x, "text": y}, "labels": labels}, tmp_path / "clip.pt")
    torch.save({"embeddings": {"image": x, "text": y}, "labels": labels.flip(0)}, tmp_path / "other.pt")
    base = ["--embeddings", str(tmp_path / "clip.pt"), "--n-init", "1"]
    with pytest.raises(SystemExit, match="--spectral-k: expected 1 to 28 dimensions for 30 pairs"):
        post_hoc.main(base + ["--spectral-k", "29"])
    with pytest.raises(SystemExit, match=r"--ot-fit-fraction: expected a share in \(0, 1\]"):
        post_hoc.main(base + ["--ot-fit-fraction", "0"])
    with pytest.raises(SystemExit, match="--pair must name two of"):
        post_hoc.main(base + ["--pair", "image,audio"])
    with pytest.raises(SystemExit, match="does not exist"):
        post_hoc.main(["--embeddings", str(tmp_path / "missing.pt")])
    with pytest.raises(SystemExit, match="--trained: .*missing.pt does not exist"):
        post_hoc.main(base + ["--trained", str(tmp_path / "missing.pt")])
    with pytest.raises(SystemExit, match="holds other rows"):
        post_hoc.main(base + ["--spectral-k", "4", "--trained", str(tmp_path / "other.pt")])
