"""The lens finder: torchvision ConvNeXt-Tiny on 3x64x64 stamps + a metadata fusion head.

Stem choice. torchvision's ConvNeXt stem is a 4x4 stride-4 "patchify" convolution, built for
224 px ImageNet images: a 64 px stamp becomes 16x16 after the stem and 2x2 after the last
stage. Arcs of theta_E = 0.5-2.5 arcsec sit 2-10 pixels from the centre (0.262 "/pixel) and are
about a PSF FWHM (4-6 pixels) wide, so a 4x4 patch mixes the smallest rings with the lens core
in the very first layer. The default stem ``patch2`` (2x2 stride 2) keeps twice the linear
resolution: 32x32 after the stem, 4x4 at the last stage, at 4x the compute of ``patch4``
(measured on 2 CPU cores: ~12 vs ~37 training images/s at batch 32). ``patch4`` is kept for
speed and for loading ImageNet weights unchanged.

Head (``MetaFusionHead``): the backbone's pooled, layer-normalised 768 features are
concatenated with an MLP embedding of the standardised metadata (default ``psf_fwhm_r``,
``psfdepth_r``: seeing and depth change what an arc looks like), then an MLP gives one logit.

Pretrained weights come only from a local file (``train.pretrained_weights``): a torchvision
``convnext_tiny`` state dict (ImageNet); the classifier is dropped, and for ``patch2`` the 4x4
stem kernel is summed over 2x2 blocks into a 2x2 kernel (same response to smooth input).
Nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import convnext_tiny

from ..config import TrainConfig
from ..errors import ConfigError, DataFileError

FEATURES = 768  # ConvNeXt-Tiny's last-stage width


class MetaFusionHead(nn.Module):
    """Image features [N, 768] + metadata [N, F] -> one logit [N]."""

    def __init__(self, n_features: int, n_meta: int, meta_dim: int = 32, hidden: int = 256, dropout: float = 0.2) -> None:
        super().__init__()
        self.n_meta = n_meta
        self.meta = nn.Sequential(nn.Linear(n_meta, meta_dim), nn.GELU(), nn.Linear(meta_dim, meta_dim), nn.GELU()) if n_meta else None
        self.mlp = nn.Sequential(
            nn.Linear(n_features + (meta_dim if n_meta else 0), hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
        )

    def forward(self, feats: torch.Tensor, meta: torch.Tensor | None) -> torch.Tensor:
        if self.meta is not None:
            if meta is None or meta.shape[-1] != self.n_meta:
                raise ConfigError(f"model expects {self.n_meta} metadata features, got {None if meta is None else meta.shape[-1]}", field="train.metadata_features")
            feats = torch.cat([feats, self.meta(meta.to(feats.dtype))], dim=1)
        return self.mlp(feats).squeeze(1)


class LensFinder(nn.Module):
    """ConvNeXt-Tiny backbone (adapted stem) + :class:`MetaFusionHead`; ``forward`` gives logits [N]."""

    def __init__(self, n_meta: int, in_channels: int = 3, stem: str = "patch2", drop_path: float = 0.1) -> None:
        super().__init__()
        if stem not in ("patch2", "patch4"):
            raise ConfigError(f"unknown stem {stem!r}; use 'patch2' or 'patch4'", field="train.stem")
        net = convnext_tiny(weights=None, stochastic_depth_prob=drop_path)
        k = 2 if stem == "patch2" else 4
        net.features[0][0] = nn.Conv2d(in_channels, 96, kernel_size=k, stride=k)
        self.features = net.features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.norm = net.classifier[0]  # LayerNorm2d(768)
        self.head = MetaFusionHead(FEATURES, n_meta)
        self.stem, self.n_meta, self.in_channels = stem, n_meta, in_channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled, normalised backbone features [N, 768] of images [N, C, H, W]."""
        return torch.flatten(self.norm(self.pool(self.features(x))), 1)

    def forward(self, x: torch.Tensor, meta: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.embed(x), meta)


def load_pretrained(model: LensFinder, path: str | Path) -> list[str]:
    """Load torchvision ConvNeXt-Tiny weights from a local file into ``model``'s backbone.

    Returns the names of backbone parameters left at their initial values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"pretrained weights file not found: {path}", path=str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or pickled file
        raise DataFileError(f"cannot read pretrained weights {path}: {exc}", path=str(path)) from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    ours = {}
    for name, value in state.items():
        if name.startswith("features."):
            ours[name] = value
        elif name.startswith("classifier.0."):
            ours["norm." + name[len("classifier.0."):]] = value
    stem_w = "features.0.0.weight"
    if stem_w in ours:
        w = ours[stem_w]
        target = model.features[0][0].weight
        if w.shape[1] != target.shape[1]:
            raise DataFileError(f"pretrained stem has {w.shape[1]} input channels, model has {target.shape[1]}", path=str(path))
        if w.shape[-1] == 4 and target.shape[-1] == 2:  # 4x4 patch -> 2x2: sum 2x2 blocks
            ours[stem_w] = w.reshape(w.shape[0], w.shape[1], 2, 2, 2, 2).sum(dim=(3, 5))
    missing, unexpected = model.load_state_dict(ours, strict=False)
    if unexpected:
        raise DataFileError(f"pretrained weights have parameters the model lacks: {unexpected[:5]}", path=str(path))
    return [m for m in missing if not m.startswith("head.")]


def build_model(tcfg: TrainConfig, n_meta: int | None = None, in_channels: int = 3) -> LensFinder:
    """The model described by the ``train`` config (pretrained weights loaded when configured)."""
    n_meta = len(tcfg.metadata_features) if n_meta is None else n_meta
    model = LensFinder(n_meta, in_channels=in_channels, stem=tcfg.stem, drop_path=tcfg.drop_path)
    if tcfg.pretrained_weights:
        load_pretrained(model, tcfg.pretrained_weights)
    return model
