"""Downloading a catalogue module into a module folder, only ever on the user's request.

The module is assembled in a hidden staging folder beside its final place (`.NAME.download/`, which no module list
shows), each file first as `FILE.part`, resumed with an HTTP Range request after an interruption. When every file is
there the module is checked: every tensor's name, shape and dtype against the module's own config, its kind against
the catalogue's, and each safetensors file's length against its header. Only then is the folder renamed to NAME; a
module that fails the check is removed, with a message saying why. So NAME never holds half a module.

The base URL (Hugging Face by default) can be changed with SINGDIFFUSION_DOWNLOAD_URL or `base_url=`, for a mirror
or for tests against a local server.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from sing_core.catalogue import CatalogueEntry, CatalogueError, load_catalogue

BASE_URL_ENV = "SINGDIFFUSION_DOWNLOAD_URL"
PART_SUFFIX = ".part"
CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60.0
USER_AGENT = "sd-webui-singdiffusion (python -m sing_core download)"

# (label, total bytes or None, bytes already there) -> an object with update(n) and close(): a tqdm bar, or silence.
BarFactory = Callable[[str, "int | None", int], object]
# (url, destination) -> None: fetches one file to exactly that path (the webui passes its own downloader).
Fetch = Callable[[str, Path], None]


class DownloadError(RuntimeError):
    """A download that did not complete or a module that failed its check; the message says what to do."""


class RemoteFileMissingError(DownloadError):
    """The server answered 404 for a file."""


class _Silent:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def staging_folder(target: Path) -> Path:
    """Where a module is assembled before it is checked and renamed to `target` (hidden: no module list shows it)."""
    return target.with_name(f".{target.name}.download")


def fetch_file(url: str, dest: Path, *, bar_factory: BarFactory | None = None, timeout: float = TIMEOUT_S) -> None:
    """`url` to `dest` through `dest.part`, resuming a .part left by an interrupted run; `dest` appears only when
    the server's whole file has arrived."""
    part = dest.with_name(dest.name + PART_SUFFIX)
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # nothing after what we have: the .part is the whole file
            part.replace(dest)
            return
        if error.code == 404:
            raise RemoteFileMissingError(f"{url}: not found on the server (404)") from error
        raise DownloadError(f"{url}: the server answered {error.code} {error.reason}; try again later") from error
    except (urllib.error.URLError, OSError) as error:
        raise DownloadError(f"{url}: cannot connect ({error}); check the network, then run the download again to "
                            "resume") from error
    with response:
        if have and response.status != 206:  # the server ignored the Range: start over
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = (bar_factory or (lambda *_: _Silent()))(dest.name, total, have)
        try:
            with part.open("ab" if have else "wb") as out:
                while chunk := _read(response, url):
                    out.write(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    got = part.stat().st_size
    if total is not None and got != total:
        raise DownloadError(f"{url}: the connection ended after {got:,} of {total:,} bytes; run the download again "
                            "to resume")
    part.replace(dest)


def _read(response, url: str) -> bytes:
    try:
        return response.read(CHUNK_BYTES)
    except (OSError, ValueError) as error:  # a reset connection, or http.client.IncompleteRead
        raise DownloadError(f"{url}: the connection broke ({error}); run the download again to resume") from error


def check_safetensors_length(path: Path) -> None:
    """A safetensors file as long as its header says: a file cut short fails here even where its header is whole."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise DownloadError(f"{path}: {len(head)} bytes, too short for a safetensors file")
        (header_length,) = struct.unpack("<Q", head)
        try:
            header = json.loads(f.read(header_length))
        except (ValueError, UnicodeDecodeError) as error:
            raise DownloadError(f"{path}: the safetensors header is damaged ({error})") from error
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    expected = 8 + header_length + max(ends, default=0)
    actual = path.stat().st_size
    if actual != expected:
        raise DownloadError(f"{path}: {actual:,} bytes where its header describes {expected:,}")


def verify(folder: Path, entry: CatalogueEntry) -> None:
    """The module in `folder` is whole and is what the catalogue says: raises DownloadError naming what is not."""
    from sing_core.checkpoint import check_state
    from sing_core.config import ConfigError
    from sing_core.weights import CheckpointError, read_config, read_kind, read_shapes, resolve

    try:
        source = resolve(folder)
        if source.weights.suffix == ".safetensors":
            check_safetensors_length(source.weights)
        config = read_config(source)
        kind = read_kind(source)
        shapes, dtypes, _ = read_shapes(source)
        check_state(shapes, dtypes, config, str(source.weights))
    except (CheckpointError, ConfigError, OSError) as error:
        raise DownloadError(str(error)) from error
    if kind != entry.kind:
        raise DownloadError(f"{folder}: the files describe a {kind.describe()}, the catalogue a "
                            f"{entry.kind.describe()}")


def download_module(
    name: str,
    folder: str | os.PathLike,
    *,
    base_url: str | None = None,
    fetch: Fetch | None = None,
    bar_factory: BarFactory | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Download catalogue module `name` into `folder`/`name` and check it; returns that path.

    An interrupted download is resumed by calling this again. An installed module (the folder exists) is checked
    and kept. `fetch(url, dest)` replaces the built-in downloader (a host's own); `base_url` the catalogue's server.
    """
    catalogue = load_catalogue()
    entry = catalogue.get(name)
    if entry.browser_only:
        raise CatalogueError(f"{entry.name} cannot be downloaded here: {entry.how_to_get()}. Link: "
                             f"{entry.download_page} (from {entry.source_page}).")
    target = Path(folder) / entry.name
    if target.exists():
        verify(target, entry)
        log(f"{entry.name} is already installed at {target} and checks out")
        return target
    base_url = base_url or os.environ.get(BASE_URL_ENV) or None
    fetch = fetch or (lambda url, dest: fetch_file(url, dest, bar_factory=bar_factory))
    staging = staging_folder(target)
    revision = entry.revision or f"{entry.fetch_revision} (no revision pinned: checked by its config instead)"
    log(f"downloading {entry.name} ({entry.approx_size or 'size unknown'}) from {entry.hub_repo} at {revision}")
    for remote in entry.files:
        dest = staging / remote.path
        if dest.is_file():
            continue  # completed by an earlier, interrupted run
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            fetch(catalogue.file_url(entry, remote, base_url), dest)
        except RemoteFileMissingError as error:
            if remote.required:
                raise DownloadError(f"{entry.name}: {error}; the release may have moved, see {entry.source_page}") \
                    from error
            log(f"{remote.path}: not on the server, skipped (optional)")
    for folder_left in sorted(staging.rglob("*"), reverse=True):  # folders of optional files the server lacked
        if folder_left.is_dir() and not any(folder_left.iterdir()):
            folder_left.rmdir()
    try:
        verify(staging, entry)
    except DownloadError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{entry.name}: the download failed its check and was removed: {error}. Download it "
                            f"again; if it fails again, the release has changed: see {entry.source_page}") from error
    staging.replace(target)
    log(f"{entry.name}: checked and installed at {target}")
    return target
