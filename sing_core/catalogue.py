"""The known start modules (sing_core/catalogue.json): what each is, where it comes from, which host it fits.

Nothing here touches the network; sing_core.download fetches, on the user's request only. `suggest(host_family)` is
the text a host shows where no module is installed: which module fits the loaded checkpoint and how to get it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from sing_core.kinds import FAMILY_NAMES, HOST_LATENT_FAMILY, METHOD_NAMES, TEXT_NAMES, ModuleKind

CATALOGUE_PATH = Path(__file__).with_name("catalogue.json")
DEFAULT_REVISION = "main"  # where the catalogue pins none: the download is then checked by its config alone


class CatalogueError(LookupError):
    """A name the catalogue does not know, or a module that cannot be downloaded; the message says what to do."""


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the repository and to the module's folder
    approx_size: str | None  # the model page's rounded figure, for the user; never checked
    required: bool  # an optional file missing on the server is skipped with a message


@dataclass(frozen=True)
class CatalogueEntry:
    name: str  # the folder (or file) name the module gets in the host's module folder
    title: str
    kind: ModuleKind
    source_page: str
    download_page: str
    browser_only: bool  # a Google Drive folder: no direct link, the user downloads it in a browser
    approx_size: str | None
    browser_steps: str | None  # for a browser_only module: what to do in the browser and where to put it
    text_needed: str
    hub_repo: str | None
    revision: str | None  # a pinned commit; None where none is known (DEFAULT_REVISION is fetched)
    files: tuple[RemoteFile, ...]

    @property
    def fetch_revision(self) -> str:
        return self.revision or DEFAULT_REVISION

    def how_to_get(self, folder: str | None = None) -> str:
        """The browser steps, or the download command (into `folder` where the host's is not the default)."""
        if self.browser_only:
            return self.browser_steps or f"download it in a browser from {self.download_page}"
        return f"python -m sing_core download {self.name}" + (f" --dir {folder}" if folder else "")

    def row(self) -> str:
        """One line: name, method, family, text, size."""
        size = self.approx_size or "size unknown"
        return (f"{self.name}: {METHOD_NAMES[self.kind.method]}, {FAMILY_NAMES[self.kind.family]} latents, reads "
                f"{TEXT_NAMES[self.kind.text]}, {size}")


@dataclass(frozen=True)
class Catalogue:
    base_url: str
    url_pattern: str
    entries: tuple[CatalogueEntry, ...]

    def get(self, name: str) -> CatalogueEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        known = ", ".join(entry.name for entry in self.entries)
        raise CatalogueError(f"no module called {name!r} in the catalogue (known: {known})")

    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def file_url(self, entry: CatalogueEntry, remote: RemoteFile, base_url: str | None = None) -> str:
        if entry.hub_repo is None:
            raise CatalogueError(f"{entry.name} has no direct download: {entry.how_to_get()} ({entry.download_page})")
        return self.url_pattern.format(base_url=(base_url or self.base_url).rstrip("/"), repo=entry.hub_repo,
                                       revision=entry.fetch_revision, path=remote.path)

    def fitting(self, host_family: str) -> list[CatalogueEntry]:
        """The modules that can serve a checkpoint of that family, in catalogue order."""
        return [entry for entry in self.entries if entry.kind.refusal(host_family) is None]


def _entry(raw: dict) -> CatalogueEntry:
    files = tuple(RemoteFile(f["path"], f.get("approx_size"), bool(f.get("required", True))) for f in raw["files"])
    return CatalogueEntry(
        name=raw["name"], title=raw["title"], kind=ModuleKind(raw["method"], raw["family"], raw["text"]),
        source_page=raw["source_page"], download_page=raw["download_page"], browser_only=bool(raw["browser_only"]),
        approx_size=raw.get("approx_size"), browser_steps=raw.get("browser_steps"), text_needed=raw["text_needed"],
        hub_repo=raw.get("hub_repo"), revision=raw.get("revision"), files=files,
    )


@functools.cache
def load_catalogue(path: Path = CATALOGUE_PATH) -> Catalogue:
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    return Catalogue(raw["hub"]["base_url"], raw["hub"]["url_pattern"], tuple(_entry(m) for m in raw["modules"]))


def suggest(host_family: str | None, folder: str | None = None, also: str = "") -> str:
    """What to tell a user with no module installed: which module fits the loaded checkpoint, and how to get it.
    `folder`: the host's module folder where `download`'s default (models/SingDiffusion) is not it; `also`: the
    host's own way to download, added to each downloadable module's line."""
    catalogue = load_catalogue()
    if host_family in (None, "unknown"):
        host_family = None
        lines = ["No start module is installed. Known modules (`python -m sing_core catalogue` says more):"]
        entries = catalogue.entries
    elif host_family not in HOST_LATENT_FAMILY:
        return (f"No start module exists for {host_family} checkpoints (modules serve SD-1.x/2.x and SDXL); load one "
                "of those to use SingDiffusion.")
    else:
        lines = [f"No start module is installed. For this {host_family} checkpoint:"]
        entries = catalogue.fitting(host_family)
    for entry in entries:
        size = f", {entry.approx_size}" if entry.approx_size else ""
        family = "" if host_family else f", for {FAMILY_NAMES[entry.kind.family]}"
        how = entry.how_to_get(folder) + ("" if entry.browser_only or not also else f" ({also})")
        lines.append(f"- {entry.name} ({METHOD_NAMES[entry.kind.method]}{family}{size}): {how}. Text: "
                     f"{entry.text_needed}.")
    return "\n".join(lines)
