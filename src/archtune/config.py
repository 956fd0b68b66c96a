"""Training and data configuration: every knob once, with a short comment.

Both live in a spec's ``train:`` and ``data:`` sections and can be overridden with
``--set train.lr=0.05``. Unknown keys get a did-you-mean; bad values say what is allowed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from ._validate import from_dict, require

Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
Schedule = Literal["constant", "step", "cosine", "onecycle", "triangular", "wsd"]
Precision = Literal["auto", "fp32", "bf16"]
Monitor = Literal["dev_loss", "dev_accuracy"]
Balance = Literal["none", "weights", "sampler"]
Resize = Literal["fit", "crop"]


Auto = Literal["auto"]


@dataclass
class CropConfig:
    scale: list[float] | None = None  # random resized crop: share of the image's area kept, [min, max], e.g. [0.6, 1.0]; null = off
    ratio: list[float] = field(default_factory=lambda: [0.75, 1.3333])  # range of the crop's width/height ratio

    def validate(self, where: str) -> None:
        s, r = self.scale, self.ratio
        require(s is None or (len(s) == 2 and 0 < s[0] <= s[1] <= 1), f"{where}.scale",
                "must be [min, max] with 0 < min <= max <= 1, or null")
        require(len(r) == 2 and 0 < r[0] <= r[1], f"{where}.ratio", "must be [min, max] with 0 < min <= max")


@dataclass
class JitterConfig:
    brightness: float = 0.0  # scale brightness by a random factor in [1 - b, 1 + b]
    contrast: float = 0.0  # scale contrast around the image's mean by a factor in [1 - c, 1 + c]
    saturation: float = 0.0  # scale saturation by a factor in [1 - s, 1 + s] (3-channel images only)

    def validate(self, where: str) -> None:
        for key in ("brightness", "contrast", "saturation"):
            require(0 <= getattr(self, key) <= 1, f"{where}.{key}", "must be in [0, 1]")

    @property
    def active(self) -> bool:
        return bool(self.brightness or self.contrast or self.saturation)


@dataclass
class AugmentConfig:
    hflip: bool | Auto = False  # mirror left-right with probability 0.5; auto: where the data set is mirror-symmetric
    alternate_flip: bool = False  # with hflip: flip each image on every other epoch instead of at random (airbench)
    translate: int = 0  # shift by up to this many pixels in x and y (zero padding)
    erase: float = 0.0  # probability of erasing one random rectangle (random erasing / cutout)
    crop: CropConfig = field(default_factory=CropConfig)  # random resized crops (photos; off: they can cut out what makes the class)
    color_jitter: JitterConfig = field(default_factory=JitterConfig)  # random brightness, contrast, saturation (photos; off by default)

    def validate(self, where: str) -> None:
        require(0 <= self.translate <= 8, f"{where}.translate", "must be between 0 and 8 pixels")
        require(0.0 <= self.erase <= 1.0, f"{where}.erase", "must be a probability in [0, 1]")

    @property
    def active(self) -> bool:
        return (self.hflip is True or self.translate > 0 or self.erase > 0
                or self.crop.scale is not None or self.color_jitter.active)


@dataclass
class TrainConfig:
    optimizer: Optimizer = "adam"  # sgd | adam | adamw | rmsprop
    lr: float = 1e-3  # (peak) learning rate
    momentum: float = 0.9  # SGD / RMSprop momentum
    nesterov: bool = False  # Nesterov momentum for SGD
    weight_decay: float = 0.0  # L2 (sgd/adam/rmsprop) or decoupled (adamw) weight decay
    batch_size: int = 32  # training batch size
    epochs: int = 10  # maximum number of epochs
    schedule: Schedule = "constant"  # constant | step | cosine | onecycle | triangular (linear up, linear down) | wsd (warm-up, stable, decay)
    step_size: int = 10  # epochs between lr drops (schedule: step)
    gamma: float = 0.1  # lr factor at each drop (schedule: step)
    warmup_frac: float = 0.25  # fraction of steps spent warming up (schedule: onecycle, triangular, wsd)
    cooldown_frac: float = 0.2  # fraction of steps spent decaying to zero at the end (schedule: wsd)
    patience: int | None = None  # early stopping: epochs without dev improvement; null = off
    min_delta: float = 0.0  # smallest change of the monitored value that counts as improvement
    monitor: Monitor = "dev_loss"  # what early stopping and the best checkpoint follow
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    balance: Balance = "none"  # unequal classes: none | weights (loss weights 1/frequency) | sampler (class-balanced batches)
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training-time augmentation
    tta: bool | Auto = False  # flip test-time augmentation at evaluation (image and mirror); auto: as hflip
    tta_translate: int = 0  # multi-crop TTA: also average views shifted by this many pixels (airbench: 1)
    ema: float = 0.0  # decay of a moving average of the weights, updated each step, evaluated and saved (0: off)
    norm_lr: float = 1.0  # learning-rate multiplier for BatchNorm weights and biases (airbench: 64)
    norm_weight_decay: bool = True  # weight decay on BatchNorm weights and biases too
    whiten: bool = False  # fix the first Conv2D to whiten image patches of the training data (airbench)
    dirac_init: bool = False  # each Conv2D's first in-channels filters start as the identity (airbench)
    compile: bool = False  # torch.compile the model for training (pays back only on long runs)
    seed: int = 0  # seed for weights, batch order and augmentation
    precision: Precision = "auto"  # auto | fp32 | bf16 (auto: bf16 where the hardware has it)
    eval_batch_size: int = 1000  # batch size for evaluation (no gradients)
    grad_norm_every: int = 25  # record per-layer gradient norms every N steps (0 = never)

    def validate(self, where: str) -> None:
        require(self.lr > 0, f"{where}.lr", f"must be > 0, got {self.lr}")
        require(0 <= self.momentum < 1, f"{where}.momentum", "must be in [0, 1)")
        require(self.weight_decay >= 0, f"{where}.weight_decay", "must be >= 0")
        require(self.batch_size >= 1, f"{where}.batch_size", "must be >= 1")
        require(self.epochs >= 1, f"{where}.epochs", "must be >= 1")
        require(self.step_size >= 1, f"{where}.step_size", "must be >= 1")
        require(0 < self.gamma <= 1, f"{where}.gamma", "must be in (0, 1]")
        require(0 < self.warmup_frac < 1, f"{where}.warmup_frac", "must be in (0, 1)")
        require(0 < self.cooldown_frac < 1, f"{where}.cooldown_frac", "must be in (0, 1)")
        require(self.schedule != "wsd" or self.warmup_frac + self.cooldown_frac <= 1 + 1e-9,
                f"{where}.cooldown_frac", "and warmup_frac must add up to at most 1 (schedule: wsd)")
        require(self.patience is None or self.patience >= 1, f"{where}.patience", "must be >= 1 or null")
        require(0 <= self.label_smoothing < 1, f"{where}.label_smoothing", "must be in [0, 1)")
        require(self.eval_batch_size >= 1, f"{where}.eval_batch_size", "must be >= 1")
        require(self.grad_norm_every >= 0, f"{where}.grad_norm_every", "must be >= 0")
        require(not self.nesterov or self.optimizer == "sgd", f"{where}.nesterov",
                "only applies to optimizer 'sgd'")
        require(0 <= self.tta_translate <= 4, f"{where}.tta_translate", "must be between 0 and 4 pixels")
        require(self.ema == 0 or 0.5 <= self.ema < 1, f"{where}.ema",
                f"must be 0 (off) or a decay in [0.5, 1), e.g. 0.999; got {self.ema}")
        require(self.norm_lr > 0, f"{where}.norm_lr", f"must be > 0, got {self.norm_lr}")


@dataclass
class DataConfig:
    dataset: str = "fashion-mnist"  # registered name, a .npz file or an image folder
    data_dir: str | None = None  # folder holding the data set's files (else ARCHTUNE_DATA / cache / download)
    dev_fraction: float = 0.2  # share of the training data held out as the dev set (stratified)
    split_seed: int = 0  # seed of the train/dev split
    train_subset: int | None = None  # use only this many training images (stratified), for quick runs
    standardize: bool = False  # subtract per-channel mean and divide by std (from the train split)
    image_size: list[int] | None = None  # [height, width] every image is resized to (image folders: default their one size, else the median capped at 128)
    channels: int | None = None  # 1 or 3 for image folders (default: 1 if all grey, else 3)
    resize: Resize = "fit"  # image folders, predict and serve: fit (keep aspect, pad) | crop (cover, keep the centre)
    skip_bad_files: bool = False  # image folders: leave out unreadable files (counted in the run) instead of failing

    def validate(self, where: str) -> None:
        require(0 < self.dev_fraction < 1, f"{where}.dev_fraction", "must be in (0, 1)")
        require(self.train_subset is None or self.train_subset >= 1, f"{where}.train_subset",
                "must be >= 1")
        require(self.image_size is None or (len(self.image_size) == 2 and min(self.image_size) > 0),
                f"{where}.image_size", "must be [height, width] with positive values")
        require(self.channels in (None, 1, 3), f"{where}.channels", "must be 1 or 3")


def train_config(data: dict[str, Any] | None, where: str = "train") -> TrainConfig:
    return from_dict(TrainConfig, data, where)


def data_config(data: dict[str, Any] | None, where: str = "data") -> DataConfig:
    return from_dict(DataConfig, data, where)


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)
