"""Building Airflow DAGs from plans: the migration and rollback DAGs, and placeholders for invalid plans."""
