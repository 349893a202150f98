"""The docs: generated pages match the code, mkdocs builds them strictly offline, a short README."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

REGENERATE = "python -m qtctl.docs_gen"
GENERATED = ("reference/checks.md", "reference/config.md", "reference/cli.md")


def gen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qtctl.docs_gen", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_committed_reference_pages_are_what_the_code_generates() -> None:
    res = gen("--check")
    assert res.returncode == 0, (
        f"docs/reference/ is stale (a code, option or config key changed): run `{REGENERATE}` "
        f"and commit docs/reference/\n{res.stderr}"
    )


def test_check_names_each_stale_page_and_the_command_and_a_rewrite_fixes_it(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    first = gen("--docs", str(docs))
    assert first.returncode == 0 and first.stdout.count("wrote ") == len(GENERATED)
    assert gen("--check", "--docs", str(docs)).returncode == 0
    page = docs / "reference" / "config.md"
    page.write_text(page.read_text().replace("`rl.seen_key`", "`rl.gone`"))
    (docs / "reference" / "cli.md").unlink()
    res = gen("--check", "--docs", str(docs))
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.splitlines() == [
        f"{docs}/reference/config.md: stale; run `{REGENERATE}`",
        f"{docs}/reference/cli.md: stale; run `{REGENERATE}`",
    ]
    rewrite = gen("--docs", str(docs))
    assert rewrite.returncode == 0
    assert rewrite.stdout.splitlines() == [
        f"wrote {docs}/reference/{n}" for n in ("config.md", "cli.md")
    ]
    assert gen("--check", "--docs", str(docs)).returncode == 0


def test_each_code_section_holds_what_explain_prints() -> None:
    from qtctl.catalog import all_codes
    from qtctl.docs_text import prose

    page = (REPO / "docs/reference/checks.md").read_text()
    sections = dict(re.findall(r"^## (QT\d{3})\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    assert list(sections) == list(all_codes()), f"run `{REGENERATE}`"
    for code, doc in all_codes().items():
        for text in (doc.title, doc.meaning, doc.why, doc.fix):
            assert prose(text) in sections[code], f"{code}: run `{REGENERATE}`"


def test_each_config_key_row_has_its_default_and_limits() -> None:
    page = (REPO / "docs/reference/config.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| `redis.socket_timeout` |"))
    assert row.split(" | ")[1:5] == ["number", "`2.0`", "≥ 0.05", "`QTCTL__REDIS__SOCKET_TIMEOUT`"]
    choices = next(line for line in page.splitlines() if line.startswith("| `risk.tp_policy` |"))
    assert 'one of `"fixed-at-entry"`, `"none"`, `"minimal-roi"`' in choices


def test_each_option_is_listed_under_its_own_command() -> None:
    from qtctl.docs_cli import commands, option_names

    page = (REPO / "docs/reference/cli.md").read_text()
    sections = dict(re.findall(r"^## (qtctl[\w -]*)\n(.*?)(?=^## |\Z)", page, re.M | re.S))
    for path, command in commands():
        assert path in sections, f"{path}: run `{REGENERATE}`"
        for param in command.params:
            for name in option_names(param):
                assert f"`{name}`" in sections[path], f"{path} {name}: run `{REGENERATE}`"


def test_mkdocs_builds_the_docs_offline_and_strictly(tmp_path: Path) -> None:
    res = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site")
    assert res.returncode == 0, res.stderr
    checks = (tmp_path / "site/reference/checks/index.html").read_text()
    assert 'id="qt101"' in checks and 'href="#qt101"' in checks
    home = (tmp_path / "site/index.html").read_text()
    for page in GENERATED:
        assert f'href="{page.removesuffix(".md")}/"' in home


def _docs_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "scripts", root / "scripts")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    return root


def test_a_new_topic_page_gets_into_the_nav_and_a_missing_one_drops_out(tmp_path: Path) -> None:
    root = _docs_copy(tmp_path)
    (root / "docs" / "brand-new.md").write_text("# Brand new\n\nSee [the commands](commands.md).\n")
    config = root / "mkdocs.yml"
    config.write_text(config.read_text().rstrip("\n") + "\n  - Not written yet: not-yet.md\n")
    res = mkdocs_build(config, tmp_path / "site")
    assert res.returncode == 0, res.stderr
    home = (tmp_path / "site/index.html").read_text()
    assert 'href="brand-new/"' in home and "More" in home and "not-yet" not in home


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    root = _docs_copy(tmp_path)
    (root / "docs" / "layout.md").write_text("# Layout\n\n[gone](no-such-page.md)\n")
    res = mkdocs_build(root / "mkdocs.yml", tmp_path / "site")
    assert res.returncode == 1 and "no-such-page.md" in res.stderr


def test_the_readme_is_a_front_page_whose_links_resolve() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme.count("\n") <= 150
    links = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", readme)
    assert "docs/index.md" in links and "docs/reference/checks.md" in links
    assert [link for link in links if not (REPO / link).exists()] == []


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    assert "| set up and run the whole test suite | `bash scripts/test.sh` |" in readme
    assert (REPO / ".ci/run").read_text().rstrip().endswith("exec bash scripts/test.sh")
    assert "python -m pytest" in (REPO / "scripts/test.sh").read_text()
