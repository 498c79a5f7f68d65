"""preferAppend / skipUsersTable read as rudder-server reads them (segment_rudderstack.safety.merge_mode)."""

from __future__ import annotations

from segment_rudderstack.safety.merge_mode import merge_mode_findings


def test_append_mode_is_switched_when_allowed_and_refused_when_not():
    allowed = merge_mode_findings("dst_1", {"preferAppend": True}, allow_change=True)
    assert allowed.will_switch_to_merge and not allowed.problems and "switches it off" in allowed.warnings[0]
    forbidden = merge_mode_findings("dst_1", {"preferAppend": True}, allow_change=False)
    assert not forbidden.will_switch_to_merge and "dst_1" in forbidden.problems[0]
    assert "allow_merge_mode_change" in forbidden.problems[0]


def test_merge_mode_already_and_a_missing_key_need_nothing():
    # rudder-server GetPreferAppendSetting: a missing key is false (merge).
    for config in ({}, {"preferAppend": False}):
        findings = merge_mode_findings("dst_1", config, allow_change=False)
        assert (findings.prefer_append, findings.problems, findings.warnings) == (False, [], [])


def test_skip_users_table_is_a_warning_not_a_stop():
    findings = merge_mode_findings(None, {"skipUsersTable": True}, allow_change=False)
    assert findings.skip_users_table and not findings.problems
    assert "users" in findings.warnings[0] and "stale" in findings.warnings[0]
