"""Recipe overrides from outside are checked field by field against the Recipe dataclass: type, range and choices,
with a one-line ValueError naming the field and what it must be (the services turn it into a 400)."""

from __future__ import annotations

import pytest
import torch

from ml.evaluate import TTA_MODES
from ml.recipes import FIXED_FIELDS, RECIPES, apply_overrides, get_recipe
from ml.train import _targets, make_optimizer, make_scheduler

DEFAULT = get_recipe("default")

REFUSED = [
    ({"batch_size": "abc"}, "'batch_size' must be an integer >= 1, not 'abc'"),
    ({"batch_size": True}, "'batch_size' must be an integer"),  # a bool is not a number here
    ({"batch_size": 1.5}, "'batch_size' must be an integer"),
    ({"batch_size": 0}, "'batch_size' must be an integer >= 1, not 0"),
    ({"epochs": 0}, "'epochs' must be an integer >= 1"),
    ({"eval_every": 0}, "'eval_every' must be an integer >= 1"),
    ({"lr": 0}, "'lr' must be a number > 0, not 0"),
    ({"lr": -0.1}, "'lr' must be a number > 0"),
    ({"lr": "0.1"}, "'lr' must be a number > 0, not '0.1'"),
    ({"lr": False}, "'lr' must be a number"),
    ({"lr": float("nan")}, "'lr' must be a number"),
    ({"lr": float("inf")}, "'lr' must be a number"),
    ({"lr": 10**400}, "'lr' must be a number"),
    ({"weight_decay": -1e-4}, "'weight_decay' must be a number >= 0"),
    ({"label_smoothing": 1.5}, "'label_smoothing' must be a number between 0 and 1"),
    ({"ema_decay": 1}, "'ema_decay' must be a number in [0, 1)"),
    ({"plateau_factor": 1.0}, "'plateau_factor' must be a number between 0 and 1 (exclusive)"),
    ({"nesterov": 1}, "'nesterov' must be true or false, not 1"),
    ({"oversample": "false"}, "'oversample' must be true or false"),
    ({"progressive_resize": 5}, "'progressive_resize' must be null or a list of 2 integers of sides >= 1, not 5"),
    ({"progressive_resize": [32]}, "'progressive_resize' must be null or a list of 2 integers"),
    ({"progressive_resize": [32, 48, 64]}, "'progressive_resize' must be null or a list of 2 integers"),
    ({"progressive_resize": [32, "48"]}, "'progressive_resize' must be null or a list of 2 integers"),
    ({"progressive_resize": [0, 48]}, "'progressive_resize' must be null or a list of 2 integers of sides >= 1"),
    ({"class_weights": 3}, "'class_weights' must be null or a string"),
    ({"class_weights": "inverse"}, "'class_weights' must be null or one of balanced, not 'inverse'"),
    ({"arch_kwargs": [1, 2]}, "'arch_kwargs' must be a JSON object"),
    ({"arch": 7}, "'arch' must be a string"),
    ({"arch": "resnet50"}, "'arch' must be one of fer_cnn, fer_vgg, fer_vgg_m, vgg19_transfer, not 'resnet50'"),
    ({"optimizer": "rmsprop"}, "'optimizer' must be one of sgd, adam, adamw"),
    ({"scheduler": "step"}, "'scheduler' must be one of onecycle, cosine, plateau, exp_decay, none"),
    ({"tta": "hflip"}, "'tta' must be one of none, flip, tencrop"),
    ({"soft_label_mode": "votes"}, "'soft_label_mode' must be one of majority, probability, crossentropy"),
    ({"description": None}, "cannot be null: description"),
    ({"momentum": 0}, "'momentum' must be > 0 with nesterov"),  # torch's SGD refuses Nesterov without momentum
]


@pytest.mark.parametrize(("overrides", "message"), REFUSED, ids=[next(iter(o)) + "=" + repr(next(iter(o.values())))[:20]
                                                                  for o, _ in REFUSED])
def test_a_wrong_type_or_range_is_a_value_error_naming_the_field(overrides, message):
    with pytest.raises(ValueError) as refused:
        apply_overrides(DEFAULT, overrides)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_json_values_of_the_right_type_are_taken_and_normalised():
    recipe = apply_overrides(DEFAULT, {"lr": 1, "batch_size": 32, "progressive_resize": [32, 48], "nesterov": False,
                                       "momentum": 0, "class_weights": "balanced", "weight_decay": 0,
                                       "arch_kwargs": {"widths": [8, 16, 16, 32]}, "tta": "none"})
    assert recipe.lr == 1.0 and isinstance(recipe.lr, float)  # an integer is a number
    assert recipe.batch_size == 32 and recipe.progressive_resize == (32, 48) and recipe.momentum == 0.0
    assert recipe.arch_kwargs == {"widths": (8, 16, 16, 32)} and recipe.class_weights == "balanced"
    assert apply_overrides(recipe, {"progressive_resize": None, "class_weights": None}).progressive_resize is None
    assert apply_overrides(DEFAULT, {}) == DEFAULT


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_shipped_recipe_passes_its_own_checks(name):
    recipe = RECIPES[name]
    values = {k: v for k, v in recipe.as_dict().items() if k not in FIXED_FIELDS}
    assert apply_overrides(recipe, values) == recipe


def test_the_choices_are_the_ones_training_acts_on():
    from ml.recipes import CHOICES

    assert CHOICES["tta"] == TTA_MODES
    model = torch.nn.Linear(2, 7)
    for optimizer in CHOICES["optimizer"]:
        make_optimizer(apply_overrides(DEFAULT, {"optimizer": optimizer}), model)
    for scheduler in CHOICES["scheduler"]:
        recipe = apply_overrides(DEFAULT, {"scheduler": scheduler})
        make_scheduler(recipe, make_optimizer(recipe, model), steps_per_epoch=4, epochs=2)
    labels, soft = torch.tensor([0, 1]), torch.full((2, 7), 1 / 7)
    for mode in CHOICES["soft_label_mode"]:
        _targets(torch.arange(2), labels, soft, apply_overrides(DEFAULT, {"soft_label_mode": mode}),
                 torch.Generator().manual_seed(0))
