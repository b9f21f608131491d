"""The Wallet page under AppTest: a new user's wallet, sandbox purchases (paid, declined, canceled, a reloaded
return), a Stripe checkout against the stand-in server, the history's filters, pages and CSV, the referral
panel, and admin credit adjustments (admins only; the ledger refuses creators too)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from studio_core.models import AnalyticsEvent, CreditLedgerEntry, ModerationAction
from studio_core.services.ledger import LedgerService, NotAllowed
from tests.app import _community as c
from tests.app.conftest import app_on_postgresql, new_app, run, sign_in, sign_up, texts
from tests.conftest import DB_PARAMS, PG_URL
from tests.fakes.stripe_server import FakeStripe

PAGE = "app_pages/wallet.py"
ADMIN, CREATOR = "admin@example.com", "ada@example.com"


def _wallet(email: str = CREATOR, *, as_admin: bool = False):
    """The app signed in on the Wallet page. An admin account always exists first (the first account becomes
    the admin), so ``email`` signs up as a creator unless ``as_admin``."""
    studio = c.backend()
    c.user(studio, ADMIN, "Root")
    at = run(new_app())
    if as_admin:
        sign_in(at, ADMIN, c.PASSWORD)
    else:
        sign_up(at, email, email.split("@")[0].title(), c.PASSWORD)
    at.switch_page(PAGE)
    run(at)
    assert at.title[0].value == "Wallet"
    return at, studio


def _metric(at, label: str) -> int:
    return int(next(m.value for m in at.metric if m.label == label).replace(",", ""))


def _tab(at, name: str):
    at.session_state["wallet_tab"] = name  # what clicking the tab sets; only the open tab is drawn
    return run(at)


def _history(at):
    return next(d.value for d in at.dataframe if "Balance after" in d.value.columns)


def _entries(studio, user_id: int, kind: str | None = None) -> list[CreditLedgerEntry]:
    with studio.db.read() as s:
        q = select(CreditLedgerEntry).where(CreditLedgerEntry.user_id == user_id)
        if kind:
            q = q.where(CreditLedgerEntry.kind == kind)
        return list(s.scalars(q))


def _events(studio, name: str) -> list[dict]:
    with studio.db.read() as s:
        return list(s.scalars(select(AnalyticsEvent.properties).where(AnalyticsEvent.name == name)
                              .order_by(AnalyticsEvent.id)))


def _books_balance(studio) -> None:
    bad = [r for r in studio.ledger.check_invariants() if not r.ok]
    assert not bad, bad


def _buy(at, pack: str, card: str):
    at.button(key=f"wallet_buy_{pack}").click()
    run(at)
    assert "Sandbox checkout: no real money moves." in texts(at)  # the card dialog is open
    at.text_input(key="wallet_card_number").input(card)
    at.button(key="wallet_pay").click()
    return run(at)


@pytest.fixture(params=DB_PARAMS)
def app_db(request, app_env, monkeypatch) -> Iterator[str]:
    """The app on SQLite (app_env's data directory) and, when STUDIO_TEST_DATABASE_URL is set, on PostgreSQL:
    an empty schema that the app migrates itself, as on a first start."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    with app_on_postgresql(monkeypatch, PG_URL):
        yield "postgresql"


# -- a new user -------------------------------------------------------------------------------------------------
def test_new_user_sees_the_allowance_and_nothing_else(app_env):
    at, studio = _wallet()
    assert any("Monthly allowance: 30 of 30 left · 0 used" in p.proto.text for p in at.get("progress"))
    assert (_metric(at, "Allowance left"), _metric(at, "Paid credits"), _metric(at, "On hold"),
            _metric(at, "Available")) == (30, 0, 0, 30)
    shown = texts(at)
    assert "renews on 01 " in shown and "Nothing spent this month" in shown  # empty chart state
    assert "Receipts (0)" in [e.label for e in at.expander]
    assert not at.dataframe  # the history is drawn only while its tab is open
    # a creator never gets the admin section
    assert [t.label for t in at.tabs] == ["Credits", "History", "Invite friends"]
    _tab(at, "History")
    history = _history(at)
    assert history[["What", "Amount", "Bucket", "Balance after"]].values.tolist() == [
        ["Monthly allowance", 30, "Monthly allowance", 30]]
    assert not at.metric  # the balance is drawn only on its own tab
    # referral panel: the user's own code and link, nothing earned yet
    _tab(at, "Invite friends")
    ada = studio.accounts.by_email(CREATOR)
    assert [cd.value for cd in at.code] == [ada.referral_code, f"http://localhost:8501/?ref={ada.referral_code}"]
    assert (_metric(at, "Friends joined"), _metric(at, "Credits earned")) == (0, 0)
    assert "Adjust a user's credits" not in texts(at)
    assert not [w for w in at.text_input if w.key == "wallet_adjust_email"]


def test_spend_chart_has_a_title_and_labelled_axes(app_env):
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    hold = studio.ledger.reserve(ada.id, 3, "test:spend", reference="image:test")
    studio.ledger.post(hold.id)
    run(at)
    import json

    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    layout = chart["layout"]
    assert layout["title"]["text"].startswith("Credits spent per day")
    assert (layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]) == ("Day (UTC)", "Credits spent")
    assert sum(chart["data"][0]["y"]) == 3
    assert "Monthly allowance: 27 of 30 left · 3 used" in [p.proto.text for p in at.get("progress")]


# -- sandbox purchases ---------------------------------------------------------------------------------------------
def test_sandbox_purchase_credits_the_pack_once_even_when_the_return_is_reloaded(app_db):
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    pack = studio.wallet.packs()[1]  # Creator: 120 + 10 bonus
    _buy(at, pack.id, "4242 4242 4242 4242")
    assert any(f"Payment received: {pack.total_credits} credits added" in s.value for s in at.success)
    assert _metric(at, "Available") == 30 + pack.total_credits
    assert _metric(at, "Paid credits") == pack.total_credits
    shown = texts(at)
    assert pack.price_label in shown and "P-000001" in shown  # the receipt
    assert not [d for d in at.dataframe if "Receipt" in d.value.columns]  # drawn only once opened
    at.session_state["wallet_receipts_open"] = True  # what opening it in the browser sets
    run(at)
    receipts = next(d.value for d in at.dataframe if "Receipt" in d.value.columns)
    assert receipts[["Pack", "Credits", "Status"]].values.tolist() == [[pack.name, pack.total_credits, "Paid"]]

    # The gateway's return URL opened again (a reload, a second tab): verified again, credited never again.
    session_id = studio.wallet.receipts(ada.id)[0].session_id
    for _ in range(2):
        at.query_params["session_id"] = session_id
        run(at)
        assert any("already added" in i.value for i in at.info)
    assert _metric(at, "Available") == 30 + pack.total_credits
    assert [e.amount for e in _entries(studio, ada.id, "purchase")] == [pack.total_credits]
    assert [e["pack"] for e in _events(studio, "pack_purchase_started")] == [pack.id]
    assert _events(studio, "pack_purchase_completed") == [  # the sale is recorded once, like the credits
        {"pack": pack.id, "credits": pack.total_credits, "price_cents": pack.price_cents, "gateway": "sandbox"}]
    at.button(key="wallet_receipt_done").click()
    run(at)
    assert "P-000001" not in texts(at) and not [b for b in at.button if b.key == "wallet_receipt_done"]
    _tab(at, "History")
    assert _history(at)["What"].tolist()[0] == "Credit pack bought"
    _books_balance(studio)


def test_declined_card_says_so_and_adds_nothing_then_cancel_means_no_charge(app_env):
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    _buy(at, "starter", "4000 0000 0000 0002")
    assert [e.value for e in at.error] == ["Your card was declined. Nothing was charged; try another card."]
    assert _events(studio, "pack_purchase_failed") == [{"pack": "starter", "reason": "card_declined"}]
    at.text_input(key="wallet_card_number").input("1234 5678 9012 3456")
    at.button(key="wallet_pay").click()
    run(at)
    assert any("not one of the test cards" in e.value for e in at.error)
    assert _metric(at, "Available") == 30
    assert all(b.disabled for b in at.button if (b.key or "").startswith("wallet_buy_"))  # one checkout at a time
    at.button(key="wallet_cancel_checkout").click()
    run(at)
    assert any("Checkout canceled. No charge was made" in i.value for i in at.info)
    assert not [w for w in at.text_input if w.key == "wallet_card_number"]  # the dialog is closed
    assert _entries(studio, ada.id, "purchase") == []
    assert [r.status for r in studio.wallet.receipts(ada.id, include_unpaid=True)] == ["canceled"]
    assert _metric(at, "Available") == 30
    # the declined card can be followed by a good one in a new checkout
    _buy(at, "starter", "4242424242424242")
    assert _metric(at, "Available") == 80
    _books_balance(studio)


# -- Stripe (the real SDK against the stand-in server) --------------------------------------------------------
@pytest.fixture
def stripe_env(app_env, monkeypatch) -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        monkeypatch.setenv("STUDIO_PAYMENTS", "stripe")
        monkeypatch.setenv("STUDIO_STRIPE_SECRET_KEY", server.api_key)
        monkeypatch.setenv("STUDIO_STRIPE_API_BASE", server.url)
        monkeypatch.setenv("STUDIO_APP_URL", "https://studio.example.org/")
        yield server


def test_stripe_checkout_redirects_and_the_return_is_verified_server_side(stripe_env):
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    at.button(key="wallet_buy_starter").click()
    run(at)
    link = at.get("link_button")[0].proto
    session_id = next(iter(stripe_env.sessions))
    assert link.url == f"{stripe_env.url}/c/pay/{session_id}"
    sent = stripe_env.sessions[session_id]
    assert sent["success_url"] == "https://studio.example.org/wallet?session_id={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"] == "https://studio.example.org/wallet?checkout=canceled"

    at.button(key="wallet_check_payment").click()  # not paid yet: nothing added, said plainly
    run(at)
    assert any("has not been completed" in w.value for w in at.warning)
    assert _metric(at, "Available") == 30

    stripe_env.pay(session_id)
    for _ in range(2):  # the return, then a reload of it
        at.query_params["session_id"] = session_id
        run(at)
    assert _metric(at, "Available") == 80
    assert "**80** available" in [m.value for m in at.sidebar.markdown]  # the wallet bar too
    assert [e.amount for e in _entries(studio, ada.id, "purchase")] == [50]
    assert "Stripe" in texts(at) and not at.get("link_button")

    # a canceled checkout comes back to ?checkout=canceled
    at.button(key="wallet_buy_studio").click()
    run(at)
    at.query_params.pop("session_id", None)
    at.query_params["checkout"] = "canceled"
    run(at)
    assert any("No charge was made" in i.value for i in at.info)
    assert not at.get("link_button") and _metric(at, "Available") == 80
    _books_balance(studio)


def test_a_paid_checkout_whose_return_was_lost_is_credited_on_the_next_visit(stripe_env):
    """Stripe opens in a new tab; its return may land in a session that had to sign in first."""
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    at.button(key="wallet_buy_starter").click()
    run(at)
    stripe_env.pay(next(iter(stripe_env.sessions)))
    later = run(new_app())  # a new browser session
    sign_in(later, CREATOR, c.PASSWORD)
    later.switch_page(PAGE)
    run(later)
    assert any("Payment received: 50 credits" in s.value for s in later.success)
    assert _metric(later, "Available") == 80
    assert "**80** available" in [m.value for m in later.sidebar.markdown]
    run(at)  # the first tab's "check now" finds it credited already
    at.button(key="wallet_check_payment").click()
    run(at)
    assert [e.amount for e in _entries(studio, ada.id, "purchase")] == [50]


# -- history -------------------------------------------------------------------------------------------------------
def _fill_history(studio, user_id: int) -> None:
    """3 bonuses 40 days ago, 22 bonuses and 3 image charges today (plus the allowance grant): 29 entries."""
    old = LedgerService(studio.db, studio.settings, clock=lambda: studio.ledger.clock() - timedelta(days=40))
    for i in range(3):
        old.grant(user_id, "referral_bonus", 5, f"test:old:{i}", memo="an old bonus")
    for i in range(22):
        studio.ledger.grant(user_id, "signup_bonus" if i == 0 else "referral_bonus", i + 1, f"test:now:{i}",
                            memo="=HYPERLINK(\"http://evil\")" if i == 5 else f"bonus {i + 1}")
    for i in range(3):
        studio.ledger.post(studio.ledger.reserve(user_id, 1, f"test:gen:{i}", reference=f"image:{i}").id)


def test_history_filters_pages_and_csv_of_every_matching_entry(app_db, deferred_downloads):
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    _fill_history(studio, ada.id)
    _tab(at, "History")
    at.selectbox(key="wallet_page_size").select(10)
    run(at)
    assert len(_history(at)) == 10 and "Entries 1–10 of 29" in texts(at)
    assert at.button(key="wallet_history_previous").disabled
    for expected in ("Entries 11–20 of 29", "Entries 21–29 of 29"):
        at.button(key="wallet_history_next").click()
        run(at)
        assert expected in texts(at)
    assert at.button(key="wallet_history_next").disabled
    assert _history(at)["What"].tolist()[-1] == "Monthly allowance"  # oldest id last: the allowance grant

    rows = list(csv.DictReader(io.StringIO(deferred_downloads[-1]())))
    assert len(rows) == 29  # all pages, not only the one on screen
    assert sum(int(r["amount"]) for r in rows) == 30 + 15 + sum(range(1, 23)) - 3 == studio.ledger.balance(ada.id).available
    assert rows[0]["kind"] == "generation" and rows[0]["amount"] == "-1" and rows[0]["description"] == "Image generated"
    assert [r["memo"] for r in rows if "HYPERLINK" in r["memo"]] == ["'=HYPERLINK(\"http://evil\")"]  # no formulas
    assert int(rows[0]["balance_after"]) == studio.ledger.balance(ada.id).available

    # Filters: kinds (back to page 1), then dates.
    at.multiselect(key="wallet_kinds").select("generation")
    run(at)
    history = _history(at)
    assert history["What"].tolist() == ["Image generated"] * 3 and history["Amount"].tolist() == [-1, -1, -1]
    assert "Entries 1–3 of 3" in texts(at)
    rows = list(csv.DictReader(io.StringIO(deferred_downloads[-1]())))
    assert [(r["kind"], r["amount"]) for r in rows] == [("generation", "-1")] * 3

    at.multiselect(key="wallet_kinds").unselect("generation").select("referral_bonus")
    at.selectbox(key="wallet_period").select("30")
    run(at)
    assert "Entries 1–10 of 21" in texts(at)  # the three 40-day-old bonuses are out of range
    rows = list(csv.DictReader(io.StringIO(deferred_downloads[-1]())))
    assert len(rows) == 21 and {r["kind"] for r in rows} == {"referral_bonus"}
    at.selectbox(key="wallet_period").select("custom")
    run(at)
    today = studio.ledger.clock().date()
    at.date_input(key="wallet_dates").set_value((today - timedelta(days=41), today - timedelta(days=39)))
    run(at)
    assert "Entries 1–3 of 3" in texts(at) and _history(at)["Note"].tolist() == ["an old bonus"] * 3
    at.selectbox(key="wallet_period").select("all")
    run(at)
    assert "Entries 1–10 of 24" in texts(at)

    at.multiselect(key="wallet_kinds").unselect("referral_bonus").select("refund")
    run(at)
    assert "Nothing matches these filters." in texts(at) and not at.get("download_button")
    _books_balance(studio)


# -- admin adjustments -------------------------------------------------------------------------------------------
def _review(at, email: str, amount: int, reason: str, *, deduct: bool = False):
    at.text_input(key="wallet_adjust_email").input(email)
    at.number_input(key="wallet_adjust_amount").set_value(amount)
    at.radio(key="wallet_adjust_direction").set_value("Deduct" if deduct else "Grant")
    at.text_area(key="wallet_adjust_reason").input(reason)
    at.button(key="wallet_adjust_review").click()
    return run(at)


def test_admin_grants_and_deducts_with_a_reason_once_per_confirmation(app_db):
    at, studio = _wallet(as_admin=True)
    ada = c.user(studio, CREATOR, "Ada")
    studio.ledger.ensure_monthly_allowance(ada.id)
    run(at)
    assert [t.label for t in at.tabs][-1] == "Adjust credits"
    _tab(at, "Adjust credits")
    assert "Adjust a user's credits" in texts(at)

    _review(at, "nobody@example.com", 5, "typo")
    assert "There is no account with that email." in [e.value for e in at.error]
    _review(at, CREATOR, 5, "   ")
    assert any("Give a reason" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "wallet_adjust_confirm"]

    _review(at, CREATOR, 25, "Support ticket #12: [refund](http://x) <b>")
    shown = texts(at)
    assert "Ada <ada@example.com>" in shown and "Support ticket #12: [refund](http://x) <b>" in shown  # st.text
    assert "Their balance now: 30 allowance + 0 paid = 30 credits available" in shown
    pending = dict(at.session_state["wallet_adjust_pending"])
    at.button(key="wallet_adjust_confirm").click()
    run(at)
    assert any("Booked +25 credits (paid credits) for Ada" in s.value and "now 55 credits" in s.value
               for s in at.success)
    # A second click that arrives with the same confirmation books nothing new (same idempotency key).
    at.session_state["wallet_adjust_pending"] = pending
    run(at)
    at.button(key="wallet_adjust_confirm").click()
    run(at)
    entries = _entries(studio, ada.id, "admin_adjustment")
    assert [(e.amount, e.bucket, e.memo, e.actor_id) for e in entries] == [
        (25, "paid", "Support ticket #12: [refund](http://x) <b>", studio.accounts.by_email(ADMIN).id)]

    _review(at, CREATOR, 500, "too much", deduct=True)
    at.button(key="wallet_adjust_confirm").click()
    run(at)
    assert any("Not enough credits" in e.value for e in at.error)
    _review(at, CREATOR, 5, "duplicate grant", deduct=True)
    at.button(key="wallet_adjust_confirm").click()
    run(at)
    assert any("Booked -5 credits" in s.value for s in at.success)
    assert studio.ledger.balance(ada.id).paid == 20
    with studio.db.read() as s:
        audit = s.scalar(select(func.count()).select_from(ModerationAction)
                         .where(ModerationAction.action == "credit_adjustment",
                                ModerationAction.target_user_id == ada.id))
    assert audit == 2  # one audit row per booked adjustment
    _books_balance(studio)


def test_creators_get_no_adjustment_section_and_the_ledger_refuses_them(app_env):
    at, studio = _wallet()
    assert "Adjust a user's credits" not in texts(at)
    assert not [b for b in at.button if (b.key or "").startswith("wallet_adjust")]
    ada = studio.accounts.by_email(CREATOR)
    admin = studio.accounts.by_email(ADMIN)
    with pytest.raises(NotAllowed):
        studio.ledger.grant(ada.id, "admin_adjustment", 1000, "test:self-grant", memo="free money", actor=ada.id)
    with pytest.raises(NotAllowed):
        studio.ledger.grant(admin.id, "admin_adjustment", -5, "test:creator-deducts", memo="spite", actor=ada.id)
    assert _entries(studio, ada.id, "admin_adjustment") == [] == _entries(studio, admin.id, "admin_adjustment")


# -- the way in from the studio -----------------------------------------------------------------------------------
def test_the_studio_links_to_the_wallet_when_a_tier_costs_more_than_is_available(app_env, monkeypatch):
    monkeypatch.setenv("STUDIO_MONTHLY_ALLOWANCE", "1")
    at, _ = _wallet()
    at.switch_page("app_pages/studio.py")
    run(at)
    assert not at.get("page_link")  # the standard tier (1 credit) is affordable: no nudge
    at.button(key="tier_premium4").click()
    run(at)
    links = [(link.proto.label, link.proto.page) for link in at.get("page_link")]
    assert links == [("Buy credits in your Wallet", "wallet")]


def test_the_history_filters_hold_while_another_tab_is_open(app_env):
    at, studio = _wallet()
    ada = studio.accounts.by_email(CREATOR)
    _fill_history(studio, ada.id)
    _tab(at, "History")
    at.multiselect(key="wallet_kinds").select("generation")
    at.selectbox(key="wallet_page_size").select(10)
    run(at)
    assert set(_history(at)["What"]) == {"Image generated"}
    _tab(at, "Credits")
    assert not at.dataframe and "wallet_kinds" not in {m.key for m in at.multiselect}
    _tab(at, "History")
    assert at.multiselect(key="wallet_kinds").value == ["generation"]
    assert at.selectbox(key="wallet_page_size").value == 10 and set(_history(at)["What"]) == {"Image generated"}
