"""The wallet bar: what this month's allowance has left, paid credits, and credits on hold. On every page."""

from __future__ import annotations

import streamlit as st

from studio_core.services.ledger import Balance


def wallet_bar(balance: Balance) -> None:
    with st.sidebar.container(border=True):
        st.caption("Credits")
        granted = balance.allowance_granted_this_month
        left = balance.allowance_available
        if granted:
            st.progress(min(1.0, max(0.0, left / granted)),
                        text=f"Monthly: {left} of {granted} left")
        else:
            st.caption("No monthly allowance this month")
        st.caption(f"Resets {balance.reset_date:%d %b}")
        paid_col, hold_col = st.columns(2)
        paid_col.metric("Paid", balance.paid_available)
        hold_col.metric("On hold", balance.reserved)
        st.markdown(f"**{balance.available}** available")
