"""The wallet bar: what this month's allowance has left, paid credits, and credits on hold. On every page.

Four elements, not a card of metrics: it is drawn on every run of every page."""

from __future__ import annotations

import streamlit as st

from studio_core.services.ledger import Balance, LedgerService, month_of

ALLOWANCE_KEY = "allowance_ensured"  # (user id, YYYY-MM) this session has seen the allowance granted for


def ensure_allowance(ledger: LedgerService, user_id: int) -> None:
    """The month's allowance arrives on first activity: asked of the ledger once per session and month (the
    grant is idempotent by key, so a second session or process asking again changes nothing)."""
    this_month = (user_id, month_of(ledger.clock()))
    if st.session_state.get(ALLOWANCE_KEY) != this_month:
        ledger.ensure_monthly_allowance(user_id)
        st.session_state[ALLOWANCE_KEY] = this_month


def wallet_bar(balance: Balance) -> None:
    with st.sidebar.container(border=True):
        granted = balance.allowance_granted_this_month
        left = balance.allowance_available
        resets = f"resets {balance.reset_date:%d %b}"
        if granted:
            st.progress(min(1.0, max(0.0, left / granted)), text=f"Monthly: {left} of {granted} left · {resets}")
        else:
            st.caption(f"No monthly allowance this month · {resets}")
        st.markdown(f"**{balance.available}** available")
        st.caption(f"Paid {balance.paid_available} · On hold {balance.reserved}")
