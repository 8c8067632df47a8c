"""Beyond timm: segmentation_models_pytorch and MONAI, configured as a new user would, and
transformers' vision and text models, diffusers', ultralytics', pretrainedmodels',
EfficientNet-PyTorch's, OpenCLIP's and Segment Anything's where they are installed; writes
docs/coverage-libraries.md.

Runs in the zoo venv with the libraries (see DEVELOPERS.md):

    python bench/libraries.py                    # every configuration below, checked at six sizes
    python bench/libraries.py --quick --no-write # two sizes each, rows printed (tests/test_libraries.py)
    python bench/libraries.py --models monai:UNet-2d,smp:FPN-resnet18 --no-write

Each configuration runs in a child process (bench/sweep.py's runner: a crash, a hang past
``--timeout`` or a memory blow-up costs that one only). Models are built under
``torch.device("meta")`` in eval mode (on the CPU where the constructor reads a tensor's value,
as SegFormer's encoder does), analyzed with the input shape given below, and ``verify(device=
"meta")`` compares every step with torch's meta forward at the sizes below (sizes torch refuses
included); ``valid_sizes()``, ``evaluate()`` and ``formula()`` must not crash, and ``valid_sizes()``
must hold exactly the sizes among them that torch accepts. transformers'
text models (small configurations) are built and verified on the CPU, given token ids.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import sweep  # noqa: E402  (bench/sweep.py: its child-process runner and error classes)

SIZES_2D = [(224, 224), (192, 256), (160, 160), (97, 131), (64, 64), (33, 47)]
SIZES_3D = [(64, 64, 64), (48, 64, 80), (96, 96, 32), (33, 47, 40), (16, 16, 16), (17, 31, 9)]
QUICK_2D, QUICK_3D = [(224, 224), (97, 131)], [(64, 64, 64), (33, 47, 40)]
#: sequence lengths of the text models (their position tables hold 512 or 1024)
SIZES_1D, QUICK_1D = [(1,), (7,), (64,), (512,), (513,), (1100,)], [(7,), (1100,)]
#: the encoder-decoders' lengths (T, S): the source's, and the target's the decoder is given
SIZES_SEQ2SEQ = [(1, 1), (7, 5), (64, 1), (512, 64), (513, 7), (1100, 1100)]
QUICK_SEQ2SEQ = [(7, 5), (1100, 3)]
#: Whisper's (T, S): the log-mel frames its encoder takes exactly (2 * max_source_positions = 100
#: here), the target's length up to its 448 positions
SIZES_WHISPER = [(99, 1), (100, 1), (100, 448), (100, 449), (101, 5), (3000, 7)]
QUICK_WHISPER = [(100, 5), (101, 5)]

#: diffusers' latents (H, W), and the text's length S for a UNet conditioned on it
SIZES_TEXT_2D = [(64, 64, 77), (32, 48, 1), (33, 47, 7), (16, 16, 300), (8, 8, 1), (7, 9, 5)]
QUICK_TEXT_2D = [(32, 48, 1), (33, 47, 7)]

_SMP_ARCHS = ["Unet", "UnetPlusPlus", "FPN", "PSPNet", "DeepLabV3", "DeepLabV3Plus", "Linknet", "MAnet", "PAN",
              "UPerNet", "Segformer"]
_SMP_ENCODERS = ["resnet18", "efficientnet-b0", "mobilenet_v2", "tu-convnext_atto", "mit_b0"]
#: the architectures smp builds with no mit_b0 encoder (it refuses the pair)
_NO_MIT = {"UnetPlusPlus", "Linknet"}


def _configs() -> dict[str, tuple[str, str, dict, tuple]]:
    """id -> (library, constructor, keyword arguments, input shape of one sample)."""
    out: dict[str, tuple[str, str, dict, tuple]] = {}
    for arch in _SMP_ARCHS:
        for enc in _SMP_ENCODERS:
            if not (enc == "mit_b0" and arch in _NO_MIT):
                out[f"smp:{arch}-{enc}"] = ("smp", arch, {"encoder_name": enc}, (3, "H", "W"))
    out["smp:DPT-tu-vit_tiny_patch16_224"] = ("smp", "DPT", {"encoder_name": "tu-vit_tiny_patch16_224"}, (3, "H", "W"))
    two, three = (1, "H", "W"), (1, "D", "H", "W")
    io = {"in_channels": 1, "out_channels": 2}
    monai = {
        "UNet-2d": (dict(spatial_dims=2, **io, channels=(16, 32, 64, 128), strides=(2, 2, 2)), two),
        "UNet-3d": (dict(spatial_dims=3, **io, channels=(8, 16, 32), strides=(2, 2)), three),
        "BasicUNet-2d": (dict(spatial_dims=2, **io), two),
        "BasicUNet-3d": (dict(spatial_dims=3, **io, features=(8, 8, 16, 32, 64, 8)), three),
        "AttentionUnet-2d": (dict(spatial_dims=2, **io, channels=(16, 32, 64), strides=(2, 2)), two),
        "DynUNet-2d": (dict(spatial_dims=2, **io, kernel_size=[3, 3, 3, 3], strides=[1, 2, 2, 2],
                            upsample_kernel_size=[2, 2, 2]), two),
        "SegResNet-2d": (dict(spatial_dims=2, **io, init_filters=8), two),
        "SegResNet-3d": (dict(spatial_dims=3, **io, init_filters=8), three),
        "SegResNetVAE-2d": (dict(spatial_dims=2, input_image_size=(64, 64), **io, init_filters=8), two),
        "SegResNetDS-2d": (dict(spatial_dims=2, **io, init_filters=8), two),
        "UNETR-2d": (dict(**io, img_size=(32, 32), feature_size=8, hidden_size=96, mlp_dim=192, num_heads=4,
                          spatial_dims=2), two),
        "UNETR-3d": (dict(**io, img_size=(32, 32, 32), feature_size=8, hidden_size=96, mlp_dim=192, num_heads=4), three),
        "SwinUNETR-2d": (dict(**io, spatial_dims=2, feature_size=12), two),
        "SwinUNETR-3d": (dict(**io, spatial_dims=3, feature_size=12), three),
        "VNet-3d": (dict(spatial_dims=3, **io), three),
        "DenseNet121-2d": (dict(spatial_dims=2, **io), two),
        "DenseNet121-3d": (dict(spatial_dims=3, **io), three),
        "ResNet-2d": (dict(block="basic", layers=[1, 1, 1, 1], block_inplanes=[8, 16, 32, 64], spatial_dims=2,
                           n_input_channels=1, num_classes=2), two),
        "ResNet-3d": (dict(block="basic", layers=[1, 1, 1, 1], block_inplanes=[8, 16, 32, 64], spatial_dims=3,
                           n_input_channels=1, num_classes=2), three),
        "HighResNet-2d": (dict(spatial_dims=2, **io), two),
        "AHNet-2d": (dict(spatial_dims=2, **io, psp_block_num=0), two),
        "FlexibleUNet-2d": (dict(in_channels=3, out_channels=2, backbone="efficientnet-b0", pretrained=False,
                                 spatial_dims=2), (3, "H", "W")),
        "ViT-2d": (dict(in_channels=1, img_size=(32, 32), patch_size=(8, 8), spatial_dims=2, hidden_size=96,
                        mlp_dim=192, num_heads=4, classification=True, num_classes=2), two),
        "EfficientNetBN-2d": (dict(model_name="efficientnet-b0", pretrained=False, spatial_dims=2, in_channels=3,
                                   num_classes=2), (3, "H", "W")),
        "SENet154-2d": (dict(spatial_dims=2, in_channels=3, num_classes=2), (3, "H", "W")),
        "SEResNet50-2d": (dict(spatial_dims=2, in_channels=3, num_classes=2), (3, "H", "W")),
        "RegUNet-2d": (dict(spatial_dims=2, in_channels=1, num_channel_initial=8, depth=3, out_channels=2), two),
        "LocalNet-2d": (dict(spatial_dims=2, **io, num_channel_initial=8, extract_levels=(0, 1, 2, 3)), two),
        "GlobalNet-2d": (dict(image_size=(32, 32), spatial_dims=2, in_channels=1, num_channel_initial=8, depth=3), two),
        "Discriminator-2d": (dict(in_shape=(1, 32, 32), channels=(8, 16), strides=(2, 2)), two),
        "Classifier-2d": (dict(in_shape=(1, 32, 32), classes=2, channels=(8, 16), strides=(2, 2)), two),
        "AutoEncoder-2d": (dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(8, 16), strides=(2, 2)), two),
        "VarAutoEncoder-2d": (dict(spatial_dims=2, in_shape=(1, 32, 32), out_channels=1, latent_size=4,
                                   channels=(8, 16), strides=(2, 2)), two),
        "MedNeXt-2d": (dict(spatial_dims=2, **io, init_filters=8), two),
    }
    for name, (kwargs, shape) in monai.items():
        out[f"monai:{name}"] = ("monai", name.rsplit("-", 1)[0], kwargs, shape)
    if importlib.util.find_spec("transformers") is not None:  # (not in the zoo venv by default)
        for model, config, kwargs in _HF:
            lib = "hf-vision" if model in _HF_ON_CPU else "hf"
            out[f"hf:{model}"] = (lib, model, {"config": config, **kwargs}, (3, "H", "W"))
        for model, config, kwargs in _HF_TEXT:
            out[f"hf:{model}"] = ("hf-text", model, {"config": config, **kwargs}, ("T",))
        for model, config, kwargs in _HF_AUDIO:
            out[f"hf:{model}"] = ("hf-audio", model, {"config": config, **kwargs}, ("L",))
        for model, config, kwargs in _HF_SEQ2SEQ:
            out[f"hf:{model}"] = ("hf-seq2seq", model, {"config": config, **kwargs}, ("T", "S"))
        for model, config, kwargs in _HF_WHISPER:
            out[f"hf:{model}"] = ("hf-whisper", model, {"config": config, **kwargs}, ("T", "S"))
    if importlib.util.find_spec("diffusers") is not None:  # (in the transformers venv: see DEVELOPERS.md)
        for model, kwargs, inputs in _DIFFUSERS:
            out[f"diffusers:{model}"] = ("diffusers", model, kwargs, inputs)
    if importlib.util.find_spec("ultralytics") is not None:  # (see DEVELOPERS.md)
        for cfg in _ULTRALYTICS:
            task = next((t for suffix, t in _ULTRALYTICS_TASKS.items() if suffix in cfg), "DetectionModel")
            out[f"ultralytics:{cfg}"] = ("ultralytics", task, {"cfg": f"{cfg}.yaml"}, (3, "H", "W"))
    for lib, names in _IMAGE_MODELS.items():  # (each where installed: see DEVELOPERS.md)
        if importlib.util.find_spec(lib) is not None:
            for name in names:
                out[f"{lib}:{name}"] = (lib, name, {}, (3, "H", "W"))
    return out


#: image models of the libraries model files are most often copied from, each built as its
#: README says, without weights: pretrainedmodels' every model (``pretrainedmodels.__dict__[name]
#: (num_classes=1000, pretrained=None)``, torchvision's adapted and Cadene's own), EfficientNet-
#: PyTorch's ``EfficientNet.from_name``, OpenCLIP's image towers (``create_model(name).visual``)
#: and Segment Anything's image encoder (``sam_model_registry[name]().image_encoder``)
_IMAGE_MODELS = {
    "pretrainedmodels": [
        "fbresnet152", "bninception", "resnext101_32x4d", "resnext101_64x4d", "inceptionv4", "inceptionresnetv2",
        "alexnet", "densenet121", "densenet169", "densenet201", "densenet161", "resnet18", "resnet34", "resnet50",
        "resnet101", "resnet152", "inceptionv3", "squeezenet1_0", "squeezenet1_1", "vgg11", "vgg11_bn", "vgg13",
        "vgg13_bn", "vgg16", "vgg16_bn", "vgg19_bn", "vgg19", "nasnetamobile", "nasnetalarge", "dpn68", "dpn68b",
        "dpn92", "dpn98", "dpn131", "dpn107", "xception", "senet154", "se_resnet50", "se_resnet101", "se_resnet152",
        "se_resnext50_32x4d", "se_resnext101_32x4d", "cafferesnet101", "pnasnet5large", "polynet"],
    "efficientnet_pytorch": ["efficientnet-b0", "efficientnet-b3", "efficientnet-b7"],
    "open_clip": ["RN50", "RN101", "RN50x4", "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-S-16", "ViT-M-32-alt",
                  "convnext_tiny", "convnext_base", "coca_ViT-B-32", "EVA02-B-16", "ViT-B-16-SigLIP",
                  "ViT-B-16-SigLIP2", "PE-Core-T-16-384", "MobileCLIP-S1", "MobileCLIP2-S0", "ViTamin-S",
                  "swin_base_patch4_window7_224", "vit_relpos_medium_patch16_cls_224"],
    "segment_anything": ["vit_b"],
}
#: sizes these libraries' models are made for, checked besides the six (the first in --quick)
_MADE_FOR = {"pretrainedmodels": [(299, 299), (331, 331)], "open_clip": [(384, 384)],
             "segment_anything": [(1024, 1024)]}


#: ultralytics' model files (its cfg/models), the smallest scale of each, every task: YOLOv3 to
#: YOLO26 and RT-DETR, as ``YOLO("yolov8n.yaml")`` builds them (without weights)
_ULTRALYTICS = [
    "yolov3-tiny", "yolov3", "yolov3-spp", "yolov5nu", "yolov6n", "yolov8n", "yolov8n-seg", "yolov8n-pose",
    "yolov8n-obb", "yolov8n-cls", "yolov8n-p2", "yolov8n-p6", "yolov8n-ghost", "yolov8n-ghost-p2",
    "yolov8n-ghost-p6", "yolov8n-seg-p6", "yolov8n-pose-p6", "yolov8n-cls-resnet50", "yolov9t", "yolov9c-seg",
    "yolov10n", "yolo11n", "yolo11n-seg", "yolo11n-pose", "yolo11n-obb", "yolo11n-cls", "yolo12n", "yolo12n-seg",
    "yolo12n-pose", "yolo12n-obb", "yolo12n-cls", "yolo26n", "yolo26n-seg", "yolo26n-pose", "yolo26n-obb",
    "yolo26n-cls", "yolo26n-p2", "yolo26n-p6", "yolo26n-depth", "yolo26n-sem", "rtdetr-l", "rtdetr-resnet50",
    "yolov8n-rtdetr",
]
#: the model class of each task, by the model file's suffix (ultralytics.nn.tasks)
_ULTRALYTICS_TASKS = {"-seg": "SegmentationModel", "-pose": "PoseModel", "-obb": "OBBModel",
                      "-cls": "ClassificationModel", "rtdetr": "RTDETRDetectionModel"}


#: transformers' vision models, each with its default configuration (model class, config class,
#: the configuration's keyword arguments), called with ``pixel_values`` as a user calls them
_HF = [(f"{name}Model", f"{name}Config", {}) for name in (
    "ViT", "DeiT", "Beit", "Data2VecVision", "Swin", "Swinv2", "ConvNext", "ConvNextV2", "ResNet", "RegNet",
    "MobileNetV1", "MobileNetV2", "MobileViT", "MobileViTV2", "EfficientNet", "Levit", "PoolFormer", "Segformer",
    "DPT", "Dinov2", "Dinov2WithRegisters", "DINOv3ViT", "DINOv3ConvNext", "Cvt", "FocalNet", "Pvt", "PvtV2", "Bit",
    "Yolos", "GLPN", "VitDet", "Hiera", "SwiftFormer", "TextNet")] + [
    ("SiglipVisionModel", "SiglipVisionConfig", {}), ("ViTMAEModel", "ViTMAEConfig", {"mask_ratio": 0.0}),
    ("ViTForImageClassification", "ViTConfig", {}), ("ConvNextForImageClassification", "ConvNextConfig", {}),
    ("ResNetForImageClassification", "ResNetConfig", {}),
    ("SegformerForSemanticSegmentation", "SegformerConfig", {})] + [
    (f"{name}Model", f"{name}Config", {}) for name in ("CLIPVision", "BlipVision", "OwlViTVision", "GroupViTVision")] + [
    ("UperNetForSemanticSegmentation", "UperNetConfig", {}),
    ("DepthAnythingForDepthEstimation", "DepthAnythingConfig", {}),
    ("ConvNextV2ForImageClassification", "ConvNextV2Config", {}),
    ("DetrModel", "DetrConfig", {"use_timm_backbone": False, "use_pretrained_backbone": False, "backbone": None}),
    ("ConditionalDetrModel", "ConditionalDetrConfig", {"use_timm_backbone": False, "use_pretrained_backbone": False}),
    ("RTDetrModel", "RTDetrConfig", {}),
    ("Mask2FormerModel", "Mask2FormerConfig", {}), ("MaskFormerModel", "MaskFormerConfig", {})]


#: ... built and verified on the CPU: their forward reads a value (``.item()``), which a model on
#: the meta device has not, so nothing there could prove the trace
_HF_ON_CPU = frozenset({"DetrModel", "ConditionalDetrModel", "RTDetrModel"})


#: transformers' text models, small (two layers, narrow), each with its key cache where it has
#: one (``use_cache``, the default: a ``DynamicCache`` in the output, symshape.records), called
#: with token ids (symshape.Input) as a user calls them: built on the CPU, as transformers' mask
#: code reads the values of the positions, which the meta device has not
_TINY = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}
_GQA = {**_TINY, "num_key_value_heads": 2}
_HF_TEXT = [
    ("BertModel", "BertConfig", _TINY), ("BertForSequenceClassification", "BertConfig", _TINY),
    ("BertForMaskedLM", "BertConfig", _TINY),
    ("DistilBertModel", "DistilBertConfig", {"n_layers": 2, "dim": 64, "n_heads": 4, "hidden_dim": 128}),
    ("ElectraModel", "ElectraConfig", _TINY), ("RobertaModel", "RobertaConfig", _TINY),
    ("GPT2Model", "GPT2Config", {"n_layer": 2, "n_embd": 64, "n_head": 4}),
    ("GPT2LMHeadModel", "GPT2Config", {"n_layer": 2, "n_embd": 64, "n_head": 4}),
    ("LlamaModel", "LlamaConfig", _GQA), ("LlamaForCausalLM", "LlamaConfig", _GQA),
    ("MistralForCausalLM", "MistralConfig", _GQA), ("Qwen2ForCausalLM", "Qwen2Config", _GQA),
    ("PhiForCausalLM", "PhiConfig", _GQA), ("GemmaForCausalLM", "GemmaConfig", _GQA),
    ("GPTNeoXForCausalLM", "GPTNeoXConfig", _TINY), ("Gemma2ForCausalLM", "Gemma2Config", _GQA),
    ("FalconForCausalLM", "FalconConfig", _TINY),
    ("OPTForCausalLM", "OPTConfig", {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
                                     "ffn_dim": 128, "word_embed_proj_dim": 64}),
    ("GPTBigCodeForCausalLM", "GPTBigCodeConfig", {"n_layer": 2, "n_embd": 64, "n_head": 4}),
    ("BloomForCausalLM", "BloomConfig", {"n_layer": 2, "hidden_size": 64, "n_head": 4}),
    ("XLMRobertaModel", "XLMRobertaConfig", _TINY),
    # (DeBERTa-v3's attention: relative positions in 256 log buckets, gathered from a clamped span)
    ("DebertaV2Model", "DebertaV2Config", {**_TINY, "relative_attention": True, "position_buckets": 256,
                                           "max_relative_positions": -1, "pos_att_type": ["p2c", "c2p"],
                                           "norm_rel_ebd": "layer_norm", "share_att_key": True}),
    ("AlbertModel", "AlbertConfig", _TINY),
]

#: transformers' speech encoders, small, called with a raw waveform of length L (floats), built
#: and verified on the CPU as the text models are
_SPEECH = {"num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 64,
           "conv_dim": (16, 16, 16), "conv_stride": (5, 2, 2), "conv_kernel": (10, 3, 3),
           "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
_HF_AUDIO = [(f"{name}Model", f"{name}Config", _SPEECH) for name in (
    "Wav2Vec2", "Hubert", "WavLM", "SEW", "SEWD", "UniSpeech", "UniSpeechSat", "Data2VecAudio", "Wav2Vec2Conformer")]
_HF_TEXT += [("CLIPTextModel", "CLIPTextConfig", _TINY)]
_ROTARY = {"n_layer": 2, "n_embd": 64, "n_head": 4, "rotary_dim": 8}
_HF_TEXT += [
    ("Phi3ForCausalLM", "Phi3Config", {**_GQA, "pad_token_id": 0}), ("Qwen3ForCausalLM", "Qwen3Config", _GQA),
    ("SmolLM3ForCausalLM", "SmolLM3Config", _GQA), ("Gemma3ForCausalLM", "Gemma3TextConfig", _GQA),
    ("Olmo2ForCausalLM", "Olmo2Config", _GQA), ("StableLmForCausalLM", "StableLmConfig", _GQA),
    ("Starcoder2ForCausalLM", "Starcoder2Config", _GQA), ("GraniteForCausalLM", "GraniteConfig", _GQA),
    ("CohereForCausalLM", "CohereConfig", _GQA), ("NemotronForCausalLM", "NemotronConfig", _GQA),
    ("Glm4ForCausalLM", "Glm4Config", _GQA), ("HeliumForCausalLM", "HeliumConfig", {**_GQA, "head_dim": 16}),
    ("GPTNeoModel", "GPTNeoConfig", {"num_layers": 2, "hidden_size": 64, "num_heads": 4,
                                     "attention_types": [[["global", "local"], 1]]}),
    ("GPTJModel", "GPTJConfig", _ROTARY), ("CodeGenModel", "CodeGenConfig", _ROTARY),
    ("ModernBertModel", "ModernBertConfig", _TINY), ("MegatronBertModel", "MegatronBertConfig", _TINY),
    ("ErnieModel", "ErnieConfig", _TINY), ("RoFormerModel", "RoFormerConfig", {**_TINY, "embedding_size": 64}),
    ("XGLMModel", "XGLMConfig", {"num_layers": 2, "d_model": 64, "attention_heads": 4, "ffn_dim": 128}),
]
#: ... and the encoders that index a bias table with a relative position's bucket (symshape.bounds)
_T5 = {"num_layers": 2, "d_model": 64, "d_kv": 16, "d_ff": 128, "num_heads": 4}
_HF_TEXT += [
    ("T5EncoderModel", "T5Config", _T5), ("MT5EncoderModel", "MT5Config", _T5),
    ("UMT5EncoderModel", "UMT5Config", _T5), ("LongT5EncoderModel", "LongT5Config", _T5),
    ("MPNetModel", "MPNetConfig", _TINY),
]
#: ... and more encoders and decoders users load (XLNet, FNet, ESM, LUKE ...)
_HF_TEXT += [
    ("XLNetModel", "XLNetConfig", {"n_layer": 2, "d_model": 64, "n_head": 4, "d_inner": 128}),
    ("FNetModel", "FNetConfig", {"num_hidden_layers": 2, "hidden_size": 64, "intermediate_size": 128}),
    ("SqueezeBertModel", "SqueezeBertConfig", {**_TINY, "embedding_size": 64}),
    ("ConvBertModel", "ConvBertConfig", {**_TINY, "embedding_size": 64}),
    ("MobileBertModel", "MobileBertConfig", {**_TINY, "embedding_size": 32, "intra_bottleneck_size": 32,
                                             "true_hidden_size": 32}),
    ("PersimmonForCausalLM", "PersimmonConfig", _TINY), ("MptForCausalLM", "MptConfig", {"n_layers": 2, "d_model": 64,
                                                                                        "n_heads": 4}),
    ("BioGptForCausalLM", "BioGptConfig", _TINY),
    ("CTRLModel", "CTRLConfig", {"n_layer": 2, "n_embd": 64, "n_head": 4, "dff": 128}),
    ("RemBertModel", "RemBertConfig", {**_TINY, "input_embedding_size": 32, "output_embedding_size": 32}),
    ("EsmModel", "EsmConfig", {**_TINY, "vocab_size": 33, "pad_token_id": 1}),
    ("LukeModel", "LukeConfig", {**_TINY, "entity_emb_size": 32}), ("SplinterModel", "SplinterConfig", _TINY),
    ("Data2VecTextModel", "Data2VecTextConfig", _TINY),
    # (``assert lengths.max().item() <= slen``: a count of the tokens that are not padding, read
    # with .item(), at most the length at every length: symshape.bounds.ReadValue)
    ("XLMModel", "XLMConfig", {"n_layers": 2, "emb_dim": 64, "n_heads": 4}),
    ("FlaubertModel", "FlaubertConfig", {"n_layers": 2, "emb_dim": 64, "n_heads": 4}),
]
#: ... and mixtures of experts (transformers 5 runs the experts with torch._grouped_mm over the
#: tokens sorted by expert, and puts them back in order through the sort's inverse permutation)
_MOE = {**_GQA, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
_LOCAL_EXPERTS = {**_GQA, "num_local_experts": 4, "num_experts_per_tok": 2}
_GROUPED = {"n_routed_experts": 4, "n_group": 1, "topk_group": 1, "first_k_dense_replace": 1}
_HF_TEXT += [
    ("MixtralForCausalLM", "MixtralConfig", _LOCAL_EXPERTS),
    ("Qwen2MoeForCausalLM", "Qwen2MoeConfig", {**_MOE, "shared_expert_intermediate_size": 32}),
    ("Qwen3MoeForCausalLM", "Qwen3MoeConfig", _MOE), ("OlmoeForCausalLM", "OlmoeConfig", _MOE),
    ("GraniteMoeForCausalLM", "GraniteMoeConfig", _LOCAL_EXPERTS), ("PhimoeForCausalLM", "PhimoeConfig", _LOCAL_EXPERTS),
    ("GptOssForCausalLM", "GptOssConfig", {**_LOCAL_EXPERTS, "head_dim": 16}),
    ("MiniMaxForCausalLM", "MiniMaxConfig", {**_LOCAL_EXPERTS, "layer_types": ["full_attention"] * 2}),
    ("Llama4ForCausalLM", "Llama4TextConfig", {**_LOCAL_EXPERTS, "num_experts_per_tok": 1, "head_dim": 16,
                                               "intermediate_size_mlp": 128}),
    ("DeepseekV3ForCausalLM", "DeepseekV3Config", {**_MOE, **_GROUPED, "q_lora_rank": 32, "kv_lora_rank": 16,
                                                   "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16}),
    ("Glm4MoeForCausalLM", "Glm4MoeConfig", {**_MOE, **_GROUPED}),
    ("Ernie4_5_MoeForCausalLM", "Ernie4_5_MoeConfig", {**_GQA, "moe_num_experts": 4, "moe_k": 2,
                                                       "moe_intermediate_size": 32}),
]
#: ... and I-BERT (numpy's names for dims, ``x.mean(axis=2)``, after an embedding), and DeBERTa's
#: relative attention (a span ``torch.tensor(min(T, 512))`` that slices the position table)
_HF_TEXT += [("IBertModel", "IBertConfig", _TINY),
             ("DebertaModel", "DebertaConfig", {**_TINY, "relative_attention": True, "max_relative_positions": -1,
                                                "pos_att_type": ["c2p", "p2c"]})]
#: ... and Longformer's sliding-window attention (chunks made with as_strided from a padded
#: length; a branch on whether its float mask marks a global token: symshape.bounds)
_HF_TEXT += [("LongformerModel", "LongformerConfig", {**_TINY, "attention_window": 8})]
#: transformers' encoder-decoders, small, called as a user calls them for training or scoring:
#: ``model(input_ids=..., decoder_input_ids=...)``, the source of length T and the target of length
#: S (without decoder_input_ids their decoder raises: symshape says so, errors.ForwardRaises)
_S2S = {"encoder_layers": 2, "decoder_layers": 2, "d_model": 64, "encoder_attention_heads": 4,
        "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128}
_HF_SEQ2SEQ = [(f"{name}Model", f"{name}Config", _S2S) for name in (
    "Bart", "MBart", "PLBart", "Marian", "Pegasus", "Blenderbot", "BlenderbotSmall", "M2M100")] + [
    ("BartForConditionalGeneration", "BartConfig", _S2S), ("MvpModel", "MvpConfig", _S2S),
    ("BigBirdPegasusModel", "BigBirdPegasusConfig", {**_S2S, "attention_type": "original_full"}),
    ("LEDModel", "LEDConfig", {**_S2S, "attention_window": 8}), ("T5Model", "T5Config", _T5),
    ("T5ForConditionalGeneration", "T5Config", _T5)]
#: ... and Whisper, whose encoder takes log-mel features (16 bins, T frames)
_WHISPER = {"encoder_layers": 2, "decoder_layers": 2, "d_model": 64, "encoder_attention_heads": 4,
            "decoder_attention_heads": 4, "encoder_ffn_dim": 128, "decoder_ffn_dim": 128, "num_mel_bins": 16,
            "max_source_positions": 50}
_HF_WHISPER = [("WhisperModel", "WhisperConfig", _WHISPER),
               ("WhisperForConditionalGeneration", "WhisperConfig", _WHISPER)]

#: diffusers' models, small, called as its pipelines call them: a UNet with the noisy sample and
#: the step (a 0-d int64 tensor: "step"), conditioned on the text's hidden states of length S; an
#: autoencoder on an image; DiT on latents with the step and a class label ("label")
_UNET = {"block_out_channels": (32, 64), "layers_per_block": 1, "norm_num_groups": 8}
_AUTOENCODER = {**_UNET, "in_channels": 3, "out_channels": 3, "down_block_types": ("DownEncoderBlock2D",) * 2,
                "up_block_types": ("UpDecoderBlock2D",) * 2, "latent_channels": 4}
_DIFFUSERS = [
    ("UNet2DModel", {**_UNET, "sample_size": 32, "in_channels": 3, "out_channels": 3,
                     "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
                     "up_block_types": ("AttnUpBlock2D", "UpBlock2D")}, {"sample": (3, "H", "W"), "timestep": "step"}),
    ("UNet2DConditionModel", {**_UNET, "sample_size": 32, "in_channels": 4, "out_channels": 4,
                              "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
                              "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "cross_attention_dim": 32,
                              "attention_head_dim": 8},
     {"sample": (4, "H", "W"), "timestep": "step", "encoder_hidden_states": ("S", 32)}),
    ("AutoencoderKL", _AUTOENCODER, (3, "H", "W")),
    ("VQModel", {**_AUTOENCODER, "num_vq_embeddings": 16}, (3, "H", "W")),
    ("AutoencoderTiny", {"encoder_block_out_channels": (16, 16), "decoder_block_out_channels": (16, 16),
                         "num_encoder_blocks": (1, 1), "num_decoder_blocks": (1, 1)}, (3, "H", "W")),
    ("DiTTransformer2DModel", {"num_attention_heads": 2, "attention_head_dim": 8, "in_channels": 4, "num_layers": 2,
                               "sample_size": 8, "patch_size": 2, "num_embeds_ada_norm": 10},
     {"hidden_states": (4, "H", "W"), "timestep": "step", "class_labels": "label"}),
]

CONFIGS = _configs()


def build(config_id: str):
    """The configured model, in eval mode: on the meta device, or on the CPU where its
    constructor reads a tensor's value."""
    import torch

    lib, name, kwargs, _ = CONFIGS[config_id]

    def make():
        if lib == "smp":
            import segmentation_models_pytorch as smp

            return getattr(smp, name)(encoder_weights=None, **kwargs)
        if lib == "diffusers":
            import diffusers

            return getattr(diffusers, name)(**kwargs)
        if lib == "pretrainedmodels":
            import pretrainedmodels

            return pretrainedmodels.__dict__[name](num_classes=1000, pretrained=None)
        if lib == "efficientnet_pytorch":
            from efficientnet_pytorch import EfficientNet

            return EfficientNet.from_name(name)
        if lib == "open_clip":
            import open_clip

            return open_clip.create_model(name, pretrained=None).visual
        if lib == "segment_anything":
            from segment_anything import sam_model_registry

            return sam_model_registry[name]().image_encoder
        if lib == "ultralytics":
            import contextlib
            import io

            from ultralytics.nn import tasks

            with contextlib.redirect_stdout(io.StringIO()):  # (its summary of the model)
                return getattr(tasks, name)(kwargs["cfg"], verbose=False)
        if lib.startswith("hf"):
            import transformers

            options = dict(kwargs)
            config = getattr(transformers, options.pop("config"))(**options)
            return getattr(transformers, name)(config)
        from monai.networks import nets

        return getattr(nets, name)(**kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if lib.startswith("hf-"):
            return make().eval()
        try:
            with torch.device("meta"):
                return make().eval()
        except (RuntimeError, NotImplementedError) as e:
            if "meta" not in str(e):
                raise
            return make().eval()  # (a constructor that reads a value: SegFormer's drop-path rates)


def one(config_id: str, quick: bool = False) -> dict:
    """Everything about one configuration, as a JSON-able dict."""
    import symshape

    import torch

    lib, _, _, shape = CONFIGS[config_id]
    if lib == "diffusers" and isinstance(shape, dict):  # (the step and the label: 0-d int64 tensors)
        shape = {k: symshape.Input((), torch.long) if v in ("step", "label") else v for k, v in shape.items()}
    dims = [d for v in (shape.values() if isinstance(shape, dict) else [shape]) for d in getattr(v, "shape", v)]
    names = list(dict.fromkeys(d for d in dims if isinstance(d, str)))
    sizes = {1: (QUICK_1D, SIZES_1D), 2: (QUICK_2D, SIZES_2D), 3: (QUICK_3D, SIZES_3D)}[len(names)][0 if quick else 1]
    if names == ["H", "W", "S"]:
        sizes = QUICK_TEXT_2D if quick else SIZES_TEXT_2D
    sizes = sizes + _MADE_FOR.get(lib, [])[:1 if quick else None]
    if lib == "hf-text":
        shape = symshape.Input(shape, torch.long)  # token ids
    if lib == "hf-seq2seq":  # the source's token ids and the target's
        shape = {"input_ids": symshape.Input(("T",), torch.long), "decoder_input_ids": symshape.Input(("S",), torch.long)}
        sizes = QUICK_SEQ2SEQ if quick else SIZES_SEQ2SEQ
    if lib == "hf-whisper":  # log-mel features and the target's token ids
        shape = {"input_features": (_WHISPER["num_mel_bins"], "T"),
                 "decoder_input_ids": symshape.Input(("S",), torch.long)}
        sizes = QUICK_WHISPER if quick else SIZES_WHISPER
    row: dict = {"model": config_id}
    try:
        model = build(config_id)
    except Exception as e:  # noqa: BLE001 - the library refuses the configuration
        row.update(status="not built", why=type(e).__name__, detail=str(e).splitlines()[0][:200])
        return row
    t = time.perf_counter()
    try:
        a = symshape.analyze(model, shape)
        row["analyze_s"] = round(time.perf_counter() - t, 3)
    except Exception as e:  # noqa: BLE001 - every failure is a row of the table
        # (where the model's own branches were traced side by side, what stopped a side says most)
        detail = str(e).splitlines()[0].rpartition("; traced side by side, it stops at ")[2]
        row.update(status="refused", why=sweep._error_class(e), detail=detail[:300],
                   analyze_s=round(time.perf_counter() - t, 3))
        return row
    try:
        points = [dict(zip(names, s)) for s in sizes]
        report = a.verify(sizes=points, device="cpu" if lib.startswith("hf-") else "meta")
        try:
            found = a.valid_sizes()
            valid = (found.summary() if hasattr(found, "summary") else str(found))[:200]
        except symshape.SymshapeError as e:  # documented: the solver says what it cannot solve
            found = valid = f"not solved ({type(e).__name__}: {str(e).splitlines()[0][:150]})"
        wrong = sweep.valid_sizes_wrong(a, found, points)
        if a.in_features:
            a.formula()
        row.update(status="ok" if report.ok else "mismatch", checked=report.checked, valid=valid,
                   torch_runs=sum(1 for r in report.results if r[1]), notes=len(report.notes))
        if not report.ok:
            row["detail"] = str(report.mismatches[0])[:300]
        elif wrong:
            row.update(status="valid sizes disagree", detail=sweep.wrong_detail(wrong))
    except Exception as e:  # noqa: BLE001 - a crash after analysis is a finding
        row.update(status="crash after analysis", why=type(e).__name__, detail=str(e).splitlines()[0][:300])
    return row


def child(config_id: str, timeout: float, quick: bool = False) -> dict:
    """``one(config_id)`` in a child process."""
    cmd = [sys.executable, __file__, "--one", config_id] + (["--quick"] if quick else [])
    return sweep._run_child(cmd, config_id, timeout)


def _write(rows: list[dict], path: str, elapsed: float) -> None:
    ok = sum(r.get("status") == "ok" for r in rows)
    built = sum(r.get("status") != "not built" for r in rows)
    lines = header(elapsed) + [
        f"**symshape analyzes and agrees with torch: {ok} / {built}** (of {len(rows)} configurations, "
        f"{len(rows) - built} the library does not build).",
        "",
        "| configuration | symshape | why / valid sizes | analyze s | checks | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        why = r.get("detail") or r.get("valid") or ""
        if r.get("why"):
            why = f"{r['why']}: {why}"
        why = why.replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| {r['model']} | {r.get('status', '?')} | {why} | {r.get('analyze_s', '')} | "
                     f"{r.get('checked', '')} | {r.get('notes', '')} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def header(elapsed: float) -> list[str]:
    """The page's title and what was measured how (``elapsed``: the run's seconds)."""
    import torch

    from importlib import metadata

    versions = []
    for dist in ("segmentation-models-pytorch", "monai", "transformers", "diffusers", "ultralytics",
                 "pretrainedmodels", "efficientnet_pytorch", "open_clip_torch", "segment-anything"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return [
        "# Coverage: segmentation_models_pytorch, MONAI, transformers, diffusers, ultralytics and model zoos",
        "",
        f"Measured by `python bench/libraries.py` on {datetime.date.today()} with torch {torch.__version__}, "
        f"{', '.join(versions)} ({elapsed / 60:.0f} min on this machine). Each configuration (the "
        "constructor's keyword arguments are in bench/libraries.py) is built under `torch.device(\"meta\")` "
        "in eval mode and analyzed with a one-channel or three-channel input of symbolic size; "
        "`verify(device=\"meta\")` compares every step with torch at "
        + ", ".join("×".join(map(str, s)) for s in SIZES_2D) + " (2-D) or "
        + ", ".join("×".join(map(str, s)) for s in SIZES_3D)
        + " (3-D), sizes torch refuses included, and `valid_sizes()`, `evaluate()` and `formula()` must "
        "not crash (`valid_sizes()` must hold exactly the sizes among these that torch accepts). transformers' text models (small configurations, with their key cache) are built on the "
        "CPU, given token ids of length T (`symshape.Input((\"T\",), torch.long)`), and its speech encoders a "
        "waveform of length L; each is compared with torch's CPU forward at T (or L) = " + ", ".join(str(s[0]) for s in SIZES_1D) + "; its encoder-decoders are given the source's token ids (length T) and the target's (`decoder_input_ids`, length S), and compared at (T, S) = " + ", ".join(f"({t}, {u})" for t, u in SIZES_SEQ2SEQ) + " (Whisper: 16 log-mel bins of T frames, at " + ", ".join(f"({t}, {u})" for t, u in SIZES_WHISPER) + "). torch's meta kernels do not look at an index's values: where the meta forward ran "
        "past an index check symshape makes (the CPU kernels raise there), verify() counts a note, not "
        "a mismatch (the notes column). transformers' DETR, Conditional DETR and RT-DETR are built and "
        "verified on the CPU as well (their forward reads a value with `.item()`). diffusers' models are "
        "called as its pipelines call them, the step (and DiT's class label) a 0-d int64 tensor; "
        "UNet2DConditionModel's text of length S is compared at (H, W, S) = "
        + ", ".join(f"({h}, {w}, {t})" for h, w, t in SIZES_TEXT_2D) + ". ultralytics' models are built "
        "from its model files without weights, as `YOLO(\"yolov8n.yaml\")` builds them (`DetectionModel`, "
        "`SegmentationModel` ... of `ultralytics.nn.tasks`; on the CPU where the constructor runs a forward "
        "to find its strides), in eval mode, and give their inference outputs. pretrainedmodels' every "
        "model, EfficientNet-PyTorch's, OpenCLIP's image towers and Segment Anything's image encoder are "
        "built as their READMEs say, without weights, and also checked at the sizes they are made for "
        "(299×299 and 331×331, 384×384, 1024×1024).",
        "",
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="comma-separated configuration ids (default: all)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    p.add_argument("--quick", action="store_true", help="check two sizes instead of six")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per configuration (default 300)")
    p.add_argument("--no-write", action="store_true", help="print rows, do not write the docs page")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "coverage-libraries.md"))
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.quick)))
        return 0
    names = args.models.split(",") if args.models else list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s): {', '.join(unknown)}")
    start = time.perf_counter()
    rows = []
    for i, name in enumerate(names, 1):
        row = child(name, args.timeout, args.quick)
        rows.append(row)
        print(f"[{i}/{len(names)}] {name}: {row.get('status')} {row.get('why', '')} {row.get('analyze_s', '')}s",
              flush=True)
    if not args.no_write:
        _write(rows, args.out, time.perf_counter() - start)
    ok = sum(r.get("status") == "ok" for r in rows)
    print(f"symshape: {ok} / {len(rows)} analyze and agree with torch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
