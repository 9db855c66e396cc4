from ferlab.training.config import TrainConfig
from ferlab.training.run import RunResult, read_history, train

__all__ = ["RunResult", "TrainConfig", "read_history", "train"]
