"""The bundled example: a small image classifier (random weights, 3x64x64 input, 10 classes).

    infertool convert examples/tiny_cnn.py:build --input-shape 1x3x64x64 -o build/tiny_cnn.onnx
"""

import torch
from torch import nn


class TinyCNN(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(
            block(3, 16), nn.MaxPool2d(2), block(16, 32), nn.MaxPool2d(2), block(32, 64), block(64, 64),
        )
        self.head = nn.Linear(64, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).mean(dim=(2, 3)))


def build() -> nn.Module:
    torch.manual_seed(0)
    return TinyCNN().eval()
