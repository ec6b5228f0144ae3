"""MkDocs hook: the benchmark reports of bench/results/ (markdown and their pictures) become
pages under results/ at build time, so that each report is written once, where the
benchmark puts it. A report that the nav of mkdocs.yml does not list fails the build."""

from __future__ import annotations

from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def on_files(files, config):
    for path in sorted(RESULTS.iterdir()):
        if path.suffix in (".md", ".png"):
            files.append(File.generated(config, f"results/{path.name}", abs_src_path=str(path)))
    return files


def on_nav(nav, config, files):
    listed = {page.file.src_uri for page in nav.pages}
    missing = sorted(f"results/{p.name}" for p in RESULTS.glob("*.md"))
    missing = [uri for uri in missing if uri not in listed]
    if missing:
        raise PluginError(f"bench/results reports missing from mkdocs.yml's nav: {missing}")
    return nav
