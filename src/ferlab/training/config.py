from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ferlab.errors import FerlabError


@dataclass
class TrainConfig:
    data: str
    out: str
    model: str = "cnn-baseline"
    model_args: dict = field(default_factory=dict)
    epochs: int = 30
    train_fraction: float = 1.0  # of each epoch's batches; lets a time budget end on a schedule
    minutes: float | None = None  # wall-clock budget of this invocation
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum 0.9)
    schedule: str = "onecycle"  # onecycle | cosine | none
    val_fraction: float = 0.1
    split_file: str | None = None  # reuse a saved split instead of carving one
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | bf16
    channels_last: bool = True
    augment: str = "standard"  # none | light | standard | strong
    crop: int = 0  # train on random crops of this side (0: whole faces); evaluation sees 48x48
    label_smoothing: float = 0.0
    class_weights: bool = False
    balanced_sampling: bool = False
    equalize_hist: bool = True
    devices: int = 1
    accelerator: str = "auto"
    quiet: bool = False
    recipe: str | None = None  # "name@version" of the packaged recipe this run started from

    def __post_init__(self):
        choices = {
            "optimizer": ("adamw", "sgd"),
            "schedule": ("onecycle", "cosine", "none"),
            "precision": ("auto", "fp32", "bf16"),
            "augment": ("none", "light", "standard", "strong"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise FerlabError(
                    f"--{name.replace('_', '-')} must be one of {', '.join(allowed)},"
                    f" not '{getattr(self, name)}'"
                )
        if not 0 < self.train_fraction <= 1:
            raise FerlabError(f"train_fraction must be in (0, 1], not {self.train_fraction}")
        if self.crop and not 24 <= self.crop <= 48:
            raise FerlabError(f"--crop must be 0 or between 24 and 48, not {self.crop}")
        if self.epochs < 1 or self.batch_size < 1 or self.devices < 1:
            raise FerlabError("--epochs, --batch-size and --devices must be at least 1")

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: Path) -> "TrainConfig":
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise FerlabError(f"{path}: cannot read run config ({e})") from None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_settings(name: str) -> dict:
    """A packaged recipe's TrainConfig fields, with `recipe` set to "name@version"."""
    path = RECIPES / f"{name}.yaml"
    if not path.is_file():
        raise FerlabError(f"unknown recipe '{name}'; choose one of {', '.join(list_recipes())}")
    d = yaml.safe_load(path.read_text())
    version = d.pop("version")
    d.pop("notes", None)
    known = {f.name for f in fields(TrainConfig)} - {"data", "out", "recipe"}
    unknown = set(d) - known
    if unknown:  # a recipe from a newer ferlab; refuse rather than silently drop settings
        raise FerlabError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return d | {"recipe": f"{name}@{version}"}
