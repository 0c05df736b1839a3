"""Sites now; accounts, login and API keys later (see ARCHITECTURE.md)."""
