"""Every kind of change the migration records is either undone by the rollback (a step registered beside the
operator that makes the change) or says why it is not: a new change target cannot be forgotten."""

from __future__ import annotations

import segment_rudderstack.operators.rollback  # noqa: F401  (imports every module that registers steps)
from segment_rudderstack.operators.undo import registered, undo_step_for
from segment_rudderstack.vocabulary import ChangeTarget


def test_every_change_target_is_undone_or_says_why_not():
    steps, not_undone = registered()
    undone = {target for target, _ in steps}
    assert not (undone & set(not_undone)), "a target is both undone and 'not undone'"
    missing = [t.value for t in ChangeTarget if t not in undone and t not in not_undone]
    assert not missing, f"no undo step and no 'not undone' reason for {missing}"
    assert all(reason.strip() for reason in not_undone.values())


def test_a_config_key_without_its_own_step_falls_back_to_holding_the_sync():
    own = undo_step_for(ChangeTarget.RUDDERSTACK_DESTINATION, "config.preferAppend")
    fallback = undo_step_for(ChangeTarget.RUDDERSTACK_DESTINATION, "config.syncStartAt")
    assert own is not None and fallback is not None and own is not fallback
    assert fallback is undo_step_for(ChangeTarget.RUDDERSTACK_DESTINATION, "config.manualSync")
    assert undo_step_for(ChangeTarget.RUDDERSTACK_UPLOAD_TRIGGER, "triggered") is None
