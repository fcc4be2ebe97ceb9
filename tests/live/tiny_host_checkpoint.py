"""Build a tiny random SD-1 checkpoint that a real AUTOMATIC1111 webui loads and samples with.

Run it with the webui's own interpreter, since it builds the model with the webui's `ldm`:

    WEBUI_PYTHON tests/live/tiny_host_checkpoint.py --webui-dir WEBUI_DIR --out-dir DIR [--name N] [--seed S]
        [--latent-channels C] [--text-width W]

It writes DIR/N.safetensors, DIR/N.yaml (the webui uses a same-named .yaml beside a checkpoint as its config) and
DIR/N-clip/ (a tiny CLIPTextModel config.json and CLIP tokenizer files, which the .yaml's FrozenCLIPEmbedder
`version` points at, so nothing is downloaded). The last line printed is a JSON report that includes the measured
brightness response of the VAE decoder.

A freshly built random model is useless for brightness tests in two ways, both fixed here:
- ldm zero-initialises every output convolution (UNet out, ResBlock out, attention proj_out), so the UNet predicts
  exactly zero and the prompt has no effect. Those layers get their default random initialisation back.
- a random VAE decoder ends in GroupNorm, which removes a constant latent offset, so the image's brightness ignores
  the latent mean. One channel pair (the first GroupNorm group) is wired to carry the latent mean through the
  residual stream untouched, and the output convolution reads it. The encoder gets the mirrored path (grey level to
  the latent mean) with a near-zero posterior variance, so img2img keeps brightness too.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import torch

MEAN_CHANNEL = 0  # the carried channel; channel 1 (same GroupNorm group) stays 0 so the group mean tracks it
QUIET_CHANNEL = 1
CARRIED = (MEAN_CHANNEL, QUIET_CHANNEL)
DECODER_GAIN = 0.6  # conv_out weight on the carried channel: about ±25 grey levels per unit of normalised mean
ENCODER_GAIN = 4.0  # encoder conv_out weight: the latent mean moves by about ±0.6 across black..white
LOGVAR_BIAS = -20.0  # posterior std e^-10: encoding is effectively deterministic


def builder_arguments(description: str, flag: str, webui: str, latent_channels_help: str) -> argparse.ArgumentParser:
    """The arguments every host's checkpoint builder takes (the live tier calls them alike)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(f"--{flag}-dir", type=Path, required=True, help=f"root of the {webui} checkout")
    parser.add_argument("--out-dir", type=Path, required=True, help="folder to write the checkpoint into")
    parser.add_argument("--name", default="tiny-sd1", help="file name stem (default tiny-sd1)")
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the random weights (default 0)")
    parser.add_argument("--latent-channels", type=int, default=4, help=latent_channels_help)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = builder_arguments(__doc__.splitlines()[0], "webui", "AUTOMATIC1111",
                               "UNet/VAE latent channels (SD-1 has 4)")
    parser.add_argument("--text-width", type=int, default=32, help="CLIP hidden size = UNet context_dim")
    parser.add_argument("--family", choices=("sd15", "sdxl"), default="sd15",
                        help="sdxl: sgm's DiffusionEngine (the webui takes a model with a conditioner for SDXL)")
    return parser.parse_args(argv)


def bpe_vocab_file() -> Path:
    # The CLIP BPE merges ship inside the webui's `clip` (openai-clip) and `open_clip` packages.
    for package in ("clip", "open_clip"):
        try:
            module = __import__(package)
        except ImportError:
            continue
        candidate = Path(module.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
        if candidate.exists():
            return candidate
    raise SystemExit(
        "tiny_host_checkpoint: no bpe_simple_vocab_16e6.txt.gz found in the `clip` or `open_clip` package of "
        f"{sys.executable}; run this script with the webui's interpreter (WEBUI_PYTHON)"
    )


def bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the rest to code points from 256 up.
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def write_tokenizer(folder: Path) -> int:
    """vocab.json + merges.txt exactly as openai/clip-vit-large-patch14 has them (49408 tokens)."""
    with gzip.open(bpe_vocab_file(), "rt", encoding="utf-8") as bpe:
        lines = bpe.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    alphabet = list(bytes_to_unicode().values())
    tokens = alphabet + [t + "</w>" for t in alphabet] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77, "do_lower_case": True}))
    return len(tokens)


def write_text_encoder_folder(folder: Path, text_width: int) -> None:
    from transformers import CLIPTextConfig

    folder.mkdir(parents=True, exist_ok=True)
    vocab_size = write_tokenizer(folder)
    config = CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=text_width,
        intermediate_size=2 * text_width,
        projection_dim=text_width,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )
    config.save_pretrained(folder)


def host_config(webui_dir: Path, latent_channels: int, text_width: int, clip_folder: Path):
    from omegaconf import OmegaConf

    config = OmegaConf.load(webui_dir / "configs" / "v1-inference.yaml")
    params = config.model.params
    params.channels = latent_channels
    unet = params.unet_config.params
    unet.update(
        in_channels=latent_channels,
        out_channels=latent_channels,
        model_channels=32,
        channel_mult=[1, 2],
        num_res_blocks=1,
        attention_resolutions=[2],
        num_heads=2,
        context_dim=text_width,
    )
    vae = params.first_stage_config.params
    vae.embed_dim = latent_channels
    vae.ddconfig.update(z_channels=latent_channels, ch=64, ch_mult=[1, 1, 1, 1], num_res_blocks=1)
    params.cond_stage_config.params = {"version": str(clip_folder.resolve()), "device": "cpu"}
    return config


SDXL_SIZE_EMBEDDERS = ("original_size_as_tuple", "crop_coords_top_left", "target_size_as_tuple")
SIZE_EMBEDDING = 256  # ConcatTimestepEmbedderND's outdim; each embeds a pair: 2 × 256 per embedder


def sdxl_config(webui_dir: Path, latent_channels: int, text_width: int, clip_folder: Path):
    """SDXL base's config reduced: one CLIP-L-style embedder (penultimate layer, the crossattn) and the three size
    embedders (the vector: 3 × 512, no pooled text), a UNet 32 wide with linear projections, a small VAE. The webui
    detects SDXL by the conditioner, uses the yaml beside the checkpoint, and never downloads: the embedder's
    `version` is the tiny local CLIP folder."""
    from omegaconf import OmegaConf

    config = OmegaConf.load(webui_dir / "repositories" / "generative-models" / "configs" / "inference" /
                            "sd_xl_base.yaml")
    params = config.model.params
    unet = params.network_config.params
    unet.update(
        adm_in_channels=len(SDXL_SIZE_EMBEDDERS) * 2 * SIZE_EMBEDDING, use_checkpoint=False,
        in_channels=latent_channels, out_channels=latent_channels, model_channels=32, attention_resolutions=[2],
        num_res_blocks=1, channel_mult=[1, 2], num_head_channels=16, transformer_depth=[1, 1],
        context_dim=text_width, spatial_transformer_attn_type="softmax",
    )
    text = {"is_trainable": False, "input_key": "txt", "target": "sgm.modules.encoders.modules.FrozenCLIPEmbedder",
            "params": {"layer": "hidden", "layer_idx": 1, "version": str(clip_folder.resolve()), "device": "cpu"}}
    size_embedder = "sgm.modules.encoders.modules.ConcatTimestepEmbedderND"
    sizes = [{"is_trainable": False, "input_key": key, "target": size_embedder, "params": {"outdim": SIZE_EMBEDDING}}
             for key in SDXL_SIZE_EMBEDDERS]
    params.conditioner_config.params.emb_models = [text, *sizes]
    vae = params.first_stage_config.params
    vae.embed_dim = latent_channels
    vae.ddconfig.update(z_channels=latent_channels, ch=64, ch_mult=[1, 1, 1, 1], num_res_blocks=1,
                        attn_type="vanilla")
    return config


def build_model(config, family: str = "sd15"):
    import ldm.modules.encoders.modules as encoders
    from ldm.util import instantiate_from_config
    from transformers import CLIPTextConfig, CLIPTextModel

    if family == "sdxl":
        import sgm.modules.encoders.modules as encoders
        from sgm.util import instantiate_from_config
    # FrozenCLIPEmbedder loads pretrained weights; the tiny text encoder has none yet, so build it at random.
    original = encoders.CLIPTextModel.from_pretrained
    encoders.CLIPTextModel.from_pretrained = lambda version: CLIPTextModel(CLIPTextConfig.from_pretrained(version))
    try:
        return instantiate_from_config(config.model).eval()
    finally:
        encoders.CLIPTextModel.from_pretrained = original


def reinit_zero_layers(model: torch.nn.Module) -> list[str]:
    """Give every zero-initialised conv/linear its default random initialisation back."""
    revived = []
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d | torch.nn.Conv1d | torch.nn.Linear) and not module.weight.any():
            module.reset_parameters()
            revived.append(name)
    return revived


def give_text_output_a_mean(model) -> None:
    if hasattr(model, "conditioner"):  # SDXL reads the penultimate layer: give the last encoder layer's output a mean
        text = model.conditioner.embedders[0].transformer.text_model
        with torch.no_grad():
            text.encoder.layers[0].mlp.fc2.bias.normal_(0.5, 0.5)
        return
    final_norm = model.cond_stage_model.transformer.text_model.final_layer_norm
    final_norm.weight.normal_(1.0, 0.1)
    final_norm.bias.normal_(0.5, 0.5)


def centre_tap(weight: torch.Tensor, out_index: int, in_index: int, value: float) -> None:
    weight[out_index, in_index, weight.shape[2] // 2, weight.shape[3] // 2] = value


def carry_channel_through(blocks: list[torch.nn.Module], carried: tuple[int, ...] = CARRIED) -> None:
    """Make the carried channels (MEAN_CHANNEL and its quiet GroupNorm group mates) pass untouched through residual
    blocks, attention and resampling."""
    rows = list(carried)
    for block in blocks:
        for module in block.modules():
            name = type(module).__name__
            if name == "ResnetBlock":
                module.conv2.weight[rows] = 0  # residual branch adds nothing to the carried channels
                module.conv2.bias[rows] = 0
                shortcut = getattr(module, "nin_shortcut", None)
                if shortcut is not None:  # a width change: the 1×1 shortcut copies the carried channels alone
                    shortcut.weight[rows] = 0
                    shortcut.bias[rows] = 0
                    for channel in carried:
                        centre_tap(shortcut.weight, channel, channel, 1.0)
            elif name in {"AttnBlock", "MemoryEfficientAttnBlock"}:
                module.proj_out.weight[rows] = 0
                module.proj_out.bias[rows] = 0
            elif name in {"Upsample", "Downsample"} and getattr(module, "with_conv", False):
                conv = module.conv
                conv.weight[rows] = 0  # the resampling conv is not residual: copy the carried channels through
                conv.bias[rows] = 0
                for channel in carried:
                    centre_tap(conv.weight, channel, channel, 1.0)


def wire_brightness_path(vae: torch.nn.Module, latent_channels: int, carried: tuple[int, ...] = CARRIED) -> None:
    """Decoder: latent mean -> image grey level; encoder: grey level -> latent mean (see the module docstring).

    `carried` is MEAN_CHANNEL and the channels sharing its GroupNorm group, held at zero: two for this builder's
    64-channel VAE, the first 16 for a full-size one (512 channels in 32 groups)."""
    rows = list(carried)
    torch.nn.init.dirac_(vae.post_quant_conv.weight)
    vae.post_quant_conv.bias.zero_()
    torch.nn.init.dirac_(vae.quant_conv.weight)
    vae.quant_conv.bias.zero_()

    decoder = vae.decoder
    decoder.conv_in.weight[rows] = 0
    decoder.conv_in.bias[rows] = 0
    for latent in range(latent_channels):
        centre_tap(decoder.conv_in.weight, MEAN_CHANNEL, latent, 1.0 / latent_channels)
    carry_channel_through([decoder.mid, decoder.up], carried)
    decoder.conv_out.weight[:, rows] = 0
    for rgb in range(3):
        centre_tap(decoder.conv_out.weight, rgb, MEAN_CHANNEL, DECODER_GAIN)

    encoder = vae.encoder
    encoder.conv_in.weight[rows] = 0
    encoder.conv_in.bias[rows] = 0
    for rgb in range(3):
        centre_tap(encoder.conv_in.weight, MEAN_CHANNEL, rgb, 1.0 / 3)
    carry_channel_through([encoder.down, encoder.mid], carried)
    moments = encoder.conv_out  # rows [0, C) are the posterior means, [C, 2C) the log-variances
    moments.weight[:, rows] = 0
    for latent in range(latent_channels):
        centre_tap(moments.weight, latent, MEAN_CHANNEL, ENCODER_GAIN)
    moments.weight[latent_channels:] = 0
    moments.bias[latent_channels:] = LOGVAR_BIAS


def grey_level(image: torch.Tensor) -> float:
    # The webui maps decoder output [-1, 1] to [0, 255] the same way.
    return float(((image.clamp(-1, 1) + 1) * 127.5).mean())


def measure_brightness_response(model, latent_channels: int, seed: int) -> dict:
    """Grey levels of decoded latents (sampler scale) with constant offsets, and of encode→decode round trips."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(1, latent_channels, 8, 8, generator=generator)
    decoded = {f"{offset:+d}": grey_level(model.decode_first_stage(base + offset)) for offset in (-1, 0, 1)}
    latent_mean, round_trip = {}, {}
    for level in (-0.6, 0.0, 0.6):
        image = torch.full((1, 3, 64, 64), level) + 0.1 * torch.randn(1, 3, 64, 64, generator=generator)
        encoded = model.encode_first_stage(image)  # sgm (SDXL) scales it there already
        latent = model.get_first_stage_encoding(encoded) if hasattr(model, "get_first_stage_encoding") else encoded
        latent_mean[f"{grey_level(image):.0f}"] = float(latent.mean())
        round_trip[f"{grey_level(image):.0f}"] = grey_level(model.decode_first_stage(latent))
    return {
        "decoded_grey_by_latent_offset": decoded,
        "latent_mean_by_image_grey": latent_mean,
        "round_trip_grey_by_image_grey": round_trip,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    webui_dir = args.webui_dir.resolve()
    sys.path.insert(0, str(webui_dir / "repositories" / "stable-diffusion-stability-ai"))
    sys.path.insert(0, str(webui_dir / "repositories" / "generative-models"))
    from safetensors.torch import save_file

    torch.manual_seed(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    clip_folder = args.out_dir / f"{args.name}-clip"
    write_text_encoder_folder(clip_folder, args.text_width)
    configure = sdxl_config if args.family == "sdxl" else host_config
    config = configure(webui_dir, args.latent_channels, args.text_width, clip_folder)
    model = build_model(config, args.family)
    with torch.no_grad():
        revived = reinit_zero_layers(model)
        give_text_output_a_mean(model)
        wire_brightness_path(model.first_stage_model, args.latent_channels)
        response = measure_brightness_response(model, args.latent_channels, args.seed)

    from omegaconf import OmegaConf

    if args.family == "sdxl":
        # The webui builds the text encoder without weights only where the file has a text encoder it knows
        # (SD-1's, SD-2's, SDXL's bigG); this one has only CLIP-L, so the folder must hold its weights to load.
        # As .safetensors: the webui refuses to unpickle a .bin that current torch wrote.
        model.conditioner.embedders[0].transformer.save_pretrained(clip_folder, safe_serialization=True)
    checkpoint = args.out_dir / f"{args.name}.safetensors"
    state = {key: value.detach().contiguous().clone() for key, value in model.state_dict().items()}
    save_file(state, str(checkpoint))
    OmegaConf.save(config, args.out_dir / f"{args.name}.yaml")
    config_path = (args.out_dir / f"{args.name}.yaml").resolve()
    return print_report(checkpoint, state, revived, response, config=str(config_path),
                        text_encoder=str(clip_folder.resolve()), latent_channels=args.latent_channels,
                        text_width=args.text_width, family=args.family)


def print_report(checkpoint: Path, state: dict, revived: list[str], response: dict, **fields) -> int:
    """The builder's last line: a JSON report the live tier reads (HostCheckpoint.report)."""
    report = {"checkpoint": str(checkpoint.resolve()), **fields,
              "parameters": sum(v.numel() for v in state.values()), "reinitialised_layers": len(revived), **response}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
