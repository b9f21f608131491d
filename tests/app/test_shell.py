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


OIDC_SECRETS = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "s" * 32,
                         "client_id": "studio", "client_secret": "x",
                         "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}


def test_single_sign_on_is_offered_only_when_configured(app_env):
    at = run(new_app())
    assert "Sign in with single sign-on" not in [b.label for b in at.button]
    sso = new_app()
    sso.secrets.update(OIDC_SECRETS)
    sso.user = {"is_logged_in": False}
    run(sso)
    assert "Sign in with single sign-on" in [b.label for b in sso.button]


def test_single_sign_on_links_a_verified_email_and_keeps_the_role(app_env):
    _signed_up("ada@example.com", "Ada")  # the admin, with a password
    at = new_app()
    at.secrets.update(OIDC_SECRETS)
    at.user = {"is_logged_in": True, "sub": "idp|123", "email": "ADA@example.com", "email_verified": True,
               "name": "Ada L."}
    run(at)
    assert at.title[0].value == "Studio"
    at.switch_page("app_pages/admin_users.py")  # still the admin: roles live in Studio's database
    run(at)
    assert at.title[0].value == "Users"


def test_single_sign_on_with_an_unverified_email_is_refused(app_env):
    at = new_app()
    at.secrets.update(OIDC_SECRETS)
    at.user = {"is_logged_in": True, "sub": "idp|999", "email": "eve@example.com", "email_verified": False}
    run(at)
    assert any("verified email" in e.value for e in at.error)
    assert "sign_out" not in [b.key for b in at.button]


def test_unreachable_database_is_explained_on_screen(app_env, monkeypatch):
    monkeypatch.setenv("STUDIO_DATABASE_URL", "postgresql://studio:hunter2@127.0.0.1:1/studio")
    at = run(new_app())
    message = at.error[0].value
    assert message.startswith("Studio cannot start: Cannot reach the database at")
    assert "hunter2" not in message


def test_database_from_a_newer_studio_is_explained_on_screen(app_env):
    import sqlite3

    run(new_app())  # creates and migrates the database
    with sqlite3.connect(app_env / "studio.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'fffffff99999'")
    from studio_core.ui.session import _build

    _build.clear()  # a fresh process would build anew
    at = run(new_app())
    assert "schema revision 'fffffff99999'" in at.error[0].value


def test_bad_setting_is_explained_on_screen(app_env, monkeypatch):
    monkeypatch.setenv("STUDIO_MONTHLY_ALLOWANCE", "plenty")
    at = run(new_app())
    assert "STUDIO_MONTHLY_ALLOWANCE" in at.error[0].value
