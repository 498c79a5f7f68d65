"""Telling people where a long cutover stands: messages (pure), their delivery through Airflow's Slack and SMTP
notifiers (optional providers), and the notifier the DAGs attach to tasks, approval gates and deadlines."""
