"""ml.outliers: image statistics and cleanlab's out-of-distribution score find blanks, noise, text and gradients among
synthetically drawn faces, and say why."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.outliers import image_statistics, outlier_scores


def drawn_face(rng: np.random.Generator) -> np.ndarray:
    """A 48x48 cartoon face: a lit head on a shaded background, two eyes, brows and a mouth, with sensor noise."""
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float64)
    img = rng.uniform(40, 90) + rng.uniform(-20, 20) * (xx / 48)
    cx, cy = 24 + rng.uniform(-2, 2), 25 + rng.uniform(-2, 2)
    head = ((xx - cx) / rng.uniform(14, 17)) ** 2 + ((yy - cy) / rng.uniform(18, 21)) ** 2 <= 1
    img = np.where(head, rng.uniform(140, 200) - 0.8 * np.abs(xx - cx), img)
    for side in (-1, 1):
        ex, ey = cx + side * rng.uniform(6, 8), cy - rng.uniform(4, 6)
        img[((xx - ex) ** 2 + (yy - ey) ** 2) <= rng.uniform(3, 6)] = rng.uniform(20, 50)
        img[(np.abs(yy - (ey - 4)) <= 0.8) & (np.abs(xx - ex) <= 4)] = 60
    smile = rng.uniform(-0.08, 0.08)
    mouth = np.abs(yy - (cy + 9 + smile * (xx - cx) ** 2)) <= 1.2
    img[mouth & (np.abs(xx - cx) <= rng.uniform(5, 8))] = rng.uniform(50, 90)
    return np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def text_image(text: str = "FER\n2013", shade: int = 250) -> np.ndarray:
    image = Image.new("L", (48, 48), color=shade)
    ImageDraw.Draw(image).multiline_text((3, 8), text, fill=255 - shade)
    return np.asarray(image, dtype=np.uint8)


def non_faces(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "blank": np.full((48, 48), 128, dtype=np.uint8),
        "black": np.zeros((48, 48), dtype=np.uint8),
        "noise": np.clip(rng.normal(128, 60, (48, 48)), 0, 255).astype(np.uint8),
        "text": text_image(),
        "gradient": np.tile(np.linspace(30, 220, 48), (48, 1)).astype(np.uint8),
    }


def test_drawn_faces_look_like_faces_to_the_statistics():
    rng = np.random.default_rng(0)
    faces = np.stack([drawn_face(rng) for _ in range(40)])
    scores = outlier_scores(faces)
    assert scores.score.max() < 0.5
    assert all(scores.fired(i) == [] for i in range(len(faces)))


@pytest.mark.parametrize(("name", "signal", "words"), [
    ("blank", "near_constant", "near-constant image (pixel std 0.0)"),
    ("black", "near_constant", "near-constant image"),
    ("noise", "noise_like", "noise-like, neighbouring pixels unrelated"),
    ("text", "too_light", "very light (mean grey"),
    ("gradient", "no_detail", "no detail, blurred or smooth"),
])
def test_each_kind_of_non_face_fires_its_statistic_and_says_so(name, signal, words):
    rng = np.random.default_rng(1)
    images = np.stack([drawn_face(rng) for _ in range(20)] + [non_faces(rng)[name]])
    scores = outlier_scores(images)
    assert signal in scores.fired(20)
    assert scores.reason(20).startswith(words)
    assert scores.score[20] > 0.9 and scores.score[:20].max() < 0.5
    assert list(scores.top(1)) == [20]


def test_the_statistics_are_what_they_say():
    stats = image_statistics(np.stack([np.full((48, 48), 7, np.uint8), np.tile([0, 255], (48, 24)).astype(np.uint8)]))
    assert stats["std"][0] == 0 and stats["mean"][0] == 7 and stats["entropy"][0] == 0
    assert stats["neighbour_corr"][0] == 1.0  # nothing varies: nothing is unrelated
    assert stats["std"][1] == pytest.approx(127.5) and stats["entropy"][1] == pytest.approx(1.0)
    assert stats["neighbour_corr"][1] == pytest.approx(0.0)  # -1 across the stripes, +1 along them


def test_features_far_from_every_face_are_out_of_distribution():
    rng = np.random.default_rng(2)
    features = rng.normal(0, 1, (60, 16)) + np.array([10.0] + [0.0] * 15)  # one cloud of faces
    features[7] = np.array([0.0] * 15 + [6.0]) + rng.normal(0, 0.1, 16)  # pointing elsewhere
    images = np.stack([drawn_face(rng) for _ in range(60)])
    scores = outlier_scores(images, features)
    assert int(np.argmax(scores.distance)) == 7 and scores.distance[7] > 4
    assert scores.fired(7) == ["ood"] and scores.reason(7).startswith("unlike the other faces to the model")
    assert list(scores.top(1)) == [7]
    assert scores.ood_score[np.arange(60) != 7].max() < 0.5
    stats_only = outlier_scores(images)
    assert stats_only.score[7] < 0.5 and stats_only.distance is None  # the statistics cannot see it


def test_the_combined_score_is_at_least_each_part_and_top_honours_the_threshold():
    rng = np.random.default_rng(3)
    images = np.stack([drawn_face(rng) for _ in range(30)] + list(non_faces(rng).values()))
    features = rng.normal(0, 1, (35, 8))
    scores = outlier_scores(images, features)
    assert np.all(scores.score >= np.maximum(scores.stats_score, scores.ood_score) - 1e-12)
    assert np.all((scores.score >= 0) & (scores.score <= 1))
    assert set(scores.top(10, min_score=0.5)) == set(range(30, 35))
    assert len(scores.top(3, min_score=0.5)) == 3 and len(scores.top(0)) == 0
    detail = scores.detail(30)
    assert json.loads(json.dumps(detail)) == detail
    assert detail["fired"][0] == "near_constant" and detail["score"] > 0.9 and "feature_distance" in detail


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="expected"):
        outlier_scores(np.zeros((48, 48), np.uint8))
    with pytest.raises(ValueError, match="feature rows"):
        outlier_scores(np.zeros((3, 48, 48), np.uint8), np.zeros((2, 4)))
