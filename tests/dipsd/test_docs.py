"""The README and docs/ as a user meets them: the quick start is two command lines, the README
stays a short guide, every relative link and anchor resolves, every dipsd command line in a
code block parses, and the worked example's output has the shape the code prints."""

from __future__ import annotations

import os
import re
import shlex

import pytest

from dipsd.cli import build_parser

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DOCS = ["README.md", "CHANGELOG.md"] + [os.path.join("docs", f) for f in sorted(os.listdir(os.path.join(ROOT, "docs")))
                                         if f.endswith(".md")]


def _read(rel: str) -> str:
    with open(os.path.join(ROOT, rel), encoding="utf-8") as fh:
        return fh.read()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _blocks(text: str) -> list[tuple[str, str]]:
    """Fenced code blocks as (language, content), fences matched line by line."""
    out, lang, lines = [], None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, lines = line[3:].strip(), []
            else:
                out.append((lang, "\n".join(lines)))
                lang = None
        elif lang is not None:
            lines.append(line)
    return out


def _anchors(text: str) -> set[str]:
    return {_slug(h) for h in re.findall(r"(?m)^#+ (.+)$", text)}


def test_quick_start_is_two_command_lines_and_the_readme_is_short():
    text = _read("README.md")
    first = _blocks(text)[0][1].strip().splitlines()
    assert first == ["pip install -e '.[test]' && dipsd study", 'python -m pytest -q -m "not sweep"']
    assert len(text.splitlines()) <= 250


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_and_anchor_resolves(doc):
    text = _read(doc)
    folder = os.path.dirname(doc)
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert links or doc != "README.md", doc
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        path, _, anchor = link.partition("#")
        target = os.path.normpath(os.path.join(folder, path)) if path else doc
        assert os.path.exists(os.path.join(ROOT, target)), f"{doc}: {link} -> {target} does not exist"
        if anchor:
            assert target.endswith(".md"), f"{doc}: anchor into a non-markdown file {link}"
            assert anchor in _anchors(_read(target)), f"{doc}: no heading for #{anchor} in {target}"


@pytest.mark.parametrize("doc", DOCS)
def test_dipsd_command_lines_in_code_blocks_parse(doc):
    parser = build_parser()
    blocks = [body for lang, body in _blocks(_read(doc)) if lang in ("", "bash", "sh", "console")]
    for block in blocks:
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part.strip().lstrip("$ ").strip())
                if words[:1] == ["dipsd"] and not set(words) & {"--help", "--version"}:
                    parser.parse_args(words[1:])  # exits (fails the test) on an unknown command or option


def test_worked_example_has_the_shape_the_study_prints():
    text = _read("README.md")
    example = text[text.index("## A worked example"):]
    block = next(body for lang, body in _blocks(example) if lang == "text")
    first = block.splitlines()[0]
    assert re.match(r"dipsd: optimal \(within 1e-6\) on \d+ of \d+; mean gap [\d.]+ %, worst [\d.]+ % "
                    r"\(proven, \d+ scenarios, M [\d-]+\)$", first)
    assert any(line.split()[:2] == ["method", "M"] and "certified <=: n" in line for line in block.splitlines())


def test_own_heuristic_example_runs_as_written(capsys):
    from dipsd.solvers.registry import METHODS

    block = next(body for lang, body in _blocks(_read("README.md")) if lang == "python" and "register_method" in body)
    try:
        exec(compile(block, "README.md", "exec"), {})
    finally:
        METHODS.pop("packed", None)
    assert capsys.readouterr().out.strip() == "Status.FEASIBLE"
