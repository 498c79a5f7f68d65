"""Whether RudderStack's warehouse loads will deduplicate the overlap, read from the destination's config.

rudder-server (``warehouse/integrations/postgres/load.go`` ``shouldMerge``, likewise ``redshift/redshift.go``,
``snowflake/snowflake.go``, ``deltalake/deltalake.go``) merges a load into the existing rows (deleting rows with
the same ``id`` first) only when the destination's config key ``preferAppend`` (``warehouse/internal/model/
settings.go`` ``PreferAppendSetting``; RudderStack's UI calls it "Warehouse Append") is not ``true``. With it on,
the overlap between Segment's last loads and RudderStack's first ones (the webhook path carries the same
message ids) is appended twice. So the migration runs the overlap in merge mode: it switches ``preferAppend``
off before anything loads (a recorded change the rollback undoes), or refuses when the plan forbids changing it.

The ``users`` table: rudder-server's warehouse transformer skips it when the destination config key
``skipUsersTable`` is ``true`` (``processor/internal/transformer/destination_transformer/embedded/warehouse/
options.go`` ``extractDestOpts``; ``events.go`` ``shouldSkipUsersTable``; an event may also ask for it with
``integrations.<DEST_TYPE>.options.skipUsersTable``). Then ``users`` stops updating after the switch, and models
reading it go stale: the preflight warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFER_APPEND = "preferAppend"
SKIP_USERS_TABLE = "skipUsersTable"


def _is_true(value: Any) -> bool:
    # rudder-server reads both keys as JSON booleans (``destConfig[key].(bool)``); a string "true" is not true
    # there, but the library treats it as on, to stay on the safe side.
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


@dataclass(frozen=True)
class MergeModeFindings:
    """What the destination's config means for the overlap, and what to tell the user."""

    prefer_append: bool
    skip_users_table: bool
    problems: list[str] = field(default_factory=list)  # the migration must not start
    warnings: list[str] = field(default_factory=list)  # it may start; the user should know
    will_switch_to_merge: bool = False


def merge_mode_findings(
    destination_id: str | None,
    config: Mapping[str, Any],
    *,
    allow_change: bool,
    users_table: bool | None = None,
) -> MergeModeFindings:
    """Read ``preferAppend`` and ``skipUsersTable`` of a warehouse destination ``config`` (pure). ``users_table``:
    the plan keeps a ``users`` table (the setup switches ``skipUsersTable`` off), does not (nothing to say), or
    ``None`` (not known: a warning)."""
    prefer_append = _is_true(config.get(PREFER_APPEND))
    skip_users = _is_true(config.get(SKIP_USERS_TABLE))
    name = f"RudderStack destination {destination_id}" if destination_id else "The RudderStack destination"
    problems: list[str] = []
    warnings: list[str] = []
    if prefer_append and not allow_change:
        problems.append(
            f'{name} has preferAppend ("Warehouse Append") on, so its loads do not deduplicate and the overlap '
            "with Segment's last loads would be loaded twice; the plan forbids changing it "
            "(rudderstack.destination.allow_merge_mode_change: false). Switch preferAppend off in RudderStack, "
            "or allow the migration to run the overlap in merge mode"
        )
    elif prefer_append:
        warnings.append(
            f'{name} has preferAppend ("Warehouse Append") on: the migration switches it off (merge mode, rows '
            "with the same id are replaced) before RudderStack loads anything; the rollback switches it back on"
        )
    if skip_users and users_table:
        warnings.append(
            f"{name} has skipUsersTable on, so RudderStack would not update the users table: the migration switches "
            "it off before anything loads (a recorded change; the rollback switches it back on)"
        )
    elif skip_users and users_table is None:
        warnings.append(
            f"{name} has skipUsersTable on: RudderStack will not update the users table, so after the switch "
            "users stops changing and models reading it go stale. Switch skipUsersTable off in RudderStack if "
            "anything reads users"
        )
    return MergeModeFindings(
        prefer_append=prefer_append,
        skip_users_table=skip_users,
        problems=problems,
        warnings=warnings,
        will_switch_to_merge=prefer_append and allow_change,
    )
