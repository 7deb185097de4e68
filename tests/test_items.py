"""kademlia.items: BEP 44 test vectors, tampering, size limits and their error codes."""

import hashlib

import nacl.bindings as sodium
import pytest
from nacl.signing import SigningKey

from kademlia.bencode import decode, encode
from kademlia.items import (
    MAX_SEQ, ItemError, MutableItem, VerifiedSignatures, immutable_target, signing_bytes)

# BEP 44, "Test vectors". The private key is given in expanded (ref10) form:
# the clamped secret scalar followed by the 32-byte nonce prefix.
BEP44_PUBLIC_KEY = bytes.fromhex(
    "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
BEP44_EXPANDED_PRIVATE_KEY = bytes.fromhex(
    "e06d3183d14159228433ed599221b80bd0a5ce8352e4bdf0262f76786ef1c74d"
    "b7e7a9fea2c0eb269d61e3b38e450a22e754941ac78479d6c54e1faf6037881d")
BEP44_VALUE = b"Hello World!"
VECTOR_1_TARGET = bytes.fromhex("4a533d47ec9c7d95b1ad75f576cffc641853b750")
VECTOR_1_SIGNATURE = bytes.fromhex(
    "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
    "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01")
VECTOR_2_SALT = b"foobar"
VECTOR_2_TARGET = bytes.fromhex("411eba73b6f087ca51a3795d9c8c938d365e32c1")
VECTOR_2_SIGNATURE = bytes.fromhex(
    "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
    "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08")
VECTOR_3_IMMUTABLE_TARGET = bytes.fromhex("e5f96f6f38320f0f33959cb4d3d656452117aadb")


def _reduce(scalar32_or_64: bytes) -> bytes:
    return sodium.crypto_core_ed25519_scalar_reduce(scalar32_or_64.ljust(64, b"\0"))


def expanded_key_signer(expanded: bytes):
    """Ed25519 signing (RFC 8032 steps) from an expanded key, as blinded keys sign."""
    scalar = _reduce(expanded[:32])
    prefix = expanded[32:]
    public = sodium.crypto_scalarmult_ed25519_base_noclamp(scalar)

    def sign(message: bytes) -> bytes:
        r = _reduce(hashlib.sha512(prefix + message).digest())
        big_r = sodium.crypto_scalarmult_ed25519_base_noclamp(r)
        h = _reduce(hashlib.sha512(big_r + public + message).digest())
        s = sodium.crypto_core_ed25519_scalar_add(
            r, sodium.crypto_core_ed25519_scalar_mul(h, scalar))
        return big_r + s

    return public, sign


def nacl_signer(seed: bytes = b"\x07" * 32):
    key = SigningKey(seed)
    return bytes(key.verify_key), lambda message: key.sign(message).signature


# -- BEP 44 test vectors ------------------------------------------------------

def test_signing_string_is_the_bep44_buffer_without_salt():
    assert signing_bytes(b"", 1, encode(BEP44_VALUE)) == b"3:seqi1e1:v12:Hello World!"


def test_signing_string_is_the_bep44_buffer_with_salt():
    assert (signing_bytes(VECTOR_2_SALT, 1, encode(BEP44_VALUE))
            == b"4:salt6:foobar3:seqi1e1:v12:Hello World!")


def test_vector_1_published_signature_verifies_and_target_matches():
    item = MutableItem(BEP44_PUBLIC_KEY, b"", 1, BEP44_VALUE, VECTOR_1_SIGNATURE)
    assert item.verify()
    assert item.target == VECTOR_1_TARGET


def test_vector_2_published_signature_with_salt_verifies_and_target_matches():
    item = MutableItem(BEP44_PUBLIC_KEY, VECTOR_2_SALT, 1, BEP44_VALUE, VECTOR_2_SIGNATURE)
    assert item.verify()
    assert item.target == VECTOR_2_TARGET


def test_vector_3_immutable_target():
    assert immutable_target(BEP44_VALUE) == VECTOR_3_IMMUTABLE_TARGET


def test_bep44_expanded_private_key_yields_the_published_public_key():
    public, _ = expanded_key_signer(BEP44_EXPANDED_PRIVATE_KEY)
    assert public == BEP44_PUBLIC_KEY


@pytest.mark.parametrize("salt, signature", [
    (b"", VECTOR_1_SIGNATURE), (VECTOR_2_SALT, VECTOR_2_SIGNATURE)])
def test_create_with_bep44_private_key_reproduces_published_signature(salt, signature):
    public, sign = expanded_key_signer(BEP44_EXPANDED_PRIVATE_KEY)
    item = MutableItem.create(public, sign, BEP44_VALUE, 1, salt=salt)
    assert item.sig == signature


def test_salt_is_not_interchangeable_between_vectors():
    # Vector 1's signature does not cover a salt, so it must not verify with one.
    item = MutableItem(BEP44_PUBLIC_KEY, VECTOR_2_SALT, 1, BEP44_VALUE, VECTOR_1_SIGNATURE)
    assert not item.verify()


# -- tampering ----------------------------------------------------------------

@pytest.fixture
def signed_item():
    public, sign = nacl_signer()
    return MutableItem.create(public, sign, {b"addr": [b"10.0.0.1", 6881]}, 5, salt=b"s")


def test_created_item_verifies(signed_item):
    assert signed_item.verify()


@pytest.mark.parametrize("change", [
    {"v": {b"addr": [b"10.0.0.2", 6881]}},
    {"seq": 6},
    {"salt": b"t"},
    {"salt": b""},
    {"k": nacl_signer(b"\x08" * 32)[0]},
])
def test_tampered_item_fails_verification(signed_item, change):
    fields = dict(k=signed_item.k, salt=signed_item.salt, seq=signed_item.seq,
                  v=signed_item.v, sig=signed_item.sig)
    fields.update(change)
    assert not MutableItem(**fields).verify()


@pytest.mark.parametrize("change", [
    {"v": {b"addr": [b"10.0.0.2", 6881]}},
    {"seq": 6},
    {"salt": b"t"},
    {"k": nacl_signer(b"\x08" * 32)[0]},
    {"sig": bytes(64)},
])
def test_a_cached_signature_covers_only_the_very_item_it_signed(signed_item, change, monkeypatch):
    signatures = VerifiedSignatures()
    assert signatures.verify(signed_item)
    fields = dict(k=signed_item.k, salt=signed_item.salt, seq=signed_item.seq,
                  v=signed_item.v, sig=signed_item.sig)
    fields.update(change)
    assert not signatures.verify(MutableItem(**fields))
    checks = []
    monkeypatch.setattr(MutableItem, "verify", lambda item: checks.append(item) or False)
    assert signatures.verify(MutableItem(**dict(fields, **{k: getattr(signed_item, k) for k in change})))
    assert checks == []  # the same item again: not verified again


def test_the_signature_cache_holds_at_most_its_size():
    public, sign = nacl_signer()
    signatures = VerifiedSignatures(size=3)
    items = [MutableItem.create(public, sign, b"v", seq) for seq in range(5)]
    assert all(signatures.verify(item) for item in items)
    assert len(signatures._valid) == 3


def test_flipped_signature_bit_fails_verification(signed_item):
    sig = bytearray(signed_item.sig)
    sig[10] ^= 1
    item = MutableItem(signed_item.k, signed_item.salt, signed_item.seq,
                       signed_item.v, bytes(sig))
    assert not item.verify()


@pytest.mark.parametrize("k, sig", [
    (b"\x01" * 31, b"\x00" * 64),
    (b"\x01" * 33, b"\x00" * 64),
    (BEP44_PUBLIC_KEY, VECTOR_1_SIGNATURE[:63]),
    (bytes(32), b"\x00" * 64),  # small-order (identity-ish) key
])
def test_malformed_key_or_signature_verifies_false_without_raising(k, sig):
    assert MutableItem(k, b"", 1, BEP44_VALUE, sig).verify() is False


# -- derived fields ------------------------------------------------------------

def test_encoded_v_is_the_bencoded_value_and_target_is_sha1_of_key_and_salt(signed_item):
    assert signed_item.encoded_v == b"d4:addrl8:10.0.0.1i6881eee"
    assert signed_item.target == hashlib.sha1(signed_item.k + b"s").digest()


def test_item_rebuilt_from_a_decoded_put_verifies(signed_item):
    # What a storing node does: decode the wire form, rebuild, verify.
    wire = encode({"k": signed_item.k, "salt": signed_item.salt, "seq": signed_item.seq,
                   "sig": signed_item.sig, "v": signed_item.v})
    fields = decode(wire)
    item = MutableItem(fields[b"k"], fields[b"salt"], fields[b"seq"], fields[b"v"],
                       fields[b"sig"])
    assert item.verify()
    assert item == signed_item


def test_item_is_frozen(signed_item):
    with pytest.raises(AttributeError):
        signed_item.seq = 99


# -- size limits and error codes ----------------------------------------------

def _item(salt=b"", v=b""):
    return MutableItem(BEP44_PUBLIC_KEY, salt, 1, v, VECTOR_1_SIGNATURE)


def test_salt_of_64_bytes_is_accepted():
    _item(salt=b"s" * 64).check_sizes()


def test_salt_over_64_bytes_is_refused_with_207():
    with pytest.raises(ItemError) as raised:
        _item(salt=b"s" * 65).check_sizes()
    assert raised.value.code == 207


def test_v_of_1000_encoded_bytes_is_accepted():
    value = b"x" * (1000 - len(b"996:"))
    assert len(encode(value)) == 1000
    _item(v=value).check_sizes()


def test_v_over_1000_encoded_bytes_is_refused_with_205():
    value = b"x" * (1001 - len(b"997:"))
    assert len(encode(value)) == 1001
    with pytest.raises(ItemError) as raised:
        _item(v=value).check_sizes()
    assert raised.value.code == 205


def test_create_refuses_oversized_v_before_signing():
    calls = []
    with pytest.raises(ItemError) as raised:
        MutableItem.create(BEP44_PUBLIC_KEY, calls.append, b"x" * 2000, 1)
    assert raised.value.code == 205
    assert calls == []


def test_create_refuses_a_signer_returning_the_wrong_length():
    with pytest.raises(ValueError):
        MutableItem.create(BEP44_PUBLIC_KEY, lambda message: b"short", b"v", 1)


@pytest.mark.parametrize("fields", [
    dict(k="not bytes"),
    dict(salt=None),
    dict(sig=[1, 2]),
    dict(seq=b"1"),
    dict(seq=True),
    dict(seq=-1),
    dict(seq=MAX_SEQ + 1),
    dict(v=1.5),
])
def test_wrong_field_types_or_ranges_are_refused_with_203(fields):
    base = dict(k=BEP44_PUBLIC_KEY, salt=b"", seq=1, v=b"v", sig=VECTOR_1_SIGNATURE)
    base.update(fields)
    with pytest.raises(ItemError) as raised:
        MutableItem(**base)
    assert raised.value.code == 203


def test_largest_seq_is_accepted():
    assert MutableItem(BEP44_PUBLIC_KEY, b"", MAX_SEQ, b"v", VECTOR_1_SIGNATURE).seq == MAX_SEQ
