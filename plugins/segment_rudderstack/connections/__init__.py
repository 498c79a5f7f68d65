"""Airflow connections translated into the settings RudderStack's destinations need."""
