"""Collecting files a build produced (artifacts, reports, test results) out of the workspace."""

from __future__ import annotations

import shutil
from pathlib import Path


def _glob(base: Path, pattern: str) -> list[Path]:
    pattern = pattern.strip().lstrip("./") if pattern.strip() not in (".", "./") else "*"
    if pattern in ("**/*", "**"):
        return [p for p in base.rglob("*") if p.is_file() and ".git" not in p.relative_to(base).parts]
    return [p for p in base.glob(pattern) if p.is_file()] + [
        f for d in base.glob(pattern) if d.is_dir() for f in d.rglob("*") if f.is_file()]


def collect(base: Path, patterns: list[str], dest: Path, *, exclude: list[str] = (),
            flatten: bool = False) -> list[str]:
    """Copy files under `base` matching `patterns` (minus `exclude`) into `dest`.

    Returns the copied paths relative to `dest`.
    """
    excluded = {p for pat in exclude for p in _glob(base, pat)}
    copied: list[str] = []
    for pattern in patterns:
        for path in sorted(set(_glob(base, str(pattern))) - excluded):
            rel = Path(path.name) if flatten else path.relative_to(base)
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            if str(rel) not in copied:
                copied.append(str(rel))
    return copied
