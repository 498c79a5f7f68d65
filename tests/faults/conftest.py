"""The fault matrix reuses the library tests' world (real emulators on 127.0.0.1 + the session's PostgreSQL)."""

from tests.library.conftest import world  # noqa: F401  (the fixture)
