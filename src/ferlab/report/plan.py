"""What `ferlab report` trains: its options and the fixed plan of work for each network.

The work is fixed, not timed: `--quick` trains a fixed share of each packaged recipe's epochs,
so the same command gives the same numbers on a fast or a busy machine; `--minutes` turns the
plan into a time budget instead (and the report says its numbers depend on the machine).
"""

import shlex
from dataclasses import dataclass
from pathlib import Path

from ferlab.atomic import PACKAGE_WEIGHTS_DIR
from ferlab.settings import cli_settings, flag_of, setting
from ferlab.training.config import TrainConfig, recipe_settings

ROLES = {"cnn": "the CNN", "dnn": "the study's DNN", "control": "the dense control"}
RECIPES = {"cnn": "study-cnn@1", "dnn": "study-dnn@1", "control": "study-dnn@1"}
# --quick: (epochs, share of each epoch's batches) per network: about 10 minutes in all on the
# project's idle 2-core CPU (results/report-quick/README.md), the same work everywhere.
QUICK_WORK = {"cnn": (5, 0.3), "dnn": (4, 0.2), "control": (4, 0.2)}
BUDGET_SHARE = {"cnn": 0.6, "dnn": 0.2, "control": 0.2}  # of --minutes


@dataclass
class ReportConfig:
    """What `ferlab report` is asked to do: its options are made from these fields."""

    data: str = setting("", "FER2013 source.", cli=False)
    out: str = setting("", "Report folder.", cli=False)
    quick: bool = setting(False, "A fixed short share of each recipe (about 10 min here).")
    cnn: str = setting("cnn-baseline", "Registered CNN to train.")
    dnn: str = setting("dnn-study", "Registered deep dense network.")
    control: str = setting("dense-control", "Shallow dense network of the same size.")
    minutes: float | None = setting(None, "Train to this time budget instead of fixed work.")
    reuse: list[str] = setting(
        [], "A finished run to use instead: ROLE=RUN (cnn, dnn, control); repeatable."
    )
    seed: int = setting(0, "Seed of every training run.")
    layer: str | None = setting(None, "CNN layer for the filter figures (none: the model's own).")
    quiet: bool = setting(False, "No training progress bars.")
    full_study: str | None = setting(
        None,
        "Records of the study's own networks at full size (results/study/full): draw the "
        "study's figures from them, without training anything.",
    )
    # Not options: model arguments (tests build tiny networks) and which CNN is explained
    # (None: the shipped default when --quick).
    cnn_args: dict = setting({}, "", cli=False)
    dnn_args: dict = setting({}, "", cli=False)
    control_args: dict = setting({}, "", cli=False)
    explain_default: bool | None = setting(None, "", cli=False)

    def __post_init__(self):
        from ferlab.models.registry import canonical  # the networks load when a report runs

        self.cnn, self.dnn, self.control = map(canonical, (self.cnn, self.dnn, self.control))

    def model(self, role: str) -> tuple[str, dict]:
        return getattr(self, role), getattr(self, f"{role}_args")

    @property
    def explains_default(self) -> bool:
        wanted = self.quick if self.explain_default is None else self.explain_default
        return wanted and (PACKAGE_WEIGHTS_DIR / "default.pt").is_file()

    def command(self) -> str:
        """The `ferlab report` command that asks for this report (progress bars aside)."""
        parts = ["ferlab", "report", "--data", self.data, "--out", self.out]
        for f in cli_settings(ReportConfig):
            value = getattr(self, f.name)
            if f.name == "quiet" or value is None or value is False:
                continue
            if value is True:
                parts.append(flag_of(f))
                continue
            for v in value if isinstance(value, list) else [value]:
                parts += [flag_of(f), f"{v:g}" if isinstance(v, float) else str(v)]
        return shlex.join(parts)


def training_plan(cfg: ReportConfig, n_train: int, speed=None) -> dict[str, TrainConfig]:
    """The TrainConfig of each network. Fixed work unless cfg.minutes: then `speed(model,
    args, side)` (images/s, measured here) turns each network's share of the budget into
    epochs, and the result depends on this machine."""
    from ferlab.models import model_config
    from ferlab.training.speed import plan_epochs, train_images_per_second

    runs = Path(cfg.out) / "runs"
    plan = {}
    for role in ROLES:
        model, args = cfg.model(role)
        settings = recipe_settings(RECIPES[role]) | {"model": model, "model_args": args}
        if role == "cnn" and not model_config(model, **args).accepts_crops:
            settings["crop"] = 0
        if cfg.minutes:
            img_s = (speed or train_images_per_second)(model, args, side=settings.get("crop") or 48)
            epochs, fraction = plan_epochs(img_s, n_train, cfg.minutes * BUDGET_SHARE[role])
        elif cfg.quick:
            epochs, fraction = QUICK_WORK[role]
        else:
            epochs, fraction = settings["epochs"], 1.0
        plan[role] = TrainConfig(
            data=cfg.data,
            out=str(runs / role),
            **settings
            | {
                "epochs": epochs,
                "train_fraction": round(fraction, 3),
                "seed": cfg.seed,
                # One validation split for all three: the CNN's.
                "split_file": None if role == "cnn" else str(runs / "cnn" / "split.json"),
                "quiet": cfg.quiet,
            },
        )
    return plan
