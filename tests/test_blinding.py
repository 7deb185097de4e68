import hashlib
import random

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings, strategies as st
from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from kadchat.blinding import BlindedKey, blind_public_key, epoch_of
from kademlia.items import MutableItem


def _verifies_everywhere(public_key, message, signature):
    try:
        VerifyKey(public_key).verify(message, signature)
        nacl_ok = True
    except BadSignatureError:
        nacl_ok = False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        cryptography_ok = True
    except InvalidSignature:
        cryptography_ok = False
    assert nacl_ok == cryptography_ok, "the two verifiers disagree"
    return nacl_ok


def test_blinded_signatures_verify_with_standard_verifiers_over_many_keys_and_epochs():
    rng = random.Random(42)
    for _ in range(200):
        identity = SigningKey(rng.randbytes(32))
        epoch = rng.choice([0, 1, rng.randrange(2**23), rng.randrange(2**64)])
        blinded = BlindedKey(identity, epoch)
        message = rng.randbytes(rng.randrange(0, 300))
        assert blinded.public_key == blind_public_key(bytes(identity.verify_key), epoch)
        assert crypto_core_ed25519_is_valid_point(blinded.public_key)
        assert _verifies_everywhere(blinded.public_key, message, blinded.sign(message))


@settings(max_examples=50, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), epoch=st.integers(0, 2**64 - 1), message=st.binary(max_size=1100))
def test_blinded_signature_property(seed, epoch, message):
    blinded = BlindedKey(SigningKey(seed), epoch)
    assert _verifies_everywhere(blinded.public_key, message, blinded.sign(message))


def test_signature_does_not_verify_under_other_keys_or_messages():
    identity = SigningKey(bytes(range(32)))
    blinded = BlindedKey(identity, 5_000_000)
    signature = blinded.sign(b"hello")
    assert not _verifies_everywhere(blinded.public_key, b"hellp", signature)
    assert not _verifies_everywhere(bytes(identity.verify_key), b"hello", signature)
    assert not _verifies_everywhere(BlindedKey(identity, 5_000_001).public_key, b"hello", signature)


def test_each_epoch_has_its_own_key_and_nonces():
    identity = SigningKey(bytes(32))
    keys = {BlindedKey(identity, e).public_key for e in range(100)}
    assert len(keys) == 100 and bytes(identity.verify_key) not in keys
    # Deterministic per key, but never reusing a nonce R across epochs.
    assert BlindedKey(identity, 7).sign(b"m") == BlindedKey(identity, 7).sign(b"m")
    assert BlindedKey(identity, 7).sign(b"m")[:32] != BlindedKey(identity, 8).sign(b"m")[:32]


def test_different_identities_never_share_a_blinded_key():
    rng = random.Random(5)
    keys = [blind_public_key(bytes(SigningKey(rng.randbytes(32)).verify_key), 1000) for _ in range(100)]
    assert len(set(keys)) == 100


def test_blinded_key_signs_bep44_items():
    blinded = BlindedKey(SigningKey(bytes([9] * 32)), 5_900_000)
    item = MutableItem.create(blinded.public_key, blinded.sign, b"payload", seq=123)
    assert item.verify()
    assert item.k == blinded.public_key


# An independent, slow, pure-Python edwards25519 (RFC 8032 section 5.1) to
# check the documented formula A_e = h_e * A, h_e = BLAKE2b-512(...) mod l.
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _decode_point(data):
    y = int.from_bytes(data, "little") & ((1 << 255) - 1)
    sign = data[31] >> 7
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        x = x * SQRT_M1 % P
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def _add(p, q):
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * p[3] * q[3] * D % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _multiply(scalar, point):
    result = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _encode_point(point):
    z_inv = pow(point[2], P - 2, P)
    x, y = point[0] * z_inv % P, point[1] * z_inv % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def test_blinded_key_matches_an_independent_computation_of_the_formula():
    rng = random.Random(9)
    for _ in range(5):
        public_key = bytes(SigningKey(rng.randbytes(32)).verify_key)
        epoch = rng.randrange(2**40)
        digest = hashlib.blake2b(b"kadchat-blind" + public_key + epoch.to_bytes(8, "big"), digest_size=64).digest()
        h = int.from_bytes(digest, "little") % L
        assert blind_public_key(public_key, epoch) == _encode_point(_multiply(h, _decode_point(public_key)))


@pytest.mark.parametrize(
    "public_key",
    [
        bytes(32),  # not a point of the right kind
        b"\x01" + bytes(31),  # the identity element (small order)
        b"\xff" * 32,  # not canonical
        bytes(31),  # wrong length
    ],
)
def test_unusable_public_keys_are_refused(public_key):
    with pytest.raises(ValueError):
        blind_public_key(public_key, 1)


def test_negative_epoch_is_refused():
    with pytest.raises(ValueError):
        blind_public_key(bytes(SigningKey(bytes(32)).verify_key), -1)


def test_epoch_boundaries():
    assert epoch_of(0) == 0
    assert epoch_of(299.999) == 0
    assert epoch_of(300) == 1
    assert epoch_of(1_700_000_000) == 5_666_666
    assert epoch_of(59.9, epoch_seconds=60) == 0 and epoch_of(60, epoch_seconds=60) == 1
