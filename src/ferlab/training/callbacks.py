import signal
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ferlab.io import atomic_writer


class WallClockBudget(L.Callback):
    """Stop cleanly once this invocation has trained for `minutes` (checked every batch)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.start = time.monotonic()
        self.hit = False

    def on_train_batch_end(self, trainer, *_):
        if time.monotonic() - self.start >= self.seconds:
            self.hit = True
            trainer.should_stop = True


class Throughput(L.Callback):
    """Training images per second, per epoch, in the progress bar and the logs."""

    def on_train_epoch_start(self, trainer, pl_module):
        self.start, self.images = time.perf_counter(), 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.images += len(batch[1])
        rate = self.images / max(time.perf_counter() - self.start, 1e-9)
        pl_module.log("img_s", rate, on_step=True, on_epoch=False, prog_bar=True, logger=False)

    def on_train_epoch_end(self, trainer, pl_module):
        seconds = time.perf_counter() - self.start
        pl_module.log("epoch_seconds", seconds)
        pl_module.log("train_img_s", self.images * trainer.world_size / max(seconds, 1e-9))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file and rename, so a crash never leaves a truncated checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None):
        # Streamed to disk (a vgg-seed checkpoint with optimizer state is ~530 MB).
        with atomic_writer(Path(path)) as f:
            torch.save(checkpoint, f)


def sigterm_as_interrupt() -> None:
    """SIGTERM stops training like Ctrl-C: Lightning shuts down cleanly and we keep last.ckpt."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
