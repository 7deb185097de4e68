"""Rendezvous tags, and the proof that a REGISTER comes from the tag's owner.

A tag is a hash of the owner's blinded public key for the epoch and its
presence secret (kadchat.blinding): contacts compute it from the card and the
secret they were given, the introducer from the key a REGISTER carries. With
the empty secret it is the *request tag*, which anyone with the card computes:
strangers send contact requests to it, contacts without our current secret
their handshakes. That key's signature over (tag, cookie) proves the
registration is the owner's, and the cookie binds it to the address the
introducer gave the cookie to, so a captured REGISTER is worth nothing
elsewhere. Knowing the card is not enough to register someone's tag.
"""

from functools import lru_cache
from hashlib import blake2b

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from kadchat.blinding import BlindedKey, blind_public_key
from kadchat.nat import natwire

_CONTEXT = b"kadchat-register"


def tag_of(blinded_key):
    """The tag under which the holder of `blinded_key` registers."""
    return blake2b(blinded_key, digest_size=natwire.TAG_SIZE, person=b"kadchat-rendezv").digest()


@lru_cache(maxsize=4096)  # contacts' tags are asked for at every relayed datagram
def rendezvous_tag(public_key, epoch, secret=b""):
    """The tag of identity `public_key` under presence `secret` during `epoch`; ValueError if
    the key is not usable."""
    return tag_of(blind_public_key(public_key, epoch, secret))


def signed_part(tag, cookie):
    return _CONTEXT + tag + cookie


def make_register(signer, cookie=natwire.NO_COOKIE):
    """A REGISTER of `signer`'s tag: `signer` has `public_key` and `sign(message)` (a BlindedKey)."""
    tag = tag_of(signer.public_key)
    return natwire.Register(tag, cookie, signer.public_key, signer.sign(signed_part(tag, cookie)))


def is_owner(register):
    """Whether the REGISTER is signed by the key its tag comes from (costs one ed25519 verification)."""
    if tag_of(register.key) != register.tag:
        return False
    try:
        VerifyKey(register.key).verify(signed_part(register.tag, register.cookie), register.signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


class Signers:
    """Our blinded signing keys, one per epoch, made once (a key costs a few scalar multiplications)."""

    def __init__(self, identity_signing_key):
        self._identity = identity_signing_key
        self._keys = {}

    def for_epoch(self, epoch, secret=b""):
        if (epoch, secret) not in self._keys:
            self._keys = {(e, s): k for (e, s), k in self._keys.items() if e >= epoch - 1}
            self._keys[epoch, secret] = BlindedKey(self._identity, epoch, secret)
        return self._keys[epoch, secret]
