import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ferlab.atomic import FULL, atomic_writer, disk_full
from ferlab.errors import FerlabError
from ferlab.models import weight_layers
from ferlab.models.card import load_checkpoint_safely
from ferlab.runs import RunFolder

_now = time.monotonic  # the budget's clock (tests replace it)


class WallClockBudget(L.Callback):
    """Keep this invocation within `minutes` without ever recording a partial epoch.

    At an epoch's end (validation included) training stops when another epoch as long as the
    longest so far would not fit. A budget that still runs out mid-epoch stops like Ctrl-C:
    nothing of the unfinished epoch is saved, and --resume trains it again from its first batch.
    """

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.start = _now()
        self.epoch_start = self.start
        self.longest = 0.0
        self.hit = False

    def on_train_epoch_start(self, trainer, pl_module):
        self.epoch_start = _now()

    def on_train_batch_end(self, trainer, *_):
        if _now() - self.start >= self.seconds:
            self.hit = True
            raise KeyboardInterrupt  # Lightning's graceful shutdown; last.ckpt is untouched

    def on_train_epoch_end(self, trainer, pl_module):
        now = _now()
        self.longest = max(self.longest, now - self.epoch_start)
        if now - self.start + self.longest > self.seconds:
            self.hit = True
            trainer.should_stop = True


class HistoryWriter(L.Callback):
    """The run's record: when an epoch ends (after its validation), its row goes into
    RUN/metrics.csv, so a killed run's history holds every finished epoch. It also times the
    epoch and counts its images (the live images/s in the progress bar, the epoch's in the
    row): Lightning's ThroughputMonitor logs per-step figures to every logger and needs a
    batch-size function, where a run wants one figure an epoch. With `write` (for logs and CI,
    where a progress bar is noise) it reports each finished epoch in one line, and on resume
    the hours trained so far and the time to the end of the schedule at this pace."""

    def __init__(self, out: Path, total_epochs: int = 0, write=None):
        self.run, self.total, self.write = RunFolder(out), total_epochs, write

    def on_train_start(self, trainer, pl_module):
        done = trainer.current_epoch
        if done and self.write and trainer.is_global_zero:
            seconds = [s for s in self.run.read_history()["epoch_seconds"] if s == s]
            per_epoch = sum(seconds[-5:]) / max(len(seconds[-5:]), 1)
            self.write(
                f"resuming at epoch {done + 1} of {self.total}: {sum(seconds) / 3600:.1f} h "
                f"trained so far; about {(self.total - done) * per_epoch / 3600:.1f} h to the "
                f"end at {per_epoch:.0f} s an epoch"
            )

    def on_train_epoch_start(self, trainer, pl_module):
        self.start, self.images = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.images += len(batch[1])
        rate = self.images / max(time.perf_counter() - self.start, 1e-9)
        pl_module.log("img_s", rate, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self.start
        img_s = self.images * trainer.world_size / max(seconds, 1e-9)
        pl_module.log("epoch_seconds", seconds)
        pl_module.log("train_img_s", img_s)
        logged = trainer.callback_metrics  # the validation that just ran
        row = {
            "epoch": trainer.current_epoch + 1,
            # Every process computes (they sync); the first one writes.
            "train_loss": float(pl_module.train_loss.compute()),
            "train_acc": float(pl_module.train_acc.compute()),
            **{k: float(logged[k]) for k in ("val_loss", "val_acc", "val_acc_raw") if k in logged},
            "epoch_seconds": seconds,
            "train_img_s": img_s,
        }
        if trainer.is_global_zero:
            self.run.append_history(row)
            if self.write:
                self.write(epoch_line(row, self.total))


class GradientNorms(L.Callback):
    """Every `every` optimizer steps, the L2 norm of each weight layer's gradient (Linear and
    Conv2d, in forward order) appended to a CSV: where a deep network's training signal grows
    or dies. A resumed run appends to the same file."""

    def __init__(self, path: Path, every: int):
        self.path, self.every = Path(path), every

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if trainer.global_step % self.every or not trainer.is_global_zero:
            return
        layers = weight_layers(pl_module.model)
        norms = [
            float(m.weight.grad.norm()) if m.weight.grad is not None else float("nan")
            for m in layers.values()
        ]
        new = not self.path.is_file()
        with open(self.path, "a") as f:
            if new:
                f.write(",".join(["step", "epoch", *layers]) + "\n")
            f.write(",".join(map(str, [trainer.global_step, trainer.current_epoch, *norms])))
            f.write("\n")


def epoch_line(row: dict, total: int) -> str:
    """'epoch 3/100: train loss ... acc ..., val loss ... acc ... (raw weights ...), 230 s'."""
    value = {"val_loss": math.nan, "val_acc": math.nan, "val_acc_raw": math.nan} | row
    raw = value["val_acc_raw"]
    return (
        f"epoch {value['epoch']}/{total}: train loss {value['train_loss']:.3f} "
        f"acc {value['train_acc']:.1%}, val loss {value['val_loss']:.3f} "
        f"acc {value['val_acc']:.1%}"
        + (f" (raw weights {raw:.1%})" if raw == raw else "")
        + f", {value['epoch_seconds']:.0f} s"
    )


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file and rename, so a crash never leaves a truncated checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        # Streamed to disk (a vgg-study checkpoint with optimizer state is ~530 MB).
        try:
            with atomic_writer(Path(path)) as f:
                torch.save(checkpoint, f)
        except RuntimeError as e:  # torch's writer wraps the OS's error in its own
            cause = e.__context__
            if isinstance(cause, OSError) and cause.errno in FULL:
                raise FerlabError(disk_full(Path(path))) from None
            raise

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        """--resume reads last.ckpt as every other loader does: tensors and plain values only,
        whatever weights_only Lightning or the environment would choose (torch honours an
        explicit True even under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD), and a damaged or foreign
        file is one line."""
        ckpt = load_checkpoint_safely(Path(path), map_location or "cpu")
        missing = [k for k in RESUME_KEYS if k not in ckpt]
        if missing:
            raise FerlabError(
                f"{path}: not a resumable ferlab checkpoint (no {', '.join(missing)})"
            )
        return ckpt


# What Lightning reads back from last.ckpt to continue a run, and ferlab's card.
RESUME_KEYS = ("ferlab", "pytorch-lightning_version", "state_dict", "loops", "optimizer_states")


@contextmanager
def sigterm_as_interrupt():
    """Within: SIGTERM stops training like Ctrl-C (Lightning shuts down cleanly and last.ckpt
    stays). The previous handler is back afterwards."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class RawValidation(L.Callback):
    """With an EMA of the weights, validation scores the average; this scores the raw weights
    on the same faces as `val_acc_raw`. Listed after the averaging callback, it runs once the
    raw weights are back in the module."""

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        correct = total = 0
        for images, labels in trainer.val_dataloaders:
            images, labels = images.to(pl_module.device), labels.to(pl_module.device)
            correct += int((pl_module(pl_module._inputs(images)).argmax(1) == labels).sum())
            total += len(labels)
        pl_module.log("val_acc_raw", correct / max(total, 1), sync_dist=True)
