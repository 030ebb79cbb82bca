// Python bindings of the kernel (built by grukit/kernels/cpu/_build.py).
#include <torch/extension.h>

#include "blas.h"
#include "gru.h"
#include "packed.h"
#include "workspace.h"

namespace {

// allow_*(bool) of a switch the tests turn: sets it, returns the previous setting
auto switch_setter(bool& (*flag)()) {
  return [flag](bool allowed) {
    const bool before = flag();
    flag() = allowed;
    return before;
  };
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "grukit fused GRU kernel for CPU (forward + backward, float32/float64)";
  m.def("forward", &grukit::forward, "GRU layer forward: -> [output, h_n, states, cache]");
  m.def("backward", &grukit::backward, "GRU layer backward: -> [dx, dh0, dW_x, dW_h, db_x, db_h]");
  m.def("step", &grukit::step, "one GRU step for inference: -> h");
  m.def("blas_symbols", &grukit::blas_symbols, "True when sgemm_/dgemm_ are called directly");
  m.def("allow_blas", switch_setter(&grukit::blas_allowed),
        "allow_blas(False): every product through at::mm (the path of a torch without sgemm_); -> the previous "
        "setting");
  m.def("pack_symbols", &grukit::pack_symbols<float>, "True when MKL's cblas_sgemm_pack/_compute are there");
  m.def("pack_symbols_float64", &grukit::pack_symbols<double>, "True when cblas_dgemm_pack/_compute are there");
  m.def("allow_packing", switch_setter(&grukit::packing_allowed),
        "allow_packing(False): U's per-step products as plain gemm calls, U not packed; -> the previous setting");
  m.def("pack_count", [] { return grukit::pack_count().load(); }, "matrices packed so far");
  m.def("packed_product_count", [] { return grukit::packed_product_count().load(); },
        "products that read a packed matrix so far");
  m.def("release_workspace", [] { return grukit::Workspace::get().release(); },
        "frees the pooled buffers; -> bytes freed");
  m.def("workspace_blocks", [] { return grukit::Workspace::get().pooled(); },
        "the sizes in bytes of the pooled blocks, smallest first");
  m.def(
      "allow_workspace",
      [](bool allowed) {
        const bool before = grukit::Workspace::enabled();
        grukit::Workspace::enabled() = allowed;
        if (!allowed) grukit::Workspace::get().release();
        return before;
      },
      "allow_workspace(False): big buffers from at::empty, each call's own; -> the previous setting");
  m.attr("gemv_max_rows") = grukit::kGemvMaxRows;
}
