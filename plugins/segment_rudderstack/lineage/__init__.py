"""What the cutover tells other tools: Airflow asset events for downstream DAGs, OpenLineage facets."""
