"""The composed world: embedded PostgreSQL by default, a given DSN when set; files written; end to end."""

from __future__ import annotations

import json

import psycopg2
import requests

from sandbox.clients import AdoptionCurve, ClientsConfig
from sandbox.config import load_config
from sandbox.reconcile import reconcile
from sandbox.rudderstack_definitions import accepted_config
from sandbox.segment import SegmentSettings, SourceSeed
from sandbox.world import Sandbox
from tests.waiting import wait_until

RS_AUTH = {"Authorization": "Bearer sandbox-rudderstack-token"}


def test_embedded_world_starts_writes_its_settings_and_stops(tmp_path, monkeypatch):
    monkeypatch.delenv("SANDBOX_WAREHOUSE_DSN", raising=False)
    config = load_config(home=tmp_path, clients_enabled=False)
    assert config.embedded
    world = Sandbox(config)
    info = world.start()
    try:
        assert info.embedded_warehouse and str(tmp_path / "pgdata") in info.warehouse_dsn
        state = json.loads((tmp_path / "state.json").read_text())
        assert state["status"] == "running" and state["warehouse_dsn"] == info.warehouse_dsn
        env_lines = dict(
            line.split("=", 1) for line in (tmp_path / "airflow-connections.env").read_text().splitlines()
        )
        assert set(env_lines) == {
            "AIRFLOW_CONN_SEGMENT_SANDBOX",
            "AIRFLOW_CONN_RUDDERSTACK_SANDBOX",
            "AIRFLOW_CONN_RUDDERSTACK_DATA_PLANE_SANDBOX",
            "AIRFLOW_CONN_WAREHOUSE_SANDBOX",
            "AIRFLOW_CONN_SLACK_SANDBOX",  # the notifications' receivers (docs/operating.md)
            "AIRFLOW_CONN_SMTP_SANDBOX",
        }
        conns = {k: json.loads(v.strip("'")) for k, v in env_lines.items()}
        segment = conns["AIRFLOW_CONN_SEGMENT_SANDBOX"]
        got = requests.get(
            f"{segment['host']}/warehouses/wh_sandbox_pg",
            headers={"Authorization": f"Bearer {segment['password']}"},
            timeout=5,
        )
        assert got.status_code == 200 and got.json()["data"]["warehouse"]["enabled"] is True
        rudder = conns["AIRFLOW_CONN_RUDDERSTACK_SANDBOX"]
        sources = requests.get(
            f"{rudder['host']}/sources", headers={"Authorization": f"Bearer {rudder['password']}"}, timeout=5
        )
        assert {s["id"] for s in sources.json()["sources"]} == {"rs_src_app", "rs_src_backend"}
        pg = conns["AIRFLOW_CONN_WAREHOUSE_SANDBOX"]
        with psycopg2.connect(
            host=pg["host"], port=pg["port"], user=pg["login"], dbname=pg["schema"]
        ) as conn:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'app_events'"
                )
                assert cur.fetchone() == (1,)
    finally:
        world.stop()
    assert json.loads((tmp_path / "state.json").read_text())["status"] == "stopped"
    try:
        requests.get(f"{info.segment_url}/sandbox/state", timeout=2)
        raise AssertionError("the Segment emulator still answers after stop()")
    except requests.ConnectionError:
        pass


def test_world_on_a_given_dsn_delivers_every_event_exactly_once(tmp_path, pg_dsn, namespace, ledger_schema):
    segment = SegmentSettings(
        sources=[
            SourceSeed("src_web_app", "web_app", "Web App", "wk_seg_web_app", namespace),
            SourceSeed("src_backend", "backend", "Backend", "wk_seg_backend", namespace),
        ],
        load_interval_s=None,
        load_duration_s=0.1,
    )
    clients = ClientsConfig(
        seed=3,
        events_per_second=100,
        max_events=60,
        schema=namespace,
        adoption=AdoptionCurve(ramp_s=0.6),
        sdk_upload_interval_s=0.05,
    )
    config = load_config(home=tmp_path, warehouse_dsn=pg_dsn, ledger_schema=ledger_schema)
    config.segment, config.clients = segment, clients
    config.rudderstack.upload_duration_s = 0.2
    world = Sandbox(config)
    info = world.start()
    try:
        assert not info.embedded_warehouse and info.warehouse_dsn == pg_dsn
        api = info.rudderstack_api_url
        dest = requests.post(
            f"{api}/destinations",
            headers=RS_AUTH,
            timeout=5,
            json={"name": "wh", "type": "POSTGRES", "config": accepted_config(namespace, manualSync=True)},
        ).json()
        for source in ("rs_src_app", "rs_src_backend"):
            requests.post(
                f"{api}/connections",
                headers=RS_AUTH,
                timeout=5,
                json={"sourceId": source, "destinationId": dest["destination"]["id"]},
            ).raise_for_status()
        requests.post(f"{info.rudderstack_url}/sandbox/deploy-server-side", timeout=5).raise_for_status()
        assert world.clients.wait_done(30)
        world.clients.stop(flush=True)
        requests.post(f"{info.segment_url}/sandbox/loads/run", timeout=30).raise_for_status()
        requests.post(
            f"{info.rudderstack_url}/internal/v1/warehouse/trigger-upload",
            timeout=5,
            json={"source_id": "rs_src_app", "destination_id": dest["destination"]["id"]},
        ).raise_for_status()
        wait_until(
            lambda: (
                not world.rudderstack.pending_events("rs_src_app")["pending_events"]
                and not world.rudderstack.pending_events("rs_src_backend")["pending_events"]
            ),
            what="RudderStack uploads to finish",
        )
        report = reconcile(pg_dsn, namespace, ledger_schema=ledger_schema)
        totals = report.totals()
        assert report.ok, report.format()
        assert totals.sent == 60 and totals.loaded == 60
        stats = world.clients.stats()
        assert set(stats["sent_by_source"]) >= {"src_web_app", "rs_src_app"}
    finally:
        world.stop()
