"""Performance evidence for vitdeploy (issue 7): run with `python -m bench.run`.

Sections, one module each: `reparam` (depth reparameterization, host and emulated ARM),
`runtimes` (DeiT-Tiny on every runtime against the issue's targets), `limit` (distance
to the GEMM limit: the best of torch, numpy/OpenBLAS and XNNPACK), `zoo` (vitdeploy's
ExecuTorch lowering against stock lowering on the timm graphs and DeiT/ViT-Tiny, targets in
`zoo_targets`), `overhead` (agent against an in-process loop,
lowering times), `demo_time` (the demo's cold and warm wall time). Shared pieces: `artifacts` (models and their lowered artifacts),
`eager` + `eager_agent` (eager PyTorch as one more runtime of the Python agent),
`measure` (interleaved measurements, sample rows), `matmul` (the GEMM microbenchmark, timed by
`gemm_worker` processes, XNNPACK through `linear_program`), `stock` (stock lowering recipes),
`op_profile` (per-op profiles: ONNX Runtime's profiler, ExecuTorch's ETDump, also at another thread
count in an `op_profile_worker` process), `machine` (what the run ran on), `tables`
(ratios, CSVs, Markdown), `run` (the command). `split_linears` is a command of its own:
the `split_linears` pass's chunks against whole layers, for any model. `native_runner` is one too:
the native ExecuTorch runner (bench_runner.native_runner) against the Python agent on one .pte, and so is
`attention_variants`: the research attention variants (ReLU, scaling, grouped-query, gated class
attention) against their baselines, and `onnx_fusions`: ONNX Runtime's transformer optimizer on the
dynamo export against vitdeploy's ONNX artifact. `quant_*` belong to the quantization work.
"""
