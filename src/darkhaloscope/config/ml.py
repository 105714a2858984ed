"""Config section of training."""

from __future__ import annotations

from dataclasses import dataclass

from .fields import param


@dataclass(frozen=True)
class TrainConfig:
    """PyTorch training (ConvNeXt-Tiny + metadata head)."""

    epochs: int = param(10, "Training epochs.", "count", ge=1)
    batch_size: int = param(256, "Batch size.", "count", ge=1)
    lr: float = param(3e-4, "Peak AdamW learning rate.", "1/step", gt=0.0)
    weight_decay: float = param(0.05, "AdamW weight decay.", "", ge=0.0)
    warmup_epochs: float = param(1.0, "Linear warm-up before the cosine schedule.", "epoch", ge=0.0)
    loss: str = param("bce", "Loss function.", "", choices=("bce", "focal"))
    focal_gamma: float = param(2.0, "Focal-loss gamma.", "", ge=0.0)
    normalization: str = param("outer_mad", "Stamp normalisation (see ml/normalize.py).", "", choices=("outer_mad", "asinh_outer", "per_band_zscore"))
    norm_clip: float = param(10.0, "Clip of normalised pixel values.", "sigma", gt=0.0)
    metadata_features: list = param(["psf_fwhm_r", "psfdepth_r"], "Row columns fed to the metadata head (standardised on train).", "")
    arc_snr_min: float = param(0.0, "Keep injections with arc_snr >= this (0 = no filter).", "", ge=0.0)
    theta_e_over_psf_min: float = param(0.0, "Keep injections with theta_e / psf_fwhm_r >= this (0 = no filter).", "", ge=0.0)
    max_rows_per_split: int = param(0, "Use at most this many rows per split (0 = all).", "count", ge=0)
    num_workers: int = param(2, "DataLoader workers.", "count", ge=0, le=64)
    select_metric: str = param("tpr_at_fpr_1e-3", "Validation metric that picks the best checkpoint.", "", choices=("auc", "tpr_at_fpr_1e-2", "tpr_at_fpr_1e-3", "tpr_at_fpr_1e-4", "loss"))
    pretrained_weights: str = param("", "Local file of ConvNeXt-Tiny weights (never downloaded in tests).", "path")
    stem: str = param("patch2", "ConvNeXt stem for 64x64 inputs: 'patch2' (2x2 stride 2) or 'patch4' (torchvision's).", "", choices=("patch2", "patch4"))
    augment: bool = param(True, "rot90/flip augmentation.", "")
    amp_bf16: bool = param(True, "bf16 autocast on CUDA.", "")
    arc_snr_max: float = param(0.0, "Keep injections with arc_snr <= this (0 = no filter).", "", ge=0.0)
    focal_alpha: float = param(-1.0, "Focal-loss positive-class weight alpha (torchvision sigmoid_focal_loss; < 0 = unweighted).", "", le=1.0)
    shuffle_block_rows: int = param(4096, "Rows from several row groups shuffled together in each loader worker.", "count", ge=1)
    drop_path: float = param(0.1, "ConvNeXt stochastic-depth rate.", "fraction", ge=0.0, lt=1.0)
    grad_clip: float = param(1.0, "Clip the gradient norm at this (0 = off).", "", ge=0.0)
    eval_bootstrap: int = param(200, "Stratified bootstrap resamples for evaluation intervals.", "count", ge=0)
    role_weights: dict = param({}, "Per-role weight of a row in the training loss (a sampling weight in expectation), e.g. {ring: 2.0}; roles not listed weigh 1; weight 0: the role's rows add nothing to the loss.", "weight")
    accepted_only: bool = param(True, "Drop injections with accepted = false and, per host PSF/depth bin, the same share of controls (so selection never becomes a label).", "")
    selection_bins: int = param(4, "Quantile bins per axis (psf_fwhm_r, psfdepth_r) of the matched control drop.", "count", ge=1, le=20)
    val_split: str = param("val", "Split used to pick the best checkpoint.", "", choices=("val", "test", "train"))
