"""The ops inside ``torch.autocast`` (the AutocastCPU / AutocastCUDA kernels of ops/common/autocast.cpp).

Losses follow PyTorch's float32 policy: under autocast, fp16 / bf16 inputs give exactly the loss and the
gradients of the op run outside autocast on the inputs cast to float32. Every other op gives, inside
autocast, exactly what it gives outside. Before the autocast kernels existed, autocast stayed on inside
the kernels: centroid_uniformity raised "expected scalar type Float but found BFloat16" and
cross_uniformity, knn_predict and spectral_align returned other numbers; the cases below are those."""
from __future__ import annotations

import pytest
import torch

import modgap
from conftest import make_embeddings
from reference import atp_formula, centroid_uniformity_formula

ops = torch.ops.modgap
LOW_PRECISION = [torch.bfloat16, torch.float16]  # CPU autocast takes both too (torch >= 2.4)


def _losses():
    return {
        "atp_loss": lambda z: ops.atp_loss(z, 1),
        "centroid_uniformity": lambda z: ops.centroid_uniformity(z, 2.0, True),
        "cross_uniformity": lambda z: ops.cross_uniformity(z[0], z[1], 3.0, True),
    }


def _flat(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _assert_identical(actual, expected):
    for a, e in zip(_flat(actual), _flat(expected), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        assert torch.equal(a, e), (a, e)


def test_every_tensor_op_has_autocast_kernels():
    schemas = [s for s in torch._C._jit_get_all_schemas() if s.name.startswith("modgap::")]
    tensor_ops = sorted({s.name for s in schemas if any("Tensor" in str(a.type) for a in s.arguments)})
    assert "modgap::centroid_uniformity" in tensor_ops and len(tensor_ops) >= 25
    for name in tensor_ops:
        for key in ("AutocastCPU", "AutocastCUDA"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(name, key), (name, key)


@pytest.mark.parametrize("loss", ["atp_loss", "centroid_uniformity", "cross_uniformity"])
def test_losses_under_autocast_are_the_float32_op_on_cast_inputs(device, loss):
    f = _losses()[loss]
    for dtype in LOW_PRECISION:
        low = [z.to(dtype).requires_grad_(True) for z in make_embeddings(3, 37, 6, device=device, seed=3)]
        upcast = [z.detach().float().requires_grad_(True) for z in low]
        with torch.autocast(device, dtype=dtype):
            value = f(low)
        expected = f(upcast)
        assert value.dtype == torch.float32
        assert torch.equal(value, expected), (loss, dtype, value, expected)
        value.backward()
        expected.backward()
        for z, u in zip(low, upcast):
            if u.grad is None:           # cross_uniformity uses two of the three
                assert z.grad is None
                continue
            assert z.grad.dtype == dtype  # autograd hands the bf16 / fp16 leaf its gradient in its dtype
            assert torch.equal(z.grad, u.grad.to(dtype))


def test_loss_values_under_autocast_match_the_float64_reference(device):
    # Independent of the op outside autocast: the reference formulas (the seed's code) in float64 on the
    # bf16 inputs.
    low = [z.to(torch.bfloat16) for z in make_embeddings(2, 64, 8, device=device, seed=5)]
    exact = [z.double() for z in low]
    with torch.autocast(device, dtype=torch.bfloat16):
        atp, cu = ops.atp_loss(low, 0), ops.centroid_uniformity(low, 2.0, True)
    torch.testing.assert_close(atp.double(), atp_formula(exact, 0), rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(cu.double(), centroid_uniformity_formula(exact, 2.0, True), rtol=2e-6, atol=1e-6)


def test_losses_accept_mixed_precision_modalities_under_autocast(device):
    # A bf16 image tower beside float32 (cached) text features: refused outside autocast (every modality
    # must have the same dtype), accepted inside it, as F.cross_entropy would be.
    image, text = make_embeddings(2, 20, 5, device=device, seed=7)
    image, text = image.to(torch.bfloat16), text.float()
    with pytest.raises(TypeError, match=r"embeddings\[1\] has dtype Float but embeddings\[0\] has dtype BFloat16"):
        ops.centroid_uniformity([image, text], 2.0, True)
    with torch.autocast(device, dtype=torch.bfloat16):
        value = ops.centroid_uniformity([image, text], 2.0, True)
        atp = ops.atp_loss([image, text], 0)
    assert torch.equal(value, ops.centroid_uniformity([image.float(), text], 2.0, True))
    assert torch.equal(atp, ops.atp_loss([image.float(), text], 0))


def test_float32_losses_and_gradients_are_unchanged_by_autocast(device):
    # The crash and the 3e-2 shift this file was written for: float32 inputs inside autocast, the backward
    # pass run inside autocast too (the internal backward ops then see autocast as well).
    for name, f in _losses().items():
        outside = [z.float().requires_grad_(True) for z in make_embeddings(3, 41, 8, device=device, seed=11)]
        inside = [z.detach().clone().requires_grad_(True) for z in outside]
        expected = f(outside)
        expected.backward()
        for dtype in LOW_PRECISION:
            with torch.autocast(device, dtype=dtype):
                value = f(inside)
                value.backward()
            assert torch.equal(value, expected), (name, dtype)
            for a, b in zip(inside, outside):
                if b.grad is not None:
                    assert torch.equal(a.grad, b.grad), (name, dtype)
                    a.grad = None


def _other_op_calls(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 8, generator=g).to(device)
    y = torch.randn(40, 8, generator=g).to(device)
    labels = (torch.arange(40) % 4).to(device)
    return {
        "gap_stats": lambda x, y: ops.gap_stats([x, y]),
        "kmeans": lambda x, y: ops.kmeans(x, 4),
        "knn_predict": lambda x, y: ops.knn_predict(x, labels, y),
        "linear_probe_predict": lambda x, y: ops.linear_probe_predict(x, labels, y),
        "retrieval_recall": lambda x, y: ops.retrieval_recall(x, y, torch.arange(40, device=device), [1, 5]),
        "shift_modalities": lambda x, y: ops.shift_modalities(x, y, 0.5),
        "spectral_align": lambda x, y: ops.spectral_align(x, y, 4),
        "ot_map_new_points": lambda x, y: ops.ot_map_new_points(x, y, y + 1),
        "fill_gap_stats": lambda x, y: ops.fill_gap_stats(x, y),
    }, x, y


@pytest.mark.parametrize("input_dtype", [torch.float32, torch.bfloat16])
def test_other_ops_give_the_same_result_inside_and_outside_autocast(device, input_dtype):
    calls, x, y = _other_op_calls(device)
    x, y = x.to(input_dtype), y.to(input_dtype)
    for name, f in calls.items():
        try:
            expected = f(x, y)
        except RuntimeError as error:       # an op that refuses this dtype must refuse it inside autocast too
            with torch.autocast(device, dtype=torch.bfloat16), pytest.raises(RuntimeError, match="modgap"):
                f(x, y)
            assert "modgap" in str(error)
            continue
        for dtype in LOW_PRECISION:
            with torch.autocast(device, dtype=dtype):
                actual = f(x, y)
            _assert_identical(actual, expected)


def test_torchscript_list_is_not_changed_by_the_cast():
    # The float32 cast builds a new list: the list a TorchScript function still holds keeps its tensors.
    @torch.jit.script
    def loss_and_first(a: torch.Tensor, b: torch.Tensor):
        embeddings = [a, b]
        loss = torch.ops.modgap.centroid_uniformity(embeddings, 2.0, True)
        return loss, embeddings[0]

    a, b = [z.to(torch.bfloat16) for z in make_embeddings(2, 12, 4, seed=13)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, first = loss_and_first(a, b)
    assert loss.dtype == torch.float32 and first.dtype == torch.bfloat16 and first is not None
    assert torch.equal(first, a)
    assert torch.equal(loss, ops.centroid_uniformity([a.float(), b.float()], 2.0, True))


def test_torch_compile_under_autocast_matches_eager():
    torch._dynamo.reset()
    gap = modgap.nn.GapLoss(lambda1=0.5, lambda2=2.0)
    linear = torch.nn.Linear(8, 8)

    def step(a, b):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return gap([linear(a), linear(b)])

    compiled = torch.compile(step, fullgraph=True)
    a, b = make_embeddings(2, 24, 8, dtype=torch.float32, seed=17)
    eager = step(a, b)
    assert eager.dtype == torch.float32
    torch.testing.assert_close(compiled(a, b), eager, rtol=1e-6, atol=1e-6)


def test_gap_loss_module_under_autocast_equals_the_patches_explicit_float32_path():
    # The README's drop-in use, GapLoss called inside a bf16 autocast region, gives the value and parameter
    # gradients of the explicit path of the patches: autocast off, the features cast to float32.
    def run(explicit):
        torch.manual_seed(0)
        image_tower, text_tower = torch.nn.Linear(10, 6), torch.nn.Linear(10, 6)
        x, y = torch.randn(32, 10), torch.randn(32, 10)
        gap = modgap.nn.GapLoss(lambda1=1.0, lambda2=1.0)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            a, b = image_tower(x), text_tower(y)
            assert a.dtype == torch.bfloat16
            if explicit:  # one cast per op, as the autocast kernels (each op's gradient is cast back alone)
                with torch.autocast("cpu", enabled=False):
                    loss = (gap.lambda1 * torch.ops.modgap.atp_loss([a.float(), b.float()], gap.anchor)
                            + gap.lambda2 * torch.ops.modgap.centroid_uniformity([a.float(), b.float()], gap.t,
                                                                                 gap.normalize_centroids))
            else:
                loss = gap([a, b])
        loss.backward()
        return loss, [p.grad for p in (*image_tower.parameters(), *text_tower.parameters())]

    (loss, grads), (expected, expected_grads) = run(False), run(True)
    assert loss.dtype == torch.float32 and torch.equal(loss, expected)
    for g, e in zip(grads, expected_grads, strict=True):
        assert torch.equal(g, e)
