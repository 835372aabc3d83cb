"""Benchmark models with random weights, defined here (no downloads, no torchvision).

    infertool convert benchmarks/models.py:resnet50 --input-shape 1x3x224x224 -o resnet50.onnx
    infertool convert benchmarks/models.py:bert_base --input-shape input_ids:1x128 --input-shape attention_mask:1x128 \\
        --dtype int64 --dynamic-axis input_ids:1:seq --dynamic-axis attention_mask:1:seq -o bert.onnx
"""

import math

import torch
from torch import nn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet50(nn.Module):
    """The ResNet-50 v1.5 layout: stem, bottleneck stages [3, 4, 6, 3], 1000 classes."""

    def __init__(self, classes: int = 1000, stages: tuple[int, ...] = (3, 4, 6, 3), base: int = 64):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, base, 7, 2, 3, bias=False), nn.BatchNorm2d(base), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        cin = base
        for stage, blocks in enumerate(stages):
            width, stride = base * 2**stage, 1 if stage == 0 else 2
            for index in range(blocks):
                layers.append(Bottleneck(cin, width, stride if index == 0 else 1))
                cin = width * Bottleneck.expansion
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(image), 1), 1))


class BertLayer(nn.Module):
    """Hugging Face's BERT layer as written there (separate query / key / value projections): the
    pattern ONNX Runtime's transformer optimizer fuses into Attention on a TorchScript export."""

    def __init__(self, hidden: int, heads: int, intermediate: int):
        super().__init__()
        self.heads, self.size = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(hidden, intermediate), nn.GELU(), nn.Linear(intermediate, hidden))
        self.norm2 = nn.LayerNorm(hidden, eps=1e-12)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.size(0), x.size(1), self.heads, self.size).permute(0, 2, 1, 3)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.size) + bias
        context = torch.matmul(scores.softmax(-1), v).permute(0, 2, 1, 3).contiguous()
        context = context.view(context.size(0), context.size(1), -1)
        x = self.norm1(self.out(context) + x)
        return self.norm2(self.ffn(x) + x)


class BertBase(nn.Module):
    """BERT-base shapes: 12 layers, hidden 768, 12 heads, FFN 3072, vocab 30522; a 2-class head on [CLS]."""

    def __init__(self, vocab: int = 30522, hidden: int = 768, layers: int = 12, heads: int = 12, intermediate: int = 3072):
        super().__init__()
        self.tokens = nn.Embedding(vocab, hidden)
        self.positions = nn.Embedding(512, hidden)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))
        self.classifier = nn.Linear(hidden, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.norm(self.tokens(input_ids) + self.positions(positions))
        bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * -10000.0  # Hugging Face's extended mask
        for layer in self.layers:
            x = layer(x, bias)
        return self.classifier(x[:, 0])


def resnet50(**shape) -> nn.Module:
    torch.manual_seed(0)
    model = ResNet50(**shape).eval()
    for module in model.modules():  # torchvision's initialization keeps activations O(1)
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return model


def bert_base(**shape) -> nn.Module:
    torch.manual_seed(0)
    model = BertBase(**shape).eval()
    for module in model.modules():  # BERT's initializer range keeps activations sane
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
    return model


def resnet_tiny() -> nn.Module:
    """ResNet-50's layout shrunk (gpu_evidence.sh --smoke: the script's plumbing on a CPU)."""
    return resnet50(classes=10, stages=(1, 1), base=8)


def bert_tiny() -> nn.Module:
    """BERT-base's layout shrunk (gpu_evidence.sh --smoke)."""
    return bert_base(vocab=1000, hidden=32, layers=2, heads=2, intermediate=64)
