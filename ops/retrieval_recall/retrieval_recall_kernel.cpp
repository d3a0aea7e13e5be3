// retrieval_recall and retrieval_recall_any for CPU and CUDA tensors (one ATen implementation
// registered for both keys).
//
// Scores are cosine similarities (rows L2-normalised inside). The 0-based rank of query i is the number
// of gallery items that are not true for i and score strictly higher than its best true item:
//     rank_i = #{ j not true for i : s_ij > max_{j' true for i} s_ij' },   hit@K  <=>  rank_i < K.
// For one true item this is the position of that item in the sorted row; for several (captions of an
// image) it is the minimum position over them, which is openai/CLIP #115's "any caption in the top K"
// and the seed code's min-rank rule (measures.md §9.3). Ties with the true item count in the query's
// favour (a full sort would break them arbitrarily).
//
// No N_query x N_gallery buffer and one pass of GEMM tiles: the best true score of each query is a
// row-wise dot product (O(N*D)); each (query tile x gallery tile) block then counts the non-true items
// above it. The dot product and the GEMM round the same score differently (a few ulp), so items are
// left out of the count by content, not by index: an item whose normalised row is identical to a true
// item's (a repeated caption, a duplicate image) ties with it in exact arithmetic, and a tie never counts
// against the query. Counting such copies would let rounding decide: on the digits stand-in, where 353
// of 360 captions repeat, it took R@1 image->text from 10.3 % to 6.9 %.
#include <torch/library.h>

#include <functional>
#include <limits>
#include <vector>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/retrieval_recall/retrieval_recall.h"

namespace modgap {

namespace {

// is_true(query_rows, gallery_cols) for one block, [q_len, g_len] bool.
using TrueMask = std::function<at::Tensor(int64_t q0, int64_t q_len, int64_t g0, int64_t g_len)>;

// Up to this many items per query, the copies mask compares each item with every owned content (K
// equality passes per block); above it, a binary search per block element (cost independent of K).
constexpr int64_t kMaxOwnedItemsCompared = 16;

// content_id[j]: the index of gallery row j among the distinct rows of `g` (identical rows, same id).
at::Tensor content_ids(const at::Tensor& g) {
  return std::get<1>(at::unique_dim(g, /*dim=*/0, /*sorted=*/true, /*return_inverse=*/true));
}

// The block mask of the items a query must not count: item j is left out of query i's count when its
// content is one of owned[i] ([N_query, K] contents of i's true items, -1 past the last), i.e. it is a
// true item or a copy of one (a copy scores at most i's best in exact arithmetic). K equality passes per
// block: for the usual few items per query (1 for retrieval_recall, 5 captions per image) they cost a
// fraction of the block's GEMM.
TrueMask copies_of_owned_items(const at::Tensor& owned, const at::Tensor& content) {
  return [&owned, &content](int64_t q0, int64_t q_len, int64_t g0, int64_t g_len) {
    const at::Tensor item = content.narrow(0, g0, g_len).unsqueeze(0);
    const at::Tensor rows = owned.narrow(0, q0, q_len);
    at::Tensor mask = rows.select(1, 0).unsqueeze(1) == item;
    for (int64_t k = 1; k < rows.size(1); ++k) {
      mask.logical_or_(rows.select(1, k).unsqueeze(1) == item);
    }
    return mask;
  };
}

// `best_true`: [N_query] best score of a true item per query, computed from the normalised rows.
at::Tensor recall_at_ks(const at::Tensor& q, const at::Tensor& g, const at::Tensor& best_true, const TrueMask& is_true,
                        at::IntArrayRef ks) {
  const int64_t n_query = q.size(0);
  const int64_t n_gallery = g.size(0);
  const int64_t cols = std::min(eval::tile_cols(q.device()), n_gallery);
  const int64_t rows = eval::tile_rows(cols, q.device());
  at::Tensor ranks = at::zeros({n_query}, q.options().dtype(at::kLong));
  for (int64_t q0 = 0; q0 < n_query; q0 += rows) {
    const int64_t q_len = std::min(rows, n_query - q0);
    const at::Tensor threshold = best_true.narrow(0, q0, q_len).unsqueeze(1);
    at::Tensor rank = ranks.narrow(0, q0, q_len);
    for (int64_t g0 = 0; g0 < n_gallery; g0 += cols) {
      const int64_t g_len = std::min(cols, n_gallery - g0);
      const at::Tensor scores = at::mm(q.narrow(0, q0, q_len), g.narrow(0, g0, g_len).t());
      rank += ((scores > threshold) & is_true(q0, q_len, g0, g_len).logical_not()).sum(1);
    }
  }
  std::vector<at::Tensor> recalls;
  for (const int64_t k : ks) {
    recalls.push_back((ranks < k).to(at::kDouble).mean());
  }
  return at::stack(recalls);
}

void check_ks(const char* op, at::IntArrayRef ks, const c10::SymInt& n_gallery) {
  TORCH_CHECK_VALUE(!ks.empty(), op, ": `ks` must list at least one K, got an empty list");
  for (const int64_t k : ks) {
    TORCH_CHECK_VALUE(k >= 1 && n_gallery >= k, op, ": every K in `ks` must be in [1, ", n_gallery,
                      "] (the gallery size), got ", k);
  }
}

}  // namespace

void check_retrieval_arguments(const char* op, const at::Tensor& queries, const at::Tensor& gallery,
                               const char* map_name, const at::Tensor& map, const c10::SymInt& map_length,
                               at::IntArrayRef ks) {
  check_matrix(op, "queries", queries, /*min_rows=*/1);
  check_matrix(op, "gallery", gallery, /*min_rows=*/1);
  check_same_columns(op, "queries", queries, "gallery", gallery);
  check_labels(op, map_name, map, map_length, queries.device());
  check_ks(op, ks, gallery.sym_size(0));
}

namespace {

// The value checks both forms share: finite rows, and every entry of the index map in [0, bound).
at::Tensor checked_index_map(const char* op, const at::Tensor& queries, const at::Tensor& gallery, const char* map_name,
                             const at::Tensor& map, int64_t bound, const char* indexed) {
  check_finite(op, "queries", queries);
  check_finite(op, "gallery", gallery);
  const at::Tensor index = map.to(at::kLong);
  TORCH_CHECK_VALUE(((index >= 0) & (index < bound)).all().item<bool>(), op, ": every entry of `", map_name,
                    "` must index a ", indexed, " row in [0, ", bound, ")");
  return index;
}

}  // namespace

at::Tensor retrieval_recall_kernel(const at::Tensor& queries, const at::Tensor& gallery,
                                   const at::Tensor& query_to_gallery, at::IntArrayRef ks) {
  check_retrieval_arguments(kRetrievalRecallName, queries, gallery, "query_to_gallery", query_to_gallery,
                            queries.sym_size(0), ks);
  const at::Tensor target = checked_index_map(kRetrievalRecallName, queries, gallery, "query_to_gallery",
                                              query_to_gallery, gallery.size(0), "gallery");
  const at::Tensor q = eval::l2_normalize_rows(queries);
  const at::Tensor g = eval::l2_normalize_rows(gallery);
  const at::Tensor best_true = (q * g.index_select(0, target)).sum(1);
  // The true item and its copies: every item with the true item's content.
  const at::Tensor content = content_ids(g);
  const at::Tensor owned = content.index_select(0, target).unsqueeze(1);
  return recall_at_ks(q, g, best_true, copies_of_owned_items(owned, content), ks);
}

at::Tensor retrieval_recall_any_kernel(const at::Tensor& queries, const at::Tensor& gallery,
                                       const at::Tensor& gallery_to_query, at::IntArrayRef ks) {
  check_retrieval_arguments(kRetrievalRecallAnyName, queries, gallery, "gallery_to_query", gallery_to_query,
                            gallery.sym_size(0), ks);
  const int64_t n_query = queries.size(0);
  const at::Tensor owner =
      checked_index_map(kRetrievalRecallAnyName, queries, gallery, "gallery_to_query", gallery_to_query, n_query, "query");
  const at::Tensor items_per_query = at::bincount(owner, {}, n_query);
  TORCH_CHECK_VALUE((items_per_query > 0).all().item<bool>(), kRetrievalRecallAnyName, ": query ",
                    (items_per_query == 0).nonzero()[0][0].item<int64_t>(),
                    " has no true item in `gallery_to_query`; every query needs at least one");
  const at::Tensor q = eval::l2_normalize_rows(queries);
  const at::Tensor g = eval::l2_normalize_rows(gallery);
  // Score of every gallery item against its own query, then the maximum per query.
  const at::Tensor own_scores = (q.index_select(0, owner) * g).sum(1);
  const at::Tensor best_true =
      at::full({n_query}, -std::numeric_limits<double>::infinity(), q.options()).scatter_reduce(0, owner, own_scores, "amax");
  const at::Tensor content = content_ids(g);
  const int64_t n_content = content.max().item<int64_t>() + 1;
  if (n_content == g.size(0)) {  // no two items alike: the true items are exactly the query's own
    const TrueMask is_true = [&](int64_t q0, int64_t q_len, int64_t g0, int64_t g_len) {
      return owner.narrow(0, g0, g_len).unsqueeze(0) == at::arange(q0, q0 + q_len, owner.options()).unsqueeze(1);
    };
    return recall_at_ks(q, g, best_true, is_true, ks);
  }
  const int64_t max_items = items_per_query.max().item<int64_t>();
  if (max_items <= kMaxOwnedItemsCompared) {
    // owned[i]: the contents of query i's items, in slots 0 .. items_per_query[i] - 1 (items sorted by query).
    const at::Tensor order = at::argsort(owner, /*stable=*/true);
    const at::Tensor sorted_owner = owner.index_select(0, order);
    const at::Tensor first_item = items_per_query.cumsum(0) - items_per_query;
    const at::Tensor slot = at::arange(owner.size(0), owner.options()) - first_item.index_select(0, sorted_owner);
    at::Tensor owned = at::full({n_query, max_items}, -1, content.options());
    owned.index_put_({sorted_owner, slot}, content.index_select(0, order));
    return recall_at_ks(q, g, best_true, copies_of_owned_items(owned, content), ks);
  }
  // A query with many items: one membership test per block element instead of K equality passes, the key
  // (i, content_j) looked up in the sorted keys of the (query, content) pairs the queries own (a binary
  // search costs about 5x the GEMM for 5 items per query, measured on the CPU, but does not grow with K).
  const at::Tensor owned_keys = std::get<0>(at::_unique2(owner * n_content + content, /*sorted=*/true));
  const TrueMask is_true = [&](int64_t q0, int64_t q_len, int64_t g0, int64_t g_len) {
    const at::Tensor keys = at::arange(q0, q0 + q_len, owner.options()).unsqueeze(1) * n_content +
                            content.narrow(0, g0, g_len).unsqueeze(0);
    const at::Tensor position = at::searchsorted(owned_keys, keys).clamp_max(owned_keys.size(0) - 1);
    return owned_keys.index_select(0, position.flatten()).view_as(keys) == keys;
  };
  return recall_at_ks(q, g, best_true, is_true, ks);
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("retrieval_recall", &retrieval_recall_kernel);
  m.impl("retrieval_recall_any", &retrieval_recall_any_kernel);
}
TORCH_LIBRARY_IMPL(modgap, CUDA, m) {
  m.impl("retrieval_recall", &retrieval_recall_kernel);
  m.impl("retrieval_recall_any", &retrieval_recall_any_kernel);
}

}  // namespace modgap
