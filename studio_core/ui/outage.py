"""What a screen shows when the database stops answering mid-session (a restart, a failover, a cut line).

Every credit moves inside a database transaction, so an outage can interrupt a page but never half-move money;
the message says exactly that, and "Try again" reruns the page once the database is back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from studio_core.db import DATABASE_DOWN, DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE_DOWN_MESSAGE = ("The database is not answering right now, so this page could not load. Nothing you did "
                         "is lost: credits only move once the database has confirmed it. Please try again in a "
                         "moment.")


@contextmanager
def database_guard() -> Iterator[None]:
    """Run a screen; if the database goes away meanwhile, replace the traceback with a plain message."""
    try:
        yield
    except (*DATABASE_DOWN, DatabaseUnavailable):
        log.warning("a page could not reach the database", exc_info=True)
        st.error(DATABASE_DOWN_MESSAGE, icon=":material/cloud_off:")
        st.button("Try again", key="database_retry", icon=":material/refresh:")
