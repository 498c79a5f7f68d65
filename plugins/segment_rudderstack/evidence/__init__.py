"""What proves the migration: the proof from Segment's metrics, the report and its sections."""
