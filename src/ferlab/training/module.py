"""Training logic (LightningModule) and data (LightningDataModule), kept apart from the models."""

import math
from dataclasses import replace

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ferlab.data import FaceSet
from ferlab.models import face_batch
from ferlab.models.card import ModelCard
from ferlab.training.augment import build_augment, build_photo_augment, equalize_batch
from ferlab.training.config import TrainConfig


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2**63)


class EpochSampler(Sampler[int]):
    """A shuffle (or class-balanced draw) fixed by (seed, epoch), so a resumed run sees
    exactly the order an uninterrupted one would. Lightning calls set_epoch every epoch.

    Under DDP each of `world` processes takes every world-th index of the same draw (the
    sampler shards itself: no wrapper stands between Lightning's set_epoch and it)."""

    def __init__(
        self,
        n: int,
        seed: int,
        weights: torch.Tensor | None = None,
        rank: int = 0,
        world: int = 1,
    ):
        self.n, self.seed, self.weights, self.epoch = n, seed, weights, 0
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self):
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        if self.weights is None:
            order = torch.randperm(self.n, generator=g)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)
        # Equal shares, so every process runs the same number of steps.
        return iter(order[: len(self) * self.world][self.rank :: self.world].tolist())


class FERDataModule(L.LightningDataModule):
    def __init__(
        self,
        train: FaceSet,
        val: FaceSet,
        batch_size: int,
        balanced: bool,
        seed: int,
        soft_targets: np.ndarray | None = None,
        vote_targets: np.ndarray | None = None,
    ):
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.balanced, self.seed = batch_size, balanced, seed
        self.soft_targets = soft_targets  # (N, classes) teacher log-probabilities, or None
        self.vote_targets = vote_targets  # (N, classes) FER+ targets of the label mode, or None

    @staticmethod
    def _dataset(faces: FaceSet, *extra: np.ndarray | None) -> TensorDataset:
        tensors = [torch.from_numpy(faces.images), torch.from_numpy(faces.labels)]
        tensors += [torch.from_numpy(x) for x in extra if x is not None]
        return TensorDataset(*tensors)

    def train_dataloader(self) -> DataLoader:
        data = self._dataset(self.train, self.vote_targets, self.soft_targets)
        weights = None
        if self.balanced:
            k = len(self.train.classes)
            counts = np.bincount(self.train.labels, minlength=k).clip(min=1)
            weights = torch.from_numpy(1.0 / counts[self.train.labels])
        rank, world = (
            (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        )
        sampler = EpochSampler(len(data), self.seed, weights, rank, world)
        # Batches smaller than the batch size are dropped so BatchNorm never sees a batch of 1.
        return DataLoader(
            data, self.batch_size, sampler=sampler, drop_last=len(sampler) > self.batch_size
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._dataset(self.val), 512)


class FERModule(L.LightningModule):
    def __init__(self, config: dict, card: dict, class_weights: list[float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cfg = TrainConfig(**config)
        # Written into every checkpoint: the file alone rebuilds the model. The model sees a
        # 48x48 face through the centre crop of the size trained on, in validation as later.
        self.card = ModelCard.from_dict(card)
        self.model = self.card.build()
        if self.cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        c = self.cfg
        photo = (c.framing, c.small_face, c.blur, c.jpeg, c.photometric)
        self.photo_augment = build_photo_augment(*photo)
        self.augment = build_augment(c.augment, c.crop)
        self.reequalize = any(photo) and self.card.preprocess.equalize_hist
        weights = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
        self.register_buffer("class_weights", weights, persistent=False)
        k = len(self.card.classes)
        self.train_loss = MeanMetric()  # the epoch's, read by HistoryWriter at its end
        self.train_acc = MulticlassAccuracy(k, average="micro")
        self.val_acc = MulticlassAccuracy(k, average="micro")

    def _inputs(self, images: torch.Tensor) -> torch.Tensor:
        x = face_batch(images)
        if self.training:
            x = self.photo_augment(x)
            if self.reequalize:  # the photo path equalizes a face after all that befell it
                x = equalize_batch(x)
            x = self.augment(x)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, _):
        images, labels, *rest = batch
        votes = rest.pop(0) if self.cfg.label_mode != "majority" else None
        teacher = rest
        x = self._inputs(images)
        share, partner = 1.0, None
        if self.cfg.mixup > 0:  # drawn from the per-epoch seeded RNG: a resume repeats it
            share = float(torch.distributions.Beta(self.cfg.mixup, self.cfg.mixup).sample())
            partner = torch.randperm(len(x), device=x.device)
            x = x.mul(share).add_(x[partner], alpha=1 - share)
        logits = self(x)
        loss = share * self._loss(logits, labels, votes)
        if partner is not None:
            other = None if votes is None else votes[partner]
            loss = loss + (1 - share) * self._loss(logits, labels[partner], other)
        if teacher:
            w = self.cfg.distill_weight
            loss = (1 - w) * loss + w * self._distill_loss(logits, teacher[0], share, partner)
        self.train_acc(logits, labels)
        self.train_loss.update(loss.detach(), weight=len(labels))
        self.log("train_loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, votes=None) -> torch.Tensor:
        """Cross-entropy with the label, or with FER+'s votes by the label mode (Barsoum et
        al. 2016): probability draws this step's label from the targets, crossentropy takes
        them as the target distribution, multi-target scores the best of the target classes."""
        mode = self.cfg.label_mode
        if votes is not None and mode == "multi-target":
            log_p = torch.log_softmax(logits.float(), 1)
            return -log_p.masked_fill(votes <= 0, float("-inf")).max(1).values.mean()
        if votes is not None and mode == "probability":
            labels = torch.multinomial(votes.float(), 1).squeeze(1)
        target = votes.to(logits.dtype) if votes is not None and mode == "crossentropy" else labels
        return F.cross_entropy(
            logits, target, weight=self.class_weights, label_smoothing=self.cfg.label_smoothing
        )

    def _distill_loss(self, logits, teacher_log_probs, share: float, partner) -> torch.Tensor:
        """KL(teacher || student) at temperature T, times T^2 so its gradients keep their
        scale as T changes (Hinton et al.); a mixed face's target is the mix of its two."""
        t = self.cfg.distill_temperature
        target = torch.softmax(teacher_log_probs / t, 1)
        if partner is not None:
            target = share * target + (1 - share) * target[partner]
        student = torch.log_softmax(logits.float() / t, 1)
        return F.kl_div(student, target, reduction="batchmean") * t * t

    def validation_step(self, batch, _):
        images, labels = batch
        logits = self(self._inputs(images))
        loss = F.cross_entropy(logits, labels)
        self.val_acc(logits, labels)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    def configure_optimizers(self):
        c = self.cfg
        decay = [p for p in self.parameters() if p.ndim > 1]
        no_decay = [p for p in self.parameters() if p.ndim <= 1]  # norms and biases
        groups = [
            {"params": decay, "weight_decay": c.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        if c.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=c.lr, momentum=0.9, nesterov=True)
        else:
            opt = torch.optim.AdamW(groups, lr=c.lr)
        total = int(self.trainer.estimated_stepping_batches)
        if c.schedule == "none" or total < 4:  # a schedule needs a few steps to have phases
            return opt
        if c.schedule == "onecycle":
            # Warm up for 20% of the steps, and at least two, so each phase has a length.
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=c.lr, total_steps=total, pct_start=max(0.2, 2 / total)
            )
        else:
            if c.warmup_epochs is None:
                warmup = max(1, total // 20)
            else:  # in epochs, so that --extend-epochs leaves the warmup where it was
                per_epoch = total / max(1, self.trainer.max_epochs)
                warmup = max(1, round(c.warmup_epochs * per_epoch))
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt,
                lambda s: (
                    min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))
                ),
            )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        # Augmentation and dropout draw from (seed, epoch, rank), so resuming repeats them
        # exactly. Seeded at the first batch: a restarted loop creates its DataLoader iterator
        # (which draws from the global RNG) at another moment than a running one.
        if batch_idx == 0:
            torch.manual_seed(epoch_seed(self.cfg.seed, self.current_epoch, self.global_rank))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Saved at the end of an epoch, before Lightning counts it: current_epoch is its index.
        checkpoint["ferlab"] = replace(self.card, epochs=self.current_epoch + 1).to_dict()
