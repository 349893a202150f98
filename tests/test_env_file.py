"""systemd's EnvironmentFile= reading, proven against the real systemd; misreads and rewrites."""

from __future__ import annotations

import json
import random

import pytest

from qtctl.diagnosis.env_file import environment, intended, misreads, rewrite
from qtctl.sandbox import BoxFile, Sandbox, SandboxSpec

TRICKY = (
    'A=plain\nB=value # comment\nC="quoted" # c\nF=crlf\r\nexport G=exported\nH = spaced\n'
    "I='single'\nJ=a\\\nK=cont\n;semi=1\n#c=2\\\nhidden=1\nL=\"x\"y\nM=  lead  \nN=a b  c\n"
    'O="dq \\"in\\" \\\\ \\n \\$x \\`y\\`"\nP=\'sq \\n\' tail\nQ=x=y\n  R=indented\n9X=bad\n'
    'S-T=dash\nU="ml\nline2"\nV=\nW\nX=last-no-newline'
)
ALPHABET = ["A", "B", "x", "=", " ", "\t", "#", ";", "'", '"', "\\", "\n", "\r\n", "$", "é", "1"]
DUMP = (
    "import os, json; skip = {'PATH', 'LANG', 'INVOCATION_ID', 'JOURNAL_STREAM', "
    "'SYSTEMD_EXEC_PID', 'PWD', 'SHLVL', '_', 'LC_CTYPE'}; "
    "print('ENV=' + json.dumps({k: v for k, v in os.environ.items() if k not in skip}))"
)


def corpus() -> list[str]:
    rng = random.Random(7)
    texts = [TRICKY]
    for _ in range(24):
        lines = []
        for _ in range(rng.randint(1, 6)):
            key = rng.choice(["A", "B", "C_1", "export D", " E", "9F", "G "])
            value = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 10)))
            lines.append(f"{key}={value}")
        texts.append("\n".join(lines) + rng.choice(["", "\n"]))
    return texts


@pytest.mark.sandbox
def test_parser_matches_the_real_systemd() -> None:
    texts = corpus()
    units = {
        f"envprobe{i}.service": "[Service]\nType=oneshot\nEnvironmentFile=/etc/envprobe/"
        f'{i}.env\nExecStart=/usr/bin/python3 -c "{DUMP}"\n'
        for i in range(len(texts))
    }
    files = {f"/etc/envprobe/{i}.env": BoxFile(t.encode()) for i, t in enumerate(texts)}
    with Sandbox(SandboxSpec(units=units, files=files, dbus=False)) as box:
        box.systemctl("start", *units)
        for i, text in enumerate(texts):
            lines = [
                x for x in box.journal(f"envprobe{i}.service").splitlines() if x.startswith("ENV=")
            ]
            assert lines, f"unit {i} printed nothing for {text!r}"
            real = json.loads(lines[-1][4:])
            assert environment(text) == real, f"file {i}: {text!r}"


def test_misreads_name_each_line_and_kind() -> None:
    text = "A=1 # one\nexport B=2\nC=\"open\nD=4\n9E=5\nF='x # not a comment'\n"
    assert [(m.line, m.kind, m.key) for m in misreads(text)] == [
        (1, "inline-comment", "A"),
        (2, "export-prefix", "B"),
        (3, "unbalanced-quote", "C"),
    ]
    assert misreads("OK=1\nURL=http://h/#frag\nPASS=a#b\n") == []
    [problem] = misreads("API_KEY=se#cret # rotated\n")
    assert "se#cret" not in problem.what and "'# rotated'" in problem.what


def test_crlf_is_reported_once_with_its_line_count() -> None:
    [problem] = misreads("A=1\r\nB=2\r\nC=3\n")
    assert (problem.line, problem.kind) == (1, "crlf")
    assert "on 2 line(s)" in problem.what


def test_rewrite_gives_the_intended_values() -> None:
    text = "# creds\r\nKEY=abc # rotated\r\nexport TOKEN='t o k'\r\nPLAIN=x\r\n"
    new, left = rewrite(text)
    assert left == []
    assert new == "# creds\n# rotated\nKEY=abc\nTOKEN='t o k'\nPLAIN=x\n"
    assert environment(new) == intended(text) == {"KEY": "abc", "TOKEN": "t o k", "PLAIN": "x"}
    assert misreads(new) == []
    assert rewrite(new) == (new, [])  # idempotent


def test_rewrite_leaves_what_needs_a_person() -> None:
    _, left = rewrite('A="open\nB=2\n3C=x\n')
    assert [(m.kind, m.line) for m in left] == [("unbalanced-quote", 1)]
    _, left = rewrite("3C=x\n")
    assert [m.kind for m in left] == ["invalid-name"]
