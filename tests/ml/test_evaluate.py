from __future__ import annotations

import numpy as np
import torch

from ml.evaluate import bf16_supported, predict_proba
from ml.models import create_model

from .conftest import synthetic_faces


def test_bf16_probabilities_stay_close_to_fp32_and_rank_alike():
    torch.manual_seed(0)
    model = create_model("fer_vgg_m").eval()
    images, _ = synthetic_faces(64)
    fp32 = predict_proba(model, images, tta="flip")
    bf16 = predict_proba(model, images, tta="flip", amp_bf16=True)
    assert bf16.dtype == np.float32 and np.allclose(bf16.sum(1), 1, atol=1e-4)
    if bf16_supported(torch.device("cpu")):
        assert not np.array_equal(bf16, fp32)  # autocast did run
    assert np.abs(bf16 - fp32).max() < 0.02
    assert (bf16.argmax(1) == fp32.argmax(1)).mean() >= 0.95
