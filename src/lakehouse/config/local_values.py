"""Local values of the references a Databricks bundle resolves on a workspace:
``${workspace.*}`` (the bundle's own directory stands in for the synced files),
``${workspace.current_user.*}`` (the OS user), ``${bundle.git.*}`` (read from ``.git``)."""

from __future__ import annotations

import getpass
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def short_name(user: str) -> str:
    """Databricks' ``short_name`` of a user: the part before ``@``, non-alphanumerics as ``_``."""
    return re.sub(r"[^A-Za-z0-9]", "_", user.split("@", 1)[0])


def current_user() -> str:
    """The local user name (``${workspace.current_user.userName}``)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


def _git_dirs(root: Path) -> tuple[Path, Path] | None:
    """The git directory of the checkout holding ``root`` and its common directory (they
    differ in a ``git worktree``), or None."""
    for d in (root, *root.parents):
        dot = d / ".git"
        if dot.is_dir():
            return dot, dot
        if dot.is_file():
            text = dot.read_text(encoding="utf-8").strip()
            gitdir = (d / text.removeprefix("gitdir:").strip()).resolve()
            common = gitdir / "commondir"
            if common.is_file():
                return gitdir, (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
            return gitdir, gitdir
    return None


def _ref_commit(common: Path, gitdir: Path, ref: str) -> str:
    for base in (gitdir, common):
        if (base / ref).is_file():
            return (base / ref).read_text(encoding="utf-8").strip()
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            if line.endswith(" " + ref):
                return line.split(" ", 1)[0]
    return ""


def git_info(root: Path) -> dict[str, str]:
    """``branch``, ``commit`` and ``origin_url`` of the git checkout holding ``root``, read
    from its git directory without running git (empty strings outside a checkout)."""
    info = {"branch": "", "commit": "", "origin_url": ""}
    try:
        dirs = _git_dirs(root)
        if dirs is None:
            return info
        gitdir, common = dirs
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if head.startswith("ref: "):
            info["branch"] = head[5:].removeprefix("refs/heads/")
            info["commit"] = _ref_commit(common, gitdir, head[5:])
        else:
            info["commit"] = head
        config = common / "config"
        text = config.read_text(encoding="utf-8") if config.is_file() else ""
        origin = re.search(r'\[remote "origin"\][^\[]*?url\s*=\s*(\S+)', text)
        info["origin_url"] = origin.group(1) if origin else ""
    except OSError:
        pass
    return info


def local_context(
    root: Path, bundle_name: str, target: str, workspace: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The local values of ``${bundle.*}`` and ``${workspace.*}``."""
    user = current_user()
    state = root / ".lakehouse"
    return {
        "bundle.name": bundle_name,
        "bundle.target": target,
        "bundle.environment": target,
        "bundle.root": str(root),
        **{f"bundle.git.{k}": v for k, v in git_info(root).items()},
        "workspace.host": str((workspace or {}).get("host") or ""),
        "workspace.root_path": str(root),
        "workspace.file_path": str(root),
        "workspace.artifact_path": str(state / "artifacts"),
        "workspace.state_path": str(state / "state"),
        "workspace.resource_path": str(state / "resources"),
        "workspace.current_user.userName": user,
        "workspace.current_user.user_name": user,
        "workspace.current_user.displayName": user,
        "workspace.current_user.id": user,
        "workspace.current_user.short_name": short_name(user),
        "workspace.current_user.domain_friendly_name": short_name(user),
    }
