"""The accuracy-latency Pareto report: latency records joined with accuracy records.

    report = build_report(results_dir, baseline=None, accuracy=(), dataset=None)
    files = write_report(report, out_dir)   # report.md, report.csv, raw_samples.csv, report.html, plots/
    print(markdown_for_device(report, "host"))

Latency comes from the results stores in the results folder, accuracy from the JSON
Lines files `vitdeploy eval` writes there; they are joined by artifact sha256. There is
one table per device, thread count and metric, in the style of ElasticViT's tables
(model, resolution, params, MACs, quantization, backend, accuracy (top-1, or the metric
the model declares) with its 95% interval, p50 with its 95% interval, p90, speed-up
against a baseline, Pareto front), and one table across
devices (a row per model, its best artifact per device). Records whose tool reported only an
aggregate (a mean over N runs, no raw samples) never enter those tables: each device
with such records gets one table of them apart, never ranked.

The modules, in the order the data flows: `inputs` (records, accuracy, manifest facts),
`rows` (`ReportRow`: repetitions pooled; `labels` names them), `accuracy` (joined to
rows, compared image by image), `tables` (device tables: speed-ups, front, budget;
`provenance`, `failures`) and `aggregates` (tool-aggregate tables), `across_devices`
(one row per model, a column per device), `answers` (the fastest artifacts at an
accuracy), `build` (the Report); then the edges: `cells` (display text), `markdown`,
`html`, `frame` (the only DataFrames: the CSVs and plots), `plots` and `files`.
`statistics` holds the speed-up, the accuracy intervals and the front and budget rules,
which `bench/` uses too.
"""

from deploy.report.build import Report, build_report
from deploy.report.files import ReportFiles, write_report
from deploy.report.inputs import ReportError
from deploy.report.markdown import markdown_for_device

__all__ = ["Report", "ReportError", "ReportFiles", "build_report", "markdown_for_device", "write_report"]
