import random

import pytest
from nacl.signing import SigningKey

from kadchat.cards import PREFIX, _b32, _checksum, decode_card, encode_card, split_pasted
from kadchat.errors import UserError

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def _keys(n, seed=1):
    rng = random.Random(seed)
    return [bytes(SigningKey(rng.randbytes(32)).verify_key) for _ in range(n)]


def test_card_round_trips_and_looks_like_documented():
    for key in _keys(50):
        card = encode_card(key)
        assert card.startswith("kc1") and len(card) == 3 + 58
        assert set(card[3:]) <= set(ALPHABET)
        assert decode_card(card) == key


def test_decode_ignores_surrounding_whitespace_and_case():
    key = _keys(1)[0]
    assert decode_card("  \t" + encode_card(key).upper() + "\n") == key


def test_every_single_character_typo_is_detected():
    for key in _keys(3, seed=7):
        card = encode_card(key)
        for i in range(len(PREFIX), len(card)):
            for c in ALPHABET:
                if c != card[i]:
                    with pytest.raises(UserError, match="checksum mismatch"):
                        decode_card(card[:i] + c + card[i + 1:])


def test_every_adjacent_transposition_is_detected():
    for key in _keys(20, seed=8):
        card = encode_card(key)
        for i in range(len(PREFIX), len(card) - 1):
            if card[i] != card[i + 1]:
                swapped = card[:i] + card[i + 1] + card[i] + card[i + 2:]
                with pytest.raises(UserError, match="checksum mismatch"):
                    decode_card(swapped)


def test_dropped_or_extra_character_is_not_a_card():
    card = encode_card(_keys(1)[0])
    for bad in (card[:-1], card + "a", card[:10] + card[11:]):
        with pytest.raises(UserError, match="not a kadchat card"):
            decode_card(bad)


@pytest.mark.parametrize("text", ["", "hello", "kc2" + "a" * 58, "ssh-ed25519 AAAA"])
def test_other_text_is_not_a_card(text):
    with pytest.raises(UserError, match="not a kadchat card"):
        decode_card(text)


def test_characters_outside_base32_are_refused_cleanly():
    card = encode_card(_keys(1)[0])
    for c in "0189!é ":
        with pytest.raises(UserError):
            decode_card(card[:20] + c + card[21:])


def test_checksummed_invalid_point_is_refused():
    # A well-formed card around bytes that are not a usable ed25519 key.
    bad_key = b"\xff" * 32
    card = PREFIX + _b32(bad_key + _checksum(bad_key))
    with pytest.raises(UserError, match="usable public key"):
        decode_card(card)


def test_error_message_is_one_short_line():
    with pytest.raises(UserError) as caught:
        decode_card("x" * 500 + "\n" + "y")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 150


def test_encode_refuses_wrong_key_length():
    with pytest.raises(ValueError):
        encode_card(b"\x01" * 31)


# -- pasted cards: forgiving about the wrapping, never about the card ---------------------

def _pastings(card):
    return {
        "spaces inside": " ".join(card[i:i + 8] for i in range(0, len(card), 8)),
        "line breaks (a mail client's wrapping)": card[:30] + "\r\n" + card[30:] + "\n",
        "trailing full stop": card + ".",
        "in a sentence": f"Hi! Here is my card: {card}, add me?",
        "quotes and brackets": f"\u201c<{card}>\u201d",
        "zero-width spaces from a web page": card[:5] + "\u200b" + card[5:] + "\ufeff",
        "the CARD NAME line of identity.txt": f"{card} Ben Big",
        "the whole identity.txt": f"# Your kadchat identity. Give the line below to your contacts\n{card} ben\n",
        "upper case, tabs": "\t" + card.upper() + "\t",
    }


@pytest.mark.parametrize("how", list(_pastings("kc1")))
def test_a_card_pasted_with_extra_text_around_or_inside_it_is_read(how):
    key = _keys(1, seed=11)[0]
    assert decode_card(_pastings(encode_card(key))[how]) == key


def test_what_follows_the_card_is_kept_as_the_name_a_card_name_line_gives():
    card = encode_card(_keys(1)[0])
    assert split_pasted(f"{card} Ben Big") == (card, "Ben Big")
    assert split_pasted(f"{card[:20]}\n{card[20:]} ben") == (card, "ben")
    assert split_pasted(f"{card}.") == (card, "")


@pytest.mark.parametrize("how", list(_pastings("kc1")))
def test_forgiving_pasting_still_catches_every_typo(how):
    key = _keys(1, seed=12)[0]
    card = encode_card(key)
    rng = random.Random(how)
    for _ in range(40):
        i = rng.randrange(len(PREFIX), len(card))
        typo = card[:i] + rng.choice(ALPHABET.replace(card[i], "")) + card[i + 1:]
        with pytest.raises(UserError):
            decode_card(_pastings(typo)[how])


def test_a_card_missing_a_character_is_not_completed_by_the_name_after_it():
    card = encode_card(_keys(1)[0])
    for bad in (f"{card[:-1]} ben", f"{card[:-1]} b", f"{card[:30]} {card[31:]} alice"):
        with pytest.raises(UserError):
            decode_card(bad)
