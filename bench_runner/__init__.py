"""Runs lowered artifacts on devices and turns raw timings into trustworthy records."""
