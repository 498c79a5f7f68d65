"""Waiting on outside state: pure conditions, the watches that observe and decide, transient-error budgets, RudderStack's upload schedule."""
