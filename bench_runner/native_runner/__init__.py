"""A native benchmark runner for ExecuTorch programs, built by vitdeploy from the executorch wheel.

The executorch wheel ships its C++ runtime as shared libraries with headers
(`executorch/include`, `executorch/lib`: the runtime, the optimized and quantized kernels,
the XNNPACK delegate, the thread pool). vitdeploy compiles one small program against them,
so a `.pte` is timed by the same runtime the Python agent uses, without Python:

- `runner.cpp`: `vitdeploy_et_runner --model M.pte --warmup W --iterations N [--threads T]
  [--cpu-list 0,1] [--input-seed S]` loads the program, fills its inputs from the seed,
  times the load, the first inference and every timed run, and prints line records;
- `build.py`: `build_runner(wheel_root, target)` compiles it with g++ (host) or
  aarch64-linux-gnu-g++ (an unpacked aarch64 wheel) into the user cache, once per content;
- `output.py`: `parse_runner_output(stdout)` reads those records into a RunnerResult
  (a pure parser); `describe_failure` names what a nonzero exit status means;
- `inputs.py`: `runner_inputs(shapes, seed)`, the runner's input values in numpy, so its
  output checksum can be checked against another runtime.

Nothing here is registered as a harness yet.
"""
