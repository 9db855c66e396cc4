import math
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from ferlab.errors import FerlabError
from ferlab.settings import setting


@dataclass
class TrainConfig:
    data: str = setting("", "FER2013 source with a Training split.", cli=False)
    out: str = setting("", "Run folder to create.", cli=False)
    model: str = setting("cnn-baseline", "Registered model name (see `ferlab models`).")
    model_args: dict = setting({}, "Arguments of the model's constructor.", cli=False)
    epochs: int = setting(30, "Epochs in the schedule.")
    extended: int = setting(0, "Epochs added to the first plan by --extend-epochs.", cli=False)
    train_fraction: float = setting(1.0, "Share of each epoch's batches trained (0-1].")
    minutes: float | None = setting(None, "Wall-clock budget of this invocation; stops cleanly.")
    batch_size: int = setting(128, "Faces per training step.")
    lr: float = setting(3e-3, "Peak learning rate.")
    weight_decay: float = setting(5e-4, "Decoupled weight decay (not on norms and biases).")
    optimizer: str = setting("adamw", "sgd: Nesterov momentum 0.9.", choices=("adamw", "sgd"))
    schedule: str = setting(
        "onecycle", "Learning-rate schedule.", choices=("onecycle", "cosine", "none")
    )
    warmup_epochs: float | None = setting(
        None, "Cosine schedule: linear warmup in epochs (default: 5% of the steps)."
    )
    ema_decay: float = setting(
        0.0, "Validate and checkpoint an EMA of the weights, e.g. 0.999 (raw ones kept too)."
    )
    val_fraction: float = setting(0.1, "Share of Training carved out for validation.")
    split_file: str | None = setting(
        None, "Reuse a saved validation split instead of carving one.", flag="--split"
    )
    split_seed: int = setting(0, "Seed of the validation draw, apart from --seed.")
    seed: int = setting(0, "Training seed: initialization, order, augmentation, dropout.")
    precision: str = setting("auto", "auto: bf16 where native.", choices=("auto", "fp32", "bf16"))
    channels_last: bool = setting(True, "Channels-last memory format (faster convs on CPU).")
    augment: str = setting(
        "standard", "Augmentation strength.", choices=("none", "light", "standard", "strong")
    )
    crop: int = setting(0, "Train on random crops of this side; evaluation uses the centre.")
    # What a detector's crop of a photo looks like (training.augment.build_photo_augment): the
    # probability of each step, applied before the standard augmentation and the crop.
    framing: float = setting(0.0, "Photo crops: chance of framing jitter (scale, shift, turn).")
    small_face: float = setting(0.0, "Photo crops: chance of a small face (to 12-32 px and back).")
    blur: float = setting(0.0, "Photo crops: chance of Gaussian blur.")
    jpeg: float = setting(0.0, "Photo crops: chance of JPEG compression (quality 30-90).")
    photometric: float = setting(0.0, "Photo crops: chance of gamma and contrast changes.")
    label_smoothing: float = setting(0.0, "Label smoothing of the loss.")
    mixup: float = setting(0.0, "Mixup strength: Beta(a, a) mixing of face pairs (0: off).")
    init: str | None = setting(
        None,
        "Fine-tune: start from this model's weights (e.g. default); same network and classes, "
        "and its validation split unless --split names one it held out.",
    )
    init_sha256: str | None = setting(
        None, "sha256 of the --init file, recorded (a recipe's is checked).", cli=False
    )
    teacher: str | None = setting(
        None, "Distil from this model (e.g. default): its cached probabilities are soft targets."
    )
    distill_weight: float = setting(0.7, "With --teacher: the soft targets' share of the loss.")
    distill_temperature: float = setting(2.0, "With --teacher: softening of both distributions.")
    teacher_tta: bool = setting(
        False, "With --teacher: its probabilities averaged over its test-time views (flips, crops)."
    )
    label_mode: str = setting(
        "majority",
        "FER+ votes as targets: majority (FERPlus's rule), probability (a label drawn from the "
        "votes each step), crossentropy (the vote distribution), multi-target (any class with "
        "30% of the votes). Single-label data: majority.",
        flag="--labels",
        choices=("majority", "probability", "crossentropy", "multi-target"),
    )
    class_weights: bool = setting(False, "Weight the loss by inverse class frequency.")
    balanced_sampling: bool = setting(False, "Class-balanced sampling.", flag="--balanced")
    equalize_hist: bool = setting(True, "Histogram-equalize every face.", flag="--equalize")
    gradient_clip: float = setting(0.0, "Clip the gradient's norm to this (0: no clipping).")
    gradient_norms_every: int = setting(
        0, "Record each weight layer's gradient norm every N steps in gradient_norms.csv."
    )
    devices: int = setting(1, "Processes/GPUs; more than 1 runs DDP.")
    accelerator: str = setting("auto", "auto | cpu | gpu.")
    quiet: bool = setting(False, "No progress bar; one line per epoch.", cli=False)
    recipe: str | None = setting(
        None, "name@version of the packaged recipe the run started from.", cli=False
    )

    def __post_init__(self):
        from ferlab.models.registry import canonical  # configs saved under the old names

        check_types(self)
        self.model = canonical(self.model)
        for f in fields(self):
            allowed = f.metadata["choices"]
            name = f.name
            if allowed and getattr(self, name) not in allowed:
                raise FerlabError(
                    f"--{name.replace('_', '-')} must be one of {', '.join(allowed)},"
                    f" not '{getattr(self, name)}'"
                )
        if not 0 < self.val_fraction < 1:
            raise FerlabError(f"--val-fraction must be in (0, 1), not {self.val_fraction}")
        if not 0 < self.train_fraction <= 1:
            raise FerlabError(f"train_fraction must be in (0, 1], not {self.train_fraction}")
        if self.crop and not 24 <= self.crop <= 48:
            raise FerlabError(f"--crop must be 0 or between 24 and 48, not {self.crop}")
        if self.epochs < 1 or self.batch_size < 1 or self.devices < 1:
            raise FerlabError("--epochs, --batch-size and --devices must be at least 1")
        import math

        for name in ("lr", "weight_decay", "label_smoothing", "mixup", "gradient_clip"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise FerlabError(f"--{name.replace('_', '-')} must be a finite number >= 0")
        if not self.lr > 0:
            raise FerlabError(f"--lr must be positive, not {self.lr}")
        for name in ("framing", "small_face", "blur", "jpeg", "photometric"):
            if not 0 <= getattr(self, name) <= 1:
                raise FerlabError(f"--{name.replace('_', '-')} is a probability in [0, 1]")
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise FerlabError(f"--minutes must be a positive budget, not {self.minutes}")
        if not 0 <= self.ema_decay < 1:
            raise FerlabError(f"--ema-decay must be in [0, 1), not {self.ema_decay}")
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            raise FerlabError(f"--warmup-epochs must be at least 0, not {self.warmup_epochs}")

    def model_kwargs(self, num_classes: int = 7) -> dict:
        """The arguments of `create(self.model, ...)` for the network this config trains: a run
        on random crops gives its model the centre crop of that size."""
        crop = {"input_crop": self.crop} if 0 < self.crop < 48 else {}
        return {"num_classes": num_classes, **self.model_args, **crop}

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


def check_types(cfg: TrainConfig) -> None:
    """Each setting of the type it is declared with (a config file can hold anything YAML
    does): whole numbers for counts, finite numbers for rates, text for names."""
    for name, declared in typing.get_type_hints(type(cfg)).items():
        value = getattr(cfg, name)
        kinds = typing.get_args(declared) or (declared,)
        if value is None and type(None) in kinds:
            continue
        if not any(_is(value, kind) for kind in kinds if kind is not type(None)):
            wanted = " or ".join(_NAMES.get(k, k.__name__) for k in kinds if k is not type(None))
            flag = f"--{name.replace('_', '-')}"
            raise FerlabError(
                f"{flag} ({name} in a config) must be {wanted}, not {repr(value)[:40]}"
            )


_NAMES = {int: "a whole number", float: "a finite number", str: "text", bool: "true or false",
          dict: "a mapping of arguments"}  # fmt: skip


def _is(value, kind) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):  # YAML's true is an int to Python; never a count
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, int | float) and math.isfinite(value)
    return isinstance(value, kind)


def config_settings(path: Path) -> dict:
    """The settings of a saved config.yaml that `ferlab train --config` starts from: what is
    trained and on which data, not where it goes. A run lengthened by --extend-epochs starts on
    its first plan; `reproduction` gives the command that extends it the same way."""
    cfg = TrainConfig.from_yaml(Path(path))
    d = asdict(cfg)
    for name in ("out", "quiet", "extended"):
        d.pop(name)
    d["epochs"] = cfg.epochs - cfg.extended
    return d


def reproduction(config_path: Path | str, out: str, data: str | None = None) -> list[str]:
    """The commands that train again the run whose config.yaml is at `config_path`."""
    import shlex

    cfg = TrainConfig.from_yaml(Path(config_path))
    first = ["ferlab", "train", "--config", str(config_path), "--out", out]
    if data:
        first += ["--data", data]
    commands = [shlex.join(first)]
    if cfg.extended:
        extend = ["ferlab", "train", "--out", out, "--resume"]
        extend += ["--extend-epochs", str(cfg.extended)]
        commands.append(shlex.join(extend))
    return commands


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


def config_of(
    data: str | Path | None,
    out: str | Path,
    config: str | Path | None = None,
    recipe: str | None = None,
    resume: bool = False,
    quiet: bool = False,
    given: dict | None = None,
) -> tuple[TrainConfig, dict]:
    """(the TrainConfig `ferlab train` runs, the settings asked for): a packaged `recipe`,
    then a saved `config` (a run's config.yaml), then the `given` settings, each overriding
    the one before. A resumed run keeps its own config.yaml (train() checks that what was
    given agrees with it)."""
    given = given or {}
    settings = recipe_settings(recipe) if recipe is not None else {}
    if config:
        settings |= config_settings(config)
    settings |= given
    data = data or settings.pop("data", None)
    settings.pop("data", None)
    if not data and not resume:
        raise FerlabError("--data is required (or --config with a run's config.yaml)")
    if resume:
        minutes = given.get("minutes")
        cfg = TrainConfig(data=str(data or ""), out=str(out), quiet=quiet, minutes=minutes)
    else:
        cfg = TrainConfig(data=str(data), out=str(out), quiet=quiet, **settings)
    return cfg, settings
