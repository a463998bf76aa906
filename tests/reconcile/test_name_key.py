"""One name key for emails and group names (NFKC, case folding, trimmed), and invisible
format characters: refused in keys, stripped from display fields."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.model import Action, RuleSettings
from reconcile.plan import plan
from reconcile.rules import (
    Violation,
    check_email,
    check_group_name,
    check_text,
    email_key,
    name_key,
    text_key,
)
from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings()
# Zero-width space, soft hyphen, byte-order mark, left-to-right and right-to-left marks,
# Arabic letter mark, word joiner: every one of Unicode category Cf.
FORMAT_CHARACTERS = ["\u200b", "\u00ad", "\ufeff", "\u200e", "\u200f", "\u061c", "\u2060"]


def reasons(p):
    return {(r.target, r.reason) for r in p.rejections}


# --- the key ------------------------------------------------------------------------------


def test_sharp_s_and_double_s_are_one_name():
    assert name_key("Straße") == name_key("STRASSE") == name_key("strasse")


def test_fullwidth_letters_are_their_plain_letters():
    assert name_key("ＯＰＳ Ｔｅａｍ") == name_key("ops team")
    assert email_key("ＡＮＡ@Example.com") == "ana@example.com"


def test_ligatures_unfold():
    assert name_key("ﬁnance") == name_key("Finance")


def test_keys_are_trimmed_of_any_unicode_space():
    assert name_key("\u3000 Ops\u00a0") == "ops"  # ideographic and no-break spaces


def test_turkish_dotted_capital_i_is_not_plain_i():
    # No language-specific folding: "İ" keys as "i" plus a combining dot above.
    assert name_key("İSTANBUL") == "i\u0307stanbul"
    assert name_key("İSTANBUL") != name_key("istanbul")
    assert name_key("ISTANBUL") == name_key("istanbul")


def test_turkish_dotless_i_is_not_plain_i():
    assert name_key("ıstanbul") != name_key("istanbul")


def test_emails_and_group_names_share_one_key():
    for text in ["Straße", "ＡＮＡ@example.com", " ﬁ ", "İ"]:
        assert email_key(text) == name_key(text) == text_key(text)


@given(st.text())
def test_the_key_of_a_key_is_itself(text):
    """Keys are looked up again as keys (`local:<key>` refs): the key must be stable."""
    assert text_key(text_key(text)) == text_key(text)


def test_case_folding_that_leaves_unnormalised_text_is_normalised_again():
    # "ǰ" (U+01F0) has no capital: folding decomposes it, NFKC recomposes it.
    assert text_key("\u01f0") == text_key("j\u030c") == "\u01f0"


# --- emails ---------------------------------------------------------------------------------


def test_fullwidth_email_folds_to_ascii():
    assert check_email("ＡＮＡ@example.com") == "ANA@example.com"


def test_email_of_another_script_is_still_refused():
    checked = check_email("\u0430na@example.com")  # Cyrillic а
    assert isinstance(checked, Violation) and checked.reason == "invalid-email"


@pytest.mark.parametrize("char", FORMAT_CHARACTERS, ids=ascii)
def test_format_character_in_an_email_is_refused(char):
    checked = check_email(f"an{char}a@example.com")
    assert isinstance(checked, Violation)
    assert checked.reason == "invisible-characters"


def test_leading_byte_order_mark_in_an_email_is_refused():
    checked = check_email("\ufeffana@example.com")
    assert isinstance(checked, Violation) and checked.reason == "invisible-characters"


# --- group names ----------------------------------------------------------------------------


@pytest.mark.parametrize("char", FORMAT_CHARACTERS, ids=ascii)
def test_format_character_in_a_group_name_is_refused(char):
    checked = check_group_name(f"Sa{char}les", RULES)
    assert isinstance(checked, Violation)
    assert checked.reason == "invisible-characters"
    assert "invisible" in checked.detail


@pytest.mark.parametrize("name", ["Admin\u200bistrators", "Administrators\u00ad", "\ufeffAdministrators",
                                  "\u0410dmin\u200distrators", "Ａｄｍｉｎｉｓｔｒａｔｏｒｓ"], ids=ascii)
def test_name_that_looks_like_administrators_once_invisible_characters_go_is_reserved(name):
    checked = check_group_name(name, RULES)
    assert isinstance(checked, Violation)
    assert checked.reason == "reserved-name"


def test_bidi_override_in_a_group_name_stays_a_control_character():
    checked = check_group_name("\u202esrotartsinimdA", RULES)
    assert isinstance(checked, Violation) and checked.reason == "control-characters"


def test_group_name_in_another_script_without_format_characters_is_kept():
    assert check_group_name("Équipe données 数据", RULES) == "Équipe données 数据"


# --- display fields -------------------------------------------------------------------------


@pytest.mark.parametrize("char", FORMAT_CHARACTERS, ids=ascii)
def test_format_characters_are_stripped_from_display_fields(char):
    assert check_text(f"{char}An{char}a{char}", "display name", RULES) == "Ana"


def test_display_field_of_only_format_characters_is_empty():
    assert check_text("\u200b\ufeff", "given name", RULES) is None


def test_zero_width_joiners_of_names_and_emoji_are_kept():
    persian = "می\u200cخواهم"  # zero-width non-joiner is part of the spelling
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji, three people
    assert check_text(persian, "family name", RULES) == persian
    assert check_text(family, "display name", RULES) == family


def test_bidi_override_in_a_display_field_is_still_refused():
    checked = check_text("Ana \u202egnp.exe", "display name", RULES)
    assert isinstance(checked, Violation) and checked.reason == "control-characters"


def test_length_of_a_display_field_is_measured_without_format_characters():
    rules = RuleSettings(max_field_length=3)
    assert check_text("A\u200bn\u200ba", "given name", rules) == "Ana"


# --- the planner ----------------------------------------------------------------------------


def test_directory_group_links_to_the_local_group_of_its_sharp_s_variant():
    local = store(groups=[local_group(1, "Straße")])
    p = plan(directory(groups=[group("g1", "STRASSE")]), local, RULES, directory="hr")
    assert {op.action: op.group.local_id for op in p.operations} == {Action.LINK_GROUP: 1, Action.RENAME_GROUP: 1}


def test_directory_group_links_to_the_local_group_of_its_fullwidth_variant():
    local = store(groups=[local_group(1, "ＥＮＧ")])
    p = plan(directory(groups=[group("g1", "eng")]), local, RULES, directory="hr")
    assert not [op for op in p.operations if op.action is Action.CREATE_GROUP]
    assert [op.group.local_id for op in p.operations if op.action is Action.LINK_GROUP] == [1]


def test_two_directory_groups_differing_in_sharp_s_are_one_name():
    p = plan(directory(groups=[group("g1", "Straße"), group("g2", "STRASSE")]), store(), RULES, directory="hr")
    assert [op.value("name") for op in p.operations if op.action is Action.CREATE_GROUP] == ["Straße"]
    assert ("STRASSE", "duplicate-name") in reasons(p)


def test_fullwidth_variant_of_a_local_email_links_to_it():
    local = store([local_user(1, "ana@example.com")])
    p = plan(directory([user("u1", "ＡＮＡ@example.com")]), local, RULES, directory="hr")
    ops = {op.action: op for op in p.operations}
    assert ops.keys() == {Action.LINK_USER, Action.UPDATE_USER}
    assert ops[Action.LINK_USER].user.local_id == ops[Action.UPDATE_USER].user.local_id == 1
    assert ops[Action.UPDATE_USER].value("email") == "ANA@example.com"


def test_directory_users_whose_emails_differ_in_width_are_one_email():
    p = plan(directory([user("u1", "ana@example.com"), user("u2", "ａｎａ@example.com")]), store(), RULES,
             directory="hr")
    assert [op.value("external_id") for op in p.operations if op.action is Action.CREATE_USER] == ["u1"]
    assert ("ana@example.com", "duplicate-email") in reasons(p)


def test_group_name_with_a_zero_width_space_is_rejected_in_the_plan():
    p = plan(directory(groups=[group("g1", "Sa\u200bles")]), store(), RULES, directory="hr")
    assert p.is_empty
    assert [r.reason for r in p.rejections] == ["invisible-characters"]


def test_display_name_is_created_without_its_format_characters():
    p = plan(directory([user("u1", "ana@example.com", name="An\u00ada\u200b")]), store(), RULES, directory="hr")
    [create] = p.operations
    assert create.value("display_name") == "Ana"


def test_text_that_is_its_own_key_is_returned_itself_not_copied() -> None:
    own = "".join(["ana", "@example.com"])  # built at run time: not an interned constant
    assert text_key(own) is own
    assert text_key(" Ana@Example.com ") == "ana@example.com"
