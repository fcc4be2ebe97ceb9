"""A catalogue name given to sing_diffusers.load_module ("oms_b_openclip_xl"): fetched through huggingface_hub.

Only a name of sing_core's catalogue is fetched, and only because the user passed it: a path is never looked up
online. The files land in huggingface_hub's own cache (HF_HOME, HF_HUB_OFFLINE and tokens work as for every
diffusers model) at the catalogue's revision, and are checked as every download is (sing_core.download.verify):
tensors against the config, the kind against the catalogue. Files that fail are deleted from the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from sing_core.catalogue import CatalogueEntry, CatalogueError, RemoteFile, load_catalogue
from sing_core.download import DownloadError, verify


def is_catalogue_name(path: str | os.PathLike) -> bool:
    """A bare name the catalogue knows, and nothing on disk by that name (a local folder always wins)."""
    text = os.fspath(path)
    return text in load_catalogue().names() and not Path(text).exists()


def fetch_from_hub(name: str, *, cache_dir: str | os.PathLike | None = None) -> Path:
    """The release folder of catalogue module `name` in the Hugging Face cache, downloaded if needed and checked."""
    entry = load_catalogue().get(name)
    if entry.browser_only or entry.hub_repo is None:
        raise CatalogueError(f"{entry.name} is not on Hugging Face: {entry.how_to_get()} ({entry.download_page})")
    fetched = [path for remote in entry.files if (path := _fetch_one(entry, remote, cache_dir)) is not None]
    root = fetched[0].parents[len(Path(entry.files[0].path).parts) - 1]  # the snapshot folder of this revision
    try:
        verify(root, entry)
    except DownloadError as error:
        for file in fetched:
            Path(os.path.realpath(file)).unlink(missing_ok=True)  # the cached blob, not only its snapshot link
            file.unlink(missing_ok=True)
        raise DownloadError(f"{entry.name}: the files from {entry.hub_repo} failed their check and were deleted from "
                            f"the cache: {error}. Call again to download them anew.") from error
    return root


def _fetch_one(entry: CatalogueEntry, remote: RemoteFile, cache_dir: str | os.PathLike | None) -> Path | None:
    """One file through huggingface_hub's cache; None for an optional file the repository does not have."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    try:
        return Path(huggingface_hub.hf_hub_download(entry.hub_repo, remote.path, revision=entry.fetch_revision,
                                                    cache_dir=cache_dir))
    except EntryNotFoundError:
        if remote.required:
            raise
        return None
