"""The user's long-term ed25519 identity and the files that hold it.

``identity.key`` holds the 32-byte private seed as one line of hex;
``identity.txt`` holds the user's own card and username (see kadchat.files).
kadchat creates both (0600) on first start and afterwards only reads them: it never
replaces a file the user has, and refuses to start when the two disagree or the
key file can be read by other users.
"""

import os
import stat
from dataclasses import dataclass

from nacl.signing import SigningKey

from kadchat import datadir
from kadchat.cards import encode_card
from kadchat.errors import UserError
from kadchat.files import atomic_write, identity_text, parse_identity, validate_name

KEY_FILE = "identity.key"
CARD_FILE = "identity.txt"


@dataclass(frozen=True)
class Identity:
    signing_key: SigningKey
    username: str

    @property
    def public_key(self) -> bytes:
        return bytes(self.signing_key.verify_key)

    @property
    def card(self) -> str:
        return encode_card(self.public_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte ed25519 signature of `message`."""
        return self.signing_key.sign(message).signature


def has_identity(data_dir) -> bool:
    """Whether `data_dir` holds an identity already (no username to choose)."""
    return os.path.exists(os.path.join(data_dir, CARD_FILE))


def load_or_create(data_dir, name=None, ask=None) -> Identity:
    """The identity stored in `data_dir`, creating it on first start.

    `name` is the username to use when one must be chosen (and, if given, must
    match identity.txt); otherwise `ask(prompt) -> str` is asked for one.
    """
    key_path = os.path.join(data_dir, KEY_FILE)
    card_path = os.path.join(data_dir, CARD_FILE)
    datadir.create(data_dir)
    if os.path.exists(key_path):
        signing_key = _read_key(key_path)
        if os.path.exists(card_path):
            return _load_card(card_path, key_path, signing_key, name)
    elif os.path.exists(card_path):
        raise UserError(
            f"{card_path} exists but {key_path} is missing: restore the key file, "
            f"or move {CARD_FILE} away to create a new identity"
        )
    else:
        signing_key = None  # made once a username is chosen: giving up at the prompt leaves nothing

    username = validate_name(_choose_name(name, ask))
    if signing_key is None:
        signing_key = SigningKey.generate()
        _write(key_path, bytes(signing_key).hex().encode() + b"\n")
    _write(card_path, identity_text(bytes(signing_key.verify_key), username).encode("utf-8"))
    return Identity(signing_key, username)


def _load_card(card_path, key_path, signing_key, name):
    card_key, username = parse_identity(card_path)
    if card_key != bytes(signing_key.verify_key):
        raise UserError(f"{card_path} holds a different card than {key_path}: one of them was replaced")
    if name is not None and validate_name(name) != username:
        raise UserError(f"{card_path} says your name is {username!r}, not {name.strip()!r}: edit that file to rename")
    return Identity(signing_key, username)


def _choose_name(name, ask):
    if name is not None:
        return name
    if ask is None:
        raise UserError("no username yet: choose one with --name NAME")
    return ask("Choose a username: ") or ""


def _read_key(path) -> SigningKey:
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            raise UserError(f"{path} can be read by other users (mode {mode:04o}); fix it with: chmod 600 {path}")
        with open(path, "rb") as f:
            text = f.read(200).strip()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    try:
        seed = bytes.fromhex(text.decode("ascii"))
    except ValueError:
        seed = b""
    if len(seed) != 32:
        raise UserError(f"{path} is not a kadchat key file (expected 64 hex digits)")
    return SigningKey(seed)


def _write(path, data):
    try:
        atomic_write(path, data)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
