"""Accounts and access: users and logins, sites, members and invitations, public links, API keys, the audit log."""
