import numpy as np
import pytest
import torch

from lowering.data import ArrayDataset, DatasetError
from lowering.data.accuracy import eager_predictor, measure_accuracy
from vitdeploy.metrics import MAE

LABELS = np.array([0, 1, 2, 3, 4, 5, 6], dtype=np.int64)
DATASET = ArrayDataset(np.zeros((7, 3, 2, 2), np.float32), LABELS, "toy", 10)


def _ranking(true_rank_of_label):
    """Logits that put each image's label at `true_rank_of_label` (0 = top)."""
    def predict(images):
        start = len(predict.seen)
        labels = LABELS[start:start + len(images)]
        predict.seen.extend(labels)
        logits = np.tile(np.arange(10, 0, -1, dtype=np.float32), (len(images), 1))
        for row, label in enumerate(labels):
            order = [c for c in range(10) if c != label]
            order.insert(true_rank_of_label, label)
            logits[row, order] = np.arange(10, 0, -1)
        return logits
    predict.seen = []
    return predict


@pytest.mark.parametrize("rank, top1, top5", [(0, 1.0, 1.0), (2, 0.0, 1.0), (7, 0.0, 0.0)])
def test_top1_and_top5_count_the_label_rank(rank, top1, top5):
    result = measure_accuracy(_ranking(rank), DATASET, batch_size=3)
    assert (result.top1, result.top5, result.num_images) == (top1, top5, 7)


def test_eager_predictor_runs_a_torch_model():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 10))
    result = measure_accuracy(eager_predictor(model), DATASET)
    assert result.num_images == 7 and 0.0 <= result.top1 <= result.top5 <= 1.0


def test_wrong_logit_shape_is_an_error():
    with pytest.raises(DatasetError, match="shape"):
        measure_accuracy(lambda images: np.zeros((1, 10)), DATASET, batch_size=3)


def test_mean_absolute_error_scores_each_image_against_its_label_value():
    predictions = np.array([[0.5], [1.0], [2.0], [2.0], [4.0], [5.0], [9.0]], dtype=np.float32)
    result = measure_accuracy(lambda images: predictions, DATASET, batch_size=7, metric=MAE)
    assert result.scores == (0.5, 0.0, 0.0, 1.0, 0.0, 0.0, 3.0)
    assert result.value == pytest.approx(4.5 / 7) and result.top5 is None and result.metric is MAE
    with pytest.raises(ValueError, match="no top-1"):
        result.top1


def test_a_regression_model_must_give_one_output_per_image():
    with pytest.raises(DatasetError, match=r"expected \(images, 1\)"):
        measure_accuracy(lambda images: np.zeros((len(images), 10)), DATASET, batch_size=3, metric=MAE)
