"""What a person sees in Airflow's UI: the migration view and the extra links."""
