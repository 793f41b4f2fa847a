import torch

from deploy.cli import main
from tests.lowering.sources.factories import tiny_classifier


def test_models_describes_any_source_named(tmp_path, capsys):
    path = tmp_path / "tiny.pt2"
    torch.export.save(torch.export.export(tiny_classifier(), (torch.zeros(1, 3, 16, 16),)), str(path))
    assert main(["models", str(path), "tests.lowering.sources.factories:tiny_classifier"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    params = f"{sum(p.numel() for p in tiny_classifier().parameters()):,}"
    assert rows[0][:4] == ["tiny", "exported-program", "16", params]
    assert rows[1][:4] == ["tiny_classifier", "factory", "16", params]
    assert rows[0][4] == rows[1][4] != "0.000"
