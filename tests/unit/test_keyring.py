"""The key ring: key files (0600, atomic), the environment form, rotation, no key leaks."""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consult_notes.keyring import (
    KEY_BYTES,
    KeyFileError,
    KeyRing,
    KeyRingError,
    UnknownKeyError,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def key_texts(ring: KeyRing) -> list[str]:
    """Every way a key might show up in text: raw repr, hex, base64."""
    out: list[str] = []
    for kid in ring.ids:
        key = ring.key(kid)
        out += [repr(key), key.hex(), base64.b64encode(key).decode()]
    return out


def write_file(path: Path, data: bytes | str, mode: int = 0o600) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)
    return path


def document(**override: Any) -> str:
    doc: dict[str, Any] = {
        "format": 1,
        "current": "k1",
        "keys": {"k1": base64.b64encode(b"\x01" * KEY_BYTES).decode()},
    }
    doc.update(override)
    return json.dumps(doc)


@pytest.fixture
def open_umask() -> Iterator[None]:
    # The file must come out 0600 whatever the process umask is.
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# --- building and reading ----------------------------------------------------------------------


def test_generate_makes_one_current_256_bit_key() -> None:
    ring = KeyRing.generate()
    assert ring.ids == ("k1",)
    assert ring.current_id == "k1"
    assert len(ring.key("k1")) == 32
    assert "k1" in ring
    assert "k2" not in ring


def test_with_new_key_adds_a_current_key_and_keeps_the_old_ones() -> None:
    ring = KeyRing.generate()
    rotated = ring.with_new_key()
    assert rotated.ids == ("k1", "k2")
    assert rotated.current_id == "k2"
    assert rotated.key("k1") == ring.key("k1")
    assert rotated.key("k2") != ring.key("k1")
    assert ring.ids == ("k1",)  # the original is unchanged


def test_key_ids_are_ordered_and_numbered_numerically() -> None:
    ring = KeyRing({"k10": b"\x01" * 32, "k9": b"\x02" * 32, "k2": b"\x03" * 32}, "k9")
    assert ring.ids == ("k2", "k9", "k10")
    assert ring.with_new_key().current_id == "k11"


def test_it_reports_an_unknown_key_id() -> None:
    with pytest.raises(UnknownKeyError, match="'k7'") as caught:
        KeyRing.generate().key("k7")
    assert caught.value.kek_id == "k7"
    assert isinstance(caught.value, KeyRingError)


def test_it_copies_mutable_key_buffers() -> None:
    buffer = bytearray(b"\x05" * 32)
    ring = KeyRing({"k1": buffer}, "k1")  # type: ignore[dict-item]
    buffer[0] = 0
    assert ring.key("k1") == b"\x05" * 32
    assert type(ring.key("k1")) is bytes


@pytest.mark.parametrize(
    ("keys", "current", "message"),
    [
        ({"key1": b"\x00" * 32}, "key1", "not of the form"),
        ({"k0": b"\x00" * 32}, "k0", "not of the form"),
        ({"k1": b"\x00" * 16}, "k1", "not 32 bytes"),
        ({"k1": b"\x00" * 32}, "k2", "current key id 'k2'"),
        ({}, "k1", "current key id 'k1'"),
    ],
)
def test_it_refuses_an_invalid_ring(keys: dict[str, bytes], current: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        KeyRing(keys, current)


def test_its_repr_names_key_ids_but_no_key_material() -> None:
    ring = KeyRing.generate().with_new_key()
    for text in (repr(ring), str(ring)):
        assert text == "KeyRing(current='k2', ids=['k1', 'k2'])"
        for secret in key_texts(ring):
            assert secret not in text


# --- key files ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("open_umask")
def test_load_or_create_makes_an_owner_only_file_on_first_run(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing.load_or_create(path)
    assert mode_of(path) == 0o600
    assert ring.ids == ("k1",)
    saved = json.loads(path.read_text())
    assert saved["current"] == "k1"
    assert base64.b64decode(saved["keys"]["k1"]) == ring.key("k1")
    assert os.listdir(tmp_path) == ["keys.json"]  # no temporary file left behind


def test_load_or_create_loads_the_existing_file_afterwards(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = KeyRing.load_or_create(path)
    second = KeyRing.load_or_create(path)
    assert second.key("k1") == first.key("k1")
    assert os.listdir(tmp_path) == ["keys.json"]


def test_load_or_create_never_replaces_a_file_that_appeared_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process creates the file between our check and our link: its ring wins.
    path = tmp_path / "keys.json"
    other = KeyRing.generate()
    real_link = os.link

    def link_after_the_other_process(src: str, dst: str) -> None:
        other.save(path)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_the_other_process)
    assert KeyRing.load_or_create(path).key("k1") == other.key("k1")
    assert os.listdir(tmp_path) == ["keys.json"]


def test_load_or_create_does_not_follow_a_dangling_symlink(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(KeyFileError, match="cannot open key file"):
        KeyRing.load_or_create(path)
    assert not (tmp_path / "elsewhere.json").exists()


def test_load_or_create_reports_a_directory_it_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "keys.json"
    with pytest.raises(KeyFileError, match=f"cannot write key file {path}"):
        KeyRing.load_or_create(path)


def test_load_or_create_cleans_up_when_linking_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    path = tmp_path / "keys.json"
    with pytest.raises(KeyFileError, match=r"cannot create key file .*Operation not permitted"):
        KeyRing.load_or_create(path)
    assert os.listdir(tmp_path) == []


def test_a_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(_fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(KeyFileError, match=r"cannot write key file .*: Input/output error"):
        KeyRing.load_or_create(tmp_path / "keys.json")
    assert os.listdir(tmp_path) == []


@pytest.mark.usefixtures("open_umask")
def test_save_writes_owner_only_and_replaces_atomically(tmp_path: Path) -> None:
    path = write_file(tmp_path / "keys.json", "old", mode=0o644)
    ring = KeyRing.generate().with_new_key()
    ring.save(path)
    assert mode_of(path) == 0o600
    loaded = KeyRing.load(path)
    assert loaded.ids == ("k1", "k2")
    assert loaded.current_id == "k2"
    assert all(loaded.key(kid) == ring.key(kid) for kid in ring.ids)
    assert os.listdir(tmp_path) == ["keys.json"]


def test_save_reports_a_failed_rename_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(KeyFileError, match=r"cannot write key file .*Permission denied"):
        KeyRing.generate().save(tmp_path / "keys.json")
    assert os.listdir(tmp_path) == []


def test_save_reports_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot write key file"):
        KeyRing.generate().save(tmp_path / "missing" / "keys.json")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o660, 0o666])
def test_load_refuses_a_file_open_to_group_or_others(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "keys.json"
    KeyRing.generate().save(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as caught:
        KeyRing.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {path}" in message
    with pytest.raises(KeyFileError):
        KeyRing.load_or_create(path)


def test_load_accepts_a_read_only_owner_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    ring = KeyRing.generate()
    ring.save(path)
    path.chmod(0o400)
    assert KeyRing.load(path).key("k1") == ring.key("k1")


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(KeyFileError, match=f"cannot open key file {path}: No such file"):
        KeyRing.load(path)


def test_load_refuses_something_other_than_a_regular_file(tmp_path: Path) -> None:
    directory = tmp_path / "keys.json"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        KeyRing.load(directory)
    fifo = tmp_path / "keys.fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        KeyRing.load(fifo)  # and does not hang waiting for a writer


BAD_KEY = base64.b64encode(b"\xaa" * KEY_BYTES).decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a valid JSON key ring"),
        (b"\xff\xfe not utf-8", "not a valid JSON key ring"),
        (b"{not json", "not a valid JSON key ring"),
        (b"[1, 2]", "not a key ring of format 1"),
        (document(format=2).encode(), "not a key ring of format 1"),
        (document(current=None).encode(), "needs a 'current' key id"),
        (document(keys={}).encode(), "non-empty 'keys' object"),
        (document(keys=[BAD_KEY]).encode(), "non-empty 'keys' object"),
        (document(keys={"k1": "!!" + BAD_KEY}).encode(), "key 'k1' is not valid base64"),
        (document(keys={"k1": 12345}).encode(), "key 'k1' is not valid base64"),
        (document(keys={"k1": BAD_KEY[:20]}).encode(), "not valid base64|not 32 bytes"),
        (document(keys={"k1": BAD_KEY, "one": BAD_KEY}).encode(), "'one' is not of the form"),
        (document(current="k2", keys={"k1": BAD_KEY}).encode(), "current key id 'k2'"),
    ],
    ids=[
        "empty",
        "not_utf8",
        "not_json",
        "not_object",
        "format_2",
        "no_current",
        "no_keys",
        "keys_list",
        "key_not_base64",
        "key_not_string",
        "key_short",
        "bad_key_id",
        "current_missing",
    ],
)
def test_load_refuses_a_malformed_file_without_echoing_it(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = write_file(tmp_path / "keys.json", content)
    with pytest.raises(KeyFileError, match=message) as caught:
        KeyRing.load(path)
    assert str(path) in str(caught.value)
    assert BAD_KEY not in str(caught.value)
    # No chained exception (a JSONDecodeError keeps the whole document in .doc).
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__


# --- the environment form ----------------------------------------------------------------------


def test_env_value_round_trips() -> None:
    ring = KeyRing.generate().with_new_key()
    loaded = KeyRing.from_env_value(ring.to_env_value() + "\n")
    assert loaded.ids == ring.ids
    assert loaded.current_id == "k2"
    assert all(loaded.key(kid) == ring.key(kid) for kid in ring.ids)


def test_env_value_is_base64_of_the_file_format(tmp_path: Path) -> None:
    ring = KeyRing.generate()
    path = tmp_path / "keys.json"
    ring.save(path)
    assert base64.b64decode(ring.to_env_value()) == path.read_bytes()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "LIAISON_NOTES__KEYRING is not valid base64"),
        ("é", "LIAISON_NOTES__KEYRING is not valid base64"),
        (base64.b64encode(b"{}").decode(), "LIAISON_NOTES__KEYRING is not a key ring of format"),
        (
            base64.b64encode(document(keys={"k1": BAD_KEY[:8]}).encode()).decode(),
            "LIAISON_NOTES__KEYRING: key 'k1' is not 32 bytes",
        ),
    ],
)
def test_env_value_errors_name_the_variable_and_no_key(value: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message) as caught:
        KeyRing.from_env_value(value, name="LIAISON_NOTES__KEYRING")
    assert BAD_KEY[:8] not in str(caught.value)


def test_env_value_errors_have_a_default_name() -> None:
    with pytest.raises(KeyFileError, match="the key ring variable is not valid base64"):
        KeyRing.from_env_value("%%%")
