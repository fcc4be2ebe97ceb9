"""Re-record tests/parity/data/oms_reference.safetensors by running One More Step's own code (not collected by pytest).

The reference (github mhh0318/OneMoreStep) has no license file, so none of its code is in this repository: give a
checkout of it outside the repository and a throwaway environment it runs in (it imports diffusers 0.23 internals):

    python3 -m venv /tmp/oms-ref-venv
    /tmp/oms-ref-venv/bin/pip install torch==2.13.0 diffusers==0.23.1 transformers==4.35.2 "huggingface_hub<0.26" \
        safetensors numpy openai-clip==1.0.1 ftfy==6.3.1
    git clone https://github.com/mhh0318/OneMoreStep /tmp/OneMoreStep
    OMS_REFERENCE_DIR=/tmp/OneMoreStep /tmp/oms-ref-venv/bin/python tests/parity/record_oms_reference.py [OUT]

openai-clip only supplies CLIP's BPE vocabulary file (nothing is downloaded); OMS_REFERENCE_COMMIT names the
reference's commit where OMS_REFERENCE_DIR is not a git checkout.

What runs is the reference's: UNet2DConditionWoCTModel built from the released "b" layout (oms_tiny_release), saved
with its own save_pretrained into a release folder and loaded back with its from_pretrained as the pipeline's loader
does; OMSPipeline.__call__ with that module, an SD-2-style CLIPTextModel + CLIPTokenizer ("!" padding) of
transformers 4.35 as oms_text_encoder / oms_tokenizer, and a tiny StableDiffusionPipeline of diffusers 0.23 (DDIM,
SD's schedule) as sd_pipeline, whose __call__ only keeps the latents OMS hands it. A forward hook on the module
records its input (x_T, the "" and prompt embeddings) and output v; the generator's state at that moment gives the
fresh noise z that oms_step draws. The weights are not recorded: they are rebuilt from seeds, and their sha256 (of
the tensors and of the files as saved) is.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_OUT = HERE / "data" / "oms_reference.safetensors"
REFERENCE_FILES = ("diffusers_patch/models/unet_2d_condition_woct.py", "diffusers_patch/pipelines/oms/pipeline_oms.py")


def reference_dir() -> Path:
    value = os.environ.get("OMS_REFERENCE_DIR")
    if not value or not (Path(value) / REFERENCE_FILES[1]).is_file():
        sys.exit(f"OMS_REFERENCE_DIR={value!r}: not a checkout of mhh0318/OneMoreStep (no {REFERENCE_FILES[1]})")
    return Path(value).resolve()


def reference_commit(root: Path) -> str:
    if os.environ.get("OMS_REFERENCE_COMMIT"):
        return os.environ["OMS_REFERENCE_COMMIT"]
    result = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"{root} is not a git checkout: set OMS_REFERENCE_COMMIT to the reference commit it was taken from")
    return result.stdout.strip()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str]) -> None:
    out = Path(argv[0]) if argv else DEFAULT_OUT
    root = reference_dir()
    sys.path[:0] = [str(root), str(REPO), str(HERE)]

    import diffusers
    import safetensors
    import torch
    import transformers
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.utils.torch_utils import randn_tensor
    from diffusers_patch.models.unet_2d_condition_woct import UNet2DConditionWoCTModel
    from diffusers_patch.pipelines.oms.pipeline_oms import OMSPipeline
    from oms_tiny_release import (
        GUIDANCE_SCALES,
        HEIGHT,
        MODEL_INDEX,
        MODULE_CONFIG,
        MODULE_PROMPTS,
        MODULE_SEED,
        NOISE_SEED,
        NUM_INFERENCE_STEPS,
        TEXT_CONFIG,
        TEXT_POINTER,
        TEXT_PROMPTS,
        TEXT_SEED,
        WIDTH,
        seeded_state,
        shapes_of,
        state_sha256,
        vocabulary_sha256,
    )
    from safetensors.torch import save_file
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from sing_core.text.bpe_vocab import read_bpe_gz, read_tokenizer_folder, write_tokenizer_folder
    from sing_core.text.vocab_sources import package_bpe_gz_files

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="oms-reference-"))
    release, sd2 = work / "oms_b_tiny", work / "sd2_tiny"

    # The module: the reference's class, seeded fp16 weights, its save_pretrained into the release layout.
    module = UNet2DConditionWoCTModel(**MODULE_CONFIG)
    module_shapes = shapes_of(module.state_dict())
    module_state = seeded_state(module_shapes, MODULE_SEED, torch.float16)
    module.load_state_dict(module_state, strict=True)
    module.half().save_pretrained(release / "oms_module", variant="fp16")
    (release / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2) + "\n")
    (release / "oms_text_encoder").mkdir()
    # As in the releases: the encoder's config, pointing at SD-2.1's text_encoder; no weights.
    text_config = CLIPTextConfig(**TEXT_CONFIG)
    pointer = {**text_config.to_dict(), **TEXT_POINTER, "architectures": ["CLIPTextModel"]}
    (release / "oms_text_encoder" / "config.json").write_text(json.dumps(pointer, indent=2, sort_keys=True) + "\n")
    # Loaded back as the reference's load_sub_model_oms does: from_pretrained(..., subfolder=, variant=, torch_dtype=).
    module = UNet2DConditionWoCTModel.from_pretrained(
        str(release), subfolder="oms_module", variant="fp16", torch_dtype=torch.float32
    ).eval()

    # The text side: a tiny SD-2 text_encoder/ + tokenizer/ (CLIP's vocabulary, "!" padding) as transformers saves it.
    text_encoder = CLIPTextModel(text_config)
    text_shapes = shapes_of(text_encoder.state_dict())
    text_encoder.load_state_dict(seeded_state(text_shapes, TEXT_SEED), strict=True)
    text_encoder.save_pretrained(sd2 / "text_encoder")
    gz_files = package_bpe_gz_files()
    if not gz_files:
        sys.exit("no bpe_simple_vocab_16e6.txt.gz: pip install openai-clip==1.0.1 into this environment")
    vocab_folder = write_tokenizer_folder(read_bpe_gz(gz_files[0]), work / "vocab")
    tokenizer = CLIPTokenizer(
        vocab_file=str(vocab_folder / "vocab.json"),
        merges_file=str(vocab_folder / "merges.txt"),
        pad_token="!",
        model_max_length=77,
    )
    tokenizer.save_pretrained(sd2 / "tokenizer")
    tokenizer.save_pretrained(release / "oms_tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(str(sd2), subfolder="text_encoder").eval()
    tokenizer = CLIPTokenizer.from_pretrained(str(sd2), subfolder="tokenizer")

    # A host pipeline that only keeps what OMS hands it (the OMS step is all that is compared).
    class KeepLatents(StableDiffusionPipeline):
        def __call__(self, latents=None, **kwargs):
            self.kept_latents = latents
            return {"latents": latents}

    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    torch.manual_seed(0)
    host_unet = UNet2DConditionModel(
        sample_size=HEIGHT // 8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=64,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), norm_num_groups=8, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    host = KeepLatents(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=host_unet, scheduler=scheduler,
                       safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe = OMSPipeline(oms_module=module, sd_pipeline=host, oms_text_encoder=text_encoder, oms_tokenizer=tokenizer)

    seen = {}

    def keep_module_io(_module, args, kwargs, output):
        sample = args[0] if args else kwargs["sample"]
        embeddings = args[1] if len(args) > 1 else kwargs["encoder_hidden_states"]
        seen.update(sample=sample.clone(), embeddings=embeddings.clone(), v=output["sample"].clone(),
                    generator_state=generator.get_state())

    module.register_forward_hook(keep_module_io, with_kwargs=True)
    tensors: dict[str, torch.Tensor] = {}
    for guidance in GUIDANCE_SCALES:
        generator = torch.Generator().manual_seed(NOISE_SEED)
        pipe(prompt=MODULE_PROMPTS, height=HEIGHT, width=WIDTH, num_inference_steps=NUM_INFERENCE_STEPS,
             generator=generator, oms_guidance_scale=guidance)
        batch = len(MODULE_PROMPTS)
        x_T = seen["sample"][:batch]
        assert torch.equal(seen["sample"][batch:], x_T), "the reference runs both sides on the same x_T"
        redraw = torch.Generator().set_state(seen["generator_state"])
        z = randn_tensor(tuple(x_T.shape), generator=redraw, dtype=x_T.dtype)
        tag = f"w{guidance:g}"
        tensors.update({
            f"{tag}.x_T": x_T,
            f"{tag}.uncond": seen["embeddings"][:batch],  # "" (the reference puts it first)
            f"{tag}.cond": seen["embeddings"][batch:],
            f"{tag}.v": seen["v"],  # [v_uncond; v_cond], unguided
            f"{tag}.z": z,
            f"{tag}.x_t0": host.kept_latents,
        })
    timestep = int(pipe.scheduler.timesteps[0])
    tensors["alpha_cumprod_t0"] = pipe.scheduler.alphas_cumprod[timestep].reshape(1).to(torch.float64)
    tensors["t0"] = torch.tensor([timestep], dtype=torch.int64)

    # The text path as OMS runs it (oms_text_encode: pad to 77, CLIPTextModel(...)[0]).
    tensors["text.ids"] = tokenizer(TEXT_PROMPTS, padding="max_length", max_length=77, truncation=True,
                                    return_tensors="pt").input_ids
    with torch.no_grad():
        tensors["text.embeddings"] = pipe.oms_text_encode(TEXT_PROMPTS, 1, "cpu")

    saved_module = release / "oms_module" / "diffusion_pytorch_model.fp16.safetensors"
    saved_text = sd2 / "text_encoder" / "model.safetensors"
    files = {
        "oms_module/config.json": (release / "oms_module" / "config.json").read_text(),
        "model_index.json": (release / "model_index.json").read_text(),
        "oms_text_encoder/config.json": (release / "oms_text_encoder" / "config.json").read_text(),
        "text_encoder/config.json": (sd2 / "text_encoder" / "config.json").read_text(),
        "tokenizer/tokenizer_config.json": (sd2 / "tokenizer" / "tokenizer_config.json").read_text(),
        "tokenizer/special_tokens_map.json": (sd2 / "tokenizer" / "special_tokens_map.json").read_text(),
    }
    metadata = {
        "reference": "github.com/mhh0318/OneMoreStep",
        "reference_commit": reference_commit(root),
        "reference_files_sha256": json.dumps({name: file_sha256(root / name) for name in REFERENCE_FILES}),
        "versions": json.dumps({"torch": torch.__version__, "diffusers": diffusers.__version__,
                                "transformers": transformers.__version__, "safetensors": safetensors.__version__}),
        "seeds": json.dumps({"module": MODULE_SEED, "text": TEXT_SEED, "noise": NOISE_SEED}),
        "module_prompts": json.dumps(MODULE_PROMPTS),
        "text_prompts": json.dumps(TEXT_PROMPTS),
        "guidance_scales": json.dumps(list(GUIDANCE_SCALES)),
        "files": json.dumps(files),
        "module_shapes": json.dumps(module_shapes),
        "text_shapes": json.dumps(text_shapes),
        "module_state_sha256": state_sha256(module_state),
        "module_file_sha256": file_sha256(saved_module),
        "text_state_sha256": state_sha256(seeded_state(text_shapes, TEXT_SEED)),
        "text_file_sha256": file_sha256(saved_text),
        "vocabulary_sha256": vocabulary_sha256(read_tokenizer_folder(sd2 / "tokenizer")),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out), metadata=metadata)
    print(f"recorded {out} ({out.stat().st_size} bytes) from the reference at {metadata['reference_commit']}")


if __name__ == "__main__":
    main(sys.argv[1:])
