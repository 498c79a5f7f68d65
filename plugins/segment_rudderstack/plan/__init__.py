"""The migration plan: the plan file's model, its validation and the names derived from it."""
