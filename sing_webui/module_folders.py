"""The module library as the webui scans it: sing_core's, plus One More Step's release folders as downloaded.

An OMS release (model_index.json + oms_module/ + oms_text_encoder/ + oms_tokenizer/) holds its weights in
oms_module/diffusion_pytorch_model[.fp16].safetensors, which sing_core.library's scan would list as a module named
after that file (or after the oms_module folder). Here such an entry becomes the release itself, named after its
folder, which sing_core.checkpoint.load_module reads as it is. (Belongs in sing_core.library; kept here until the
engine scans OMS releases itself.)
"""

from __future__ import annotations

import dataclasses

from sing_core import library as core_library
from sing_core.library import ModuleEntry, ModuleLibrary
from sing_core.oms_folder import oms_root


def as_release(entry: ModuleEntry) -> ModuleEntry:
    """The OMS release `entry`'s weights belong to, as one entry named after its folder; else `entry`."""
    root = oms_root(entry.weights.parent)
    if root is None or root == entry.root:
        return entry
    return dataclasses.replace(entry, name=root.name, path=root)


class Library(ModuleLibrary):
    """ModuleLibrary whose scan lists OMS releases as one module each (first folder wins a name clash, as there)."""

    def refresh(self) -> Library:
        entries: dict[str, ModuleEntry] = {}
        shadowed: list[ModuleEntry] = []
        for root in self.roots:
            if not root.is_dir():
                continue
            for entry in map(as_release, core_library._scan_root(root)):
                if entry.name not in entries:
                    entries[entry.name] = entry
                elif entries[entry.name].path != entry.path:
                    shadowed.append(entry)
        self.entries = dict(sorted(entries.items(), key=lambda item: item[0].lower()))
        self.shadowed = shadowed
        return self
