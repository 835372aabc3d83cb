"""Small PyTorch models the tests export (referenced as tests/models.py:<factory>)."""

from dataclasses import dataclass

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
