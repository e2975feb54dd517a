"""Outputs put in place whole: a file or folder is made as a hidden temporary sibling, then renamed in.

This module alone writes outputs atomically and names their temporaries, so a stopped command leaves
nothing anyone else has to guess at:
- a file is written at `.NAME.tmp-PID` (made with O_EXCL|O_NOFOLLOW: nothing planted under that name is
  opened), fsynced, renamed over its target (a link there is replaced, never followed), and its folder
  fsynced: `NewFile`, `atomic_file`, `write_file`;
- a folder is filled at `.NAME.tmp-PID`, then the old folder is renamed aside to `.NAME.old-PID`, the new
  one renamed in, the parent fsynced and the old one removed; when the new one cannot go in, the old one
  is put back: `replace_folder`;
- those two names are recognised by `leftover` alone, for recovery (`recover_stopped`, the run folders'
  recover) and for `crmlist doctor`.
Files and folders get their mode from the umask: owner-only (0600, 0700) unless file_mode widens it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

from crmlist.errors import OutputError
from crmlist.testing_hooks import pause_point

NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
TEMPORARY, ASIDE = "tmp", "old"  # .NAME.tmp-PID: new, not yet in place; .NAME.old-PID: old, moved aside
_LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>[0-9]+)")


# --- The one naming scheme --------------------------------------------------------------------------------


def temporary_name(name: str) -> str:
    """The name this process writes `name` under before it goes in place: `.NAME.tmp-PID`."""
    return f".{name}.{TEMPORARY}-{os.getpid()}"


def temporary_path(target: Path) -> Path:
    """The hidden temporary sibling of target (hidden, so a `*.csv` glob of a transfer job never sees it)."""
    return target.with_name(temporary_name(target.name))


def aside_path(target: Path) -> Path:
    """Where this process moves target's old folder while the new one goes in: `.NAME.old-PID`."""
    return target.with_name(f".{target.name}.{ASIDE}-{os.getpid()}")


@dataclass(frozen=True)
class Leftover:
    """A temporary (kind "tmp": new, not yet in place) or an old folder moved aside ("old") of target."""

    path: Path
    target: Path
    kind: str
    pid: int

    @property
    def is_folder(self) -> bool:
        return self.path.is_dir() and not self.path.is_symlink()

    def stopped(self) -> bool:
        """Whether the process that made it is gone. This process's own PID counts as gone (a writer
        recovers before it writes); another live process with that PID (a PID reused) keeps it."""
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, OverflowError):
            return True
        except PermissionError:  # another user's process
            return False
        return False


def leftover(path: Path) -> Leftover | None:
    """The Leftover that path is by its name; None for every other name."""
    match = _LEFTOVER.fullmatch(path.name)
    if match is None:
        return None
    return Leftover(path, path.with_name(match["name"]), match["kind"], int(match["pid"]))


def leftovers_in(folder: Path) -> list[Leftover]:
    """The leftovers directly in folder, sorted by path; none when it cannot be listed."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [found for name in names if (found := leftover(folder / name)) is not None]


def leftovers_below(root: Path) -> list[Leftover]:
    """The leftovers in each folder directly under root (OUT/CAMPAIGN/.RUN_ID.tmp-PID); links not followed."""
    try:
        with os.scandir(root) as entries:
            folders = sorted(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
    except OSError:
        return []
    return [found for folder in folders for found in leftovers_in(folder)]


# --- Removing and recovering -------------------------------------------------------------------------------


def remove(path: Path) -> None:
    """Remove a file, a link (never what it points at) or a folder tree; nothing there is fine. Used while
    cleaning up after an error, so it never raises one of its own."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def roll_back(found: Leftover) -> str:
    """Undo a stopped writer's leftover: an old folder goes back where it was when nothing took its place;
    anything else is removed. Returns what was done."""
    if found.kind == ASIDE and not os.path.lexists(found.target):
        os.rename(found.path, found.target)
        return f"put back {found.target}"
    remove(found.path)
    return f"{'rolled back' if found.kind == TEMPORARY else 'removed'} {found.path}"


def recover_stopped(folder: Path, target: Path | None = None) -> list[str]:
    """Roll back what stopped writers left directly in folder (of target only, when given). Temporaries go
    first, so an old folder is put back only where no new one went in."""
    found = [f for f in leftovers_in(folder) if (target is None or f.target == target) and f.stopped()]
    found.sort(key=lambda f: f.kind != TEMPORARY)
    return [roll_back(f) for f in found]


# --- Files ---------------------------------------------------------------------------------------------------


def create_new(path: Path | str, dir_fd: int | None = None) -> int:
    """A descriptor of a file made anew at path: a stale temp file or a link planted under its name is
    removed first (the link, never what it points at), and O_EXCL|O_NOFOLLOW opens nothing else."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path, dir_fd=dir_fd)
    return os.open(path, NEW_FILE, 0o666, dir_fd=dir_fd)  # the umask gives the mode (owner-only: 0600)


def write_error(path: Path, exc: OSError) -> OutputError:
    """The error (exit 73) for an output that could not be written."""
    return OutputError(
        str(path), f"cannot write: {exc.strerror or exc}", "check the path, its permissions and free space"
    )


def fsync_path(path: Path) -> None:
    """Flush a file's bytes to disk, opened by name: a writer given only the path may have replaced the inode."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_folder(folder: Path) -> None:
    """Flush a folder's names to disk: a rename is durable only once its folder is."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):  # file systems that cannot sync a folder
            raise
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under folder (a folder written by another writer, e.g. DuckDB's COPY)."""
    for here, _, files in os.walk(folder):
        for name in files:
            fsync_path(Path(here) / name)
        fsync_folder(Path(here))


def make_parents(target: Path) -> None:
    """The folders above target; a file where one should be is 'Not a directory', not mkdir's 'File exists'."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(target.parent)) from None


class NewFile:
    """A file written at `.NAME.tmp-PID` beside its target; commit() puts it in place whole, discard()
    removes it, and until then the target keeps its old bytes. Temporaries of the same target that a
    stopped process left are removed first. As a context manager: commit on success, discard on any error,
    an OSError raised as OutputError (exit 73)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.path = temporary_path(target)
        try:
            make_parents(target)
            recover_stopped(target.parent, target)
            self.file: IO[bytes] = open(create_new(self.path), "wb")  # noqa: SIM115  (commit or discard closes it)
        except OSError as exc:
            raise write_error(target, exc) from None
        try:
            pause_point("output:created")
        except BaseException:  # SIGTERM or Ctrl-C while paused there
            self.discard()
            raise

    def commit(self) -> None:
        """fsync the file, rename it over the target, fsync the folder; on failure it is removed."""
        try:
            self.file.close()
            fsync_path(self.path)
            pause_point("output:before-rename")
            os.rename(self.path, self.target)
            pause_point("output:after-rename")
            fsync_folder(self.target.parent)
        except BaseException as exc:  # a failure, SIGTERM or Ctrl-C: no temporary file stays behind
            self.discard()
            if isinstance(exc, OSError):
                raise write_error(self.target, exc) from None
            raise

    def discard(self) -> None:
        """Remove the temporary file; the target is as it was."""
        with contextlib.suppress(OSError):
            self.file.close()
        remove(self.path)

    def __enter__(self) -> NewFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.commit()
            return
        self.discard()
        if isinstance(exc, OSError):
            raise write_error(self.target, exc) from None


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """The path of a NewFile, for writers that open files by name (DuckDB's COPY, xlsxwriter, matplotlib)."""
    with NewFile(target) as new:
        yield new.path


def write_file(target: Path, data: bytes) -> None:
    """target holding data, put in place whole (NewFile)."""
    with NewFile(target) as new:
        new.file.write(data)


def write_in(dir_fd: int, name: str, data: bytes) -> None:
    """name, in the folder open as dir_fd, a file made anew; where one of that name is there already, the
    new one is written beside it (`.NAME.tmp-PID`) and renamed over it. Not fsynced one by one: letters come
    by the thousand, and a run puts the folder around them in place."""
    try:
        _write_all(os.open(name, NEW_FILE, 0o666, dir_fd=dir_fd), data)
        return
    except FileExistsError:
        pass
    tmp = temporary_name(name)
    try:
        _write_all(create_new(tmp, dir_fd), data)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise


def _write_all(fd: int, data: bytes) -> None:
    try:
        done = os.write(fd, data)  # one call for a letter; a short write (a full disk) goes on
        while done < len(data):
            done += os.write(fd, memoryview(data)[done:])
    finally:
        os.close(fd)


def refuse_link(path: Path, option: str) -> None:
    """A folder crmlist writes into inside an output folder must not be a symbolic link."""
    if path.is_symlink():
        raise OutputError(
            str(path),
            "is a symbolic link; crmlist never writes through one",
            f"remove the link, or choose another {option}",
        )


# --- Folders -------------------------------------------------------------------------------------------------


def move_aside(folder: Path) -> Path | None:
    """folder renamed to `.NAME.old-PID` beside it; None when nothing is there."""
    if not os.path.lexists(folder):
        return None
    aside = aside_path(folder)
    remove(aside)  # a stale one of this PID
    try:
        os.rename(folder, aside)
    except OSError as exc:
        raise OutputError(str(folder), f"cannot move the old folder aside: {exc.strerror}", None) from None
    return aside


def replace_folder(new: Path, final: Path) -> None:
    """Put the complete folder new (a temporary sibling of final) at final: the old folder there is moved
    aside, new renamed in, the parent fsynced and the old one removed. When new does not go in (an error,
    SIGTERM, Ctrl-C), the old one is put back; new stays for the caller (a committed run's folder is rolled
    forward later, anything else removed). A kill between the two renames leaves the old folder whole as
    `.NAME.old-PID` and the new one as `.NAME.tmp-PID`, for recovery to put one of them in place."""
    aside = move_aside(final)
    try:
        pause_point("folder:after-aside")
        os.rename(new, final)
    except BaseException as exc:
        what = f"cannot move the new folder into place: {exc.strerror}" if isinstance(exc, OSError) else "stopped"
        if aside is not None:
            _put_back(aside, final, what)
        if isinstance(exc, OSError):
            kept = "; the previous one is back in place" if aside is not None else ""
            raise OutputError(str(final), what + kept, "check the folder is writable") from None
        raise
    try:
        pause_point("folder:after-rename")
        with contextlib.suppress(OSError):  # both names are in place; a lost sync only delays them on disk
            fsync_folder(final.parent)
    finally:
        if aside is not None:
            remove(aside)


def _put_back(aside: Path, final: Path, what: str) -> None:
    try:
        os.rename(aside, final)
    except OSError:
        raise OutputError(
            str(final),
            f"{what}; the previous folder is kept as {aside.name}",
            "the next crmlist writer puts it back (crmlist doctor lists it), or rename it yourself",
        ) from None
