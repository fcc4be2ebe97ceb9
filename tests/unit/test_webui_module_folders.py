"""One More Step's release folders, as downloaded, are one module each in the webui's module list."""

from unet_helpers import TINY, TINY_OMS, tiny_module, unet_state, write_oms_release, write_release

from sing_core.checkpoint import load_module
from sing_core.library import ModuleLibrary as Library


def oms_state():
    from sing_core import SingModule, UNetConfig

    return unet_state(SingModule(UNetConfig.from_dict(TINY_OMS)))


def test_an_oms_release_is_listed_under_its_folder_name_beside_other_modules(tmp_path):
    state = oms_state()
    write_oms_release(tmp_path / "oms_b_openclip_xl", state, family="sdxl")
    write_oms_release(tmp_path / "nested" / "oms_b_openclip_15_21", state, family="sd")
    write_release(tmp_path / "sing", TINY, unet_state(tiny_module()))
    library = Library([tmp_path]).refresh()
    assert library.names() == ["oms_b_openclip_15_21", "oms_b_openclip_xl", "sing"]
    entry = library.resolve("oms_b_openclip_xl")
    assert entry.path == tmp_path / "oms_b_openclip_xl"
    assert entry.weights.name == "diffusion_pytorch_model.fp16.safetensors"
    assert not library.shadowed
    assert load_module(entry.path).kind.family == "sdxl"
    assert load_module(library.resolve("oms_b_openclip_15_21").path).kind.family == "sd"
