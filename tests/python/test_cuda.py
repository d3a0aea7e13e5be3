"""CUDA kernels against the CPU kernels (which the other tests check against the references).
Skipped where no GPU is present."""
from __future__ import annotations

import pytest
import torch

import modgap
from conftest import make_embeddings, requires_cuda
from reference import reference_gap_terms

pytestmark = requires_cuda


@pytest.fixture(autouse=True)
def _full_fp32_matmul():
    # The CPU reference runs in full fp32; TF32 would change the comparison (see the scale-out issue).
    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = previous


@pytest.mark.parametrize("n", [2, 300, 2049, 9000])
@pytest.mark.parametrize("num_modalities", [2, 3])
def test_cuda_matches_cpu_float32(n, num_modalities):
    z_cpu = make_embeddings(num_modalities, n, 64, dtype=torch.float32, seed=n, normalize=True, requires_grad=True)
    z_gpu = [x.detach().cuda().requires_grad_(True) for x in z_cpu]
    for op in (modgap.atp_loss, modgap.centroid_uniformity):
        cpu, gpu = op(z_cpu), op(z_gpu)
        assert abs(cpu.item() - gpu.item()) <= 1e-5 * abs(cpu.item()) + 1e-7, op
        for a, b in zip(torch.autograd.grad(cpu, z_cpu), torch.autograd.grad(gpu, z_gpu)):
            torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-6)


def test_cuda_matches_seed_reference_float64():
    image, text = make_embeddings(2, 700, 32, device="cuda", seed=1, normalize=True, requires_grad=True)
    ref_align, ref_unif = reference_gap_terms(image, text)
    assert abs(modgap.atp_loss([image, text]).item() - ref_align.item()) <= 1e-10 * ref_align.item()
    assert abs(modgap.centroid_uniformity([image, text]).item() - ref_unif.item()) <= 1e-10 * abs(ref_unif.item())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_inputs(dtype):
    z = make_embeddings(2, 1000, 64, dtype=dtype, device="cuda", seed=2, normalize=True, requires_grad=True)
    loss = modgap.centroid_uniformity(z) + modgap.atp_loss(z)
    assert loss.dtype == dtype and torch.isfinite(loss)
    assert all(torch.isfinite(g).all() and g.dtype == dtype for g in torch.autograd.grad(loss, z))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("n", [700, 9000])
def test_cuda_half_inputs_match_cpu(dtype, n):
    """Half inputs: tensor-core GEMMs on rounded centroids, bfloat16 pair weights; the CPU computes the
    same products (test_losses.py checks it against float64), so the two agree up to float32
    accumulation order and the rounding of the results to the input dtype. n = 9000 crosses the CUDA
    tile (2048 x 8192) in both directions."""
    z_cpu = make_embeddings(2, n, 64, dtype=dtype, seed=n, normalize=True, requires_grad=True)
    z_gpu = [x.detach().cuda().requires_grad_(True) for x in z_cpu]
    cpu, gpu = modgap.centroid_uniformity(z_cpu), modgap.centroid_uniformity(z_gpu)
    assert abs(cpu.double().item() - gpu.double().item()) <= torch.finfo(dtype).eps * abs(cpu.double().item())
    for a, b in zip(torch.autograd.grad(cpu, z_cpu), torch.autograd.grad(gpu, z_gpu)):
        assert (b.double().cpu() - a.double()).norm() <= 5e-3 * a.double().norm()
    with torch.no_grad():  # the forward-only pass
        cpu, gpu = modgap.centroid_uniformity(z_cpu), modgap.centroid_uniformity(z_gpu)
        assert abs(cpu.double().item() - gpu.double().item()) <= torch.finfo(dtype).eps * abs(cpu.double().item())


def test_cuda_tf32_follows_pytorch_setting():
    z = make_embeddings(2, 3000, 256, dtype=torch.float32, device="cuda", seed=6, normalize=True, requires_grad=True)
    z64 = [x.detach().double().requires_grad_(True) for x in z]
    truth = modgap.centroid_uniformity(z64)
    (truth_grad,) = torch.autograd.grad(truth, z64[:1])
    torch.backends.cuda.matmul.allow_tf32 = True
    loss = modgap.centroid_uniformity(z)
    (grad,) = torch.autograd.grad(loss, z[:1])
    assert abs(loss.item() - truth.item()) <= 1e-3 * abs(truth.item())
    assert (grad.double() - truth_grad).norm() <= 1e-2 * truth_grad.norm()


@pytest.mark.parametrize("t", [29.0, 31.0])
@pytest.mark.parametrize("scale", [1.0, 40.0])
def test_cuda_both_gradient_passes_match_cpu_float64(t, scale):
    """The static-shift pass (2 t R^2 <= 60) and the running-maximum pass, in float64 on both devices."""
    normalize = scale == 1.0
    z_cpu = [x * scale for x in make_embeddings(2, 2500, 8, seed=7, normalize=True)]
    for x in z_cpu:
        x.requires_grad_(True)
    z_gpu = [x.detach().cuda().requires_grad_(True) for x in z_cpu]
    cpu = modgap.centroid_uniformity(z_cpu, t=t, normalize=normalize)
    gpu = modgap.centroid_uniformity(z_gpu, t=t, normalize=normalize)
    assert abs(cpu.item() - gpu.item()) <= 1e-12 * abs(cpu.item())
    for a, b in zip(torch.autograd.grad(cpu, z_cpu), torch.autograd.grad(gpu, z_gpu)):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-9, atol=1e-14)


def test_cuda_large_batch_is_stable():
    n = 2**18
    z = make_embeddings(2, n, 16, dtype=torch.float32, device="cuda", seed=3, normalize=True, requires_grad=True)
    loss = modgap.centroid_uniformity(z, t=20.0)
    grads = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)


def test_cuda_nan_check():
    z = make_embeddings(2, 10, 4, dtype=torch.float32, device="cuda", seed=4)
    z[0][1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"embeddings\[0\] contains NaN or Inf values"):
        modgap.centroid_uniformity(z)


def test_cuda_does_not_use_the_default_stream():
    z = make_embeddings(2, 500, 16, dtype=torch.float32, device="cuda", seed=5, requires_grad=True)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        loss = modgap.centroid_uniformity(z) + modgap.atp_loss(z)
        grads = torch.autograd.grad(loss, z)
    stream.synchronize()
    expected = modgap.centroid_uniformity(z) + modgap.atp_loss(z)
    torch.testing.assert_close(loss, expected)
    assert all(torch.isfinite(g).all() for g in grads)


# ---- evaluation ops on CUDA (the CPU results are checked against scikit-learn in test_evaluation.py) ----

def test_cuda_vmeasure_matches_cpu():
    generator = torch.Generator().manual_seed(0)
    a = torch.randint(-50, 950, (1_000_000,), generator=generator)
    b = (a + torch.randint(0, 3, a.shape, generator=generator)) % 1000
    for cpu, gpu in zip(modgap.vmeasure(a, b), modgap.vmeasure(a.cuda(), b.cuda())):
        assert abs(cpu - gpu) <= 1e-12


def test_cuda_gap_stats_and_recall_match_cpu():
    z = make_embeddings(3, 5000, 64, dtype=torch.float32, seed=10)
    cpu = modgap.gap_stats(z)
    gpu = modgap.gap_stats([x.cuda() for x in z])
    for key in cpu:
        torch.testing.assert_close(gpu[key].cpu(), cpu[key], rtol=1e-5, atol=1e-6, msg=key)
    target = torch.arange(5000)
    torch.testing.assert_close(modgap.retrieval_recall(z[0].cuda(), z[1].cuda(), target.cuda(), [1, 5, 10]).cpu(),
                               modgap.retrieval_recall(z[0], z[1], target, [1, 5, 10]), rtol=0, atol=2e-4)
    owner = torch.arange(1000).repeat_interleave(5)
    torch.testing.assert_close(
        modgap.retrieval_recall_any(z[0][:1000].cuda(), z[1].cuda(), owner.cuda(), [1, 5]).cpu(),
        modgap.retrieval_recall_any(z[0][:1000], z[1], owner, [1, 5]), rtol=0, atol=2e-3)


def test_cuda_knn_and_kmeans():
    from sklearn.datasets import make_blobs
    from sklearn.metrics import adjusted_rand_score
    x, y = make_blobs(20000, centers=10, n_features=32, cluster_std=0.7, random_state=0)
    x = torch.tensor(x, dtype=torch.float64)
    y = torch.tensor(y)
    _, labels_cpu, inertia_cpu = modgap.kmeans(x, 10, n_init=2, seed=1)
    first = modgap.kmeans(x.cuda(), 10, n_init=2, seed=1)
    second = modgap.kmeans(x.cuda(), 10, n_init=2, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(first, second))          # deterministic on the device
    assert adjusted_rand_score(labels_cpu.numpy(), first[1].cpu().numpy()) == 1.0
    assert abs(first[2].item() - inertia_cpu.item()) <= 1e-9 * inertia_cpu.item()
    for metric in ("cosine", "euclidean"):
        cpu = modgap.knn_predict(x[:15000], y[:15000], x[15000:], 5, metric)
        gpu = modgap.knn_predict(x[:15000].cuda(), y[:15000].cuda(), x[15000:].cuda(), 5, metric)
        assert torch.equal(gpu.cpu(), cpu)


def test_cuda_evaluate_matches_cpu():
    z = make_embeddings(2, 3000, 32, dtype=torch.float32, seed=11)
    labels = torch.randint(0, 10, (3000,), generator=torch.Generator().manual_seed(0))
    z[1] = z[1] + 2 * torch.nn.functional.one_hot(labels, 32).float()
    cpu = modgap.evaluate({"image": z[0], "text": z[1]}, labels)
    gpu = modgap.evaluate({"image": z[0].cuda(), "text": z[1].cuda()}, labels.cuda())
    for key in ("gap", "cos_tp_mean", "rmg", "centroid_cosine"):
        assert gpu["pairs"]["image-text"][key] == pytest.approx(cpu["pairs"]["image-text"][key], rel=1e-5, abs=1e-6)
    assert gpu["protocol"]["device"].startswith("cuda")
    assert 0.0 <= gpu["clustering"]["v_measure"] <= 1.0
    # The probe fits in float64 on either device; reduction orders differ, so allow one held-out row per split.
    n_test = gpu["knn"]["n_test"]
    for name in ("image", "text", "joint"):
        assert abs(gpu["linear_probe"]["accuracy"][name] - cpu["linear_probe"]["accuracy"][name]) <= 2.0 / n_test
    assert abs(gpu["pairs"]["image-text"]["linear_separability"] - cpu["pairs"]["image-text"]["linear_separability"]) <= 2.0 / n_test


def test_cuda_logistic_regression_matches_cpu():
    from sklearn.datasets import load_digits
    x, y = load_digits(return_X_y=True)
    x, y = torch.tensor(x / 16.0), torch.tensor(y)
    cpu = modgap.logistic_regression(x, y, 10, max_iter=2000, tol=1e-8)
    gpu = modgap.logistic_regression(x.cuda(), y.cuda(), 10, max_iter=2000, tol=1e-8)
    assert gpu[0].is_cuda and gpu[0].dtype == torch.float64
    torch.testing.assert_close(gpu[0].cpu(), cpu[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(gpu[1].cpu(), cpu[1], atol=1e-4, rtol=0)
    predicted = modgap.linear_probe_predict(x.float().cuda(), y.cuda(), x.float().cuda())
    assert (predicted.cpu() == modgap.linear_probe_predict(x.float(), y, x.float())).double().mean() >= 0.99


@pytest.mark.parametrize("exclude_diagonal", [True, False])
def test_cuda_cross_uniformity_matches_cpu(exclude_diagonal):
    """9000 rows cross the CUDA tile (2048 x 8192) in both directions."""
    x_cpu, y_cpu = make_embeddings(2, 9000, 48, dtype=torch.float32, seed=9, normalize=True, requires_grad=True)
    x_gpu, y_gpu = (z.detach().cuda().requires_grad_(True) for z in (x_cpu, y_cpu))
    cpu = modgap.cross_uniformity(x_cpu, y_cpu, 2.0, exclude_diagonal)
    gpu = modgap.cross_uniformity(x_gpu, y_gpu, 2.0, exclude_diagonal)
    assert abs(cpu.item() - gpu.item()) <= 1e-5 * abs(cpu.item())
    for a, b in zip(torch.autograd.grad(cpu, [x_cpu, y_cpu]), torch.autograd.grad(gpu, [x_gpu, y_gpu])):
        torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-8)
