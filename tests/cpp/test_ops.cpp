// GoogleTest suite of the C++ API (modgap/modgap.h): every call goes through the dispatcher, as a C++
// user's would. Oracles are naive formulas written here (the full N x N matrix in float64), and the
// error messages are checked text.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <modgap/modgap.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

// Eq. 7 written naively.
at::Tensor naive_atp(const std::vector<at::Tensor>& z, int64_t anchor) {
  at::Tensor total = at::zeros({}, z[0].options());
  for (size_t m = 0; m < z.size(); ++m) {
    if (static_cast<int64_t>(m) != anchor) {
      total = total + (z[m] - z[anchor]).pow(2).sum(1).mean();
    }
  }
  return total / static_cast<double>(z.size() - 1);
}

// Reference lunif_loss(F.normalize(centroids), t) with the full pair matrix.
at::Tensor naive_centroid_uniformity(const std::vector<at::Tensor>& z, double t, bool normalize) {
  at::Tensor c = at::stack(z).mean(0);
  if (normalize) {
    c = c / c.norm(2, {1}, true).clamp_min(1e-12);
  }
  const int64_t n = c.size(0);
  at::Tensor sq = (c.unsqueeze(1) - c.unsqueeze(0)).pow(2).sum(-1);
  at::Tensor upper = at::triu(at::ones({n, n}, at::kBool), 1);
  return sq.masked_select(upper).mul(-t).exp().mean().log();
}

std::vector<at::Tensor> random_embeddings(int64_t modalities, int64_t n, int64_t d, bool requires_grad,
                                          uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<at::Tensor> z;
  for (int64_t m = 0; m < modalities; ++m) {
    z.push_back(torch::randn({n, d}, torch::kFloat64).requires_grad_(requires_grad));
  }
  return z;
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const c10::Error& error) {
    return error.what_without_backtrace();
  }
  return "";
}

TEST(AtpLoss, MatchesNaiveFormulaForTwoToFourModalities) {
  for (int64_t modalities = 2; modalities <= 4; ++modalities) {
    for (int64_t anchor = 0; anchor < modalities; ++anchor) {
      auto z = random_embeddings(modalities, 37, 11, false, 7 + modalities);
      const double got = modgap::atp_loss(z, anchor).item<double>();
      const double expected = naive_atp(z, anchor).item<double>();
      EXPECT_NEAR(got, expected, 1e-12 * std::abs(expected)) << "M=" << modalities << " anchor=" << anchor;
    }
  }
}

TEST(AtpLoss, GradientsMatchAutogradOfNaiveFormula) {
  auto z = random_embeddings(3, 19, 5, true, 3);
  auto got = torch::autograd::grad({modgap::atp_loss(z, 1)}, z);
  auto expected = torch::autograd::grad({naive_atp(z, 1)}, z);
  for (size_t m = 0; m < z.size(); ++m) {
    EXPECT_TRUE(torch::allclose(got[m], expected[m], 1e-12, 1e-14)) << "modality " << m;
  }
}

TEST(CentroidUniformity, MatchesNaivePairMatrix) {
  for (bool normalize : {true, false}) {
    for (int64_t modalities : {2, 3}) {
      // 700 rows cross the CPU tile size (256 x 1024) in the row direction.
      auto z = random_embeddings(modalities, 700, 9, false, 11);
      const double got = modgap::centroid_uniformity(z, 2.0, normalize).item<double>();
      const double expected = naive_centroid_uniformity(z, 2.0, normalize).item<double>();
      EXPECT_NEAR(got, expected, 1e-10 * std::abs(expected)) << "normalize=" << normalize;
    }
  }
}

TEST(CentroidUniformity, GradientsMatchAutogradOfNaivePairMatrix) {
  auto z = random_embeddings(2, 300, 6, true, 5);
  auto got = torch::autograd::grad({modgap::centroid_uniformity(z, 3.0, true)}, z);
  auto expected = torch::autograd::grad({naive_centroid_uniformity(z, 3.0, true)}, z);
  for (size_t m = 0; m < z.size(); ++m) {
    EXPECT_TRUE(torch::allclose(got[m], expected[m], 1e-9, 1e-12)) << "modality " << m;
  }
}

TEST(CentroidUniformity, Float32AccumulatesLikeFloat64) {
  auto z = random_embeddings(2, 500, 32, false, 9);
  std::vector<at::Tensor> z32 = {z[0].to(at::kFloat), z[1].to(at::kFloat)};
  const at::Tensor loss32 = modgap::centroid_uniformity(z32);
  EXPECT_EQ(loss32.scalar_type(), at::kFloat);
  EXPECT_NEAR(loss32.item<double>(), modgap::centroid_uniformity(z).item<double>(), 1e-5);
}

TEST(Errors, NameTheArgumentAndTheExpectation) {
  auto z = random_embeddings(2, 8, 4, false, 1);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({}); }).find("expected at least 2 modalities in `embeddings`, got 0"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss({z[0]}); }).find("expected at least 2 modalities in `embeddings`, got 1"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({z[0], torch::randn({8, 3}, torch::kFloat64)}); })
                .find("embeddings[1] has shape [8, 3] but embeddings[0] has shape [8, 4]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss(z, 2); }).find("`anchor` must index one of the 2 modalities"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity(z, 0.0); }).find("`t` (the uniformity temperature) must be"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({z[0].narrow(0, 0, 1), z[1].narrow(0, 0, 1)}); })
                .find("expected at least 2 rows (N)"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss({z[0], z[1].to(at::kFloat)}); }).find("embeddings[1] has dtype Float"),
            std::string::npos);
  EXPECT_NE(error_of([&] { modgap::atp_loss({z[0].to(at::kLong), z[1].to(at::kLong)}); })
                .find("must have a floating dtype"),
            std::string::npos);
  at::Tensor with_nan = z[1].clone();
  with_nan[3][2] = std::nan("");
  EXPECT_NE(error_of([&] { modgap::centroid_uniformity({z[0], with_nan}); })
                .find("embeddings[1] contains NaN or Inf values"),
            std::string::npos);
}

TEST(Library, ReportsItsCudaBuild) {
  // -1 for CPU-only builds, CUDART_VERSION (e.g. 13000) otherwise.
  EXPECT_TRUE(modgap::cuda_version() == -1 || modgap::cuda_version() >= 11000);
}

}  // namespace
