"""Performance evidence for vitdeploy (issue 7): run with `python -m bench.run`.

One module per concern: `artifacts` (the models and their lowered artifacts),
`eager` (eager PyTorch as one more runtime of the Python agent), `measure` (the
interleaved measurements), `matmul` (the attainable-throughput microbenchmark),
`machine` (what the run ran on), `tables` (ratios and CSVs), `run` (the command).
"""
