"""Per-checkpoint presets: the user's opt-in to SingDiffusion values for one checkpoint.

A JSON file in the webui's data folder (it survives extension updates):

    {"version": 1, "presets": {"<checkpoint title>": {"checkpoint_hash": "…", "enabled": true, "module": "…",
                                                       "guidance_scale": 0.0, "text_source": "auto"}}}

Writes go through a temporary file and a rename, so a reader never sees half a file. A file that cannot be read is
reported and moved aside, never overwritten silently; nothing the user saved is lost.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sing_core.args import PRESET_KEYS, SingArgs

VERSION = 1


class PresetError(ValueError):
    """A preset that cannot be saved; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Preset:
    checkpoint: str
    checkpoint_hash: str | None
    values: dict[str, Any]  # the PRESET_KEYS of SingArgs

    def to_json(self) -> dict[str, Any]:
        return {"checkpoint_hash": self.checkpoint_hash, **self.values}


class PresetStore:
    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.lock = threading.Lock()
        self.warnings: list[str] = []  # what happened to a corrupt file, for the console and the API

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("presets"), dict):
                raise ValueError('expected {"version": 1, "presets": {...}}')
            presets = data["presets"]
            for title, values in presets.items():
                SingArgs.from_dict({k: v for k, v in values.items() if k != "checkpoint_hash"},
                                   source=f"the preset for {title!r}", allowed=PRESET_KEYS)
            return presets
        except (ValueError, OSError, AttributeError) as error:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            self.path.replace(aside)
            message = (f"SingDiffusion: the presets file {self.path} could not be read ({error}); it was moved to "
                       f"{aside} and presets start empty. Fix that file and move it back to restore them.")
            self.warnings.append(message)
            print(message, flush=True)
            return {}

    def _write(self, presets: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump({"version": VERSION, "presets": presets}, file, indent=2, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def all(self) -> dict[str, Preset]:
        with self.lock:
            return {title: _preset(title, raw) for title, raw in self._read().items()}

    def find(self, checkpoint: str, checkpoint_hash: str | None = None) -> Preset | None:
        """The preset saved for this checkpoint title, or for a checkpoint with the same hash (a renamed file)."""
        presets = self.all()
        if checkpoint in presets:
            return presets[checkpoint]
        if checkpoint_hash:
            return next((p for p in presets.values() if p.checkpoint_hash == checkpoint_hash), None)
        return None

    def put(self, checkpoint: str, checkpoint_hash: str | None, values: dict[str, Any]) -> Preset:
        checked = SingArgs.from_dict(values, source=f"the preset for {checkpoint!r}", allowed=PRESET_KEYS).preset()
        with self.lock:
            presets = self._read()
            presets[checkpoint] = {"checkpoint_hash": checkpoint_hash, **checked}
            self._write(presets)
        return Preset(checkpoint, checkpoint_hash, checked)

    def delete(self, checkpoint: str) -> bool:
        with self.lock:
            presets = self._read()
            if checkpoint not in presets:
                return False
            del presets[checkpoint]
            self._write(presets)
            return True


def _preset(title: str, raw: dict[str, Any]) -> Preset:
    values = SingArgs().preset() | {k: v for k, v in raw.items() if k in PRESET_KEYS}
    return Preset(title, raw.get("checkpoint_hash"), values)


def apply_preset(args: SingArgs, preset: Preset | None, checkpoint_fits: bool) -> tuple[SingArgs, str | None]:
    """The arguments to use: the preset's values when the generation follows it, never enabling the module on a
    checkpoint it cannot serve. Returns the arguments and a note for the console, if any."""
    if preset is None or not args.follow_preset:
        return args, None
    values = dict(preset.values)
    note = None
    if values["enabled"] and not checkpoint_fits:
        values["enabled"] = False
        note = f"the preset for {preset.checkpoint} enables SingDiffusion, but that checkpoint cannot use it: ignored"
    return args.replace(**values), note
