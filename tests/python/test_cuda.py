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
