from ferlab.training.config import TrainConfig, list_recipes, recipe_settings
from ferlab.training.run import RunResult, read_history, train

__all__ = ["RunResult", "TrainConfig", "list_recipes", "read_history", "recipe_settings", "train"]
