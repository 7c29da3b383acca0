"""The key ring: versioned key-encryption keys (KEKs) for consult notes.

A ring holds 256-bit KEKs under ids ``k1``, ``k2``, ...; exactly one of them is *current* and
wraps the data keys of new notes. Older keys stay in the ring so that notes wrapped under them
remain readable until ``liaison keys rotate`` has re-wrapped them (see ``crypto.rewrap``).

Key file format (JSON, UTF-8; JSON rather than TOML because the standard library can write it
as well as read it)::

    {
      "format": 1,
      "current": "k2",
      "keys": {"k1": "<standard base64 of 32 bytes>", "k2": "<...>"}
    }

The file must be readable by its owner only (mode 0600 or 0400): a file with any group or
other permission bits is refused, and the error names the ``chmod`` to run. Because of that,
a Kubernetes secret mounted as a key file needs ``defaultMode: 0400``. POSIX only.

Environment form: the same JSON document, encoded as standard base64, in one variable (the
settings module reads it, e.g. ``LIAISON_NOTES__KEYRING``; this module never reads the
environment). ``KeyRing.to_env_value()`` produces it.

Errors (no message ever contains key material)::

    KeyRingError            the ring cannot be used
    ├── KeyFileError        the key file or environment value is unreadable, malformed or unsafe
    └── UnknownKeyError     a key id that the ring does not hold (e.g. a note wrapped under a
                            key this process has not loaded yet: reload the ring)
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

KEY_BYTES: Final = 32
FILE_FORMAT: Final = 1
_KEY_ID = re.compile(r"k[1-9][0-9]{0,8}")
_OWNER_ONLY: Final = 0o600


class KeyRingError(Exception):
    """The key ring cannot be used."""


class KeyFileError(KeyRingError):
    """The key file or environment value is unreadable, malformed or unsafe."""


class UnknownKeyError(KeyRingError):
    """The ring holds no key with this id."""

    def __init__(self, kek_id: str) -> None:
        super().__init__(f"no key-encryption key {kek_id!r} in the key ring")
        self.kek_id = kek_id


def _key_number(kek_id: str) -> int:
    return int(kek_id[1:])


class KeyRing:
    """An immutable set of KEKs with one current key. ``repr`` shows ids, never key bytes."""

    __slots__ = ("_current_id", "_keys")

    def __init__(self, keys: Mapping[str, bytes], current_id: str) -> None:
        for kek_id, key in keys.items():
            if not _KEY_ID.fullmatch(kek_id):
                raise KeyRingError(f"key id {kek_id!r} is not of the form k1, k2, ...")
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {kek_id!r} is not {KEY_BYTES} bytes long")
        if current_id not in keys:
            raise KeyRingError(f"current key id {current_id!r} is not in the key ring")
        ordered = sorted(keys.items(), key=lambda item: _key_number(item[0]))
        self._keys: Mapping[str, bytes] = MappingProxyType({k: bytes(v) for k, v in ordered})
        self._current_id = current_id

    def __repr__(self) -> str:
        return f"KeyRing(current={self._current_id!r}, ids={list(self._keys)!r})"

    # --- reading -----------------------------------------------------------------------------

    @property
    def current_id(self) -> str:
        """The id of the key that wraps the data keys of new notes."""
        return self._current_id

    @property
    def ids(self) -> tuple[str, ...]:
        """All key ids, oldest first."""
        return tuple(self._keys)

    def __contains__(self, kek_id: object) -> bool:
        return kek_id in self._keys

    def key(self, kek_id: str) -> bytes:
        """The raw KEK bytes; for ``crypto`` only. Raises :class:`UnknownKeyError`."""
        try:
            return self._keys[kek_id]
        except KeyError:
            raise UnknownKeyError(kek_id) from None

    # --- building ----------------------------------------------------------------------------

    @classmethod
    def generate(cls) -> KeyRing:
        """A ring with one fresh random key, ``k1``, as current."""
        return cls({"k1": secrets.token_bytes(KEY_BYTES)}, "k1")

    def with_new_key(self) -> KeyRing:
        """A copy of this ring plus a fresh key, numbered after the highest, made current."""
        new_id = f"k{_key_number(self.ids[-1]) + 1}"
        return KeyRing({**self._keys, new_id: secrets.token_bytes(KEY_BYTES)}, new_id)

    # --- serialising -------------------------------------------------------------------------

    def _to_document(self) -> bytes:
        document = {
            "format": FILE_FORMAT,
            "current": self._current_id,
            "keys": {kid: base64.b64encode(key).decode("ascii") for kid, key in self._keys.items()},
        }
        return json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n"

    @classmethod
    def _from_document(cls, raw: bytes, source: str) -> KeyRing:
        # Every failure is re-raised `from None` with a message of our own: the original
        # exceptions can carry the document (JSONDecodeError.doc) or bytes of it.
        try:
            document: Any = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise KeyFileError(f"{source} is not a valid JSON key ring") from None
        if not isinstance(document, dict) or document.get("format") != FILE_FORMAT:
            raise KeyFileError(f"{source} is not a key ring of format {FILE_FORMAT}")
        current, encoded = document.get("current"), document.get("keys")
        if not isinstance(current, str) or not isinstance(encoded, dict) or not encoded:
            raise KeyFileError(f"{source} needs a 'current' key id and a non-empty 'keys' object")
        keys: dict[str, bytes] = {}
        for kek_id, value in encoded.items():
            try:
                keys[kek_id] = base64.b64decode(value, validate=True)
            except (TypeError, ValueError, binascii.Error):
                raise KeyFileError(f"{source}: key {kek_id!r} is not valid base64") from None
        try:
            return cls(keys, current)
        except KeyRingError as exc:
            raise KeyFileError(f"{source}: {exc}") from None

    def to_env_value(self) -> str:
        """The environment-variable form: base64 of the key file's JSON."""
        return base64.b64encode(self._to_document()).decode("ascii")

    @classmethod
    def from_env_value(cls, value: str, *, name: str = "the key ring variable") -> KeyRing:
        """Parse the environment-variable form; ``name`` (the variable) is used in errors."""
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (ValueError, binascii.Error):
            raise KeyFileError(f"{name} is not valid base64") from None
        return cls._from_document(raw, name)

    # --- files -------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read a key file, refusing one that group or others may access."""
        try:
            # O_NONBLOCK: a FIFO at this path must not hang the start; it is refused below.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise KeyFileError(f"cannot open key file {path}: {exc.strerror}") from None
        # Check the mode of the file we opened (fstat), not of whatever the path names now.
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise KeyFileError(f"key file {path} is not a regular file")
            mode = stat.S_IMODE(info.st_mode)
            if mode & 0o077:
                raise KeyFileError(
                    f"key file {path} is accessible to group or others (mode {mode:04o}); "
                    f"run: chmod 600 {path}"
                )
            with os.fdopen(fd, "rb", closefd=False) as handle:
                raw = handle.read()
        finally:
            os.close(fd)
        return cls._from_document(raw, f"key file {path}")

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """Load the key file, or create it (0600, one fresh key) if it does not exist.

        The new ring is written in full to a temporary file (``O_CREAT | O_EXCL``, 0600) and
        published with ``os.link``, which fails if ``path`` exists. So two processes starting
        at once never both create a ring, and neither can read a half-written file: the
        loser of the race loads the winner's ring.
        """
        if os.path.lexists(path):
            # The usual start: load, without writing a throwaway key to the disk first.
            return cls.load(path)
        ring = cls.generate()
        tmp = _write_temporary(path, ring._to_document())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return cls.load(path)
        except OSError as exc:
            raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
        finally:
            tmp.unlink(missing_ok=True)
        _sync_directory(path.parent)
        return ring

    def save(self, path: Path) -> None:
        """Write the ring to ``path`` atomically (0600 temporary file, fsync, rename)."""
        tmp = _write_temporary(path, self._to_document())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from None
        _sync_directory(path.parent)


def _write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new 0600 file beside ``path``, fsync it, and return its path."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _OWNER_ONLY)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from None
    # Notes are encrypted under a key as soon as it exists, so the key must be on disk first:
    # a lost key file means unreadable notes.
    written = False
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), _OWNER_ONLY)  # whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        written = True
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {path}: {exc.strerror}") from None
    finally:
        if not written:  # also on KeyboardInterrupt: leave no partial key file behind
            tmp.unlink(missing_ok=True)
    return tmp


def _sync_directory(directory: Path) -> None:
    # Makes the new directory entry (linked or renamed file) survive a power loss.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
