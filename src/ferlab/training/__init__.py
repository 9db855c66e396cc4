"""Training: `TrainConfig` and the recipes (light: the command line builds its options from
them), and `train` with the Lightning module and callbacks (loaded when first used)."""

import importlib

from ferlab.training.config import TrainConfig, list_recipes, recipe_settings

__all__ = ["RunResult", "TrainConfig", "list_recipes", "recipe_settings", "train"]


def __getattr__(name: str):
    if name in ("RunResult", "train"):
        return getattr(importlib.import_module("ferlab.training.run"), name)
    raise AttributeError(f"module 'ferlab.training' has no attribute '{name}'")
