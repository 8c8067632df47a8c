"""Every example in README.md and docs/ runs: pycon sessions as doctests, console sessions
through the CLI with their printed output compared exactly; docs/rules.md matches the registry."""

import doctest
import glob
import os
import re
import shlex

import pytest

from symshape.cli import main
from symshape.rules.catalog import catalog_markdown

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = [os.path.join(ROOT, "README.md"), *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(path, lang):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [body for kind, body in FENCE.findall(text) if kind == lang]


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_pycon_examples(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    globs: dict = {}
    for i, body in enumerate(blocks(page, "pycon")):
        test = parser.get_doctest(body, globs, f"{os.path.basename(page)}[{i}]", page, 0)
        runner.run(test, clear_globs=False)
        globs = test.globs  # later blocks of a page continue the same session
    assert runner.failures == 0, f"{runner.failures} failing example(s) in {page}"


def console_sessions(page):
    for body in blocks(page, "console"):
        command, out = None, []
        for line in body.splitlines():
            if line.startswith("$ "):
                if command:
                    yield command, out
                command, out = line[2:], []
            else:
                out.append(line)
        if command:
            yield command, out


@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_console_examples(page, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    for command, expected in console_sessions(page):
        argv = shlex.split(command)
        assert argv[0] == "symshape"
        main(argv[1:])
        out, err = capsys.readouterr()
        assert (out + err).splitlines() == expected, command


def test_rules_page_matches_registry():
    with open(os.path.join(ROOT, "docs", "rules.md"), encoding="utf-8") as f:
        committed = f.read()
    assert committed == catalog_markdown(), "regenerate: python -m symshape.rules.catalog > docs/rules.md"
