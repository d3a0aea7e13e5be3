"""modgap: losses and measures that close the modality gap, as PyTorch operators (C++/CUDA).

``import modgap`` loads the operator library, after which every op is available as
``torch.ops.modgap.<name>`` (also from TorchScript) and through the thin wrappers below.
The math lives in C++ (see the repository's ``ops/`` folder); these wrappers only document it.
"""
from __future__ import annotations

import inspect
import json
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from ._library import library_path, load_library

load_library()

from . import config, distributed, nn  # noqa: E402  (need the ops loaded)

__all__ = [
    "atp_loss",
    "centroid_uniformity",
    "uniformity_loss",
    "cross_uniformity",
    "gap_stats",
    "fill_gap_stats",
    "spectral_align",
    "shift_modalities",
    "emd",
    "emd_laplace",
    "ot_map_new_points",
    "vmeasure",
    "kmeans",
    "knn_predict",
    "logistic_regression",
    "linear_probe_predict",
    "retrieval_recall",
    "retrieval_recall_any",
    "evaluate",
    "format_evaluation",
    "evaluation_options",
    "library_path",
    "cuda_version",
    "nn",
    "config",
    "distributed",
]
__version__ = "0.1.0"


def atp_loss(embeddings: List[torch.Tensor], anchor: int = 0) -> torch.Tensor:
    """Alignment of true pairs, eq. 7 of Grassucci et al. (ICLR 2026).

    ``mean over the M-1 non-anchor modalities m of mean_i ||z_i^m - z_i^anchor||^2`` for M >= 2
    tensors of shape [N, D]. For two modalities it equals the reference ``lalign_loss(x, y, alpha=2)``.
    The embeddings are used as given (the reference code L2-normalises them before the loss; the op
    does not).
    """
    _check_not_empty("atp_loss", embeddings)
    return torch.ops.modgap.atp_loss(embeddings, anchor)


def centroid_uniformity(embeddings: List[torch.Tensor], t: float = 2.0, normalize: bool = True) -> torch.Tensor:
    """Centroid uniformity, eq. 8/9 of Grassucci et al. (ICLR 2026), as the reference code computes it.

    ``mu_i = mean_m z_i^m`` (L2-normalised when ``normalize``), value
    ``log(mean_{i<j} exp(-t ||mu_i - mu_j||^2))`` = the reference
    ``lunif_loss(F.normalize(compute_centroids_only(a, b)), t)``. Eq. 8 of the paper equals this value
    plus the constant ``log(N-1)`` (same gradients). The N x N distance matrix is never materialised.
    """
    _check_not_empty("centroid_uniformity", embeddings)
    return torch.ops.modgap.centroid_uniformity(embeddings, t, normalize)


def uniformity_loss(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang & Isola (2020)'s uniformity of one set of embeddings, the baseline of the paper's Table 11 and
    NotAGap's uniformity term: ``log(mean_{i<j} exp(-t ||x_i - x_j||^2))``, their ``lunif(x, t)``
    (``torch.pdist(x).pow(2).mul(-t).exp().mean().log()``) on the rows as given.

    It is the centroid_uniformity op on ``[x, x]`` without normalisation (the centroid of x with itself is
    x), so it never materialises the N x N matrix either; input errors name ``embeddings``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"modgap.uniformity_loss: expected `x` to be a Tensor of shape [N, D], got {type(x).__name__}")
    return torch.ops.modgap.centroid_uniformity([x, x], t, False)


def cross_uniformity(x: torch.Tensor, y: torch.Tensor, t: float = 2.0, exclude_diagonal: bool = True) -> torch.Tensor:
    """Fahim et al. (2024)'s cross-modal uniformity, the NotAGap baseline's ``L_xunif``:
    ``log(mean exp(-t ||x_i - y_j||^2))`` over the pairs of a row of ``x`` and a row of ``y``, the true pairs
    ``i = j`` left out when ``exclude_diagonal`` (their definition; x and y are then paired, same N), every
    pair counted otherwise (x and y may differ in N). Rows are used as given (NotAGap normalises first).

    Tiled like centroid_uniformity: the N x N matrix is never materialised, forward or backward.
    """
    return torch.ops.modgap.cross_uniformity(x, y, t, exclude_diagonal)


def _check_not_empty(op: str, embeddings: List[torch.Tensor]) -> None:
    # An empty list carries no device, so the dispatcher could not even reach the kernels' checks.
    if len(embeddings) == 0:
        raise ValueError(f"modgap::{op}: expected at least 2 modalities in `embeddings`, got 0")


def cuda_version() -> int:
    """CUDA runtime version libmodgap was compiled against (e.g. 13000), or -1 for a CPU-only build."""
    return int(torch.ops.modgap._cuda_version())


# ---- evaluation ------------------------------------------------------------------------------

_GAP_STATS_FIELDS = ("gap", "cos_tp_mean", "cos_tp_var", "pair_distance_mean", "pair_distance_var", "rmg",
                     "centroid_cosine", "angular_value")


def gap_stats(embeddings: List[torch.Tensor], rmg_include_diagonal: bool = False) -> Dict[str, torch.Tensor]:
    """Gap measures of M >= 2 modalities [N, D] (rows L2-normalised inside), as a dict of tensors.

    Per modality pair (M x M, symmetric, float64): ``gap`` (eq. 2, centroid distance), ``cos_tp_mean`` /
    ``cos_tp_var`` (eq. 3, Table 3), ``pair_distance_mean`` / ``pair_distance_var`` (Table 3; population
    variances), ``rmg`` (Schrodi et al., analysis form; ``rmg_include_diagonal=True`` gives their
    training-time form), ``centroid_cosine``; per modality ([M]): ``angular_value`` (AV, Table 10).
    """
    _check_not_empty("gap_stats", embeddings)
    return dict(zip(_GAP_STATS_FIELDS, torch.ops.modgap.gap_stats(embeddings, rmg_include_diagonal)))


def fill_gap_stats(x: torch.Tensor, y: torch.Tensor, k: int = 1) -> Dict[str, object]:
    """"Fill the Gap" (Role et al. 2025) measures of images ``x`` [N, D] and texts ``y`` [M, D] on their
    mixed collection (rows L2-normalised inside; definitions as reproduced, see ops/fill_gap_stats/).

    ``neighbour_counts`` [2, 2]: over the ``k`` nearest neighbours (cosine, self excluded) of every image
    (row 0) and text (row 1) query, how many are images (column 0) and texts (column 1); ``itr`` / ``tir``:
    the same-modality to other-modality ratios (about 1 without a gap); ``tmr`` / ``imr``: mean 1-based
    rank of the best text (image) in an image's (text's) mixed list; ``fid``: Frechet distance between
    Gaussian fits of the two modalities.
    """
    counts, ratios, ranks, fid = torch.ops.modgap.fill_gap_stats(x, y, k)
    return {"neighbour_counts": counts, "itr": float(ratios[0]), "tir": float(ratios[1]), "tmr": float(ranks[0]),
            "imr": float(ranks[1]), "fid": float(fid)}


def spectral_align(x: torch.Tensor, y: torch.Tensor, k: int = 60, nonnegative: str = "clamp",
                   graph_topk: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """"Fill the Gap"'s post-hoc spectral method: images ``x`` [N, D] and texts ``y`` [M, D] re-embedded
    jointly in ``k`` dimensions (rows L2-normalised) by the random-walk Laplacian of their bipartite
    cosine-similarity graph, computed through the SVD of the degree-normalised similarity matrix.
    Transductive: the whole N x M graph is formed. ``nonnegative`` turns cosines into graph weights
    ("clamp", "shift" or "none"); ``graph_topk`` > 0 sparsifies the graph to each row's and column's top
    entries (a reproduction uses 50). Component signs are arbitrary (x and y flip together).
    """
    return tuple(torch.ops.modgap.spectral_align(x, y, k, nonnegative, graph_topk))


def shift_modalities(x: torch.Tensor, y: torch.Tensor, delta: float,
                     direction: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Liang et al.'s post-hoc shift (the paper's Fig. 1): on L2-normalised rows, with u the unit vector
    from the centroid of ``y`` to that of ``x`` (or ``direction``, e.g. measured on another data set),
    returns ``normalize(x - delta/2 u)`` and ``normalize(y + delta/2 u)``. ``delta > 0`` closes the gap.
    """
    return tuple(torch.ops.modgap.shift_modalities(x, y, float(delta), direction))


def emd(a: Optional[torch.Tensor], b: Optional[torch.Tensor], M: torch.Tensor,
        max_iter: int = 10_000_000) -> Tuple[torch.Tensor, torch.Tensor]:
    """Exact optimal transport, as POT's ``ot.emd(a, b, M)``: the plan ``G`` [ns, nt] minimising
    ``<G, M>`` subject to ``G >= 0``, ``G.sum(1) = a``, ``G.sum(0) = b``, and its cost (float64 scalar).
    ``a``/``b`` None or empty mean uniform masses; their sums must agree to 1e-6 (``b`` is rescaled to
    ``a``'s sum). Network simplex in float64 on the CPU (CUDA inputs too; the plan comes back on their
    device, in ``M``'s dtype). If ``max_iter`` pivots do not reach the optimum it warns (on stderr) and
    returns the feasible plan it has. The default budget (10^7, POT's is 10^5) solves 5000 x 5000 problems
    to optimality.
    """
    empty = M.new_empty(0)
    return tuple(torch.ops.modgap.emd(empty if a is None else a, empty if b is None else b, M, int(max_iter)))


def emd_laplace(xs: torch.Tensor, xt: torch.Tensor, reg_lap: float = 1.0, reg_src: float = 1.0, k: int = 3,
                reg_type: str = "pos", max_iter: int = 100, tol: float = 1e-9, max_inner_iter: int = 10_000_000,
                inner_tol: float = 1e-9) -> Tuple[torch.Tensor, torch.Tensor]:
    """"Fill the Gap"'s optimal-transport method, as POT's
    ``EMDLaplaceTransport(reg_type, reg_lap, reg_src, similarity_param=k).fit(Xs=xs, Xt=xt)`` followed by
    ``transform(Xs=xs)``: the coupling [ns, nt] of the exact transport between uniform masses under
    squared-Euclidean costs, regularised by the Laplacians of the symmetrised kNN graphs of both sides
    (``reg_src`` weighs the source graph; POT's code default 1.0 uses only it), fitted by conditional
    gradient with POT's Armijo line search; and ``xs`` moved onto the targets by the barycentric map.
    Fill the Gap moves images (``xs``) onto texts (``xt``), fitted on a few thousand pairs. Float64 on the
    CPU for any input device. The exact inner solves get ``max_inner_iter`` pivots (POT: 10^5, which stops
    them early from about 2000 points on).
    """
    return tuple(torch.ops.modgap.emd_laplace(xs, xt, float(reg_lap), float(reg_src), int(k), reg_type,
                                              int(max_iter), float(tol), int(max_inner_iter), float(inner_tol)))


def ot_map_new_points(x: torch.Tensor, xs: torch.Tensor, xs_transported: torch.Tensor) -> torch.Tensor:
    """The out-of-sample map of a fitted transport, as POT's ``transform`` of points the coupling was not
    fitted on (Ferradans et al.): each row of ``x`` moves by the displacement of its nearest fitted source,
    ``x + xs_transported[i] - xs[i]``. With ``emd_laplace``: fit on a few thousand image/text pairs, then
    ``ot_map_new_points(new_images, xs, xs_transported)``.
    """
    return torch.ops.modgap.ot_map_new_points(x, xs, xs_transported)


def vmeasure(labels_true: torch.Tensor, labels_pred: torch.Tensor, beta: float = 1.0) -> Tuple[float, float, float]:
    """(homogeneity, completeness, V-measure) exactly as ``sklearn.metrics.homogeneity_completeness_v_measure``."""
    h, c, v = torch.ops.modgap.vmeasure(labels_true, labels_pred, beta)
    return float(h), float(c), float(v)


def kmeans(x: torch.Tensor, k: int, max_iter: int = 300, tol: float = 1e-4, n_init: int = 1, seed: int = 0):
    """k-means++ + Lloyd with scikit-learn's semantics: returns (centroids [k, D], labels [N], inertia)."""
    return torch.ops.modgap.kmeans(x, k, max_iter, tol, n_init, seed)


def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, query_x: torch.Tensor, k: int = 5,
                metric: str = "cosine") -> torch.Tensor:
    """``KNeighborsClassifier(n_neighbors=k).predict``; vote ties go to the smallest label."""
    return torch.ops.modgap.knn_predict(train_x, train_y, query_x, k, metric)


def logistic_regression(x: torch.Tensor, y: torch.Tensor, num_classes: Optional[int] = None, C: float = 1.0,
                        max_iter: int = 100, tol: float = 1e-4) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's ``LogisticRegression(C=C, max_iter=max_iter, tol=tol)`` (L2, lbfgs, intercept) fitted in
    float64 on class indices ``y`` in [0, num_classes) (default: ``y.max() + 1``): ``(coef, intercept, n_iter)``,
    coef [1, D] for two classes (class 1 positive), else [K, D]."""
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.numel() else 0
    return torch.ops.modgap.logistic_regression(x, y, int(num_classes), float(C), int(max_iter), float(tol))


def linear_probe_predict(train_x: torch.Tensor, train_y: torch.Tensor, query_x: torch.Tensor, C: float = 1.0,
                         max_iter: int = 100, tol: float = 1e-4) -> torch.Tensor:
    """Labels (any integers) that :func:`logistic_regression` fitted on the training rows predicts for ``query_x``."""
    return torch.ops.modgap.linear_probe_predict(train_x, train_y, query_x, float(C), int(max_iter), float(tol))


def retrieval_recall(queries: torch.Tensor, gallery: torch.Tensor, query_to_gallery: torch.Tensor,
                     ks: Sequence[int] = (1, 5, 10)) -> torch.Tensor:
    """Recall@K (fractions, float64) of cosine retrieval; ``query_to_gallery[i]`` is query i's true item."""
    return torch.ops.modgap.retrieval_recall(queries, gallery, query_to_gallery, list(ks))


def retrieval_recall_any(queries: torch.Tensor, gallery: torch.Tensor, gallery_to_query: torch.Tensor,
                         ks: Sequence[int] = (1, 5, 10)) -> torch.Tensor:
    """Recall@K when gallery item j belongs to query ``gallery_to_query[j]``; a hit when any of a query's
    items is in its top K (image -> text with several captions per image, openai/CLIP #115)."""
    return torch.ops.modgap.retrieval_recall_any(queries, gallery, gallery_to_query, list(ks))


def evaluate(embeddings: Dict[str, torch.Tensor], labels: Optional[torch.Tensor] = None, *,
             ks: Sequence[int] = (1, 5, 10), n_clusters: Optional[int] = None, knn_k: int = 5,
             seed: int = 0, n_init: int = 1, max_iter: int = 300, tol: float = 1e-4,
             knn_metric: str = "cosine", test_fraction: float = 0.2, progress: bool = False,
             fill_gap_k: int = 1, probe_c: float = 1.0, probe_max_iter: int = 100) -> dict:
    """Group-wise and instance-wise evaluation in one call (the C++ modgap::evaluate; the CLI prints the same).

    ``embeddings`` maps modality names to [N, D] tensors whose row i is the same sample. Returns a dict
    with ``protocol`` (every choice, echoed), ``pairs`` (per modality pair: gap, Cos TP, pair distance,
    RMG, centroid cosine, Recall@K both directions and, unless ``fill_gap_k=0``, the Fill-the-Gap
    measures ``fill_the_gap`` of :func:`fill_gap_stats`), ``modalities`` (AV) and, when ``labels`` [N] are
    given, ``clustering`` (V-measure of k-means on the union of all modalities, k = ``n_clusters`` or the
    number of classes), ``knn`` (accuracy per modality and joint on a seeded split) and ``linear_probe``
    (logistic-regression accuracy on the same splits, scikit-learn's LogisticRegression(C=probe_c,
    max_iter=probe_max_iter)). Each pair also gets ``linear_separability`` (Fahim et al.: held-out accuracy
    of logistic regression telling the two modalities apart; 0.5 = inseparable). ``probe_max_iter=0`` skips
    both. A non-finite value stays a float: ``inf`` for an ITR / TIR whose denominator is 0 (no query's
    nearest neighbour is of the other modality), as :func:`fill_gap_stats` gives it, ``nan`` for a linear
    probe whose training split holds one class. (``modgap eval`` writes strict JSON, where both are null.)
    """
    tensors, names = _evaluation_inputs("evaluate", embeddings, labels)
    text, _ = torch.ops.modgap._evaluate(
        tensors, names, labels, list(ks), 0 if n_clusters is None else int(n_clusters),
        n_init, max_iter, tol, knn_k, knn_metric, test_fraction, seed, progress, fill_gap_k, float(probe_c),
        int(probe_max_iter))
    return json.loads(text)


# The protocol keys of a config's `eval` section: evaluate()'s options but `progress` (how to run, not what
# to compute), from C++ (modgap::evaluation_protocol_defaults_json, EvaluateOptions), the list
# `modgap eval config=...` reads too. tests/python/test_evaluation.py checks evaluate()'s defaults against it.
_PROTOCOL_KEYS = tuple(json.loads(torch.ops.modgap._evaluation_protocol_defaults()))


def evaluation_options(protocol: Optional[Mapping], *, ignore: Sequence[str] = (), **fixed) -> dict:
    """:func:`evaluate`'s keyword arguments for a config's ``eval`` section (``configs/train.yaml``), so that
    every protocol choice written or overridden there (``eval.test_fraction=0.5``,
    ``+eval.knn_metric=euclidean``) reaches the evaluation, as it does for ``modgap eval config=...``.
    A key that is not a protocol option is an error, not silently unused; ``ignore`` names the caller's
    own keys (e.g. ``repeats``). ``fixed`` wins over the section (e.g. ``ks=(1,), fill_gap_k=0`` for a
    per-epoch log) and may also set ``progress``.

    ``modgap.evaluate(embeddings, labels, **modgap.evaluation_options(cfg["eval"]))``
    """
    protocol = dict(protocol or {})
    unknown = sorted(set(protocol) - set(_PROTOCOL_KEYS) - set(ignore))
    if unknown:
        raise ValueError(f"modgap.evaluation_options: unknown key(s) {unknown} in the `eval` section; the protocol "
                         f"keys are {list(_PROTOCOL_KEYS)}")
    unknown = sorted(set(fixed) - set(_PROTOCOL_KEYS) - {"progress"})
    if unknown:
        raise TypeError(f"modgap.evaluation_options: unknown option(s) {unknown}; evaluate() takes "
                        f"{list(_PROTOCOL_KEYS) + ['progress']}")
    options = {key: value for key, value in protocol.items() if key in _PROTOCOL_KEYS}
    if "ks" in options:  # a YAML list, or one K as the CLI also takes it
        options["ks"] = tuple(options["ks"]) if isinstance(options["ks"], (list, tuple)) else (options["ks"],)
    options.update(fixed)
    return options


def _evaluation_inputs(function: str, embeddings, labels) -> Tuple[List[torch.Tensor], List[str]]:
    """The modality tensors and names of an evaluate() call, checked where the dispatcher's own message
    would not name the argument (a non-dict, non-string names, non-tensor values or labels)."""
    if not isinstance(embeddings, dict) or len(embeddings) < 2:
        raise ValueError(f"modgap.{function}: `embeddings` must be a dict of at least 2 modalities {{name: [N, D]}}")
    for name, value in embeddings.items():
        if not isinstance(name, str):
            raise TypeError(f"modgap.{function}: modality names (the keys of `embeddings`) must be strings, "
                            f"got {type(name).__name__} {name!r}")
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"modgap.{function}: embeddings[{name!r}] must be a Tensor [N, D], got {type(value).__name__}")
    if labels is not None and not isinstance(labels, torch.Tensor):
        raise TypeError(f"modgap.{function}: `labels` must be a Tensor of N integer labels or None, "
                        f"got {type(labels).__name__}")
    names = list(embeddings.keys())
    return [embeddings[name] for name in names], names


def format_evaluation(embeddings: Dict[str, torch.Tensor], labels: Optional[torch.Tensor] = None, **options) -> str:
    """The readable table `modgap eval` prints, for the same arguments as :func:`evaluate`."""
    tensors, names = _evaluation_inputs("format_evaluation", embeddings, labels)
    defaults = {name: parameter.default for name, parameter in inspect.signature(evaluate).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY}  # evaluate()'s own, so the two agree
    unknown = set(options) - set(defaults)
    if unknown:
        raise TypeError(f"modgap.format_evaluation: unknown options {sorted(unknown)}")
    o = {**defaults, **options}
    _, table = torch.ops.modgap._evaluate(
        tensors, names, labels, list(o["ks"]),
        0 if o["n_clusters"] is None else int(o["n_clusters"]), o["n_init"], o["max_iter"], o["tol"], o["knn_k"],
        o["knn_metric"], o["test_fraction"], o["seed"], o["progress"], o["fill_gap_k"], float(o["probe_c"]),
        int(o["probe_max_iter"]))
    return table
