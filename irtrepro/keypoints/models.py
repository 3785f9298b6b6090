"""Keypoint networks: encoders (ViT-like, CNN, MobileNetV3-Small), the classic decoder, counts.

A model is ``encoder -> latent (C, H/16, W/16) -> decoder -> 17 heatmaps (H/4, W/4)``. The
classic decoder of SimpleBaseline/ViTPose is two 4x4 stride-2 transposed convolutions (256
channels, BatchNorm, ReLU) and a 1x1 convolution to the heatmaps; ``deconv_ch`` makes the width
configurable (the default report configuration uses fewer channels to fit two CPU cores, see
``docs/keypoints.md``). The student encoders end in an adapter (3x3 conv) that maps their
stride-16 features to the teacher's latent channels, so the frozen teacher decoder can read them.

Torch is imported here; :mod:`irtrepro.keypoints` imports this module lazily.
"""

from __future__ import annotations

import torch
from torch import nn

N_KEYPOINTS = 17


class ClassicDecoder(nn.Module):
    """Two deconv(4x4, stride 2) + BN + ReLU, then 1x1 conv to ``n_keypoints`` heatmaps."""

    def __init__(self, in_ch: int, deconv_ch: int = 256, n_keypoints: int = N_KEYPOINTS):
        super().__init__()
        layers = []
        c = in_ch
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, deconv_ch, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(deconv_ch), nn.ReLU(inplace=True)]
            c = deconv_ch
        self.layers = nn.Sequential(*layers)
        self.final = nn.Conv2d(deconv_ch, n_keypoints, 1)

    def forward(self, z):
        return self.final(self.layers(z))


def _cbr(i, o, s=1):
    return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))


class CNNEncoder(nn.Module):
    """A small ResNet-free VGG-style CNN, output stride 16, ``latent_ch`` channels."""

    def __init__(self, in_ch: int = 3, latent_ch: int = 96, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _cbr(in_ch, w, 2), _cbr(w, w),
            _cbr(w, 2 * w, 2), _cbr(2 * w, 2 * w),
            _cbr(2 * w, 3 * w, 2), _cbr(3 * w, 3 * w),
            _cbr(3 * w, 4 * w, 2), _cbr(4 * w, 4 * w),
            nn.Conv2d(4 * w, latent_ch, 1),
        )

    def forward(self, x):
        return self.body(x)


class ViTEncoder(nn.Module):
    """ViT-like encoder (ViTPose backbone in miniature): 16x16 patches, ``depth`` pre-norm
    transformer blocks, learned position embedding (interpolated for other input sizes), tokens
    reshaped to a stride-16 map of ``latent_ch`` channels."""

    def __init__(self, in_ch: int = 3, latent_ch: int = 96, dim: int = 96, depth: int = 4,
                 heads: int = 3, grid_hw: tuple[int, int] = (8, 6)):
        super().__init__()
        self.patch = nn.Conv2d(in_ch, dim, 16, 16)
        self.pos = nn.Parameter(torch.zeros(1, dim, *grid_hw))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Conv2d(dim, latent_ch, 1)

    def forward(self, x):
        t = self.patch(x)
        b, c, h, w = t.shape
        pos = self.pos
        if pos.shape[-2:] != (h, w):
            pos = nn.functional.interpolate(pos, size=(h, w), mode="bilinear", align_corners=False)
        t = (t + pos).flatten(2).transpose(1, 2)
        t = self.norm(self.blocks(t))
        return self.out(t.transpose(1, 2).reshape(b, c, h, w))


class MobileNetV3Encoder(nn.Module):
    """timm ``mobilenetv3_small_100`` (``pretrained=False``), stride-16 features (48 channels)
    plus a 3x3 conv adapter to ``latent_ch`` channels."""

    def __init__(self, in_ch: int = 1, latent_ch: int = 96):
        super().__init__()
        import timm

        self.backbone = timm.create_model("mobilenetv3_small_100", pretrained=False,
                                          features_only=True, out_indices=(3,), in_chans=in_ch)
        c = self.backbone.feature_info.channels()[-1]
        self.adapter = nn.Sequential(_cbr(c, latent_ch), nn.Conv2d(latent_ch, latent_ch, 1))

    def forward(self, x):
        return self.adapter(self.backbone(x)[-1])


ENCODERS = ("vit", "cnn", "mobilenetv3")


def build_encoder(kind: str, *, in_ch: int, latent_ch: int, crop_hw: tuple[int, int]) -> nn.Module:
    """Encoder ``kind`` in :data:`ENCODERS` for ``in_ch`` input channels."""
    from irtrepro.errors import check_option

    check_option("encoder", kind, ENCODERS)
    if kind == "vit":
        return ViTEncoder(in_ch, latent_ch, grid_hw=(crop_hw[0] // 16, crop_hw[1] // 16))
    if kind == "cnn":
        return CNNEncoder(in_ch, latent_ch)
    return MobileNetV3Encoder(in_ch, latent_ch)


class PoseNet(nn.Module):
    """Encoder + decoder; ``forward`` returns ``(latent, heatmaps)``."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, x):
        z = self.encoder(x)
        return z, self.decoder(z)


def build_posenet(kind: str, *, in_ch: int, latent_ch: int = 96, deconv_ch: int = 256,
                  crop_hw: tuple[int, int] = (256, 192)) -> PoseNet:
    """A full model: encoder ``kind`` + :class:`ClassicDecoder`."""
    return PoseNet(build_encoder(kind, in_ch=in_ch, latent_ch=latent_ch, crop_hw=crop_hw),
                   ClassicDecoder(latent_ch, deconv_ch))


class ConstantPose(nn.Module):
    """The floor every keypoint model must clear: the same heatmaps for every crop.

    The heatmaps are the mean of the training targets, so the decoded pose is the mean pose of
    the training subjects placed in each detection window. Since the window follows the
    detected person, this already scores well on upright running (everyone looks alike from
    behind); what a model adds is measured against it.

    Parameters
    ----------
    heatmaps : torch.Tensor
        Training target heatmaps ``(n, 17, h, w)`` (heatmap px); their mean is the output.
    """

    def __init__(self, heatmaps: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", heatmaps.float().mean(0, keepdim=True))

    def forward(self, x):
        return None, self.mean.expand(len(x), *self.mean.shape[1:])


def count_params(module: nn.Module) -> int:
    """Number of parameters."""
    return int(sum(p.numel() for p in module.parameters()))


def count_flops(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on a zero input of ``input_shape`` (batch included), counted by
    :class:`torch.utils.flop_counter.FlopCounterMode` (a multiply-add counts as 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    was = module.training
    module.eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(torch.zeros(input_shape))
    module.train(was)
    return int(counter.get_total_flops())
