"""Tags with their owners' keys, so that tests can make REGISTERs that prove ownership."""

import hashlib

from nacl.signing import SigningKey

from kadchat.nat import natwire, regproof


class PlainSigner:
    """Signs as a blinded key would: the introducer cannot tell, and it is quicker to make."""

    def __init__(self, seed):
        self._key = SigningKey(hashlib.sha256(seed).digest())
        self.public_key = bytes(self._key.verify_key)

    def sign(self, message):
        return self._key.sign(message).signature


_owners = {}  # tag -> its PlainSigner


def tag(name):
    """The tag owned by the key made from `name`; `register` can then sign for it."""
    signer = PlainSigner(name)
    owned = regproof.tag_of(signer.public_key)
    _owners[owned] = signer
    return owned


def register(owned_tag, cookie=natwire.NO_COOKIE):
    """A REGISTER of `owned_tag` (made by `tag`) with its owner's proof."""
    return regproof.make_register(_owners[owned_tag], cookie)
