from ferlab.training.config import TrainConfig, list_recipes, recipe_settings
from ferlab.training.run import RunResult, train

__all__ = ["RunResult", "TrainConfig", "list_recipes", "recipe_settings", "train"]
