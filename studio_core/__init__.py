"""Studio's reusable core: data model, credit ledger, providers and services (no Streamlit outside ui/)."""

__version__ = "0.1.0"
