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
    extended: int = 0  # epochs added to the first plan by --resume --extend-epochs
    train_fraction: float = 1.0  # of each epoch's batches; lets a time budget end on a schedule
    minutes: float | None = None  # wall-clock budget of this invocation
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    optimizer: str = "adamw"  # adamw | sgd (Nesterov momentum 0.9)
    schedule: str = "onecycle"  # onecycle | cosine | none
    warmup_epochs: float | None = None  # cosine: linear warmup (None: 5% of the steps)
    ema_decay: float = 0.0  # > 0: validate and checkpoint an EMA of the weights (raw kept too)
    val_fraction: float = 0.1
    split_file: str | None = None  # reuse a saved split instead of carving one
    split_seed: int = 0  # draws the validation split; independent of `seed`
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
        if not 0 <= self.ema_decay < 1:
            raise FerlabError(f"--ema-decay must be in [0, 1), not {self.ema_decay}")
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            raise FerlabError(f"--warmup-epochs must be at least 0, not {self.warmup_epochs}")

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: Path) -> "TrainConfig":
        try:
            d = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise FerlabError(f"{path}: cannot read run config ({e})") from None
        if not isinstance(d, dict):
            raise FerlabError(f"{path}: not a run config (expected a mapping of settings)")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise FerlabError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
        try:
            return cls(**d)
        except TypeError as e:
            raise FerlabError(f"{path}: not a run config ({e})") from None


# Options that may differ when a run is resumed: they do not change what is trained.
RESUMABLE_CHANGES = ("minutes", "quiet", "data")


def changed_options(saved: TrainConfig, given: dict) -> list[str]:
    """The options in `given` (as set on the command line) that differ from the saved run."""
    return sorted(
        k
        for k, v in given.items()
        if k not in RESUMABLE_CHANGES and v is not None and getattr(saved, k) != v
    )


RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def list_recipes() -> list[str]:
    return sorted(p.name for p in RECIPES.iterdir() if p.is_dir() and any(p.glob("*.yaml")))


def recipe_versions(name: str) -> list[int]:
    return sorted(int(p.stem) for p in (RECIPES / name).glob("*.yaml") if p.stem.isdigit())


def recipe_settings(ref: str) -> dict:
    """A packaged recipe's TrainConfig fields, with `recipe` set to "name@version". `ref` is
    "name" (its newest version) or "name@version" (recipes stay reproducible once replaced)."""
    name, _, version = ref.partition("@")
    versions = recipe_versions(name) if name and "/" not in name and "." not in name else []
    if not versions:
        raise FerlabError(f"unknown recipe '{ref}'; choose one of {', '.join(list_recipes())}")
    if version and (not version.isdigit() or int(version) not in versions):
        have = ", ".join(f"{name}@{v}" for v in versions)
        raise FerlabError(f"unknown recipe version '{ref}'; choose one of {have}")
    number = int(version) if version else versions[-1]
    path = RECIPES / name / f"{number}.yaml"
    d = yaml.safe_load(path.read_text())
    if d.pop("version") != number:
        raise FerlabError(f"{path}: its version field differs from its file name")
    d.pop("notes", None)
    known = {f.name for f in fields(TrainConfig)} - {"data", "out", "recipe"}
    unknown = set(d) - known
    if unknown:  # a recipe from a newer ferlab; refuse rather than silently drop settings
        raise FerlabError(f"{path}: unknown settings {', '.join(sorted(unknown))}")
    return d | {"recipe": f"{name}@{number}"}
