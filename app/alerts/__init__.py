"""Alerts: rules a site's owners set, evaluated on a schedule and after each fold, and the channels that deliver them."""
