// A pure C++ program (no Python): loads a TorchScript module that calls torch.ops.modgap.*, runs
// forward and backward through modgap's C++ autograd kernels and prints the loss and the gradient
// norms as JSON. tests/python/test_torchscript_cpp.py compares the output with Python.
//
// The module must hold its example inputs as attributes input_0 ... input_{M-1} and take a
// List[Tensor] in forward.
//
//   modgap_jit_runner module.pt
#include <torch/script.h>

#include <modgap/modgap.h>

#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <scripted module .pt>\n", argv[0]);
    return 2;
  }
  try {
    torch::jit::Module module = torch::jit::load(argv[1]);
    std::vector<at::Tensor> inputs;
    for (int m = 0; module.hasattr("input_" + std::to_string(m)); ++m) {
      inputs.push_back(module.attr("input_" + std::to_string(m)).toTensor().detach().clone().requires_grad_(true));
    }
    if (inputs.size() < 2) {
      std::fprintf(stderr, "the module has fewer than 2 attributes input_0, input_1, ...\n");
      return 2;
    }
    at::Tensor loss = module.forward({c10::List<at::Tensor>(inputs)}).toTensor();
    loss.backward();
    std::printf("{\"loss\": %.17g, \"grad_norms\": [", loss.item<double>());
    for (size_t m = 0; m < inputs.size(); ++m) {
      std::printf("%s%.17g", m ? ", " : "", inputs[m].grad().norm().item<double>());
    }
    std::printf("]}\n");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "modgap_jit_runner: %s\n", error.what());
    return 1;
  }
  return 0;
}
