"""What keeps a migration safe: the write-ahead change log, the writer lease, fail-fast errors, preflight checks, merge mode, trigger conf."""
