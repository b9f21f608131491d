"""Pieces of the Wallet page: the allowance panel, the daily-spend chart, the ledger history (rows, filters, CSV),
pack cards, receipts and the referral panel.

Memos and references can carry text typed by people (an admin's reason); they are shown in dataframe cells and
st.text / st.code only, never as Markdown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import plotly.graph_objects as go
import streamlit as st

from studio_core.config import Settings
from studio_core.models import LEDGER_KINDS
from studio_core.services.ledger import Balance, DailySpend, EntryView, LedgerService
from studio_core.services.referrals import ReferralSummary
from studio_core.services.wallet import PackView, Receipt
from studio_core.ui.charts import kept_figure
from studio_core.ui.widgets import empty_state, table

WALLET_PAGE = "app_pages/wallet.py"
WALLET_PATH = "wallet"  # the page's url_path (from its file name), where checkouts come back to

KIND_LABELS: dict[str, str] = {
    "allowance_grant": "Monthly allowance",
    "allowance_expiry": "Unused allowance expired",
    "purchase": "Credit pack bought",
    "referral_bonus": "Referral bonus",
    "signup_bonus": "Welcome bonus",
    "generation": "Image generated",
    "refund": "Refund",
    "admin_adjustment": "Adjustment by an admin",
}
assert set(KIND_LABELS) == set(LEDGER_KINDS), "every ledger kind needs a label"
BUCKET_LABELS = {"allowance": "Monthly allowance", "paid": "Paid credits"}
GATEWAY_LABELS = {"sandbox": "Sandbox (test card, no real money)", "stripe": "Stripe"}
STATUS_LABELS = {"paid": "Paid", "created": "Not completed", "failed": "Declined", "canceled": "Canceled"}
CSV_PAGE_SIZE = 500  # the ledger's largest page: a long history is read in a few queries


def wallet_url(settings: Settings) -> str:
    """Where the payment gateway sends the browser back to (Stripe needs an absolute URL)."""
    return f"{settings.app_url.rstrip('/')}/{WALLET_PATH}"


def credits(n: int, *, signed: bool = False) -> str:
    number = f"{n:+,}" if signed else f"{n:,}"
    return f"{number} credit{'s' if abs(n) != 1 else ''}"


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


# -- balance -------------------------------------------------------------------------------------------------
def allowance_used(balance: Balance) -> int:
    """Allowance spent this month: what was granted minus what is still in the bucket (held credits are
    not spent yet; they show as 'on hold')."""
    return max(balance.allowance_granted_this_month - balance.allowance, 0)


def balance_panel(balance: Balance) -> None:
    with st.container(border=True):
        st.header("Your credits")
        granted = balance.allowance_granted_this_month
        if granted:
            # Filled with what is left, like the sidebar's wallet bar, so both bars read the same way.
            left = balance.allowance_available
            st.progress(min(1.0, max(0.0, left / granted)),
                        text=f"Monthly allowance: {left:,} of {granted:,} left · {allowance_used(balance):,} used")
        else:
            st.caption("No monthly allowance this month.")
        st.caption(f"The allowance renews on {balance.reset_date:%d %B %Y} (UTC); unused allowance does not carry "
                   "over. Paid credits never expire.")
        with st.container(horizontal=True):  # one layout block, not a block per column
            st.metric("Allowance left", f"{balance.allowance_available:,}")
            st.metric("Paid credits", f"{balance.paid_available:,}", help="Packs and bonuses. They never expire.")
            st.metric("On hold", f"{balance.reserved:,}",
                      help="Set aside for images being made right now: charged only if the image is delivered.")
            st.metric("Available", f"{balance.available:,}")


def whole_step(top: int, ticks: int = 6) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50… that draws at most ``ticks`` steps up to ``top``."""
    step = 1
    while top / step > ticks:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    return step


def spend_chart(days: list[DailySpend], month_label: str) -> None:
    title = f"Credits spent per day · {month_label}"
    if not any(d.spent for d in days):
        empty_state("Nothing spent this month", "Each image you generate shows up here, day by day.",
                    icon=":material/bar_chart:")
        return

    def draw() -> go.Figure:
        fig = go.Figure(go.Bar(x=[d.day for d in days], y=[d.spent for d in days], marker_color="#7b61ff",
                               hovertemplate="%{x|%d %b}: %{y} credits<extra></extra>"))
        fig.update_layout(title={"text": title, "x": 0, "xanchor": "left"}, height=300,
                          margin={"l": 10, "r": 10, "t": 50, "b": 10}, xaxis_title="Day (UTC)",
                          yaxis_title="Credits spent", bargap=0.25)
        fig.update_xaxes(tickformat="%d %b")
        # Whole-credit ticks: on a small scale plotly puts ticks at 0.2, 0.4… and ",d" prints them as 0, 0, 1, 1.
        return fig.update_yaxes(rangemode="tozero", tickformat=",d", tick0=0,
                                dtick=whole_step(max(d.spent for d in days)))

    # drawn again only when the month's figures change (a figure costs milliseconds to build)
    fig = kept_figure(("wallet_spend", title, tuple((d.day, d.spent) for d in days)), draw)
    with st.container(border=True):
        st.plotly_chart(fig, key="wallet_spend_chart", config={"displaylogo": False}, alt=f"Chart: {title}")


# -- history ---------------------------------------------------------------------------------------------------
PERIODS = {"all": "All time", "month": "This month", "30": "Last 30 days", "90": "Last 90 days",
           "custom": "Custom range"}


@dataclass(frozen=True)
class HistoryFilter:
    kinds: tuple[str, ...] | None = None  # None: every kind
    start: datetime | None = None  # inclusive, UTC
    end: datetime | None = None  # exclusive, UTC


def day_range(first: date, last: date) -> tuple[datetime, datetime]:
    """Inclusive calendar days (UTC) as the ledger's [start, end) datetimes."""
    return (datetime.combine(first, time.min, UTC), datetime.combine(last + timedelta(days=1), time.min, UTC))


def period_range(period: str, today: date, custom: tuple[date, date] | None = None
                 ) -> tuple[datetime | None, datetime | None]:
    if period == "month":
        return day_range(today.replace(day=1), today)
    if period in ("30", "90"):
        return day_range(today - timedelta(days=int(period) - 1), today)
    if period == "custom" and custom is not None:
        return day_range(*custom)
    return None, None


def history_row(entry: EntryView) -> dict[str, object]:
    return {"Date (UTC)": utc(entry.created_at), "What": KIND_LABELS.get(entry.kind, entry.kind),
            "Amount": entry.amount, "Bucket": BUCKET_LABELS.get(entry.bucket, entry.bucket),
            "Balance after": entry.balance_after, "Note": entry.memo, "Reference": entry.reference}


HISTORY_COLUMNS = ["Date (UTC)", "What", "Amount", "Bucket", "Balance after", "Note", "Reference"]


def history_table(entries: list[EntryView]) -> None:
    # A dataframe shows every cell as plain text, so an admin's memo cannot become a link or markup.
    table(
        [history_row(e) for e in entries], HISTORY_COLUMNS, hide_index=True, key="wallet_history_table",
        column_config={
            "Amount": st.column_config.NumberColumn("Amount", format="%+d", help="Credits in (+) or out (-)"),
            "Balance after": st.column_config.NumberColumn("Balance after", format="%d",
                                                           help="Both buckets together, right after this entry"),
            "Note": st.column_config.TextColumn("Note", width="medium"),
            "Reference": st.column_config.TextColumn("Reference", width="small"),
        })


def all_entries(ledger: LedgerService, user_id: int, filt: HistoryFilter) -> Iterator[EntryView]:
    """Every entry the filter matches, newest first, across all pages."""
    page = 1
    while True:
        batch = ledger.history(user_id, kinds=filt.kinds, start=filt.start, end=filt.end, page=page,
                               page_size=CSV_PAGE_SIZE)
        yield from batch.items
        if page >= batch.pages:
            return
        page += 1


def _cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading quote (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


CSV_COLUMNS = ["date_utc", "kind", "description", "amount", "bucket", "balance_after", "memo", "reference",
               "entry_id"]


def history_csv(ledger: LedgerService, user_id: int, filt: HistoryFilter) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in all_entries(ledger, user_id, filt):
        writer.writerow([_cell(v) for v in (e.created_at.astimezone(UTC).isoformat(timespec="seconds"), e.kind,
                                            KIND_LABELS.get(e.kind, e.kind), e.amount, e.bucket, e.balance_after,
                                            e.memo, e.reference, e.id)])
    return out.getvalue()


def csv_download(ledger: LedgerService, user_id: int, filt: HistoryFilter, *, file_name: str) -> None:
    # Deferred: the whole filtered history is read only when the button is pressed, not on every rerun.
    # The callable runs outside the script thread: it only touches the ledger, never st.*.
    st.download_button("Download CSV", data=lambda: history_csv(ledger, user_id, filt), file_name=file_name,
                       mime="text/csv", key="wallet_history_csv", icon=":material/download:", on_click="ignore",
                       help="Every entry that matches the filters (all pages), as a spreadsheet.")


# -- packs and receipts ----------------------------------------------------------------------------------------
def pack_card(pack: PackView, *, on_buy: Callable[[PackView], None], disabled: bool) -> None:
    with st.container(border=True):
        st.markdown(f"**{pack.name}**")
        st.metric(pack.name, credits(pack.total_credits), label_visibility="collapsed")
        if pack.bonus:
            st.badge(f"{pack.credits:,} + {pack.bonus:,} bonus", icon=":material/redeem:", color="green")
        else:
            st.badge("No bonus", color="gray")
        st.caption(f"{pack.price_cents / pack.total_credits:.1f}¢ per credit · never expire")
        st.button(f"Buy for {pack.price_label}", key=f"wallet_buy_{pack.id}", type="primary",
                  icon=":material/shopping_cart:", width="stretch", on_click=on_buy, args=(pack,),
                  disabled=disabled)


def price(receipt: Receipt) -> str:
    return PackView(id=receipt.pack_id, name="", credits=receipt.credits, bonus=0,
                    price_cents=receipt.price_cents, currency=receipt.currency).price_label


def receipt_card(receipt: Receipt, pack_name: str, *, newly_credited: bool, on_done: Callable[[], None]) -> None:
    """The receipt shown after a purchase (or after coming back from the gateway)."""
    with st.container(border=True):
        if newly_credited:
            st.success(f"Payment received: {credits(receipt.credits)} added to your wallet.",
                       icon=":material/check_circle:")
        else:
            st.info(f"This payment was already added to your wallet ({credits(receipt.credits)}); nothing was "
                    "charged or added twice.", icon=":material/check_circle:")
        rows = [("Receipt", f"P-{receipt.purchase_id:06d}"), ("Pack", pack_name),
                ("Credits", f"{receipt.credits:,}"), ("Price", price(receipt)),
                ("Paid with", GATEWAY_LABELS.get(receipt.gateway, receipt.gateway)),
                ("Date (UTC)", utc(receipt.completed_at or receipt.created_at))]
        for col, (label, value) in zip(st.columns([1, 1, 0.8, 0.8, 1.8, 1.3]), rows, strict=True):
            col.caption(label)
            col.text(value)
        st.button("Done", key="wallet_receipt_done", on_click=on_done)


def receipts_table(receipts: list[Receipt], pack_names: dict[str, str]) -> None:
    table([{"Receipt": f"P-{r.purchase_id:06d}", "Date (UTC)": utc(r.completed_at or r.created_at),
            "Pack": pack_names.get(r.pack_id, r.pack_id), "Credits": r.credits, "Price": price(r),
            "Paid with": GATEWAY_LABELS.get(r.gateway, r.gateway), "Status": STATUS_LABELS.get(r.status, r.status)}
           for r in receipts], ["Receipt", "Date (UTC)", "Pack", "Credits", "Price", "Paid with", "Status"],
          hide_index=True, key="wallet_receipts_table")


def grouped(card_number: str) -> str:
    return " ".join(card_number[i:i + 4] for i in range(0, len(card_number), 4))


def test_cards_help(cards: dict[str, str]) -> None:
    # The gateway's own constants (digits and fixed phrases), so a Markdown table is safe here.
    rows = "\n".join(f"| `{grouped(number)}` | {outcome} |" for number, outcome in cards.items())
    st.caption("Sandbox checkout: no real money moves. Use one of these test cards.")
    st.markdown(f"| Card number | What happens |\n|---|---|\n{rows}")


# -- referrals ----------------------------------------------------------------------------------------------------
def referral_panel(summary: ReferralSummary, settings: Settings) -> None:
    with st.container(border=True):
        st.header("Invite friends")
        st.caption(f"Friends who join with your code or link get {credits(settings.signup_bonus)}; you get "
                   f"{credits(settings.referral_bonus)} when their first image is made.")
        code_col, link_col = st.columns([1, 3])
        with code_col:
            st.caption("Your code")
            st.code(summary.code, language=None)
        with link_col:
            st.caption("Your link")
            st.code(summary.link, language=None)
        with st.container(horizontal=True):
            st.metric("Friends joined", summary.joined)
            st.metric("Waiting for a first image", summary.pending)
            st.metric("Credits earned", f"{summary.credits_earned:,}")
