import pytest

from nacl.signing import SigningKey

from kadchat.cards import encode_card
from kadchat.contactbook import ContactBook
from kadchat.errors import UserError

ME, BOB, CAROL = (bytes(SigningKey(bytes([n]) * 32).verify_key) for n in (1, 2, 3))


def book(tmp_path, text=""):
    path = tmp_path / "contacts.txt"
    path.write_text(text)
    return ContactBook(str(path), ME), path


def test_load_skips_our_own_card_with_a_line_numbered_problem(tmp_path):
    contacts, _ = book(tmp_path, f"{encode_card(BOB)} Bob\n{encode_card(ME)} me\n")
    assert contacts.load() == ["contacts.txt:2: that is your own card; skipped"]
    assert contacts.items() == [("Bob", BOB)]
    assert contacts.name_of(BOB) == "Bob" and contacts.is_contact(BOB) and not contacts.is_contact(ME)


def test_add_appends_to_the_file_and_refuses_duplicates_of_key_or_name(tmp_path):
    contacts, path = book(tmp_path)
    assert contacts.add(encode_card(BOB), "Bob") == ("Bob", BOB)
    assert path.read_text().split() == [encode_card(BOB), "Bob"]
    for card, name, problem in [(encode_card(BOB), "Robert", "already your contact 'Bob'"),
                                (encode_card(CAROL), "bob", "already have a contact named 'bob'"),
                                (encode_card(ME), "me", "your own card")]:
        with pytest.raises(UserError, match=problem):
            contacts.add(card, name)
    assert contacts.names() == ["Bob"]


def test_names_read_in_alphabetical_order_whatever_the_case(tmp_path):
    contacts, _ = book(tmp_path)
    contacts.add(encode_card(CAROL), "carol")
    contacts.add(encode_card(BOB), "Bob")
    assert contacts.names() == ["Bob", "carol"]
    with pytest.raises(UserError, match="no contact named 'dave'"):
        contacts.key_of("dave")
    assert contacts.name_of(bytes(32)) is None and not contacts.has("dave")


def test_unread_counts_and_last_seen_are_per_contact(tmp_path):
    contacts, _ = book(tmp_path)
    contacts.add(encode_card(BOB), "Bob")
    contacts.count_unread("Bob")
    contacts.count_unread("Bob")
    contacts.seen("Bob", 1700000000.5)
    assert (contacts.unread("Bob"), contacts.last_seen("Bob")) == (2, 1700000000.5)
    contacts.mark_read("Bob")
    assert contacts.unread("Bob") == 0 and contacts.last_seen("carol") is None


def test_rename_and_remove_change_the_file_and_carry_what_the_uis_count(tmp_path):
    contacts, path = book(tmp_path, f"# friends\n{encode_card(BOB)} Bob\n{encode_card(CAROL)} Carol\n")
    contacts.load()
    contacts.count_unread("Bob")
    contacts.seen("Bob", 5.0)
    assert contacts.rename("Bob", " Robert ") == "Robert"
    assert (contacts.key_of("Robert"), contacts.name_of(BOB), contacts.has("Bob")) == (BOB, "Robert", False)
    assert (contacts.unread("Robert"), contacts.last_seen("Robert")) == (1, 5.0)
    assert contacts.rename("Robert", "robert") == "robert"  # a change of case is not a clash
    with pytest.raises(UserError, match="already have a contact named 'carol'"):
        contacts.rename("robert", "carol")
    assert contacts.remove("Carol") == CAROL and not contacts.is_contact(CAROL)
    with pytest.raises(UserError, match="no contact named 'Carol'"):
        contacts.remove("Carol")
    assert path.read_text() == f"# friends\n{encode_card(BOB)} robert\n"
    again = ContactBook(str(path), ME)
    again.load()
    assert again.items() == [("robert", BOB)]
