"""Evaluation ops against independent references: scikit-learn (V-measure, KMeans, KNeighborsClassifier),
naive float64 torch implementations with full N x N matrices (Recall@K, gap statistics, RMG as written
in measures.md §2), and the one-call evaluation / CLI against the ops and scikit-learn."""
from __future__ import annotations


import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score, homogeneity_completeness_v_measure
from sklearn.neighbors import KNeighborsClassifier

import modgap
from conftest import make_embeddings, modgap_cli

ops = torch.ops.modgap


# ---- vmeasure ---------------------------------------------------------------------------------------

def _random_labelings(count, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        n = int(rng.integers(0, 300))
        classes = int(rng.integers(1, 12))
        clusters = int(rng.integers(1, 12))
        offset = int(rng.integers(-1000, 1000))
        yield rng.integers(0, classes, n) * 7 + offset, rng.integers(0, clusters, n) - 3


EDGE_CASES = [
    ([], []),                                   # empty: (1, 1, 1)
    ([4, 4, 4, 4], [0, 1, 2, 3]),               # one class, several clusters: h=1, c=0, V=0
    ([0, 1, 2, 3], [9, 9, 9, 9]),               # one cluster, several classes: h=0, c=1, V=0
    ([5, 5, 5], [2, 2, 2]),                     # both single: (1, 1, 1)
    ([0, 0, 1, 1], [0, 1, 0, 1]),               # independent: h+c = 0 -> V = 0 (torchmetrics says 1)
    ([7], [3]),                                 # one sample
    ([0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2]),   # sklearn's docstring example
    ([2**40, -2**40, 2**40], [1, 1, 0]),       # large and negative labels
]


def test_vmeasure_matches_sklearn_on_thousands_of_labelings():
    for labels_true, labels_pred in list(_random_labelings(3000)) + EDGE_CASES:
        labels_true, labels_pred = np.asarray(labels_true, np.int64), np.asarray(labels_pred, np.int64)
        ours = ops.vmeasure(torch.from_numpy(labels_true), torch.from_numpy(labels_pred), 1.0)
        expected = homogeneity_completeness_v_measure(labels_true, labels_pred)
        for value, reference in zip(ours, expected):
            assert value.dtype == torch.float64
            assert abs(value.item() - reference) <= 1e-12, (labels_true, labels_pred, ours, expected)


@pytest.mark.parametrize("beta", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("dtype", [torch.int8, torch.int32, torch.uint8, torch.int64])
def test_vmeasure_beta_and_integer_dtypes(beta, dtype):
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 400), rng.integers(0, 7, 400)
    ours = modgap.vmeasure(torch.from_numpy(a).to(dtype), torch.from_numpy(b).to(dtype), beta)
    expected = homogeneity_completeness_v_measure(a, b, beta=beta)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)


def test_vmeasure_large():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 1000, 200_000)
    b = (a + rng.integers(0, 3, a.size) * (rng.random(a.size) < 0.3)) % 1000
    ours = modgap.vmeasure(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(ours, homogeneity_completeness_v_measure(a, b), rtol=0, atol=1e-12)


# ---- kmeans -----------------------------------------------------------------------------------------

def test_kmeans_recovers_separable_blobs_like_sklearn():
    x, _ = make_blobs(3000, centers=8, n_features=24, cluster_std=0.5, random_state=0)
    centroids, labels, inertia = modgap.kmeans(torch.from_numpy(x), 8, n_init=3, seed=0)
    reference = KMeans(8, n_init=3, random_state=0).fit(x)
    assert adjusted_rand_score(reference.labels_, labels.numpy()) == 1.0  # same partition up to permutation
    assert abs(inertia.item() - reference.inertia_) <= 1e-9 * reference.inertia_
    # Same centroids up to the permutation of the clusters.
    order = [int(np.argmin(((reference.cluster_centers_ - c.numpy()) ** 2).sum(1))) for c in centroids]
    np.testing.assert_allclose(reference.cluster_centers_[order], centroids.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kmeans_inertia_within_one_percent_of_sklearn_on_random_data(seed):
    x = np.random.default_rng(seed).standard_normal((4000, 16))
    ours = modgap.kmeans(torch.from_numpy(x), 12, n_init=10, seed=seed)[2].item()
    reference = KMeans(12, n_init=10, random_state=seed).fit(x).inertia_
    assert ours <= 1.01 * reference, (ours, reference)


def test_kmeans_labels_centroids_and_inertia_are_consistent():
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((1500, 8)))
    centroids, labels, inertia = modgap.kmeans(x, 7, seed=4)
    distances = torch.cdist(x, centroids) ** 2
    assert torch.equal(labels, distances.argmin(1))                    # every point at its nearest centroid
    torch.testing.assert_close(inertia, distances.min(1).values.sum(), rtol=1e-10, atol=0)
    for c in range(7):                                                  # centroids are the cluster means
        torch.testing.assert_close(centroids[c], x[labels == c].mean(0), rtol=1e-9, atol=1e-9)


def test_kmeans_is_deterministic_for_a_seed():
    x = torch.randn(2000, 10, generator=torch.Generator().manual_seed(5))
    first, second = modgap.kmeans(x, 9, n_init=2, seed=11), modgap.kmeans(x, 9, n_init=2, seed=11)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    other = modgap.kmeans(x, 9, n_init=1, seed=12)
    assert not torch.equal(first[0], other[0])


def test_kmeans_edge_cases_and_dtypes():
    x = torch.randn(9, 3, dtype=torch.float64)
    centroids, labels, inertia = modgap.kmeans(x, 9)                   # k = N: every point its own cluster
    assert inertia.item() == pytest.approx(0.0, abs=1e-20) and sorted(labels.tolist()) == list(range(9))
    # Duplicated points: fewer distinct points than clusters must not crash or produce NaN.
    dup = torch.tensor([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    centroids, labels, inertia = modgap.kmeans(dup, 3)
    assert torch.isfinite(centroids).all() and inertia.item() == pytest.approx(0.0, abs=1e-12)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        centroids, labels, inertia = modgap.kmeans(x.to(dtype), 3)
        assert centroids.dtype == dtype and labels.dtype == torch.int64 and inertia.dtype == torch.float64


# ---- knn_predict --------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("k", [1, 5, 12])
def test_knn_matches_sklearn(metric, k):
    # 5000 training rows cross the CPU tile width (4096 columns).
    generator = torch.Generator().manual_seed(k)
    centers = torch.randn(6, 20, generator=generator, dtype=torch.float64)
    train_y = torch.randint(0, 6, (5000,), generator=generator)
    train_x = centers[train_y] + 1.5 * torch.randn(5000, 20, generator=generator, dtype=torch.float64)
    query_x = torch.randn(700, 20, generator=generator, dtype=torch.float64) * 2
    labels_map = torch.tensor([3, 10, 11, 42, -5, 7])                  # arbitrary integer labels
    ours = modgap.knn_predict(train_x, labels_map[train_y], query_x, k, metric)
    reference = KNeighborsClassifier(k, metric=metric).fit(train_x.numpy(), labels_map[train_y].numpy())
    expected = reference.predict(query_x.numpy())
    assert ours.dtype == torch.int64
    assert (ours.numpy() == expected).mean() == 1.0


def test_knn_vote_tie_goes_to_the_smallest_label():
    train_x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    train_y = torch.tensor([9, 4, 9, 4])
    query = torch.tensor([[1.0, 0.9]], dtype=torch.float64)            # nearest: label 9, then label 4
    assert modgap.knn_predict(train_x, train_y, query, 2, "cosine").item() == 4
    assert modgap.knn_predict(train_x, train_y, query, 1, "cosine").item() == 9
    reference = KNeighborsClassifier(2).fit(train_x.numpy(), train_y.numpy()).predict(query.numpy())
    assert reference[0] == 4


# ---- retrieval_recall -----------------------------------------------------------------------------------

def _naive_ranks(queries, gallery, is_true):
    scores = torch.nn.functional.normalize(queries.double(), dim=1) @ torch.nn.functional.normalize(
        gallery.double(), dim=1).T
    best_true = scores.masked_fill(~is_true, float("-inf")).max(1).values
    return (scores > best_true[:, None]).sum(1)


@pytest.mark.parametrize("n", [50, 4500])
def test_retrieval_recall_matches_naive_float64(n):
    queries, gallery = make_embeddings(2, n, 24, seed=n)
    gallery = queries + 1.2 * gallery
    target = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    gallery_perm = torch.empty_like(gallery)
    gallery_perm[target] = gallery                                       # query i's item sits at target[i]
    ks = [1, 5, 10, n]
    ranks = _naive_ranks(queries, gallery_perm, torch.nn.functional.one_hot(target, n).bool())
    expected = torch.tensor([(ranks < k).double().mean().item() for k in ks], dtype=torch.float64)
    torch.testing.assert_close(modgap.retrieval_recall(queries, gallery_perm, target, ks), expected, rtol=0, atol=0)
    assert modgap.retrieval_recall(queries, gallery_perm, target, ks)[-1].item() == 1.0


@pytest.mark.parametrize("images,captions_per_image", [(40, 5), (1000, 5)])
def test_retrieval_recall_any_multi_caption(images, captions_per_image):
    image, _ = make_embeddings(2, images, 16, seed=images)
    owner = torch.arange(images).repeat_interleave(captions_per_image)
    captions = image[owner] + 1.5 * torch.randn(images * captions_per_image, 16, dtype=torch.float64,
                                                generator=torch.Generator().manual_seed(1))
    ks = [1, 5, 10]
    # image -> text: a hit if any of the image's captions is in the top K (openai/CLIP #115).
    is_true = owner[None, :] == torch.arange(images)[:, None]
    ranks = _naive_ranks(image, captions, is_true)
    expected = torch.tensor([(ranks < k).double().mean().item() for k in ks], dtype=torch.float64)
    torch.testing.assert_close(modgap.retrieval_recall_any(image, captions, owner, ks), expected, rtol=0, atol=0)
    # text -> image: each caption has one true image; the same op with query_to_gallery = owner.
    ranks_t2i = _naive_ranks(captions, image, owner[:, None] == torch.arange(images)[None, :])
    expected_t2i = torch.tensor([(ranks_t2i < k).double().mean().item() for k in ks], dtype=torch.float64)
    torch.testing.assert_close(modgap.retrieval_recall(captions, image, owner, ks), expected_t2i, rtol=0, atol=0)


_FLOAT32_DOT_ROUNDING = 2 * 32 * 2.0 ** -24


def _copies(n_items, prototypes, dtype, seed):
    """Items that are copies of a few distinct rows (repeated captions): prototypes [P, D] and the
    prototype of each item, every prototype used."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(prototypes, 32, generator=g).to(dtype)
    content = torch.cat([torch.arange(prototypes), torch.randint(0, prototypes, (n_items - prototypes,), generator=g)])
    return protos, content[torch.randperm(n_items, generator=g)]


def _prototype_scores(queries, protos):
    """Cosine of every query with every distinct row, float64, and the smallest gap between two of a
    query's scores: the reference is unambiguous only when that gap is above rounding."""
    s = torch.nn.functional.normalize(queries.double(), dim=1) @ torch.nn.functional.normalize(protos.double(), dim=1).T
    ordered = s.sort(dim=1).values
    return s, (ordered[:, 1:] - ordered[:, :-1]).min().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_retrieval_copies_of_the_true_item_are_ties(dtype):
    """Copies of a query's true item (identical rows: the digits stand-in repeats 353 of its 360 captions)
    score exactly as the true item, so they tie with it and never count against the query. The reference
    ranks by the distinct rows in float64: rank_i = number of items whose distinct row scores above the
    true one. The op once counted copies by rounding (a row-wise dot product vs the GEMM)."""
    n, prototypes = 400, 12
    protos, content = _copies(n, prototypes, dtype, seed=3)
    gallery = protos[content]
    queries = (gallery.double() + 2.0 * torch.randn(n, 32, generator=torch.Generator().manual_seed(4))).to(dtype)
    scores, min_gap = _prototype_scores(queries, protos)
    # Two float32 evaluations of one 32-term dot product of unit vectors differ by at most 2 * 32 * 2^-24:
    # distinct rows' scores lie further apart, so only the copies tie.
    assert min_gap > _FLOAT32_DOT_ROUNDING
    items_per_prototype = torch.bincount(content, minlength=prototypes)
    true_score = scores.gather(1, content[:, None])
    ranks = ((scores > true_score).double() * items_per_prototype.double()).sum(1)
    ks = [1, 5, 40, 100]
    expected = torch.tensor([(ranks < k).double().mean().item() for k in ks], dtype=torch.float64)
    assert 0 < expected[0] < 1  # copies matter: R@1 counts every query whose prototype scores best
    torch.testing.assert_close(modgap.retrieval_recall(queries, gallery, torch.arange(n), ks), expected, rtol=0, atol=0)

    # Several true items per query (image -> its captions, some captions shared between images): item j is
    # a tie when the query owns an item with j's row; the rank is over the other rows, above the best owned.
    # 60 images own at most 16 items each (the kernel compares every owned content), 10 images own more
    # (the kernel looks the (query, content) pairs up instead): both ways must agree with the reference.
    for images, many_items in ((60, False), (10, True)):
        owner = torch.cat([torch.arange(images), torch.randint(0, images, (n - images,),
                                                               generator=torch.Generator().manual_seed(5))])
        assert (torch.bincount(owner).max().item() > 16) == many_items
        image = (protos[content[:images]].double()
                 + 2.0 * torch.randn(images, 32, generator=torch.Generator().manual_seed(6))).to(dtype)
        scores, min_gap = _prototype_scores(image, protos)
        assert min_gap > _FLOAT32_DOT_ROUNDING
        owns = torch.zeros(images, prototypes, dtype=torch.bool)
        owns[owner, content] = True
        best_owned = scores.masked_fill(~owns, float("-inf")).max(1, keepdim=True).values
        ranks_any = (((scores > best_owned) & ~owns).double() * items_per_prototype.double()).sum(1)
        expected_any = torch.tensor([(ranks_any < k).double().mean().item() for k in ks], dtype=torch.float64)
        torch.testing.assert_close(modgap.retrieval_recall_any(image, gallery, owner, ks), expected_any, rtol=0,
                                   atol=0)


def test_retrieval_ties_count_for_the_query():
    queries = torch.tensor([[1.0, 0.0]])
    gallery = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])          # items 0 and 1 tie (cosine 1)
    assert modgap.retrieval_recall(queries, gallery, torch.tensor([1]), [1]).item() == 1.0


# ---- gap_stats -------------------------------------------------------------------------------------------

def _naive_gap_stats(embeddings, include_diagonal=False):
    """Every statistic from its definition (measures.md §2, §8), with full N x N Gram matrices in float64."""
    unit = [torch.nn.functional.normalize(z.double(), dim=1, eps=1e-8) for z in embeddings]
    m, n = len(unit), unit[0].shape[0]
    d = lambda c: 1 - (c + 1) / 2                                          # Schrodi's d(u, v) = 1 - (cos + 1)/2
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    intra = []
    for z in unit:
        gram = z @ z.T
        intra.append(gram.mean() if include_diagonal else gram[off_diagonal].mean())
    out = {k: torch.zeros(m, m, dtype=torch.float64) for k in modgap._GAP_STATS_FIELDS[:-1]}
    for a in range(m):
        for b in range(m):
            cos = (unit[a] * unit[b]).sum(1)
            dist = (unit[a] - unit[b]).norm(dim=1)
            ca, cb = unit[a].mean(0), unit[b].mean(0)
            out["gap"][a, b] = (ca - cb).norm()
            out["cos_tp_mean"][a, b] = cos.mean()
            out["cos_tp_var"][a, b] = cos.var(unbiased=False)
            out["pair_distance_mean"][a, b] = dist.mean()
            out["pair_distance_var"][a, b] = dist.var(unbiased=False)
            d_match = d(cos.mean())
            d_match = d_match if d_match > 0 else torch.tensor(1e-3, dtype=torch.float64)
            out["rmg"][a, b] = d_match / (d_match + 0.5 * (d(intra[a]) + d(intra[b])))
            out["centroid_cosine"][a, b] = torch.dot(ca, cb) / (ca.norm() * cb.norm())
    out["angular_value"] = torch.stack([(z @ z.T)[off_diagonal].mean() for z in unit])
    return out


@pytest.mark.parametrize("include_diagonal", [False, True])
def test_gap_stats_matches_the_formulas(include_diagonal):
    base = make_embeddings(1, 300, 12, seed=3)[0]
    z = [base + 0.5 + 0.3 * torch.randn(300, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(i))
         for i in range(3)]
    z[1] = z[1] * 4.0                                                       # scale must not matter (normalised)
    ours = modgap.gap_stats(z, include_diagonal)
    expected = _naive_gap_stats(z, include_diagonal)
    for key in modgap._GAP_STATS_FIELDS:
        torch.testing.assert_close(ours[key], expected[key], rtol=1e-10, atol=1e-12, msg=key)
        assert ours[key].dtype == torch.float64


def test_gap_stats_rmg_clamp_and_identical_modalities():
    z = make_embeddings(1, 50, 8, seed=4)[0]
    stats = modgap.gap_stats([z, z.clone()])
    assert stats["gap"][0, 1].item() == pytest.approx(0.0, abs=1e-12)
    assert stats["cos_tp_mean"][0, 1].item() == pytest.approx(1.0, abs=1e-12)
    # D_match = 0 is replaced by 1e-3 (Schrodi et al.'s compute_rmg).
    d_intra = (1 - stats["angular_value"][0].item()) / 2
    assert stats["rmg"][0, 1].item() == pytest.approx(1e-3 / (1e-3 + d_intra), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_gap_stats_low_precision_inputs(dtype):
    z = make_embeddings(2, 400, 32, seed=5)
    ours = modgap.gap_stats([x.to(dtype) for x in z])
    expected = _naive_gap_stats([x.to(dtype) for x in z])
    for key in modgap._GAP_STATS_FIELDS:
        torch.testing.assert_close(ours[key], expected[key], rtol=1e-4, atol=1e-5, msg=key)


# ---- logistic_regression / linear_probe_predict ---------------------------------------------------------

def _sklearn_objective(x, y, coef, intercept, C):
    """scikit-learn's scaled L2 logistic objective (LinearModelLoss, l2_reg_strength = 1 / (C n)), float64."""
    x, coef, intercept = (np.asarray(a, dtype=np.float64) for a in (x, coef, intercept))
    scores = x @ coef.T + intercept
    if coef.shape[0] == 1:
        z = scores[:, 0]
        loss = np.logaddexp(0.0, z) - y * z
    else:
        shifted = scores - scores.max(1, keepdims=True)
        loss = np.log(np.exp(shifted).sum(1)) - shifted[np.arange(len(y)), y]
    return loss.mean() + 0.5 / (C * len(y)) * (coef ** 2).sum()


@pytest.mark.parametrize("classes,C", [(10, 1.0), (2, 1.0), (4, 0.05), (3, 20.0)])
def test_logistic_regression_converges_to_sklearns_minimiser(classes, C):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    x, y = load_digits(return_X_y=True)
    keep = y < classes
    x, y = x[keep] / 16.0, y[keep]
    coef, intercept, n_iter = modgap.logistic_regression(torch.tensor(x), torch.tensor(y), classes, C=C,
                                                         max_iter=5000, tol=1e-9)
    sk = LogisticRegression(C=C, max_iter=5000, tol=1e-9).fit(x, y)
    assert coef.shape == sk.coef_.shape and coef.dtype == torch.float64 and 0 < n_iter.item() < 5000
    # The minimiser is unique (strictly convex): both solvers reach it.
    np.testing.assert_allclose(coef.numpy(), sk.coef_, atol=5e-5 * max(1.0, np.abs(sk.coef_).max()))
    np.testing.assert_allclose(intercept.numpy(), sk.intercept_, atol=5e-5 * max(1.0, np.abs(sk.intercept_).max()))
    ours, theirs = (_sklearn_objective(x, y, c, b, C) for c, b in ((coef, intercept), (sk.coef_, sk.intercept_)))
    assert ours <= theirs + 1e-12
    predicted = modgap.linear_probe_predict(torch.tensor(x), torch.tensor(y), torch.tensor(x), C=C, max_iter=5000,
                                            tol=1e-9)
    assert (predicted.numpy() == sk.predict(x)).mean() == 1.0


def test_linear_probe_with_sklearn_defaults_and_any_labels():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    labels = torch.tensor(y) * 7 - 20  # arbitrary integer labels
    train, test = slice(0, 1400), slice(1400, None)
    ours = modgap.linear_probe_predict(x[train], labels[train], x[test])  # C=1, max_iter=100, tol=1e-4
    assert ours.dtype == labels.dtype and set(ours.tolist()) <= set(labels.tolist())
    sk = LogisticRegression().fit(x[train].double().numpy(), labels[train].numpy()).predict(x[test].double().numpy())
    # 100 iterations stop short of the optimum in both solvers (different line searches): near-identical labels
    assert (ours.numpy() == sk).mean() >= 0.99
    accuracy_ours = (ours == labels[test]).double().mean().item()
    accuracy_sklearn = (sk == labels[test].numpy()).mean()
    assert abs(accuracy_ours - accuracy_sklearn) <= 0.01
    for dtype in (torch.float16, torch.bfloat16, torch.float64):  # computed in float64 whatever the input
        half = modgap.linear_probe_predict(x[train].to(dtype), labels[train], x[test].to(dtype))
        assert (half == ours).double().mean() >= 0.97


# ---- registration --------------------------------------------------------------------------------------

def test_opcheck_evaluation_ops():
    z = make_embeddings(3, 20, 6, seed=6)
    # every class present (logistic_regression needs a row of each), in a seeded order
    y = (torch.arange(20) % 3)[torch.randperm(20, generator=torch.Generator().manual_seed(6))]
    samples = [
        (ops.gap_stats.default, (z, False)),
        (ops.gap_stats.default, ([x.float() for x in z[:2]], True)),
        (ops.vmeasure.default, (y, torch.randint(0, 4, (20,), generator=torch.Generator().manual_seed(7)), 1.0)),
        (ops.kmeans.default, (z[0], 3, 300, 1e-4, 2, 0)),
        (ops.knn_predict.default, (z[0], y, z[1], 3, "cosine")),
        (ops.knn_predict.default, (z[0].float(), y.int(), z[1].float(), 2, "euclidean")),
        (ops.retrieval_recall.default, (z[0], z[1], torch.arange(20), [1, 5])),
        (ops.retrieval_recall_any.default, (z[0][:10], z[1], torch.arange(20) % 10, [1, 3])),
        (ops.logistic_regression.default, (z[0], y, 3, 1.0, 50, 1e-4)),
        (ops.logistic_regression.default, (z[0].float(), (y > 0).int(), 2, 0.5, 20, 1e-6)),
        (ops.linear_probe_predict.default, (z[0], y * 5, z[1], 1.0, 30, 1e-4)),
    ]
    for op, args in samples:
        torch.library.opcheck(op, args, test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


def test_evaluation_ops_compile_fullgraph():
    z = make_embeddings(2, 64, 8, seed=7)

    @torch.compile(fullgraph=True, dynamic=True)
    def stats(a, b):
        out = ops.gap_stats([a, b], False)
        return out[0][0, 1] + ops.retrieval_recall(a, b, torch.arange(a.shape[0]), [1, 5]).sum()

    eager = ops.gap_stats(z, False)[0][0, 1] + ops.retrieval_recall(z[0], z[1], torch.arange(64), [1, 5]).sum()
    torch.testing.assert_close(stats(*z), eager)


# ---- evaluate + CLI ---------------------------------------------------------------------------------------

def _digits_embeddings():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    generator = torch.Generator().manual_seed(0)
    x = torch.tensor(x, dtype=torch.float32)
    image = x @ torch.randn(64, 24, generator=generator) + 1.0
    text = x @ torch.randn(64, 24, generator=generator) + 0.3 * torch.randn(len(x), 24, generator=generator)
    return {"image": image, "text": text}, torch.tensor(y)


def test_evaluate_agrees_with_the_ops_and_sklearn():
    embeddings, labels = _digits_embeddings()
    result = modgap.evaluate(embeddings, labels, ks=(1, 5), knn_k=5, seed=3, n_init=2)
    protocol = result["protocol"]
    assert protocol["n_clusters"] == 10 and protocol["n_init"] == 2 and protocol["seed"] == 3
    assert protocol["knn_k"] == 5 and protocol["test_fraction"] == 0.2 and protocol["ks"] == [1, 5]
    image, text = embeddings["image"], embeddings["text"]
    stats = modgap.gap_stats([image, text])
    pair = result["pairs"]["image-text"]
    assert pair["gap"] == pytest.approx(stats["gap"][0, 1].item(), rel=1e-12)
    assert pair["rmg"] == pytest.approx(stats["rmg"][0, 1].item(), rel=1e-12)
    n = len(labels)
    recall = modgap.retrieval_recall(text, image, torch.arange(n), [1, 5])
    assert pair["recall"]["text->image"]["R@5"] == pytest.approx(recall[1].item(), abs=1e-15)
    assert result["modalities"]["text"]["angular_value"] == pytest.approx(stats["angular_value"][1].item())
    ftg = modgap.fill_gap_stats(image, text, 1)
    assert protocol["fill_gap_k"] == 1
    assert pair["fill_the_gap"]["neighbour_counts"] == ftg["neighbour_counts"].tolist()
    for key in ("tmr", "imr", "fid"):
        assert pair["fill_the_gap"][key] == pytest.approx(ftg[key], rel=1e-12), key
    for key in ("itr", "tir"):  # a float, inf included (test_evaluate_keeps_non_finite_values_as_floats)
        assert pair["fill_the_gap"][key] == pytest.approx(ftg[key], rel=1e-12)

    # Joint clustering: k-means on the union of the normalised modalities, scored with sklearn's V-measure.
    unit = [torch.nn.functional.normalize(z, dim=1, eps=1e-8) for z in (image, text)]
    joint = torch.cat(unit)
    _, predicted, _ = modgap.kmeans(joint, 10, n_init=2, seed=3)
    expected = homogeneity_completeness_v_measure(labels.repeat(2).numpy(), predicted.numpy())
    assert result["clustering"]["v_measure"] == pytest.approx(expected[2], abs=1e-12)

    # kNN: the split is torch.randperm with a CPU generator seeded with `seed` (per-modality split first,
    # then the joint one), scored here with scikit-learn.
    generator = torch.Generator().manual_seed(3)
    permutation = torch.randperm(n, generator=generator)
    joint_permutation = torch.randperm(2 * n, generator=generator)
    n_test = round(0.2 * n)
    test, train = permutation[:n_test], permutation[n_test:]
    for name, z in zip(("image", "text"), unit):
        knn = KNeighborsClassifier(5).fit(z[train].numpy(), labels[train].numpy())
        accuracy = (knn.predict(z[test].numpy()) == labels[test].numpy()).mean()
        assert result["knn"]["accuracy"][name] == pytest.approx(accuracy, abs=1e-12)
    joint_n_test = round(0.2 * 2 * n)
    test, train = joint_permutation[:joint_n_test], joint_permutation[joint_n_test:]
    joint_labels = labels.repeat(2)
    knn = KNeighborsClassifier(5).fit(joint[train].numpy(), joint_labels[train].numpy())
    accuracy = (knn.predict(joint[test].numpy()) == joint_labels[test].numpy()).mean()
    assert result["knn"]["accuracy"]["joint"] == pytest.approx(accuracy, abs=1e-12)


def test_evaluate_linear_probe_and_separability_agree_with_sklearn():
    from sklearn.linear_model import LogisticRegression
    embeddings, labels = _digits_embeddings()
    result = modgap.evaluate(embeddings, labels, ks=(1,), seed=3, probe_max_iter=2000)
    assert result["protocol"]["probe_c"] == 1.0 and result["protocol"]["probe_max_iter"] == 2000
    unit = [torch.nn.functional.normalize(z.double(), dim=1, eps=1e-8) for z in embeddings.values()]
    n = len(labels)
    generator = torch.Generator().manual_seed(3)  # the kNN split, which the probe shares
    permutation = torch.randperm(n, generator=generator)
    n_test = round(0.2 * n)
    test, train = permutation[:n_test], permutation[n_test:]
    # Both solvers stop at max |gradient| <= 1e-4, not at the exact optimum: allow one held-out row to differ.
    for name, z in zip(("image", "text"), unit):
        probe = LogisticRegression(max_iter=2000).fit(z[train].numpy(), labels[train].numpy())
        accuracy = (probe.predict(z[test].numpy()) == labels[test].numpy()).mean()
        assert abs(result["linear_probe"]["accuracy"][name] - accuracy) <= 1.0 / n_test + 1e-12, name
    # Linear separability: image rows (0) vs text rows (1), both members of a sample on the same side.
    x_train = torch.cat([unit[0][train], unit[1][train]]).numpy()
    y_train = np.r_[np.zeros(len(train)), np.ones(len(train))]
    x_test = torch.cat([unit[0][test], unit[1][test]]).numpy()
    y_test = np.r_[np.zeros(n_test), np.ones(n_test)]
    expected = (LogisticRegression(max_iter=2000).fit(x_train, y_train).predict(x_test) == y_test).mean()
    assert abs(result["pairs"]["image-text"]["linear_separability"] - expected) <= 1.0 / (2 * n_test) + 1e-12
    # Identical modalities cannot be told apart; probe_max_iter=0 skips both measures.
    same = modgap.evaluate({"a": unit[0], "b": unit[0].clone()}, labels, ks=(1,))
    assert same["pairs"]["a-b"]["linear_separability"] == pytest.approx(0.5)
    skipped = modgap.evaluate(embeddings, labels, ks=(1,), probe_max_iter=0)
    assert "linear_probe" not in skipped and "linear_separability" not in skipped["pairs"]["image-text"]
    assert "linear-probe accuracy:" in modgap.format_evaluation(embeddings, labels, ks=(1,))


def test_evaluate_without_labels_and_three_modalities():
    z = make_embeddings(3, 80, 8, seed=8)
    result = modgap.evaluate({"a": z[0], "b": z[1], "c": z[2]}, ks=(1,))
    assert set(result["pairs"]) == {"a-b", "a-c", "b-c"}
    assert set(result["pairs"]["a-c"]["recall"]) == {"a->c", "c->a"}
    assert "clustering" not in result and "knn" not in result and result["protocol"]["labels"] is False
    assert set(result["pairs"]["b-c"]["fill_the_gap"]) == {"itr", "tir", "tmr", "imr", "fid", "neighbour_counts"}
    skipped = modgap.evaluate({"a": z[0], "b": z[1]}, ks=(1,), fill_gap_k=0)
    assert "fill_the_gap" not in skipped["pairs"]["a-b"] and skipped["protocol"]["fill_gap_k"] == 0


def test_evaluate_defaults_are_those_of_the_cli():
    # One list of protocol options with one set of defaults (C++ EvaluateOptions{}, which `modgap eval`
    # uses): modgap.evaluate()'s keyword defaults must be those values, and evaluation_options() and
    # format_evaluation() take exactly those keys.
    import inspect
    cpp = json.loads(torch.ops.modgap._evaluation_protocol_defaults())
    python = {name: parameter.default for name, parameter in inspect.signature(modgap.evaluate).parameters.items()
              if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "progress"}
    assert {**python, "ks": list(python["ks"])} == cpp
    assert list(python) == list(cpp)  # same order, as the README lists them
    assert modgap.evaluation_options(cpp) == {**cpp, "ks": tuple(cpp["ks"])}
    with pytest.raises(TypeError, match="unknown options"):
        modgap.format_evaluation({"a": torch.randn(4, 2), "b": torch.randn(4, 2)}, bogus=1)


def test_evaluation_options_carry_a_config_eval_section(tmp_path):
    embeddings, labels = _digits_embeddings()
    configs = Path(__file__).resolve().parents[2] / "configs"
    overrides = ["eval.test_fraction=0.5", "eval.ks=[1,5]", "+eval.knn_metric=euclidean", "+eval.n_clusters=5"]
    section = modgap.config.compose(configs, "train", overrides)["eval"]
    options = modgap.evaluation_options(section)
    assert options == {"ks": (1, 5), "knn_k": 5, "n_init": 1, "test_fraction": 0.5, "seed": 0, "fill_gap_k": 1,
                       "knn_metric": "euclidean", "n_clusters": 5}
    result = modgap.evaluate(embeddings, labels, **options)
    assert result["protocol"]["test_fraction"] == 0.5 and result["protocol"]["knn_metric"] == "euclidean"
    assert result["protocol"]["n_clusters"] == 5 and result["protocol"]["ks"] == [1, 5]
    # what `modgap eval config=...` computes from the same file and overrides
    path, out = tmp_path / "emb.pt", tmp_path / "emb.json"
    torch.save({**embeddings, "labels": labels}, path)
    run = subprocess.run([modgap_cli(), "eval", str(path), f"config={configs / 'train.yaml'}", *overrides, f"out={out}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _same_result(_strict_json(out.read_text()), result)
    assert modgap.evaluation_options({"ks": 1}) == {"ks": (1,)}
    # the caller's fixed options win; its own keys are ignored only when named
    assert modgap.evaluation_options({"ks": [1, 5], "repeats": 5}, ignore=("repeats",), ks=(1,), progress=True) == {
        "ks": (1,), "progress": True}
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['repeats'\] in the `eval` section; the protocol keys"):
        modgap.evaluation_options({"knn_k": 5, "repeats": 5})
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['knn'\]"):
        modgap.evaluation_options({}, knn=3)
    assert modgap.evaluation_options(None) == {}


def test_evaluate_reports_progress(capfd):
    embeddings, labels = _digits_embeddings()
    modgap.evaluate(embeddings, labels, n_init=2, progress=True)
    err = capfd.readouterr().err
    assert "k-means initialisation 2/2" in err and "kNN accuracy" in err


def test_cli_eval_matches_python(tmp_path):
    embeddings, labels = _digits_embeddings()
    path = tmp_path / "emb.pt"
    torch.save({**embeddings, "labels": labels}, path)
    out = tmp_path / "result.json"
    run = subprocess.run([modgap_cli(), "eval", str(path), "ks=1,5", "seed=3", "n_init=2", f"out={out}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "V-measure" in run.stdout and "image-text" in run.stdout
    from_cli = _strict_json(out.read_text())
    from_python = modgap.evaluate(embeddings, labels, ks=(1, 5), seed=3, n_init=2)
    assert _same_result(from_cli, from_python)
    assert "linear-probe accuracy:" in run.stdout and "linear separability" in run.stdout
    # the probe's keys: C and iterations reach the fit; 0 iterations skips probe and separability (ks as a
    # config writes a list, [1], works as well as 1)
    run = subprocess.run([modgap_cli(), "eval", str(path), "ks=[1]", "probe_c=0.25", "probe_max_iter=40", f"out={out}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _same_result(_strict_json(out.read_text()),
                        modgap.evaluate(embeddings, labels, ks=(1,), probe_c=0.25, probe_max_iter=40))
    run = subprocess.run([modgap_cli(), "eval", str(path), "ks=1", "probe_max_iter=0", f"out={out}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "linear_probe" not in json.loads(out.read_text())


def _same_result(strict, python):
    """The strict-JSON file of `modgap eval` (null for a non-finite number) holds the same result as
    modgap.evaluate's dict (which keeps inf / nan as floats)."""
    if isinstance(strict, dict):
        return isinstance(python, dict) and strict.keys() == python.keys() and all(
            _same_result(strict[k], python[k]) for k in strict)
    if isinstance(strict, list):
        return isinstance(python, list) and len(strict) == len(python) and all(
            _same_result(a, b) for a, b in zip(strict, python))
    if strict is None:
        return isinstance(python, float) and not math.isfinite(python)
    return strict == python


def _strict_json(text):
    """json.loads that refuses Infinity / NaN, as strict JSON readers (jq, JavaScript) do."""
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")
    return json.loads(text, parse_constant=refuse)


def test_evaluate_keeps_non_finite_values_as_floats(tmp_path):
    """Modalities far apart: every nearest neighbour is of the query's own modality, so ITR = TIR = same / 0
    = inf (fill_gap_stats); labels whose training split holds one class: the linear probe is undefined (nan).
    modgap.evaluate returns both as floats, like the ops; `modgap eval` writes null in its strict-JSON file."""
    generator = torch.Generator().manual_seed(5)
    n = 50
    x = torch.randn(n, 6, generator=generator) * 0.1 + 2.0
    y = torch.randn(n, 6, generator=generator) * 0.1 - 2.0
    n_test = round(0.2 * n)
    held_out = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:n_test]  # evaluate's split, seed 0
    labels = torch.zeros(n, dtype=torch.long)
    labels[held_out[0]] = 1  # the only row of class 1 is held out: each probe trains on class 0 alone
    assert modgap.fill_gap_stats(x, y, 1)["itr"] == math.inf

    result = modgap.evaluate({"image": x, "text": y}, labels, ks=(1,), n_init=1)
    ftg = result["pairs"]["image-text"]["fill_the_gap"]
    assert ftg["itr"] == math.inf and ftg["tir"] == math.inf and isinstance(ftg["itr"], float)
    probe = result["linear_probe"]["accuracy"]
    assert math.isnan(probe["image"]) and math.isnan(probe["text"])
    assert 0.0 <= result["knn"]["accuracy"]["joint"] <= 1.0

    path = tmp_path / "far.pt"
    torch.save({"image": x, "text": y, "labels": labels}, path)
    out = tmp_path / "far.json"
    run = subprocess.run([modgap_cli(), "eval", str(path), "ks=1", f"out={out}"], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    from_cli = _strict_json(out.read_text())
    assert from_cli["pairs"]["image-text"]["fill_the_gap"]["itr"] is None
    assert from_cli["linear_probe"]["accuracy"]["image"] is None
    # Otherwise the same result: the CLI's file equals modgap.evaluate's dict where null stands for inf / nan.
    assert _same_result(from_cli, result)
    assert not _same_result(from_cli, {**result, "protocol": {}})  # the comparison can fail
    assert not _same_result({"itr": None}, {"itr": 3.0})


def test_cli_eval_reads_the_scripts_nested_format(tmp_path):
    # {"embeddings": {...}, "labels": ..., "loss": {...}} as scripts/av_mnist.py and openclip_digits.py save it
    embeddings, labels = _digits_embeddings()
    path = tmp_path / "nested.pt"
    torch.save({"embeddings": embeddings, "labels": labels, "loss": {"name": "clip_lt", "lambda1": 0.0}}, path)
    out = tmp_path / "nested.json"
    run = subprocess.run([modgap_cli(), "eval", str(path), "ks=1", "probe_max_iter=0", f"out={out}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert _same_result(_strict_json(out.read_text()), modgap.evaluate(embeddings, labels, ks=(1,), probe_max_iter=0))


def test_cli_errors_are_clear(tmp_path):
    path = tmp_path / "emb.pt"
    torch.save({"image": torch.randn(10, 4)}, path)
    run = subprocess.run([modgap_cli(), "eval", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "at least 2 modalities" in run.stderr
    torch.save({"image": torch.randn(10, 4), "text": torch.randn(10, 4)}, path)
    run = subprocess.run([modgap_cli(), "eval", str(path), "knn_k=x"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "`knn_k` expects an integer" in run.stderr
    run = subprocess.run([modgap_cli(), "eval", str(path), "bogus=1"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "unknown key 'bogus'" in run.stderr
    run = subprocess.run([modgap_cli(), "eval", str(tmp_path / "missing.pt")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "cannot open" in run.stderr
    (tmp_path / "garbage.pt").write_bytes(b"not a file torch.save wrote")
    run = subprocess.run([modgap_cli(), "eval", str(tmp_path / "garbage.pt")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "modgap eval: cannot read '" in run.stderr and "as a file written by torch.save" in run.stderr
    torch.save([torch.randn(10, 4), torch.randn(10, 4)], path)
    run = subprocess.run([modgap_cli(), "eval", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "must hold a dict of tensors saved with torch.save" in run.stderr
    # the device is checked before anything is read or copied
    torch.save({"image": torch.randn(10, 4), "text": torch.randn(10, 4)}, path)
    for device in ("foo", "meta", "mps", ""):
        run = subprocess.run([modgap_cli(), "eval", str(path), f"device={device}"], capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 1 and f"`device` must be cpu, cuda or cuda:I, got '{device}'" in run.stderr, run.stderr
    count = torch.cuda.device_count()
    run = subprocess.run([modgap_cli(), "eval", str(path), f"device=cuda:{count}"], capture_output=True, text=True,
                         timeout=120)
    expected = (f"this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}" if count
                else "no CUDA device is usable here (torch::cuda::device_count() is 0); use device=cpu")
    assert run.returncode == 1 and f"modgap eval: device=cuda:{count} but {expected}" in run.stderr, run.stderr
    # the entries left out are named with what they are
    torch.save({"image": torch.randn(10, 4), "text": "a caption", "labels": torch.arange(10) % 2}, path)
    run = subprocess.run([modgap_cli(), "eval", str(path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "at least 2 modalities" in run.stderr and "'text' (a str)" in run.stderr
    assert "'labels'" not in run.stderr


def test_cli_eval_names_the_entries_that_are_not_modalities(tmp_path):
    # an [N, 1, D] tower output is not a modality: the evaluation goes on with the others and says so
    embeddings, labels = _digits_embeddings()
    path, out = tmp_path / "emb.pt", tmp_path / "emb.json"
    torch.save({**embeddings, "audio": embeddings["image"][:, None], "logit_scale": torch.tensor(14.3),
                "labels": labels}, path)
    run = subprocess.run([modgap_cli(), "eval", str(path), "ks=1", "probe_max_iter=0", f"out={out}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows, dim = embeddings["image"].shape
    assert (f"not a modality (a modality is a 2-D floating tensor [N, D]; name the modalities with modalities=a,b): "
            f"'audio' (a 3-D Float tensor of shape [{rows}, 1, {dim}]), 'logit_scale' (a 0-D Float tensor of shape [])"
            in run.stderr)
    assert _same_result(_strict_json(out.read_text()), modgap.evaluate(embeddings, labels, ks=(1,), probe_max_iter=0))
    # naming the modalities silences it
    run = subprocess.run([modgap_cli(), "eval", str(path), "modalities=image,text", "ks=1", "probe_max_iter=0",
                          f"out={out}"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "not a modality" not in run.stderr, run.stderr


# ---- bad input ------------------------------------------------------------------------------------------

# Fixed data: the messages below depend on it (e.g. which class is missing first), so it must not follow the
# global RNG state that the tests before left behind.
_X = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
_Y = torch.arange(10) % 3  # every class of [0, 3) present
BAD_EVALUATION_INPUTS = [
    ("vmeasure length mismatch", lambda: ops.vmeasure(_Y, _Y[:5], 1.0), ValueError,
     r"vmeasure: `labels_pred` has 5 entries but 10 were expected"),
    ("vmeasure float labels", lambda: ops.vmeasure(_Y.float(), _Y, 1.0), TypeError,
     r"vmeasure: `labels_true` must hold integer labels .* got dtype Float"),
    ("vmeasure bool labels", lambda: ops.vmeasure(_Y, _Y > 0, 1.0), TypeError, r"`labels_pred` must hold integer labels"),
    ("vmeasure 2-D labels", lambda: ops.vmeasure(_Y.view(2, 5), _Y.view(2, 5), 1.0), ValueError,
     r"`labels_true` must be a 1-D tensor"),
    ("vmeasure negative beta", lambda: ops.vmeasure(_Y, _Y, -1.0), ValueError, r"`beta` .* must be a finite number >= 0"),
    ("kmeans k > N", lambda: ops.kmeans(_X, 11, 300, 1e-4, 1, 0), ValueError,
     r"kmeans: `k` = 11 clusters need at least 11 rows in `x`, got 10"),
    ("kmeans k = 0", lambda: ops.kmeans(_X, 0, 300, 1e-4, 1, 0), ValueError, r"`k` \(the number of clusters\) must be >= 1"),
    ("kmeans empty", lambda: ops.kmeans(torch.randn(0, 4), 1, 300, 1e-4, 1, 0), ValueError,
     r"`x` must have at least 1 rows, got shape \[0, 4\]"),
    ("kmeans integer x", lambda: ops.kmeans(_X.long(), 2, 300, 1e-4, 1, 0), TypeError, r"`x` must have a floating dtype"),
    ("kmeans NaN", lambda: ops.kmeans(torch.tensor([[0.0], [float("nan")]]), 1, 300, 1e-4, 1, 0), ValueError,
     r"`x` contains NaN or Inf"),
    ("kmeans n_init", lambda: ops.kmeans(_X, 2, 300, 1e-4, 0, 0), ValueError, r"`n_init` .* must be >= 1"),
    ("kmeans tol", lambda: ops.kmeans(_X, 2, 300, -1.0, 1, 0), ValueError, r"`tol` must be a finite number >= 0"),
    ("knn k > N", lambda: ops.knn_predict(_X, _Y, _X, 11, "cosine"), ValueError, r"`k` \(neighbours\) must be in \[1, 10\]"),
    ("knn labels length", lambda: ops.knn_predict(_X, _Y[:9], _X, 3, "cosine"), ValueError,
     r"`train_y` has 9 entries but 10 were expected"),
    ("knn float labels", lambda: ops.knn_predict(_X, _Y.float(), _X, 3, "cosine"), TypeError, r"`train_y` must hold integer labels"),
    ("knn metric", lambda: ops.knn_predict(_X, _Y, _X, 3, "manhattan"), ValueError,
     r"`metric` must be \"cosine\" or \"euclidean\", got \"manhattan\""),
    ("knn columns", lambda: ops.knn_predict(_X, _Y, torch.randn(3, 5), 3, "cosine"), ValueError,
     r"`query_x` has 5 columns but `train_x` has 4"),
    ("knn dtype", lambda: ops.knn_predict(_X, _Y, _X.double(), 3, "cosine"), TypeError,
     r"`query_x` has dtype Double but `train_x` has dtype Float"),
    ("recall k > gallery", lambda: ops.retrieval_recall(_X, _X, torch.arange(10), [1, 11]), ValueError,
     r"every K in `ks` must be in \[1, 10\] \(the gallery size\), got 11"),
    ("recall no ks", lambda: ops.retrieval_recall(_X, _X, torch.arange(10), []), ValueError, r"`ks` must list at least one K"),
    ("recall target range", lambda: ops.retrieval_recall(_X, _X, torch.arange(10) + 1, [1]), ValueError,
     r"every entry of `query_to_gallery` must index a gallery row in \[0, 10\)"),
    ("recall map length", lambda: ops.retrieval_recall(_X, _X, torch.arange(9), [1]), ValueError,
     r"`query_to_gallery` has 9 entries but 10 were expected"),
    ("recall NaN", lambda: ops.retrieval_recall(_X, torch.full((10, 4), float("nan")), torch.arange(10), [1]), ValueError,
     r"`gallery` contains NaN or Inf"),
    ("recall_any orphan query", lambda: ops.retrieval_recall_any(_X, _X, torch.zeros(10, dtype=torch.long), [1]),
     ValueError, r"query 1 has no true item in `gallery_to_query`"),
    ("logreg class range", lambda: ops.logistic_regression(_X, _Y, 2, 1.0, 100, 1e-4), ValueError,
     r"logistic_regression: `y` must hold class indices in \[0, 2\) \(`num_classes` = 2\), got \d+ outside"),
    ("logreg missing class", lambda: ops.logistic_regression(_X, _Y * 2, 5, 1.0, 100, 1e-4), ValueError,
     r"`y` has no row of class 1; every class in \[0, num_classes\) needs at least one"),
    ("logreg more classes than rows", lambda: ops.logistic_regression(_X, _Y, 2 ** 40, 1.0, 100, 1e-4), ValueError,
     r"`num_classes` = 1099511627776 exceeds the 10 rows of `x`; every class in \[0, num_classes\) needs at least one row"),
    ("logreg one class", lambda: ops.logistic_regression(_X, _Y * 0, 1, 1.0, 100, 1e-4), ValueError,
     r"`num_classes` must be >= 2, got 1"),
    ("logreg C", lambda: ops.logistic_regression(_X, _Y, 3, 0.0, 100, 1e-4), ValueError,
     r"`C` \(inverse regularisation strength\) must be finite and > 0, got 0"),
    ("logreg max_iter", lambda: ops.logistic_regression(_X, _Y, 3, 1.0, 0, 1e-4), ValueError,
     r"`max_iter` must be >= 1, got 0"),
    ("logreg tol", lambda: ops.logistic_regression(_X, _Y, 3, 1.0, 10, float("nan")), ValueError,
     r"`tol` must be finite and >= 0"),
    ("logreg NaN", lambda: ops.logistic_regression(torch.full((10, 4), float("nan")), _Y, 3, 1.0, 10, 1e-4),
     ValueError, r"logistic_regression: `x` contains NaN or Inf"),
    ("logreg labels length", lambda: ops.logistic_regression(_X, _Y[:9], 3, 1.0, 10, 1e-4), ValueError,
     r"`y` has 9 entries but 10 were expected"),
    ("logreg float labels", lambda: ops.logistic_regression(_X, _Y.float(), 3, 1.0, 10, 1e-4), TypeError,
     r"`y` must hold integer labels"),
    ("probe one class", lambda: ops.linear_probe_predict(_X, _Y * 0 + 4, _X, 1.0, 10, 1e-4), ValueError,
     r"linear_probe_predict: `train_y` must hold at least 2 classes"),
    ("probe columns", lambda: ops.linear_probe_predict(_X, _Y, torch.randn(3, 5), 1.0, 10, 1e-4), ValueError,
     r"`query_x` has 5 columns but `train_x` has 4"),
    ("evaluate probe_c", lambda: modgap.evaluate({"a": _X, "b": _X}, ks=(1,), probe_c=-1.0), ValueError,
     r"`probe_c` \(the linear probe's C\) must be finite and > 0, got -1"),
    ("evaluate probe_max_iter", lambda: modgap.evaluate({"a": _X, "b": _X}, ks=(1,), probe_max_iter=-1), ValueError,
     r"`probe_max_iter` must be >= 0 \(0 skips the linear probe and separability\), got -1"),
    ("gap_stats one row", lambda: ops.gap_stats([_X[:1], _X[:1]], False), ValueError, r"expected at least 2 rows \(N\)"),
    ("gap_stats NaN", lambda: ops.gap_stats([_X, torch.full((10, 4), float("inf"))], False), ValueError,
     r"gap_stats: `embeddings\[1\]` contains NaN or Inf"),
    ("evaluate one modality", lambda: modgap.evaluate({"a": _X}), ValueError, r"at least 2 modalities"),
    ("evaluate labels length", lambda: modgap.evaluate({"a": _X, "b": _X}, _Y[:4], ks=(1,)), ValueError,
     r"evaluate: `labels` has 4 entries but 10 were expected"),
    ("evaluate ks", lambda: modgap.evaluate({"a": _X, "b": _X}, ks=(1, 50)), ValueError,
     r"every K in `ks` must be in \[1, 10\]"),
    ("evaluate fraction", lambda: modgap.evaluate({"a": _X, "b": _X}, _Y, ks=(1,), test_fraction=1.5), ValueError,
     r"`test_fraction` must be in \(0, 1\)"),
    ("evaluate knn split", lambda: modgap.evaluate({"a": _X, "b": _X}, _Y, ks=(1,), knn_k=9), ValueError,
     r"the kNN training split has 8 rows, fewer than knn_k = 9"),
    ("evaluate name type", lambda: modgap.evaluate({1: _X, 2: _X}), TypeError,
     r"modgap.evaluate: modality names \(the keys of `embeddings`\) must be strings, got int 1"),
    ("evaluate value type", lambda: modgap.evaluate({"a": _X, "b": _X.tolist()}), TypeError,
     r"modgap.evaluate: embeddings\['b'\] must be a Tensor \[N, D\], got list"),
    ("evaluate labels type", lambda: modgap.evaluate({"a": _X, "b": _X}, _Y.tolist()), TypeError,
     r"modgap.evaluate: `labels` must be a Tensor of N integer labels or None, got list"),
    ("evaluate named row mismatch", lambda: modgap.evaluate({"image": _X, "audio": _X[:9]}), ValueError,
     r"modgap::evaluate: `embeddings\['audio'\]` has 9 rows but `embeddings\['image'\]` has 10; row i of every "
     r"modality must be the same sample"),
    ("evaluate named dtype", lambda: modgap.evaluate({"image": _X, "text": _X.double()}), TypeError,
     r"`embeddings\['text'\]` has dtype Double but `embeddings\['image'\]` has dtype Float"),
    ("evaluate named NaN", lambda: modgap.evaluate({"image": _X, "text": torch.full((10, 4), float("nan"))}),
     ValueError, r"modgap::evaluate: `embeddings\['text'\]` contains NaN or Inf values"),
    ("evaluate named 1-D", lambda: modgap.evaluate({"image": _X, "text": _X[:, 0]}), ValueError,
     r"`embeddings\['text'\]` must be a 2-D tensor \[rows, D\], got shape \[10\]"),
    ("format_evaluation one modality", lambda: modgap.format_evaluation({"a": _X}), ValueError,
     r"modgap.format_evaluation: `embeddings` must be a dict of at least 2 modalities"),
]


@pytest.mark.parametrize("name,call,exception,message", BAD_EVALUATION_INPUTS, ids=[c[0] for c in BAD_EVALUATION_INPUTS])
def test_evaluation_bad_input_is_a_clear_error(name, call, exception, message):
    with pytest.raises(exception, match=message):
        call()


def test_evaluation_meta_kernels_check_too():
    with pytest.raises(ValueError, match=r"`k` = 11 clusters need at least 11 rows"):
        ops.kmeans(_X.to("meta"), 11, 300, 1e-4, 1, 0)
    with pytest.raises(ValueError, match=r"`metric` must be"):
        ops.knn_predict(_X.to("meta"), _Y.to("meta"), _X.to("meta"), 3, "l1")
    with pytest.raises(ValueError, match=r"`C` \(inverse regularisation strength\) must be finite and > 0"):
        ops.logistic_regression(_X.to("meta"), _Y.to("meta"), 3, -2.0, 10, 1e-4)
    coef, intercept, n_iter = ops.logistic_regression(_X.to("meta"), _Y.to("meta"), 2, 1.0, 10, 1e-4)
    assert coef.shape == (1, 4) and intercept.shape == (1,) and coef.dtype == torch.float64 and n_iter.shape == ()


def test_cli_eval_reads_the_protocol_from_a_config(tmp_path):
    embeddings, labels = _digits_embeddings()
    path = tmp_path / "emb.pt"
    torch.save({**embeddings, "labels": labels}, path)
    out = tmp_path / "result.json"
    configs = Path(__file__).resolve().parents[2] / "configs"
    run = subprocess.run([modgap_cli(), "eval", str(path), f"config={configs / 'train.yaml'}", "eval.knn_k=7", "seed=5",
                          "eval.ks=[1,3]", f"out={out}"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = _strict_json(out.read_text())
    # knn_k and ks from the config override, seed from the plain key (plain keys win), n_init from the config.
    assert result["protocol"]["knn_k"] == 7 and result["protocol"]["ks"] == [1, 3] and result["protocol"]["seed"] == 5
    assert _same_result(result, modgap.evaluate(embeddings, labels, ks=(1, 3), knn_k=7, seed=5, n_init=1))
    run = subprocess.run([modgap_cli(), "eval", str(path), "eval.knn_k=7"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "give config=CONFIG.yaml" in run.stderr
