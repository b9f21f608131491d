"""Wallet, in tabs drawn only while open: Credits (this month's allowance, paid credits and holds, daily spend,
credit packs with checkout and receipts), History (the ledger's entries: filters, pages, CSV), Invite friends
(referrals) and, for admins only, Adjust credits.

Purchases: the sandbox gateway takes a test card in a dialog here; Stripe gets a link to its Checkout page and
comes back to ``<app_url>/wallet?session_id=...``, where the session is verified server side and credited once
(``WalletService.complete_purchase`` is idempotent, so a reload or a second return adds nothing).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import streamlit as st

from studio_core.ports import ErrorCode, ProviderError
from studio_core.services.ledger import LedgerError, month_of
from studio_core.services.wallet import (
    PackView,
    PaymentDeclined,
    PaymentNotCompleted,
    PurchaseResult,
    WalletError,
)
from studio_core.ui.cards import page_cursor, pager
from studio_core.ui.session import get_studio, require_user
from studio_core.ui.tracking import Event, track
from studio_core.ui.wallet import (
    BUCKET_LABELS,
    KIND_LABELS,
    PERIODS,
    HistoryFilter,
    balance_panel,
    credits,
    csv_download,
    history_table,
    pack_card,
    period_range,
    receipt_card,
    receipts_table,
    referral_panel,
    spend_chart,
    test_cards_help,
    wallet_url,
)
from studio_core.ui.widgets import empty_state, error_state, lazy_expander, lazy_tabs, plain

user = require_user()
studio = get_studio()
settings = studio.settings
ss = st.session_state
packs = {p.id: p for p in studio.wallet.packs()}
pack_names = {p.id: p.name for p in packs.values()}
RETURN_URL = wallet_url(settings)
CANCEL_URL = f"{RETURN_URL}?checkout=canceled"
OPEN_CHECKOUT_WINDOW = timedelta(hours=24)  # a Stripe Checkout session expires after 24 hours
CANCELED = "Checkout canceled. No charge was made and no credits were added."


# -- purchase flow (callbacks run before the next script run) ----------------------------------------------------
def notify(kind: str, message: str) -> None:
    ss.wallet_notice = (kind, message)


def purchased(result: PurchaseResult) -> None:
    """Show the receipt; the one session whose call credited the pack records the sale."""
    if result.newly_credited:
        receipt = studio.wallet.receipt(user.id, result.purchase_id)
        track(Event.PACK_PURCHASE_COMPLETED, pack=receipt.pack_id, credits=receipt.credits,
              price_cents=receipt.price_cents, gateway=receipt.gateway)
    ss.wallet_receipt = {"purchase_id": result.purchase_id, "newly": result.newly_credited}


def buy(pack: PackView) -> None:
    if ss.get("wallet_checkout") or ss.get("wallet_redirect"):
        return  # a second click while a checkout is open opens nothing new
    ss.pop("wallet_receipt", None)
    try:
        checkout = studio.wallet.start_purchase(user.id, pack.id, success_url=RETURN_URL, cancel_url=CANCEL_URL)
    except WalletError as exc:
        notify("error", str(exc))
        return
    except ProviderError as exc:
        notify("error", f"The checkout could not be opened: {exc.user_message} Nothing was charged.")
        return
    track(Event.PACK_PURCHASE_STARTED, pack=pack.id, gateway=checkout.gateway)
    state = {"session_id": checkout.session_id, "pack_id": pack.id}
    if checkout.redirect_url is None:  # the sandbox: our own test-card form
        ss.wallet_checkout = state
    else:
        ss.wallet_redirect = {**state, "url": checkout.redirect_url}


def cancel_checkout() -> None:
    checkout = ss.pop("wallet_checkout", None) or ss.pop("wallet_redirect", None)
    if checkout is not None:
        try:
            studio.wallet.cancel_purchase(user.id, checkout["session_id"])
        except WalletError:
            pass  # nothing to cancel: the message below is true either way
    notify("info", CANCELED)


def complete(session_id: str) -> bool:
    """Ask the gateway (server side) and credit once. True when the outcome is final for this session."""
    try:
        result = studio.wallet.complete_purchase(user.id, session_id)
    except PaymentNotCompleted as exc:
        notify("warning", str(exc))
        return False
    except WalletError as exc:
        notify("error", str(exc))
        return True
    except ProviderError as exc:
        notify("error", f"We could not check the payment with the payment service ({exc.user_message}) "
                        "Nothing is lost: reload this page in a moment.")
        return False
    ss.pop("wallet_redirect", None)
    purchased(result)
    return True


def check_redirected_payment() -> None:
    if (pending := ss.get("wallet_redirect")) is not None:
        complete(pending["session_id"])


def settle_open_checkouts() -> None:
    """Once per browser session: a checkout paid elsewhere is verified and credited here. Stripe opens in a new
    tab, and its return can land in a session that had to sign in first (and so lost ``?session_id=``)."""
    if ss.get("wallet_settled"):
        return
    ss.wallet_settled = True
    since = studio.ledger.clock() - OPEN_CHECKOUT_WINDOW
    for receipt in studio.wallet.receipts(user.id, include_unpaid=True):
        if receipt.status != "created" or receipt.created_at < since:
            continue
        try:
            result = studio.wallet.complete_purchase(user.id, receipt.session_id)
        except (WalletError, ProviderError):
            continue  # not paid (yet), or the gateway is away: the receipt list and "check now" remain
        purchased(result)


def handle_return() -> None:
    """The browser came back from the gateway: ``?session_id=`` (success URL) or ``?checkout=canceled``."""
    params = st.query_params
    if session_id := params.get("session_id"):
        with st.spinner("Checking your payment…"):
            final = complete(session_id)
        if final:  # a paid or refused session: a reload must not ask again (it would add nothing anyway)
            params.pop("session_id", None)
    elif params.get("checkout") == "canceled":
        params.pop("checkout", None)
        cancel_checkout()


@st.dialog("Pay with a test card", on_dismiss=cancel_checkout)
def card_dialog(checkout: dict) -> None:
    pack = packs[checkout["pack_id"]]
    st.markdown(f"**{pack.name} pack** · {credits(pack.total_credits)} · {pack.price_label}")
    test_cards_help(studio.wallet.test_cards or {})
    with st.form("wallet_card_form", border=False):
        number = st.text_input("Card number", key="wallet_card_number", placeholder="4242 4242 4242 4242",
                               max_chars=23, autocomplete="cc-number")
        paid = st.form_submit_button(f"Pay {pack.price_label}", type="primary", key="wallet_pay",
                                     icon=":material/lock:", width="stretch")
    if paid:
        try:
            result = studio.wallet.pay_with_test_card(user.id, checkout["session_id"], number)
        except PaymentDeclined as exc:
            track(Event.PACK_PURCHASE_FAILED, pack=pack.id, reason="card_declined")
            st.error(str(exc), icon=":material/credit_card_off:")
        except ProviderError as exc:
            st.error("That is not one of the test cards above. Nothing was charged." if
                     exc.code == ErrorCode.BAD_REQUEST else exc.user_message, icon=":material/error:")
        except WalletError as exc:
            st.error(str(exc), icon=":material/error:")
        else:
            ss.pop("wallet_checkout", None)
            purchased(result)
            st.rerun()
    # A button in a dialog reruns only the dialog: the whole page must rerun to close it and show the notice.
    if st.button("Cancel", key="wallet_cancel_checkout", width="stretch"):
        cancel_checkout()
        st.rerun()


# -- admin adjustments -----------------------------------------------------------------------------------------
def review_adjustment() -> None:
    """The form was submitted: look the user up and ask for confirmation. The idempotency key is minted here,
    once per confirmation, so a double click on Confirm books one entry."""
    ss.pop("wallet_adjust_result", None)
    email = ss.wallet_adjust_email.strip()
    reason = ss.wallet_adjust_reason.strip()
    target = studio.accounts.by_email(email) if email else None
    if target is None:
        ss.wallet_adjust_error = "There is no account with that email." if email else "Enter the user's email."
        return
    if not reason:
        ss.wallet_adjust_error = "Give a reason: it is kept with the entry and in the audit trail."
        return
    sign = -1 if ss.wallet_adjust_direction == "Deduct" else 1
    ss.pop("wallet_adjust_error", None)
    ss.wallet_adjust_pending = {"user_id": target.id, "email": target.email, "name": target.display_name,
                                "disabled": target.disabled, "amount": sign * int(ss.wallet_adjust_amount),
                                "bucket": ss.wallet_adjust_bucket, "reason": reason,
                                "key": f"adjust:{uuid.uuid4().hex}"}


def confirm_adjustment() -> None:
    pending = ss.pop("wallet_adjust_pending", None)
    if pending is None:
        return  # the second click of a double click: already booked
    try:
        entry = studio.ledger.grant(pending["user_id"], "admin_adjustment", pending["amount"], pending["key"],
                                    bucket=pending["bucket"], memo=pending["reason"], actor=user.id)
    except LedgerError as exc:
        ss.wallet_adjust_error = str(exc)
        return
    ss.wallet_adjust_result = {**pending, "entry_id": entry.id,
                               "available": studio.ledger.balance(pending["user_id"]).available}


def drop_adjustment() -> None:
    ss.pop("wallet_adjust_pending", None)


def adjustment_section() -> None:
    with st.container(border=True):
        st.header("Adjust a user's credits")
        st.caption("Admins only. Books an 'Adjustment by an admin' entry with your reason, visible in the user's "
                   "history and in the audit trail.")
        with st.form("wallet_adjust_form"):
            st.text_input("User's email", key="wallet_adjust_email", autocomplete="off")
            direction_col, amount_col, bucket_col = st.columns(3)
            direction_col.radio("Action", ["Grant", "Deduct"], key="wallet_adjust_direction", horizontal=True)
            amount_col.number_input("Credits", min_value=1, max_value=1_000_000, value=10, step=1,
                                    key="wallet_adjust_amount")
            bucket_col.radio("Bucket", list(BUCKET_LABELS), format_func=BUCKET_LABELS.get, key="wallet_adjust_bucket",
                             index=1, horizontal=True)
            st.text_area("Reason (required)", key="wallet_adjust_reason", max_chars=500, height=68,
                         placeholder="e.g. refund for a support ticket")
            st.form_submit_button("Review adjustment", on_click=review_adjustment, key="wallet_adjust_review",
                                  icon=":material/rule:")
        if error := ss.pop("wallet_adjust_error", None):
            st.error(error, icon=":material/error:")
        if (pending := ss.get("wallet_adjust_pending")) is not None:
            with st.container(border=True):
                verb = "Grant" if pending["amount"] > 0 else "Deduct"
                st.warning(f"{verb} {credits(abs(pending['amount']))} "
                           f"({BUCKET_LABELS[pending['bucket']].lower()}) {'to' if verb == 'Grant' else 'from'} "
                           "this account?", icon=":material/help:")
                st.text(f"{pending['name']} <{pending['email']}>"
                        + ("  (account disabled)" if pending["disabled"] else ""))
                now = studio.ledger.balance(pending["user_id"])
                st.caption(f"Their balance now: {now.allowance_available:,} allowance + {now.paid_available:,} "
                           f"paid = {credits(now.available)} available ({now.reserved:,} on hold)")
                st.caption("Reason")
                st.text(pending["reason"])
                ok_col, no_col = st.columns(2)
                ok_col.button("Confirm", key="wallet_adjust_confirm", type="primary", on_click=confirm_adjustment,
                              width="stretch")
                no_col.button("Cancel", key="wallet_adjust_cancel", on_click=drop_adjustment,
                              width="stretch")
        if (done := ss.get("wallet_adjust_result")) is not None:
            st.success(f"Booked {credits(done['amount'], signed=True)} "
                       f"({BUCKET_LABELS[done['bucket']].lower()}) for {plain(done['name'])}, entry "
                       f"#{done['entry_id']}. Their available balance is now {credits(done['available'])}.",
                       icon=":material/check_circle:")


# == the page ==================================================================================================
st.title("Wallet")
st.caption(f"Credits pay for images: the monthly allowance is spent first, then paid credits. "
           f"Payments: {'offline sandbox (no real money)' if studio.wallet.gateway_name == 'sandbox' else 'Stripe'}.")

handle_return()
settle_open_checkouts()  # a pack credited here shows in the balances below and in the sidebar (drawn after)
shown = ss.get("wallet_receipt")
if (notice := ss.pop("wallet_notice", None)) is not None:
    kind, message = notice
    {"info": st.info, "warning": st.warning, "error": st.error}[kind](message, icon=":material/info:")
if shown is not None:
    try:
        receipt = studio.wallet.receipt(user.id, shown["purchase_id"])
    except WalletError:
        ss.pop("wallet_receipt", None)
    else:
        receipt_card(receipt, pack_names.get(receipt.pack_id, receipt.pack_id), newly_credited=shown["newly"],
                     on_done=lambda: ss.pop("wallet_receipt", None))

def credits_section(balance) -> None:
    spend = studio.ledger.daily_spend(user.id, balance.month)
    summary_col, chart_col = st.columns([1, 1], gap="medium")
    with summary_col:
        balance_panel(balance)
    with chart_col:
        spend_chart(spend, f"{spend[0].day:%B %Y}" if spend else balance.month)

    st.header("Buy credits")
    open_checkout = ss.get("wallet_checkout") or ss.get("wallet_redirect")
    if not packs:
        empty_state("No credit packs on sale", "An admin can configure packs in the settings (credit_packs).",
                    icon=":material/shopping_cart:")
    else:
        with st.container(horizontal=True):
            for pack in packs.values():
                pack_card(pack, on_buy=buy, disabled=bool(open_checkout))
    if (redirect := ss.get("wallet_redirect")) is not None:
        pack = packs[redirect["pack_id"]]
        with st.container(border=True):
            st.markdown(f"**Checkout for the {pack.name} pack is ready**")
            st.caption("You pay on Stripe's secure page (it opens in a new tab). Your credits are added as soon as "
                       "Stripe confirms the payment, and only once.")
            st.link_button(f"Continue to checkout · {pack.price_label}", redirect["url"], type="primary",
                           icon=":material/open_in_new:", key="wallet_checkout_link")
            paid_col, cancel_col = st.columns(2)
            paid_col.button("I have paid: check now", key="wallet_check_payment", on_click=check_redirected_payment,
                            width="stretch")
            cancel_col.button("Cancel", key="wallet_cancel_redirect", on_click=cancel_checkout, width="stretch")

    receipts = studio.wallet.receipts(user.id)

    def receipts_view() -> None:
        if receipts:
            receipts_table(receipts, pack_names)
        else:
            st.caption("No purchases yet. Receipts for the packs you buy appear here.")

    lazy_expander(f"Receipts ({len(receipts)})", "wallet_receipts_open", receipts_view, icon=":material/receipt_long:")


def history_section() -> None:
    today = studio.ledger.clock().date()
    kinds_col, period_col, dates_col, size_col = st.columns([2.2, 1.2, 1.6, 0.8], vertical_alignment="bottom")
    kinds = kinds_col.multiselect("What", list(KIND_LABELS), format_func=KIND_LABELS.get, key="wallet_kinds",
                                  placeholder="Everything", persist_state="page")
    period = period_col.selectbox("When", list(PERIODS), format_func=PERIODS.get, key="wallet_period",
                                  persist_state="page")
    custom = None
    if period == "custom":
        picked = dates_col.date_input("From – to (UTC, inclusive)", value=(today.replace(day=1), today),
                                      max_value=today, key="wallet_dates", format="YYYY-MM-DD",
                                      persist_state="page")
        if isinstance(picked, tuple) and len(picked) == 2:
            custom = picked
        else:
            dates_col.caption("Pick the last day too.")
    page_size = size_col.selectbox("Per page", [10, 25, 50, 100], index=1, key="wallet_page_size",
                                   persist_state="page")
    start, end = period_range(period, today, custom)
    filt = HistoryFilter(kinds=tuple(kinds) or None, start=start, end=end)
    page = page_cursor("wallet_history", (filt, page_size)) or 1
    history = studio.ledger.history(user.id, kinds=filt.kinds, start=filt.start, end=filt.end, page=page,
                                    page_size=page_size)
    if not history.items:
        empty_state("No entries", "Nothing matches these filters." if kinds or start else
                    "Your credit history starts with your first allowance.", icon=":material/history:")
        return
    history_table(history.items)
    first = (page - 1) * page_size + 1
    info_col, csv_col = st.columns([3, 1], vertical_alignment="center")
    info_col.caption(f"Entries {first:,}–{first + len(history.items) - 1:,} of {history.total:,}, newest first. "
                     "Amounts are credits; the balance counts both buckets.")
    with csv_col:
        csv_download(studio.ledger, user.id, filt, file_name=f"credit-history-{month_of(studio.ledger.clock())}.csv")
    pager("wallet_history", page + 1 if page < history.pages else None)


try:
    balance = studio.ledger.balance(user.id)
except LedgerError as exc:
    error_state("Your wallet could not be loaded.", detail=str(exc))
    st.stop()

# Only the open tab is drawn (on_change="rerun"): each is a dozen elements or more and its own queries, and the
# filters keep their values while another tab is open (persist_state="page"). The adjustment tab is not even
# built for creators; the ledger checks the role again.
sections = {"Credits": lambda: credits_section(balance), "History": history_section,
            "Invite friends": lambda: referral_panel(studio.referrals.summary(user.id), settings)}
if user.is_admin:
    sections["Adjust credits"] = adjustment_section
lazy_tabs(sections, key="wallet_tab")
if (checkout := ss.get("wallet_checkout")) is not None:
    card_dialog(checkout)  # whichever tab is open: a checkout in progress stays in front
