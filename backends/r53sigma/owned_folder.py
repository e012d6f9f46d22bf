"""Writing a generated tree into a folder without ever losing a file we did not write.

A folder is ours when it is empty (or absent) or holds our MANIFEST.json ({relative path: sha256}),
the list of files we wrote there last time. Into any other folder we write nothing unless forced.
Even then, and always: a file the manifest does not list is never deleted, and is overwritten only
when forced (or when it already holds exactly the bytes we would write, so nothing is lost).
Files are staged inside the folder first, then each renamed into place, so a reader sees a whole
old or whole new file, and a failure while staging leaves the folder as it was.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

MANIFEST = "MANIFEST.json"
STAGING_PREFIX = ".r53sigma-staging."


class FolderError(Exception):
    """The folder cannot be written safely (or at all): the message says why and what to do."""


def manifest_bytes(files: dict[str, bytes]) -> bytes:
    listing = {path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items()) if path != MANIFEST}
    return (json.dumps(listing, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _safe_relative(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and pure.parts[0] != STAGING_PREFIX


def listed_files(folder: Path) -> set[str] | None:
    """The paths our manifest in ``folder`` lists; None when there is none (or it is not ours)."""
    try:
        listing = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(listing, dict) or not all(isinstance(v, str) for v in listing.values()):
        return None
    return {path for path in listing if _safe_relative(path)}


def _present(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if (p.is_file() or p.is_symlink()) and not p.relative_to(folder).parts[0].startswith(STAGING_PREFIX)
    }


def check_writable(folder: Path, files: dict[str, bytes], force: bool = False) -> set[str]:
    """Raise FolderError unless ``files`` may be written into ``folder``; returns the listed paths."""
    if folder.exists() and not folder.is_dir():
        raise FolderError(f"{folder} exists and is not a folder")
    if not folder.exists():
        return set()
    listed = listed_files(folder)
    present = _present(folder)
    if listed is None:
        if present and not force:
            raise FolderError(
                f"{folder} is not empty and holds no {MANIFEST} of ours: refusing to write into it "
                f"(choose an empty or new folder, or --force to add our files; no other file is deleted)")
        listed = set()
    foreign = sorted(
        path for path in files
        if path != MANIFEST and path in present and path not in listed
        and not ((folder / path).is_file() and (folder / path).read_bytes() == files[path])
    )
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FolderError(f"{folder}: would overwrite file(s) r53sigma did not write: {shown} (--force to overwrite)")
    return listed


def write(folder: Path, files: dict[str, bytes], force: bool = False) -> list[str]:
    """Write ``files`` (relative path -> bytes) into ``folder`` and our manifest last.

    Files the previous manifest listed and this build no longer has are removed; nothing else is.
    Returns the paths removed.
    """
    folder = Path(folder)
    files = {path: data for path, data in files.items() if path != MANIFEST}
    for path in files:
        if not _safe_relative(path):
            raise ValueError(f"refusing to write outside the folder: {path}")
    try:
        listed = check_writable(folder, files, force)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=STAGING_PREFIX))
    except OSError as error:
        raise FolderError(f"cannot write to {folder}: {error.strerror or error}") from None
    removed = []
    try:
        try:
            for relative, data in files.items():
                staged = staging / relative
                staged.parent.mkdir(parents=True, exist_ok=True)
                staged.write_bytes(data)  # honours the umask, like any file the user makes
            # While files move in, the manifest lists old and new alike: an interruption leaves
            # every file we wrote still known as ours.
            union = {**{p: b"" for p in listed if (folder / p).is_file()}, **files}
            _replace(staging, folder, MANIFEST, manifest_bytes(union))
            for relative in files:
                destination = folder / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / relative, destination)
            for relative in sorted(listed - set(files)):
                target = folder / relative
                if target.is_file() or target.is_symlink():
                    target.unlink()
                    removed.append(relative)
                    _prune_empty_parents(target.parent, folder)
            _replace(staging, folder, MANIFEST, manifest_bytes(files))
        except OSError as error:
            raise FolderError(f"cannot write to {folder}: {error.strerror or error}"
                              + (f" ({error.filename})" if error.filename else "")) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return removed


def _replace(staging: Path, folder: Path, relative: str, data: bytes) -> None:
    staged = staging / (relative + ".next")
    staged.write_bytes(data)
    os.replace(staged, folder / relative)


def _prune_empty_parents(directory: Path, folder: Path) -> None:
    while directory != folder and directory.is_relative_to(folder):
        try:
            directory.rmdir()  # only ever an empty folder
        except OSError:
            return
        directory = directory.parent
