"""copier's update merge, decided file by file.

For each path of the old render (O), the user's tree (U) and the new render (N), the outcome is
what `copier update --defaults --conflict inline` leaves in the working tree:

- U == O: N (the template's change, or its deletion);  N == O or U == N: U;
- the user deleted the file: it stays deleted (copier's "intentionally removed" list), unless it
  matches `_skip_if_exists`, in which case it is re-created;
- `_skip_if_exists` files that exist are never touched; the answers file is always N;
- changed on both sides: copier applies the user's diff (O -> U, 3 lines of context, hunks never
  fused) to N with `git apply --reject`, and for any file with a rejected hunk restores U and runs
  `git merge-file` U O N with copier's labels. We run the same git commands on the same inputs,
  only for these files, so the bytes are the same.

One deliberate difference: copier deletes a file the template removed even when the user had
edited it; here the user's version is kept and the file is reported as a conflict, because a
fleet update must never lose an edit.

Where a YAML file still has conflict markers after that, `yamlmerge` gets a chance to merge the
two changes structurally (when they touch different keys or list items).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mlops_gen.fleet.render import SCRATCH, FileEntry, Tree
from mlops_gen.fleet.yamlmerge import merge_yaml

LABELS = ("before updating", "last update", "after updating")
MARKERS = {b"<<<<<<< before updating", b">>>>>>> after updating"}
YAML_SUFFIXES = (".yml", ".yaml")


@dataclass
class Outcome:
    """The merged sub-project: what changes relative to the user's tree, and how it went."""

    result: dict[str, FileEntry | None] = field(default_factory=dict)  # path -> new entry / None = delete
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)         # user-edited files the template removed
    yaml_merged: list[str] = field(default_factory=list)  # conflicts avoided by the YAML merge

    def summary(self) -> dict:
        return {k: sorted(getattr(self, k)) for k in
                ("added", "changed", "removed", "conflicts", "kept", "yaml_merged")}


def has_markers(content: bytes) -> bool:
    return any(line.rstrip() in MARKERS for line in content.splitlines())


def _git(*args: str, cwd: str, check: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_CEILING_DIRECTORIES": os.path.dirname(cwd.rstrip("/")),
           "LC_ALL": "C"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, check=check)


def textual_merge(items: dict[str, tuple[bytes, bytes, bytes]]) -> dict[str, bytes]:
    """path -> (O, U, N) contents, changed on both sides: copier's merge of each, in one batch."""
    if not items:
        return {}
    with tempfile.TemporaryDirectory(prefix="merge-", dir=SCRATCH) as tmp:
        for side, index in (("o", 0), ("u", 1), ("w", 2), ("n", 2)):
            for path, contents in items.items():
                target = Path(tmp, side, path)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(contents[index])
        diff = _git("diff", "--no-index", "--no-color", "--no-ext-diff", "--no-renames", "--no-textconv",
                    "--diff-algorithm=myers", "--unified=3", "--inter-hunk-context=-1",
                    "--src-prefix=a/", "--dst-prefix=b/", "o", "u", cwd=tmp).stdout
        patch = Path(tmp, "user.patch")
        patch.write_bytes(diff)
        _git("apply", "--reject", "-p2", str(patch), cwd=str(Path(tmp, "w")))
        merged = {}
        for path, (_, user, _) in items.items():
            work = Path(tmp, "w", path)
            rejected = Path(f"{work}.rej")
            if rejected.exists():
                rejected.unlink()
                work.write_bytes(user)
                _git("merge-file", "-L", LABELS[0], "-L", LABELS[1], "-L", LABELS[2], "--",
                     str(work), str(Path(tmp, "o", path)), str(Path(tmp, "n", path)), cwd=tmp)
            merged[path] = work.read_bytes()
        return merged


def merge_trees(old: Tree, new: Tree, read_user: Callable[[str], FileEntry | None], *,
                answers_relpath: str, match_skip: Callable[[Path], bool], yaml_merge: bool = True) -> Outcome:
    """Decide every path of O and N against the user's tree (paths relative to the sub-project)."""
    out = Outcome()
    both: dict[str, tuple[bytes, bytes, bytes]] = {}
    modes: dict[str, int] = {}

    def put(path: str, entry: FileEntry | None, user: FileEntry | None) -> None:
        if entry == user:
            return
        out.result[path] = entry
        (out.removed if entry is None else out.changed if user is not None else out.added).append(path)

    for path in sorted(set(old) | set(new)):
        o, n, u = old.get(path), new.get(path), read_user(path)
        skip = match_skip(Path(path))
        if path == answers_relpath:
            put(path, n, u)
        elif o is not None and u is None and not skip:
            continue                                   # deleted by the user: stays deleted
        elif skip and u is not None:
            continue                                   # _skip_if_exists: never overwritten
        elif u is None:
            put(path, n, u)                            # new in the template (or re-created skip file)
        elif n is None:
            if o is not None and u[0] != o[0]:
                out.kept.append(path)                  # edited here, removed by the template: keep
                out.conflicts.append(path)
            elif o is not None:
                put(path, None, u)
        elif o is not None and u == o:
            put(path, n, u)
        elif (o is not None and n == o) or u[0] == n[0]:
            continue
        elif 0o120000 in (u[1], n[1]) or b"\0" in u[0] or b"\0" in n[0]:
            out.conflicts.append(path)                 # binary or symlink changed on both sides: keep U
        else:
            both[path] = (o[0] if o is not None else b"", u[0], n[0])
            modes[path] = u[1] if o is not None and u[1] != o[1] else n[1]

    for path, content in textual_merge(both).items():
        user = read_user(path)
        if has_markers(content):
            resolved = merge_yaml(*both[path]) if yaml_merge and path.endswith(YAML_SUFFIXES) else None
            if resolved is not None:
                content = resolved
                out.yaml_merged.append(path)
            else:
                out.conflicts.append(path)
        put(path, (content, modes[path]), user)
    return out
