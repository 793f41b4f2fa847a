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


def _listed(capsys, *argv) -> dict[str, list[str]]:
    assert main(["models", *argv]) == 0
    return {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}


def test_a_registry_model_is_listed_at_its_own_size_with_the_metric_it_is_judged_by(capsys):
    rows = _listed(capsys, "vit_autofocus", "vit_tiny_clip", "deit_tiny")
    assert rows["vit_autofocus"][2:4] == ["128", "4,065,537"] and rows["vit_autofocus"][-1] == "MAE"
    assert rows["deit_tiny"][2:4] == ["224", "5,717,416"] and rows["deit_tiny"][-1] == "top-1"
    assert rows["vit_tiny_clip"][-3:] == ["cosine", "of", "embeddings"]

