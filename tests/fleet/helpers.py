"""A small fixture template (v1.0.0 -> v2.0.0, changes chosen by the tests) and a fleet of
repositories generated from it with user edits."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import copier

GIT_ENV = {"GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.com"}

COPIER_YML = """\
_subdirectory: template
_envops:
  keep_trailing_newline: true
project_name:
  type: str
  default: Demo Project
package_name:
  type: str
  default: "{{ project_name | lower | replace(' ', '_') }}"
"""

V1 = {
    "{{_copier_conf.answers_file}}.jinja": "{{ _copier_answers|to_nice_yaml -}}\n",
    "README.md.jinja": "# {{ project_name }}\n\nGenerated from the fleet fixture.\n\n## Usage\n\nmake train\n",
    "src/{{package_name}}/main.py.jinja": (
        '"""Entry point of {{ project_name }}."""\n\n'
        "import sys\n\n\n"
        "def train():\n    return 1\n\n\n"
        "def evaluate():\n    return 2\n\n\n"
        "def deploy():\n    return 3\n\n\n"
        "def smoke():\n    return 4\n\n\n"
        "def main():\n    print(sys.argv)\n"
    ),
    "ci.yml.jinja": (
        "# CI for {{ project_name }}\n"
        "version: 0.2\n"
        "env:\n"
        "  variables:\n"
        "    DEPLOY_TARGET: local  # the one switch\n"
        "    PACKAGE: {{ package_name }}\n"
        "phases:\n"
        "  install:\n"
        "    commands:\n"
        "      - pip install .\n"
        "  build:\n"
        "    commands:\n"
        "      - make train\n"
        "      - make test\n"
    ),
    "old.txt": "this file goes away in v2\n",
    "scripts/run.sh": "#!/bin/sh\nset -eu\necho run\n",
    "notes.md": "notes v1\n",
}

V2_CHANGES = {
    # the template edits a function in the middle, far from the top and the bottom
    "src/{{package_name}}/main.py.jinja": V1["src/{{package_name}}/main.py.jinja"].replace(
        "def deploy():\n    return 3\n", "def deploy():\n    return 30  # v2 deploys differently\n"),
    "README.md.jinja": V1["README.md.jinja"].replace("make train\n", "make train\nmake deploy\n"),
    # the template adds a variable and a command: close to where users edit (same hunk context)
    "ci.yml.jinja": V1["ci.yml.jinja"]
    .replace("    PACKAGE: {{ package_name }}\n", "    PACKAGE: {{ package_name }}\n    PYTHONUNBUFFERED: \"1\"\n")
    .replace("      - make test\n", "      - make test\n      - make deploy\n"),
    "docs/guide.md.jinja": "# Guide to {{ project_name }}\n",
    "notes.md": "notes v2\n",
    "old.txt": None,
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def write_files(root: Path, files: dict[str, str | None]) -> None:
    for rel, text in files.items():
        path = root / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(0o755)


def make_template(root: Path, v2: dict[str, str | None] | None = None) -> Path:
    """Git repository with tags v1.0.0 and v2.0.0."""
    tpl = root / "template-repo"
    (tpl / "template").mkdir(parents=True)
    git(tpl, "init", "-q", "-b", "main")
    (tpl / "copier.yml").write_text(COPIER_YML)
    write_files(tpl / "template", V1)
    commit_all(tpl, "v1")
    git(tpl, "tag", "v1.0.0")
    write_files(tpl / "template", V2_CHANGES if v2 is None else v2)
    commit_all(tpl, "v2")
    git(tpl, "tag", "v2.0.0")
    return tpl


def make_repo(dest: Path, template: Path | str, vcs_ref: str = "v1.0.0", **data: object) -> Path:
    copier.run_copy(str(template), str(dest), data=data, defaults=True, unsafe=True, quiet=True,
                    vcs_ref=vcs_ref)
    git(dest, "init", "-q", "-b", "main")
    commit_all(dest, "generated")
    return dest


def edit(repo: Path, rel: str, old: str | None = None, new: str = "", *, append: str = "") -> None:
    path = repo / rel
    text = path.read_text()
    if old is not None:
        assert old in text, (rel, old)
        text = text.replace(old, new, 1)
    path.write_text(text + append)


def tree(root: Path) -> dict[str, tuple[bytes, bool]]:
    """Working tree as {path: (content, executable)}, .git excluded."""
    out = {}
    for path in sorted(root.rglob("*")):
        if ".git" in path.relative_to(root).parts or not path.is_file():
            continue
        out[path.relative_to(root).as_posix()] = (path.read_bytes(), os.access(path, os.X_OK))
    return out


def copier_update(repo: Path, ref: str = "v2.0.0") -> None:
    """The reference: copier's own update, as `copier update --defaults --conflict inline`."""
    copier.run_update(str(repo), defaults=True, overwrite=True, conflict="inline", vcs_ref=ref,
                      unsafe=True, quiet=True)


def clone_dir(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest
