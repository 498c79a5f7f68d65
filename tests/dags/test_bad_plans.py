"""Bad plans are visible where operators look (the DAG list, the DAG's docs, a failing task), name the file
and the field, and never hide the other plans; a misspelled trigger param stops the run before any change.

The DAG folder is parsed by Airflow's own DagBag from a copy of the project layout (dags/ + include/plans/)."""

from __future__ import annotations

import pathlib
import shutil
from types import SimpleNamespace

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowFailException

from segment_rudderstack.factory.dags import build_all

ROOT = pathlib.Path(__file__).resolve().parents[2]
SANDBOX = (ROOT / "include" / "plans" / "sandbox.yaml").read_text()


def project_with(tmp_path: pathlib.Path, plans: dict[str, str]) -> DagBag:
    (tmp_path / "dags").mkdir()
    shutil.copy(ROOT / "dags" / "segment_to_rudderstack.py", tmp_path / "dags")
    (tmp_path / "include" / "plans").mkdir(parents=True)
    for name, text in plans.items():
        (tmp_path / "include" / "plans" / name).write_text(text)
    return DagBag(dag_folder=str(tmp_path / "dags"))


def renamed(name: str, text: str = SANDBOX) -> str:
    return text.replace("name: sandbox", f"name: {name}")


def test_an_invalid_plan_is_a_placeholder_dag_naming_file_and_field(tmp_path):
    bag = project_with(
        tmp_path,
        {
            "sandbox.yaml": SANDBOX,
            "typo.yaml": renamed("typo").replace("kind: client", "kind: mobile"),
        },
    )
    assert bag.import_errors == {}  # the good plans stay active (an import error would mark them stale)
    assert {"segment_to_rudderstack__sandbox", "segment_to_rudderstack_rollback__sandbox"} <= set(bag.dag_ids)
    bad = bag.get_dag("segment_to_rudderstack__typo")
    assert bad.dag_display_name == "INVALID PLAN: typo.yaml"
    assert bad.description.startswith("INVALID PLAN typo.yaml: sources[0].kind: Input should be 'client' or")
    assert "invalid-plan" in bad.tags and "typo.yaml" in bad.doc_md
    with pytest.raises(AirflowFailException, match=r"sources\[0\]\.kind"):
        bad.get_task("invalid_plan").execute({})
    assert bad.get_task("invalid_plan").retries == 0


def test_an_unreadable_plan_gets_a_placeholder_named_after_its_file(tmp_path):
    bag = project_with(tmp_path, {"sandbox.yaml": SANDBOX, "half-written.yaml": "name: [unclosed\n"})
    bad = bag.get_dag("segment_to_rudderstack__invalid__half_written")
    assert "half-written.yaml" in bad.description and "not valid YAML" in bad.description
    assert "segment_to_rudderstack__sandbox" in bag.dag_ids


def test_two_files_with_the_same_plan_name_are_both_refused(tmp_path):
    bag = project_with(
        tmp_path,
        {
            "a_copy.yaml": SANDBOX.replace("dry_run: false", "dry_run: true"),
            "sandbox.yaml": SANDBOX,
            "other.yaml": renamed("other"),
        },
    )
    assert bag.import_errors == {}
    dup = bag.get_dag("segment_to_rudderstack__sandbox")
    assert "invalid-plan" in dup.tags  # neither file silently wins
    assert "plan name 'sandbox' is used by 2 files" in dup.description
    assert "a_copy.yaml" in dup.description and "sandbox.yaml" in dup.description
    assert "segment_to_rudderstack_rollback__sandbox" not in bag.dag_ids
    assert (
        "segment_to_rudderstack__other" in bag.dag_ids
        and "invalid-plan" not in bag.get_dag("segment_to_rudderstack__other").tags
    )


def test_a_schedule_airflow_cannot_run_names_the_plan_and_the_field(tmp_path):
    plan = renamed("biweekly").replace("schedule: null", 'schedule: "@fortnightly"')
    bag = project_with(tmp_path, {"sandbox.yaml": SANDBOX, "biweekly.yaml": plan})
    assert bag.import_errors == {}  # before: an import error of the whole file, naming neither plan nor field
    bad = bag.get_dag("segment_to_rudderstack__biweekly")
    assert bad.description.startswith(
        "INVALID PLAN biweekly.yaml: schedule: '@fortnightly' is not a valid cron expression or Airflow preset"
    )
    assert "segment_to_rudderstack__sandbox" in bag.dag_ids


def test_a_valid_cron_schedule_still_builds(tmp_path):
    dags = build_all(
        _plans(
            tmp_path, {"nightly.yaml": renamed("nightly").replace("schedule: null", 'schedule: "0 3 * * *"')}
        ),
        reports_dir=tmp_path,
    )
    assert "invalid-plan" not in dags["segment_to_rudderstack__nightly"].tags


def _plans(tmp_path, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    "dag_id", ["segment_to_rudderstack__sandbox", "segment_to_rudderstack_rollback__sandbox"]
)
def test_a_misspelled_trigger_param_is_refused_naming_the_nearest_valid_one(tmp_path, dag_id):
    dag = build_all(_plans(tmp_path, {"sandbox.yaml": SANDBOX}), reports_dir=tmp_path)[dag_id]
    first = dag.get_task("migration_status" if "rollback" not in dag_id else "rollback")
    conf = {"adoption_treshold": 0.5} if "rollback" not in dag_id else {"dryrun": True}
    with pytest.raises(AirflowFailException) as err:
        first.execute({"dag_run": SimpleNamespace(conf=conf)})
    message = str(err.value)
    if "rollback" in dag_id:
        assert "'dryrun' (did you mean 'dry_run'?)" in message
    else:
        assert "'adoption_treshold' (did you mean 'adoption_threshold'?)" in message
    assert "Nothing was changed" in message
