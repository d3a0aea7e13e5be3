// The README's C++ use of an installed modgap: the two terms of eq. 21 on two modalities, then their
// gradients through modgap's C++ autograd kernels, and the config the Python side composes from the same
// files (gap_terms CONFIG_DIR [override ...] composes CONFIG_DIR/train.yaml). No Python. Prints JSON that
// tests/python/test_cmake_package.py compares with the same calls made from Python.
//
// The embeddings are a fixed function of the row/column index (float64), so Python builds the same
// tensors bit for bit: image = rownorm(sin(0.37 k)), text = rownorm(cos(0.11 k) + 0.5 image), k = i D + j.
#include <modgap/config.h>
#include <modgap/modgap.h>  // also keeps libmodgap linked, so its operators register

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  try {
    constexpr int64_t rows = 96;
    constexpr int64_t dims = 12;
    const at::Tensor index = at::arange(rows * dims, at::kDouble).reshape({rows, dims});
    const at::Tensor raw_image = at::sin(index * 0.37);
    const at::Tensor image_rows = raw_image / raw_image.norm(2, {1}, /*keepdim=*/true);
    const at::Tensor raw_text = at::cos(index * 0.11) + image_rows * 0.5;
    at::Tensor image = image_rows.clone().requires_grad_(true);
    at::Tensor text = (raw_text / raw_text.norm(2, {1}, /*keepdim=*/true)).requires_grad_(true);

    at::Tensor loss = modgap::atp_loss({image, text}) + modgap::centroid_uniformity({image, text}, /*t=*/2.0);
    loss.backward();
    std::printf("{\"loss\": %.17g, \"grad_norms\": [%.17g, %.17g]", loss.item<double>(),
                image.grad().norm().item<double>(), text.grad().norm().item<double>());
    if (argc > 1) {
      const std::vector<std::string> overrides(argv + 2, argv + argc);
      std::printf(", \"config\": %s", modgap::compose_config(argv[1], "train", overrides).json.c_str());
    }
    std::printf("}\n");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "gap_terms: %s\n", error.what());
    return 1;
  }
  return 0;
}
