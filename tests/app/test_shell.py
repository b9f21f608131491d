"""The app shell under AppTest: sign-up, sign-in, sign-out, roles and navigation."""

from __future__ import annotations

import pytest

from tests.app.conftest import new_app, run, sign_in, sign_up, texts


def _signed_up(email="ada@example.com", name="Ada"):
    at = run(new_app())
    return sign_up(at, email, name)


def test_visitor_sees_sign_in_and_no_app_pages(app_env):
    at = run(new_app())
    assert at.text_input(key="sign_in_email") is not None
    assert [t.label for t in at.tabs] == ["Sign in", "Create account"]
    assert "Account" not in texts(at)


def test_first_user_signs_up_and_is_admin(app_env):
    at = _signed_up()
    shown = texts(at)
    assert "Welcome to Studio, Ada!" in shown and "you are the admin" in shown
    assert at.title[0].value == "Studio"
    at.switch_page("app_pages/admin_users.py")
    run(at)
    assert at.title[0].value == "Users"


def test_second_user_is_a_creator_and_cannot_reach_admin_pages(app_env):
    _signed_up()
    at = run(new_app())
    sign_up(at, "grace@example.com", "Grace")
    assert "you are the admin" not in texts(at)
    # Admin pages are not even registered for a creator (not merely hidden).
    with pytest.raises(ValueError, match="Known pages") as refused:
        at.switch_page("app_pages/admin_users.py")
    known = str(refused.value).split("Known pages:")[1]
    assert "studio.py" in known and "account.py" in known and "admin_users.py" not in known
    assert "Admin" not in texts(at)


def test_sign_in_wrong_password_then_right_password(app_env):
    _signed_up()
    at = run(new_app())
    sign_in(at, "ada@example.com", "Not-The-Password-1")
    assert [e.value for e in at.error] == ["Wrong email or password."]
    assert at.text_input(key="sign_in_email") is not None
    sign_in(at, "ADA@example.com ", "Correct-Horse-42")
    assert at.title[0].value == "Studio"


def test_session_survives_a_rerun_and_sign_out_ends_it(app_env):
    at = _signed_up()
    run(at)  # a rerun (any widget interaction) keeps the user signed in
    assert at.title[0].value == "Studio"
    at.button(key="sign_out").click()
    run(at)
    assert at.button(key="sign_in_submit") is not None
    assert "sign_out" not in [b.key for b in at.button]
    assert "Your image appears here" not in texts(at)


def test_bad_sign_up_input_is_explained(app_env):
    at = run(new_app())
    sign_up(at, "not-an-email", "Ada")
    assert "doesn't look like an email" in at.error[0].value
    sign_up(at, "ada@example.com", "Ada", password="short")
    assert "Password too weak" in at.error[0].value
    sign_up(at, "ada@example.com", "Ada", referral="NOPE1234")
    assert "referral code" in at.error[0].value
    sign_up(at, "ada@example.com", "Ada")
    assert at.title[0].value == "Studio"


def test_duplicate_email_is_refused(app_env):
    _signed_up()
    at = run(new_app())
    sign_up(at, "ada@example.com", "Impostor")
    assert "already exists" in at.error[0].value


def test_referral_link_prefills_the_code(app_env):
    at = _signed_up()
    at.switch_page("app_pages/account.py")
    run(at)
    code = at.code[0].value
    visitor = new_app()
    visitor.query_params["ref"] = code
    run(visitor)
    assert visitor.text_input(key="sign_up_referral").value == code
    assert "You were invited" in texts(visitor)
