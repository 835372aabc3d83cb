"""The zoo's architectures, built from code with random weights (no downloads).

Each entry names how to build the model, its inputs and the `infertool convert` options it needs.
PyTorch entries are factories infertool converts directly (`benchmarks/zoo_models.py:resnet18`);
Keras entries are saved to a `.keras` file first. Detection models go through `Detections`, the
wrapper the README documents: one image in, named tensors out, static batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Arch:
    name: str
    family: str  # classifier, detector, segmenter, video, flow, nlp, vision-transformer, speech, keras, control-flow
    framework: str  # pytorch | keras
    build: Callable[[], object]
    inputs: dict[str, tuple[tuple[int, ...], str]]  # name -> (shape, dtype)
    flags: tuple[str, ...] = ()  # extra `infertool convert` options
    fast: bool = False  # in the `make test` subset
    needs: tuple[str, ...] = field(default=())  # importable packages it needs


def image(size: int = 224, batch: int = 1, channels: int = 3, name: str = "x") -> dict:
    return {name: ((batch, channels, size, size), "float32")}


def tokens(*names: str, length: int = 16) -> dict:
    return dict.fromkeys(names, ((1, length), "int64"))


SEQ = ("--int-range", "0:100")


def _seq_axes(*names: str) -> tuple[str, ...]:
    return tuple(flag for name in names for flag in ("--dynamic-axis", f"{name}:1:seq"))


# --- torchvision --------------------------------------------------------------------------------------

def _tv(name: str, **kwargs) -> Callable[[], object]:
    def build():
        import torch
        import torchvision

        torch.manual_seed(0)
        return torchvision.models.get_model(name, weights=None, **kwargs).eval()
    return build


def detections(name: str, outputs: tuple[str, ...], **kwargs) -> Callable[[], object]:
    """A torchvision detector behind the README's wrapper: a (1, 3, H, W) image in, named outputs."""
    def build():
        import torch
        import torchvision

        class Detections(torch.nn.Module):
            def __init__(self, detector: torch.nn.Module, names: tuple[str, ...]) -> None:
                super().__init__()
                self.detector, self.names = detector.eval(), names

            def forward(self, image: torch.Tensor) -> dict:
                found = self.detector(list(image))[0]  # a list of images in, a list of dicts out
                return {name: found[name] for name in self.names}

        torch.manual_seed(0)
        model = torchvision.models.get_model(name, weights=None, weights_backbone=None, **kwargs)
        return Detections(model, outputs).eval()
    return build


def raft_small() -> object:
    """RAFT returns its list of refinements; the last one is the flow."""
    import torch
    import torchvision

    class LastFlow(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.raft = torchvision.models.optical_flow.raft_small(weights=None).eval()

        def forward(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
            return self.raft(image1, image2, num_flow_updates=4)[-1]

    torch.manual_seed(0)
    return LastFlow().eval()


# --- transformers -------------------------------------------------------------------------------------

def _hf(model_class: str, config_class: str, **config) -> Callable[[], object]:
    def build():
        import torch
        import transformers

        torch.manual_seed(0)
        settings = {"use_cache": False, "return_dict": True, **config}
        model = getattr(transformers, model_class)(getattr(transformers, config_class)(**settings))
        return model.eval()
    return build


def _seq2seq(encoder_input: str, model_class: str, config_class: str, **config) -> Callable[[], object]:
    """An encoder-decoder behind a wrapper taking (encoder input, decoder_input_ids): its forward()
    puts attention_mask second, which generated inputs would fill with noise."""
    def build():
        import torch

        class EncoderDecoder(torch.nn.Module):
            def __init__(self, model: torch.nn.Module) -> None:
                super().__init__()
                self.model = model

            def forward(self, encoder_input: torch.Tensor, decoder_input_ids: torch.Tensor) -> torch.Tensor:
                return self.model(**{encoder_input_name: encoder_input, "decoder_input_ids": decoder_input_ids}).logits

        encoder_input_name = encoder_input
        return EncoderDecoder(_hf(model_class, config_class, **config)()).eval()
    return build


SMALL_LM = {"vocab_size": 100, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "max_position_embeddings": 64}


def clip() -> object:
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config={"vocab_size": 100, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 32},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    return transformers.CLIPModel(config).eval()


def detr() -> object:
    import torch
    import transformers

    torch.manual_seed(0)
    backbone = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1], out_features=["stage4"])
    config = transformers.DetrConfig(
        use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False, num_queries=10, d_model=32,
        encoder_layers=1, decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
    )
    return transformers.DetrForObjectDetection(config).eval()


# --- timm ---------------------------------------------------------------------------------------------

def _timm(name: str) -> Callable[[], object]:
    def build():
        import timm
        import torch

        torch.manual_seed(0)
        return timm.create_model(name, pretrained=False).eval()
    return build


# --- hand-made PyTorch --------------------------------------------------------------------------------

def gated() -> object:
    """Data-dependent control flow, scripted: the TorchScript exporter turns it into an If."""
    import torch

    @torch.jit.script
    def gate(x: torch.Tensor) -> torch.Tensor:
        if bool(x.mean() > 0):
            return torch.relu(x) * 2.0
        return torch.tanh(x) - 1.0

    class Gated(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first, self.second = torch.nn.Linear(16, 32), torch.nn.Linear(32, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(gate(self.first(x)))

    torch.manual_seed(0)
    return Gated().eval()


# --- Keras --------------------------------------------------------------------------------------------

def _keras_app(name: str, size: int = 96, **kwargs) -> Callable[[], object]:
    def build():
        import keras

        keras.utils.set_random_seed(0)
        return getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), **kwargs)
    return build


def keras_lstm() -> object:
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((12, 8), name="sequence")
    return keras.Model(x, keras.layers.Dense(3)(keras.layers.LSTM(16)(x)))


def keras_two_inputs() -> object:
    import keras

    keras.utils.set_random_seed(0)
    a, b = keras.Input((10,), name="left"), keras.Input((6,), name="right")
    merged = keras.layers.Concatenate()([keras.layers.Dense(8, activation="relu")(a), b])
    return keras.Model([a, b], keras.layers.Dense(2, name="logits")(merged))


def keras_normalization() -> object:
    """A Normalization layer adapted to data: its mean and variance are state, not inputs."""
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).normal(5.0, 3.0, (64, 8)).astype("float32"))
    x = keras.Input((8,), name="features")
    return keras.Model(x, keras.layers.Dense(3)(norm(x)))


# at 128 x 128 (2 CPU cores); swin_t and vit_b_16 take 224 only
TV_CLASSIFIERS = ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "efficientnet_v2_s", "convnext_tiny",
                  "regnet_y_400mf", "shufflenet_v2_x0_5", "squeezenet1_1", "densenet121", "googlenet", "mnasnet0_5"]
ZOO: list[Arch] = [
    *(Arch(n, "classifier", "pytorch", _tv(n), image(128), fast=n == "resnet18", needs=("torchvision",)) for n in TV_CLASSIFIERS),
    *(Arch(n, "classifier", "pytorch", _tv(n), image(224), needs=("torchvision",)) for n in ("swin_t", "vit_b_16")),
    Arch("inception_v3", "classifier", "pytorch", _tv("inception_v3", aux_logits=False, init_weights=True), image(299), needs=("torchvision",)),
    Arch("fasterrcnn_mobilenet_v3_320", "detector", "pytorch", detections("fasterrcnn_mobilenet_v3_large_320_fpn", ("boxes", "scores", "labels")),
         image(320, name="image"), ("--static-batch",), fast=True, needs=("torchvision",)),
    Arch("retinanet_resnet50_fpn", "detector", "pytorch", detections("retinanet_resnet50_fpn", ("boxes", "scores", "labels"), min_size=320, max_size=320),
         image(320, name="image"), ("--static-batch",), needs=("torchvision",)),
    Arch("ssdlite320_mobilenet_v3", "detector", "pytorch", detections("ssdlite320_mobilenet_v3_large", ("boxes", "scores", "labels")),
         image(320, name="image"), ("--static-batch",), needs=("torchvision",)),
    Arch("maskrcnn_resnet50_fpn", "detector", "pytorch", detections("maskrcnn_resnet50_fpn", ("boxes", "scores", "labels", "masks"), min_size=320, max_size=320),
         image(320, name="image"), ("--static-batch",), needs=("torchvision",)),
    Arch("fcos_resnet50_fpn", "detector", "pytorch", detections("fcos_resnet50_fpn", ("boxes", "scores", "labels"), min_size=320, max_size=320),
         image(320, name="image"), ("--static-batch",), needs=("torchvision",)),
    Arch("deeplabv3_mobilenet_v3", "segmenter", "pytorch", _tv("deeplabv3_mobilenet_v3_large", weights_backbone=None, aux_loss=False), image(128), needs=("torchvision",)),
    Arch("lraspp_mobilenet_v3", "segmenter", "pytorch", _tv("lraspp_mobilenet_v3_large", weights_backbone=None), image(128, name="input"), needs=("torchvision",)),  # forward(input)
    Arch("fcn_resnet50", "segmenter", "pytorch", _tv("fcn_resnet50", weights_backbone=None, aux_loss=False), image(128), needs=("torchvision",)),
    Arch("r3d_18", "video", "pytorch", _tv("r3d_18"), {"x": ((1, 3, 8, 112, 112), "float32")}, needs=("torchvision",)),
    Arch("r2plus1d_18", "video", "pytorch", _tv("r2plus1d_18"), {"x": ((1, 3, 8, 112, 112), "float32")}, needs=("torchvision",)),
    Arch("raft_small", "flow", "pytorch", raft_small, {"image1": ((1, 3, 128, 128), "float32"), "image2": ((1, 3, 128, 128), "float32")},
         needs=("torchvision",)),
    Arch("bert", "nlp", "pytorch", _hf("BertModel", "BertConfig", vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4), tokens("input_ids"), (*SEQ, *_seq_axes("input_ids")), needs=("transformers",)),
    Arch("gpt2", "nlp", "pytorch", _hf("GPT2LMHeadModel", "GPT2Config", vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=64),
         tokens("input_ids"), (*SEQ, *_seq_axes("input_ids")), needs=("transformers",)),
    Arch("t5", "nlp", "pytorch", _seq2seq("input_ids", "T5ForConditionalGeneration", "T5Config", vocab_size=100, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4),
         {"encoder_input": ((1, 16), "int64"), "decoder_input_ids": ((1, 4), "int64")}, SEQ, needs=("transformers",)),
    Arch("llama", "nlp", "pytorch", _hf("LlamaForCausalLM", "LlamaConfig", **SMALL_LM), tokens("input_ids"), (*SEQ, *_seq_axes("input_ids")),
         needs=("transformers",)),
    Arch("qwen2", "nlp", "pytorch", _hf("Qwen2ForCausalLM", "Qwen2Config", **SMALL_LM), tokens("input_ids"), (*SEQ, *_seq_axes("input_ids")),
         needs=("transformers",)),
    Arch("mistral", "nlp", "pytorch", _hf("MistralForCausalLM", "MistralConfig", **SMALL_LM), tokens("input_ids"), (*SEQ, *_seq_axes("input_ids")),
         needs=("transformers",)),
    Arch("distilbert", "nlp", "pytorch", _hf("DistilBertModel", "DistilBertConfig", vocab_size=100, dim=64, hidden_dim=128, n_layers=2, n_heads=4),
         tokens("input_ids"), (*SEQ, *_seq_axes("input_ids")), needs=("transformers",)),
    Arch("vit", "vision-transformer", "pytorch", _hf("ViTForImageClassification", "ViTConfig", hidden_size=64, intermediate_size=128,
                                                     num_hidden_layers=2, num_attention_heads=4, image_size=64, patch_size=8),
         {"pixel_values": ((1, 3, 64, 64), "float32")}, needs=("transformers",)),
    Arch("swin", "vision-transformer", "pytorch", _hf("SwinForImageClassification", "SwinConfig", embed_dim=16, depths=[1, 1], num_heads=[2, 2],
                                                      image_size=64, patch_size=4, window_size=4),
         {"pixel_values": ((1, 3, 64, 64), "float32")}, needs=("transformers",)),
    Arch("clip", "vision-transformer", "pytorch", clip, {"input_ids": ((1, 8), "int64"), "pixel_values": ((1, 3, 32, 32), "float32")},
         SEQ, needs=("transformers",)),
    Arch("detr", "detector", "pytorch", detr, {"pixel_values": ((1, 3, 128, 128), "float32")}, needs=("transformers",)),
    Arch("whisper", "speech", "pytorch", _seq2seq("input_features", "WhisperForConditionalGeneration", "WhisperConfig", vocab_size=100, d_model=64, encoder_layers=1,
                                             decoder_layers=1, encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=128,
                                             decoder_ffn_dim=128, num_mel_bins=80, max_source_positions=50, max_target_positions=32),
         {"encoder_input": ((1, 80, 100), "float32"), "decoder_input_ids": ((1, 4), "int64")}, SEQ, needs=("transformers",)),
    Arch("wav2vec2", "speech", "pytorch", _hf("Wav2Vec2ForCTC", "Wav2Vec2Config", vocab_size=32, hidden_size=64, intermediate_size=128,
                                              num_hidden_layers=2, num_attention_heads=4, conv_dim=(32, 32, 32), conv_stride=(5, 2, 2),
                                              conv_kernel=(10, 3, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
         {"input_values": ((1, 4000), "float32")}, needs=("transformers",)),
    Arch("timm_mobileone_s0", "classifier", "pytorch", _timm("mobileone_s0"), image(128), needs=("timm",)),
    Arch("timm_efficientvit_b0", "classifier", "pytorch", _timm("efficientvit_b0"), image(128), needs=("timm",)),
    Arch("timm_convnext_atto", "classifier", "pytorch", _timm("convnext_atto"), image(128), needs=("timm",)),
    Arch("gated_if", "control-flow", "pytorch", gated, {"x": ((2, 16), "float32")}, fast=True),
    Arch("MobileNetV3Small", "keras", "keras", _keras_app("MobileNetV3Small"), {"input_layer": ((1, 96, 96, 3), "float32")}, needs=("keras",)),
    Arch("ResNet50", "keras", "keras", _keras_app("ResNet50"), {"input_layer": ((1, 96, 96, 3), "float32")}, needs=("keras",)),
    Arch("EfficientNetB0", "keras", "keras", _keras_app("EfficientNetB0"), {"input_layer": ((1, 96, 96, 3), "float32")}, needs=("keras",)),
    Arch("EfficientNetV2B0", "keras", "keras", _keras_app("EfficientNetV2B0"), {"input_layer": ((1, 96, 96, 3), "float32")}, needs=("keras",)),
    Arch("ConvNeXtTiny", "keras", "keras", _keras_app("ConvNeXtTiny"), {"input_layer": ((1, 96, 96, 3), "float32")}, needs=("keras",)),
    Arch("DenseNet121", "keras", "keras", _keras_app("DenseNet121"), {"input_layer": ((1, 96, 96, 3), "float32")}, needs=("keras",)),
    Arch("keras_lstm", "keras", "keras", keras_lstm, {"sequence": ((1, 12, 8), "float32")}, needs=("keras",)),
    Arch("keras_two_inputs", "keras", "keras", keras_two_inputs, {"left": ((1, 10), "float32"), "right": ((1, 6), "float32")}, needs=("keras",)),
    Arch("keras_normalization", "keras", "keras", keras_normalization, {"features": ((1, 8), "float32")}, fast=True, needs=("keras",)),
]
HEAVY = ("fcn_resnet50", "swin_t", "vit_b_16", "fasterrcnn_mobilenet_v3_320", "ssdlite320_mobilenet_v3", "retinanet_resnet50_fpn",
         "fcos_resnet50_fpn", "maskrcnn_resnet50_fpn")
ZOO.sort(key=lambda arch: HEAVY.index(arch.name) + 1 if arch.name in HEAVY else 0)  # the slowest last
BY_NAME = {arch.name: arch for arch in ZOO}


def __getattr__(name: str) -> Callable[[], object]:
    """`benchmarks/zoo_models.py:<name>` is a factory infertool converts."""
    if name in BY_NAME:
        return BY_NAME[name].build
    raise AttributeError(name)
