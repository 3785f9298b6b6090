"""Networks of the breathing pipeline (torch is imported inside the functions).

- ``cnn``: a plain 3-block CNN (16-32-64 channels), the "plain CNN" row, trained from scratch.
- ``source``: a ResNet-10 (timm ``ResNet`` with BasicBlocks [1, 1, 1, 1], channels
  24-48-96-192, ``pretrained=False``, 3x3 stride-1 stem for small images), pretrained by :func:`irtrepro.breathing.train.
  pretrain_rotation` (self-supervised rotation prediction, see docs/breathing.md).
- ``target``: the small network distilled from it: the same family at half width
  (12-24-48-96 channels).

Every model maps ``(n, c, rows, cols)`` to logits ``(n, n_classes)`` and exposes
``embed(x) -> (n, d)`` (the pooled features) and ``stages()`` (parameter groups from the head
down to the stem, for gradual unfreezing).
"""

from __future__ import annotations

__all__ = ["build_model", "ARCHS"]

ARCHS = ("cnn", "source", "target")


def build_model(arch: str, in_chans: int, n_classes: int = 2):
    """Build one of :data:`ARCHS` with weights initialised at random (nothing downloaded)."""
    import torch
    from torch import nn

    from irtrepro.errors import check_option

    check_option("arch", arch, ARCHS)

    class Net(nn.Module):
        def __init__(self, body: nn.Module, dim: int, groups: list[list[nn.Module]]):
            super().__init__()
            self.body = body
            self.head = nn.Linear(dim, n_classes)
            self._groups = groups
            self.dim = dim

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

        def stages(self) -> list[list[nn.Parameter]]:
            """Parameter groups, head first, stem last."""
            out = [list(self.head.parameters())]
            for mods in self._groups:
                out.append([p for m in mods for p in m.parameters()])
            return out

    if arch == "cnn":
        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o),
                                 nn.ReLU(inplace=True), nn.MaxPool2d(2))
        b1, b2, b3 = block(in_chans, 16), block(16, 32), block(32, 64)
        body = nn.Sequential(b1, b2, b3, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return Net(body, 64, [[b3], [b2], [b1]])

    from timm.models.resnet import BasicBlock, ResNet

    ch = (24, 48, 96, 192) if arch == "source" else (12, 24, 48, 96)
    r = ResNet(BasicBlock, (1, 1, 1, 1), num_classes=0, in_chans=in_chans, channels=ch,
               stem_width=ch[0])
    r.bn1 = nn.BatchNorm2d(ch[0])
    r.inplanes = ch[0]
    r.layer1 = r.layer1.__class__(BasicBlock(ch[0], ch[0]))
    # small-image stem: a 3x3 stride-1 convolution (then the 2x2 max-pool) keeps the 1-2 px
    # nostrils; the 7x7 stride-2 ImageNet stem would blur them away
    r.conv1 = nn.Conv2d(in_chans, r.bn1.num_features, 3, stride=1, padding=1, bias=False)
    body = nn.Sequential(r, nn.Flatten())
    stem = [r.conv1, r.bn1]
    return Net(body, ch[-1], [[r.layer4], [r.layer3], [r.layer2], [r.layer1] + stem])
