"""Every command that writes a folder (package, mappings, convert -o) never loses a user's file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from r53sigma import cli, owned_folder
from test_package_support import EXAMPLE, write_rules


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def a_project(folder: Path) -> dict[str, bytes]:
    (folder / ".git").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / "notes.md").write_text("my notes\n")
    return tree(folder)


WRITERS = {
    "package": lambda rules, out: ["package", str(rules), "--out", str(out)],
    "mappings": lambda rules, out: ["mappings", "--root", str(out)],
    "convert": lambda rules, out: ["convert", str(rules), "-t", "splunk", "-o", str(out)],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_a_folder_that_is_not_ours_is_refused_untouched(command, tmp_path, capsys):
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    project = tmp_path / "project"
    before = a_project(project)
    assert cli.main(WRITERS[command](rules, project)) == 2
    assert tree(project) == before
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_force_adds_our_files_and_deletes_nothing(command, tmp_path):
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    project = tmp_path / "project"
    before = a_project(project)
    assert cli.main([*WRITERS[command](rules, project), "--force"]) == 0
    after = tree(project)
    assert {path: after[path] for path in before} == before
    listed = set(json.loads(after["MANIFEST.json"]))
    assert listed and not listed & set(before)
    assert cli.main(WRITERS[command](rules, project)) == 0  # the manifest makes the folder ours
    assert {path: tree(project)[path] for path in before} == before


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_a_new_or_empty_folder_is_written(command, tmp_path):
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "empty", tmp_path / "new" / "deeper"):
        assert cli.main(WRITERS[command](rules, out)) == 0
        assert "MANIFEST.json" in tree(out) and len(tree(out)) > 1


def test_our_folder_with_a_user_file_in_a_path_we_write_is_refused(tmp_path):
    out = tmp_path / "out"
    owned_folder.write(out, {"a.txt": b"1"})
    (out / "b.txt").write_text("the user's")
    with pytest.raises(owned_folder.FolderError, match="did not write: b.txt"):
        owned_folder.write(out, {"a.txt": b"2", "b.txt": b"ours"})
    assert tree(out)["b.txt"] == b"the user's" and tree(out)["a.txt"] == b"1"
    owned_folder.write(out, {"a.txt": b"2", "b.txt": b"the user's"})  # same bytes: nothing is lost


def test_a_tampered_manifest_cannot_delete_outside_or_unlisted(tmp_path):
    out = tmp_path / "out"
    owned_folder.write(out, {"a.txt": b"1"})
    (tmp_path / "precious.txt").write_text("keep")
    (out / "MANIFEST.json").write_text(json.dumps({"a.txt": "x", "../precious.txt": "x", "/etc/hostname": "x"}))
    owned_folder.write(out, {"c.txt": b"3"})
    assert (tmp_path / "precious.txt").read_text() == "keep"
    assert tree(out) == {"c.txt": b"3", "MANIFEST.json": owned_folder.manifest_bytes({"c.txt": b"3"})}


def test_a_manifest_that_is_not_ours_does_not_make_the_folder_ours(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "MANIFEST.json").write_text('["someone else\'s"]')
    with pytest.raises(owned_folder.FolderError, match="--force"):
        owned_folder.write(out, {"a.txt": b"1"})


def test_the_output_path_is_a_file(tmp_path, capsys):
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    existing = tmp_path / "queries.txt"
    existing.write_text("mine")
    for command in sorted(WRITERS):
        assert cli.main(WRITERS[command](rules, existing)) == 2
        assert "is not a folder" in capsys.readouterr().err
    assert existing.read_text() == "mine"


def test_an_unwritable_place_is_a_message(tmp_path, capsys):
    rules = write_rules(tmp_path / "rules", example=EXAMPLE)
    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    for command in sorted(WRITERS):
        assert cli.main(WRITERS[command](rules, a_file / "below" / "out")) == 2  # works as root too
        err = capsys.readouterr().err
        assert "cannot write" in err and "Traceback" not in err
    assert a_file.read_text() == "mine"


def test_files_honour_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        owned_folder.write(tmp_path / "out", {"sub/a.txt": b"1"})
    finally:
        os.umask(old)
    assert (tmp_path / "out" / "sub" / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "out" / "MANIFEST.json").stat().st_mode & 0o777 == 0o644
