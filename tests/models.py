"""Small PyTorch models the tests export (referenced as tests/models.py:<factory>)."""

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(16, 5)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(image).mean(dim=(2, 3)))


class TokenTagger(nn.Module):
    """Two inputs (token ids and a mask) with a dynamic sequence axis; two outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.proj = nn.Linear(16, 4)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> dict:
        hidden = self.embed(input_ids) * mask.unsqueeze(-1)
        pooled = hidden.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return {"tags": self.proj(hidden), "pooled": pooled}


class Encoder(nn.Module):
    """A small transformer encoder over embedded token ids."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        layer = nn.TransformerEncoderLayer(32, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.classifier = nn.Linear(32, 3)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.encoder(self.embed(input_ids)).mean(1))


class Drifting(nn.Module):
    """Returns something different on every call: the export bakes in one value, so parity fails."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return x * float(self.calls)


def cnn() -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN().eval()


def tagger() -> nn.Module:
    torch.manual_seed(0)
    return TokenTagger().eval()


def encoder() -> nn.Module:
    torch.manual_seed(0)
    return Encoder().eval()


def drifting() -> nn.Module:
    return Drifting()


def broken() -> nn.Module:
    raise RuntimeError("weights are missing")


def not_a_module() -> str:
    return "hello"


class FixedLength(nn.Module):
    """Reshapes to a hard-coded 16 x 8: its code fixes the sequence length at 16."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(100, 8)
        self.head = nn.Linear(16 * 8, 4)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(input_ids)
        return self.head(x.reshape(x.shape[0], 16 * 8))


class LengthScaled(nn.Module):
    """Divides by the sequence length as a Python float: tracing bakes the traced length in."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1) / float(x.shape[1])


class Untrained(nn.Module):
    """Zero weights: the output is the bias whatever the input, so parity with it proves nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(6, 3)
        nn.init.zeros_(self.head.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(x), dim=1)


def fixed_length() -> nn.Module:
    torch.manual_seed(0)
    return FixedLength().eval()


def length_scaled() -> nn.Module:
    return LengthScaled().eval()


def untrained() -> nn.Module:
    torch.manual_seed(0)
    return Untrained().eval()


@torch.jit.script
def _gate(x: torch.Tensor) -> torch.Tensor:
    """Data-dependent control flow: scripted, the TorchScript exporter writes it as an If."""
    if bool(x.mean() > 0):
        scale = torch.sigmoid(x.sum(dim=1, keepdim=True))
        return torch.relu(x) * scale
    return torch.tanh(x) - x.pow(2).mean()


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second = nn.Linear(16, 32), nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.first(x)
        return self.second(_gate(hidden) + hidden)


def gated() -> nn.Module:
    torch.manual_seed(0)
    return Gated().eval()


@dataclass(frozen=True)
class Widths:
    """A config dataclass in the factory's file: dataclasses look their module up in sys.modules."""

    hidden: "int" = 8  # a string annotation, as under `from __future__ import annotations`


def configured() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, Widths().hidden), nn.ReLU())


class PairEncoder(nn.Module):
    """RAFT's pattern: both images through one encoder as one batch, then split apart. torch.export
    guards the split on the batch size and specializes it; the model works at every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        first, second = self.encoder(torch.cat([image1, image2], dim=0)).chunk(2, dim=0)
        return (first * second).mean(1)


def pair_encoder() -> nn.Module:
    torch.manual_seed(0)
    return PairEncoder().eval()


class HugeLogits(nn.Module):
    """Inception-v3 / MobileOne with random weights: logits near 1e9, where fp32's rounding alone
    (ONNX Runtime's kernels against torch's) is thousands in absolute terms."""

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 32, 64, 64, 64, 64)
        self.body = nn.Sequential(*(layer for cin, cout in pairwise(widths) for layer in (nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout))))
        self.head = nn.Linear(64, 1000)
        with torch.no_grad():
            for norm in self.body[1::2]:
                norm.weight.mul_(60.0)  # no non-linearity: the logits keep their signs mixed, some near 0
            self.head.weight.mul_(100.0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(image).mean(dim=(2, 3)))


class PixelBoxes(nn.Module):
    """A box head in pixels: corners in the hundreds, and boxes touching the image's edges whose
    corners (near 0) are differences of values near 1000 from two regression outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*(layer for cin in (3, 32, 32, 32) for layer in (nn.Conv2d(cin, 32, 3, padding=1), nn.BatchNorm2d(32))))
        self.regress = nn.Linear(32, 4 * 100)
        with torch.no_grad():  # the half sizes' rows are the centres' less a hair: edge-touching boxes
            self.regress.weight[200:] = self.regress.weight[:200]
            self.regress.bias[200:] = self.regress.bias[:200] - 1e-4

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        boxes = torch.sigmoid(self.regress(self.features(image).mean(dim=(2, 3)))) * 1333.0
        centre, half = boxes[:, :200], boxes[:, 200:]
        return torch.cat([centre - half, centre + half], dim=-1).reshape(-1, 100, 4)


def huge_logits() -> nn.Module:
    torch.manual_seed(0)
    return HugeLogits().eval()


def pixel_boxes() -> nn.Module:
    torch.manual_seed(0)
    return PixelBoxes().eval()


class Noisy(nn.Module):
    """Adds fresh noise on every call (as dropout left in training mode does): no export can agree."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.rand_like(x)


def noisy() -> nn.Module:
    return Noisy()


class Positives(nn.Module):
    """Returns the positive values of its input: how many depends on the data, not on the shape."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[x > 0] * 2.0


def positives() -> nn.Module:
    return Positives()


class TiedDetections(nn.Module):
    """A detector's tail: each score is there twice (two anchors, one object), the candidates above a
    threshold ranked by top-k, boxes and labels gathered in that order. torch.topk and ONNX Runtime's
    TopK rank tied scores in different orders, so rows of equal score come out swapped. `wrong_row`:
    the export moves one box (a true disagreement that no order of rows explains)."""

    def __init__(self, wrong_row: bool = False) -> None:
        super().__init__()
        self.wrong_row = wrong_row

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        scores = torch.sigmoid(torch.cat([x[0], x[0]]))
        boxes = torch.stack([torch.arange(scores.shape[0], dtype=x.dtype), scores, 2 * scores, 3 * scores], dim=1) * 10.0
        labels = (torch.cat([x[0], x[0]]) > 0).long()
        keep = torch.nonzero(scores > 0.2)[:, 0]
        top, order = scores[keep].topk(keep.shape[0])
        chosen = keep[order]
        boxes = boxes[chosen]
        if self.wrong_row and torch.onnx.is_in_onnx_export():
            boxes = boxes + (torch.arange(boxes.shape[0]) == 0).to(x.dtype)[:, None] * 5.0
        return boxes, top, labels[chosen]


def tied_detections() -> nn.Module:
    return TiedDetections()


def tied_detections_wrong_row() -> nn.Module:
    return TiedDetections(wrong_row=True)


class KeptBoxes(nn.Module):
    """Boxes whose score passes a threshold, as torchvision's detectors clip them: corners (k, 2, 2)
    reshaped to (k, -1). Where nothing passes, k is 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corners = torch.stack([x[0], 2 * x[0], 3 * x[0], 4 * x[0]], dim=1).reshape(-1, 2, 2)
        kept = corners[torch.sigmoid(x[0]) > 0.5]
        return kept.reshape(kept.shape[0], -1)


def kept_boxes() -> nn.Module:
    return KeptBoxes()


class TokenRows(nn.Module):
    """Every token of every sequence as one row: axis 0 of the output is batch x seq, not the batch."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(tokens).reshape(-1, 8)


def token_rows() -> nn.Module:
    torch.manual_seed(0)
    return TokenRows().eval()
