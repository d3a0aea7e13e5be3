"""Property-based tests (hypothesis, derandomised so CI is reproducible): the ops against the float64
formulas on shapes, temperatures and scales hypothesis chooses (and shrinks on failure), and the
invariances the definitions imply: rotations, permutations, translations, relabelling, bounds."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("hypothesis")  # in requirements.txt; an image without it (the GPU machine) skips
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.metrics import homogeneity_completeness_v_measure  # noqa: E402

import modgap  # noqa: E402
from reference import atp_formula, centroid_uniformity_formula  # noqa: E402

settings.register_profile("modgap", max_examples=150, deadline=None, derandomize=True, database=None, print_blob=True)
settings.load_profile("modgap")


def embeddings(seed: int, num_modalities: int, n: int, d: int, scale: float = 1.0, normalize: bool = False):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_modalities):
        z = torch.randn(n, d, generator=generator, dtype=torch.float64) * scale
        out.append(F.normalize(z, dim=-1) if normalize else z)
    return out


def random_rotation(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # Haar-distributed orthogonal matrix


seeds = st.integers(0, 2 ** 31 - 1)
sizes = st.integers(2, 40)
dims = st.integers(1, 16)
modality_counts = st.integers(2, 4)
temperatures = st.floats(0.05, 20.0)
scales = st.sampled_from([1e-3, 0.1, 1.0, 10.0])


# ---- centroid_uniformity ---------------------------------------------------------------------

@given(seed=seeds, m=modality_counts, n=sizes, d=dims, t=temperatures, normalize=st.booleans(), scale=scales)
def test_centroid_uniformity_matches_the_formula(seed, m, n, d, t, normalize, scale):
    z = [e.requires_grad_(True) for e in embeddings(seed, m, n, d, scale)]
    ours = modgap.centroid_uniformity(z, t, normalize)
    reference = centroid_uniformity_formula(z, t, normalize)
    torch.testing.assert_close(ours, reference, rtol=1e-10, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, z), torch.autograd.grad(reference, z)):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-10 * max(1.0, b.abs().max().item()))


@settings(max_examples=100)
@given(seed=seeds, m=modality_counts, n=st.integers(2, 300), d=st.integers(1, 64), t=temperatures,
       normalize=st.booleans(), scale=st.sampled_from([1e-3, 0.1, 1.0, 3.0]))
def test_centroid_uniformity_float32_accumulates_like_float64(seed, m, n, d, t, normalize, scale):
    """float32 inputs (float32 accumulation; at t R^2 > 30 the online pass) against the float64 formula on the
    same rows: the value to 1e-5 of max(1, |L|), the gradient to 2e-4 of its largest entry (a 400-example
    exploration found at most 1.2e-6 and 5.2e-5)."""
    z64 = embeddings(seed, m, n, d, scale)
    z = [e.float().requires_grad_(True) for e in z64]
    reference_inputs = [e.float().double().requires_grad_(True) for e in z64]
    ours = modgap.centroid_uniformity(z, t, normalize)
    reference = centroid_uniformity_formula(reference_inputs, t, normalize)
    assert abs(ours.double().item() - reference.item()) <= 1e-5 * max(1.0, abs(reference.item()))
    expected = torch.autograd.grad(reference, reference_inputs)
    largest = max(g.abs().max().item() for g in expected)
    for a, b in zip(torch.autograd.grad(ours, z), expected):
        assert (a.double() - b).abs().max().item() <= 2e-4 * max(largest, 1e-6)


@given(seed=seeds, m=modality_counts, n=sizes, d=st.integers(2, 12), t=temperatures, normalize=st.booleans())
def test_centroid_uniformity_invariances(seed, m, n, d, t, normalize):
    """Pair distances are all it sees: a rotation, one permutation of the rows of every modality and a
    reordering of the modalities leave it unchanged. With normalised centroids it lies in [-4t, 0]."""
    z = embeddings(seed, m, n, d)
    value = modgap.centroid_uniformity(z, t, normalize)
    rotation = random_rotation(d, seed + 1)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 2))
    torch.testing.assert_close(modgap.centroid_uniformity([e @ rotation for e in z], t, normalize), value,
                               rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(modgap.centroid_uniformity([e[permutation] for e in z], t, normalize), value,
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(modgap.centroid_uniformity(z[::-1], t, normalize), value, rtol=1e-12, atol=1e-12)
    assert value.item() <= 1e-12
    if normalize:
        assert value.item() >= -4.0 * t - 1e-9


@given(seed=seeds, n=sizes, d=dims, t=temperatures)
def test_translation_changes_centroid_uniformity_only_without_normalisation(seed, n, d, t):
    """Unnormalised centroids: a common shift of every embedding leaves every pair distance, hence the
    value, unchanged; the gradient sums to zero over the rows (translation invariance)."""
    z = [e.requires_grad_(True) for e in embeddings(seed, 2, n, d)]
    shift = torch.randn(d, generator=torch.Generator().manual_seed(seed + 3), dtype=torch.float64)
    value = modgap.centroid_uniformity(z, t, False)
    torch.testing.assert_close(modgap.centroid_uniformity([e + shift for e in z], t, False), value,
                               rtol=1e-9, atol=1e-10)
    grads = torch.autograd.grad(value, z)
    total = sum(g.sum(0) for g in grads)
    assert total.abs().max().item() <= 1e-9 * max(1.0, max(g.abs().max().item() for g in grads))


# ---- atp_loss ----------------------------------------------------------------------------------

@given(seed=seeds, m=modality_counts, n=st.integers(1, 40), d=dims, scale=scales, data=st.data())
def test_atp_loss_matches_the_formula_and_scales_quadratically(seed, m, n, d, scale, data):
    anchor = data.draw(st.integers(0, m - 1))
    z = embeddings(seed, m, n, d, scale)
    value = modgap.atp_loss(z, anchor)
    torch.testing.assert_close(value, atp_formula(z, anchor), rtol=1e-12, atol=0)
    torch.testing.assert_close(modgap.atp_loss([3.0 * e for e in z], anchor), 9.0 * value, rtol=1e-12, atol=0)
    shift = torch.randn(d, generator=torch.Generator().manual_seed(seed + 4), dtype=torch.float64) * scale
    torch.testing.assert_close(modgap.atp_loss([e + shift for e in z], anchor), value, rtol=1e-9,
                               atol=1e-12 * scale ** 2)
    assert modgap.atp_loss([z[0]] * m, anchor).item() == 0.0


# ---- cross_uniformity --------------------------------------------------------------------------

@given(seed=seeds, n=sizes, d=dims, t=temperatures, exclude_diagonal=st.booleans(), scale=scales)
def test_cross_uniformity_is_symmetric_and_matches_the_formula(seed, n, d, t, exclude_diagonal, scale):
    x, y = embeddings(seed, 2, n, d, scale)
    value = modgap.cross_uniformity(x, y, t, exclude_diagonal)
    sq = torch.cdist(x, y).pow(2)
    logits = -t * (sq[~torch.eye(n, dtype=torch.bool)] if exclude_diagonal else sq.flatten())
    reference = torch.logsumexp(logits, 0) - math.log(logits.numel())
    torch.testing.assert_close(value, reference, rtol=1e-10, atol=1e-10 * max(1.0, abs(reference.item())))
    # The pair set is symmetric in x and y (the diagonal too), and every distance is kept by a rotation.
    torch.testing.assert_close(modgap.cross_uniformity(y, x, t, exclude_diagonal), value, rtol=1e-12, atol=1e-12)
    rotation = random_rotation(d, seed + 5)
    torch.testing.assert_close(modgap.cross_uniformity(x @ rotation, y @ rotation, t, exclude_diagonal), value,
                               rtol=1e-9, atol=1e-9 * max(1.0, abs(value.item())))


@settings(max_examples=100)
@given(seed=seeds, n=st.integers(2, 300), d=st.integers(1, 64), t=temperatures, exclude_diagonal=st.booleans(),
       scale=st.sampled_from([1e-3, 0.1, 1.0, 3.0]), dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16]))
def test_cross_uniformity_low_precision_against_float64(seed, n, d, t, exclude_diagonal, scale, dtype):
    """float32 / float16 / bfloat16 rows are computed in float32: against the float64 formula on the same
    (rounded) rows the value is off by the output's rounding at most, the gradient by 2e-4 (float32) or
    2e-2 (half, rounded to the input dtype) of its largest entry."""
    x64, y64 = embeddings(seed, 2, n, d, scale)
    x, y = (e.to(dtype).requires_grad_(True) for e in (x64, y64))
    xr, yr = (e.detach().double().requires_grad_(True) for e in (x, y))
    sq = torch.cdist(xr, yr).pow(2)
    logits = -t * (sq[~torch.eye(n, dtype=torch.bool)] if exclude_diagonal else sq.flatten())
    reference = torch.logsumexp(logits, 0) - math.log(logits.numel())
    ours = modgap.cross_uniformity(x, y, t, exclude_diagonal)
    value_tol = {torch.float32: 1e-5, torch.float16: 2 ** -10, torch.bfloat16: 2 ** -7}[dtype]
    grad_tol = 2e-4 if dtype == torch.float32 else 2e-2
    assert abs(ours.double().item() - reference.item()) <= value_tol * max(1.0, abs(reference.item()))
    expected = torch.autograd.grad(reference, [xr, yr])
    largest = max(g.abs().max().item() for g in expected)
    for a, b in zip(torch.autograd.grad(ours, [x, y]), expected):
        assert (a.double() - b).abs().max().item() <= grad_tol * max(largest, 1e-6)


# ---- gap_stats ---------------------------------------------------------------------------------

@given(seed=seeds, m=modality_counts, n=sizes, d=st.integers(2, 12), scale=scales)
def test_gap_stats_are_rotation_and_scale_invariant(seed, m, n, d, scale):
    """Rows are normalised inside, so scaling a modality changes nothing; a common rotation keeps every
    cosine. The gap matrix is symmetric with a zero diagonal and at most 2 (unit vectors)."""
    z = embeddings(seed, m, n, d)
    stats = modgap.gap_stats(z)
    rotated = modgap.gap_stats([e @ random_rotation(d, seed + 6) for e in z])
    scaled = modgap.gap_stats([scale * e for e in z])
    for name, value in stats.items():
        torch.testing.assert_close(rotated[name], value, rtol=1e-9, atol=1e-9, msg=name)
        torch.testing.assert_close(scaled[name], value, rtol=1e-9, atol=1e-9, msg=name)
    gap = stats["gap"]
    torch.testing.assert_close(gap, gap.t(), rtol=0, atol=0)
    assert gap.diagonal().abs().max().item() <= 1e-12 and gap.max().item() <= 2.0 + 1e-12
    # Eq. 2 directly: the distance between the modality centroids of the unit rows.
    centroids = [F.normalize(e, dim=-1).mean(0) for e in z]
    torch.testing.assert_close(gap[0, 1], (centroids[0] - centroids[1]).norm(), rtol=1e-10, atol=1e-12)


# ---- vmeasure ----------------------------------------------------------------------------------

labelings = st.lists(st.tuples(st.integers(-3, 6), st.integers(0, 9)), min_size=1, max_size=60)


@given(pairs=labelings, beta=st.sampled_from([0.5, 1.0, 2.0]))
def test_vmeasure_matches_scikit_learn_and_ignores_label_names(pairs, beta):
    true = torch.tensor([p[0] for p in pairs])
    pred = torch.tensor([p[1] for p in pairs])
    h, c, v = modgap.vmeasure(true, pred, beta)
    expected = homogeneity_completeness_v_measure(true.numpy(), pred.numpy(), beta=beta)
    assert (h, c, v) == pytest.approx(expected, abs=1e-12)
    # Renaming the clusters (any injective map) changes nothing; swapping the roles swaps h and c.
    renamed = modgap.vmeasure(true, pred * 7 - 100, beta)
    assert renamed == pytest.approx((h, c, v), abs=1e-12)
    swapped = modgap.vmeasure(pred, true, 1.0)
    straight = modgap.vmeasure(true, pred, 1.0)
    assert swapped[0] == pytest.approx(straight[1], abs=1e-12)
    assert swapped[2] == pytest.approx(straight[2], abs=1e-12)


# ---- kmeans and retrieval ------------------------------------------------------------------------

@given(seed=seeds, n=st.integers(2, 60), d=dims, data=st.data())
def test_kmeans_result_is_consistent(seed, n, d, data):
    """Labels index the nearest returned centroid, the inertia is the sum of squared distances to it,
    and every centroid is the mean of its rows (a Lloyd fixed point) or the run stopped at max_iter."""
    k = data.draw(st.integers(1, min(n, 6)))
    x = embeddings(seed, 1, n, d)[0]
    centroids, labels, inertia = modgap.kmeans(x, k, max_iter=300, tol=0.0, n_init=2, seed=seed % 1000)
    assert labels.min().item() >= 0 and labels.max().item() < k
    distances = torch.cdist(x, centroids).pow(2)
    assert torch.equal(distances.argmin(1), labels) or torch.allclose(
        distances.gather(1, labels[:, None]).squeeze(1), distances.min(1).values, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(inertia.double(), distances.gather(1, labels[:, None]).sum(), rtol=1e-9, atol=1e-12)
    for cluster in range(k):
        members = x[labels == cluster]
        if len(members):
            torch.testing.assert_close(centroids[cluster], members.mean(0), rtol=1e-9, atol=1e-9)


@given(seed=seeds, n=st.integers(2, 50), d=st.integers(2, 16))
def test_retrieval_recall_is_monotone_and_exact_on_itself(seed, n, d):
    queries, gallery = embeddings(seed, 2, n, d)
    ks = list(range(1, n + 1))
    identity = torch.arange(n)
    recall = modgap.retrieval_recall(queries, gallery, identity, ks)
    assert torch.all(recall[1:] >= recall[:-1]) and recall[-1].item() == 1.0
    # Naive float64 ranking: the true item's rank among all gallery rows by cosine similarity.
    similarity = F.normalize(queries, dim=-1) @ F.normalize(gallery, dim=-1).t()
    rank = (similarity > similarity.diagonal()[:, None]).sum(1)
    expected = torch.tensor([(rank < k).double().mean().item() for k in ks], dtype=torch.float64)
    torch.testing.assert_close(recall.double(), expected, rtol=0, atol=1e-12)
    assert modgap.retrieval_recall(queries, queries, identity, [1]).item() == 1.0
