"""Simulated clients: app installs and server-side services sending events through the REAL SDKs.

- App installs on the old app version send with `segment-analytics-python` to the Segment emulator's app
  source (write key `wk_seg_web_app`); installs on the new version send with `rudder-sdk-python` to
  RudderStack's app source (`wk_rs_app`). Which installs run the new version follows an adoption curve
  (`AdoptionCurve`: linear or logistic ramp, 0 % before `start_delay_s`, 100 % after `ramp_s`, counted from
  the fleet's start or, with `starts_at="cutover"`, from the moment the source's Segment webhook to RudderStack
  is enabled). Each install has a fixed threshold, so an install that upgraded never goes back.
- Server-side services send to Segment's backend source (`wk_seg_backend`) until they are "deployed" onto
  RudderStack (`switch_server_side()`, called by the world when POST /sandbox/deploy-server-side is received,
  or automatically with `server_side_switch="auto"` once a warehouse destination is connected to
  `rs_src_backend`); from then on they send to `wk_rs_backend`.

Seeded: event k is derived from `random.Random(f"{seed}:{k}")` (message id included), and its route from
its planned time k / events_per_second, so two runs with the same seed send the same events the same way
(the server-side switch and a cutover-anchored ramp's origin excepted: they happen when observed). Every event is recorded in the Ledger BEFORE
it is handed to an SDK, with its message id set explicitly (events already due are recorded together,
in one ledger transaction, before any of them is handed over), with the values its client set (`sent_values`:
what the value check, sandbox.value_check, compares with the warehouse).

The drift world (`ClientsConfig.drift`; `python -m sandbox start --world drift`) carries four drifts that keep
every event and still change what the warehouse's models read after the cutover (see DRIFT_* below). The
default world carries none of them: every key it sends is named alike by both loaders, every value keeps its
type across app versions, and no property is named like a column RudderStack fills itself.
"""

from __future__ import annotations

import logging
import math
import queue
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from sandbox.common import utcnow

log = logging.getLogger(__name__)

TRACK_EVENTS = {
    "Order Completed": lambda r: {
        "order_id": f"o-{r.randrange(10**6)}",
        "revenue": round(r.uniform(5, 250), 2),
        "currency": "EUR",
    },
    "Product Viewed": lambda r: {"product_id": f"p-{r.randrange(500)}", "price": round(r.uniform(1, 99), 2)},
    "Cart Viewed": lambda r: {"items": r.randrange(1, 8)},
    "Signed In": lambda r: {"method": r.choice(["password", "google", "apple"])},
}
SERVER_EVENTS = {
    "Order Completed": TRACK_EVENTS["Order Completed"],
    "Payment Captured": lambda r: {
        "amount": round(r.uniform(5, 250), 2),
        "provider": r.choice(["stripe", "adyen"]),
    },
    "Email Sent": lambda r: {"template": r.choice(["receipt", "welcome", "reminder"])},
}
# The drift world (ClientsConfig.drift, off by default). Each drift is derived from values already drawn (no
# extra draw), so both worlds send the same events the same way; each cites the loader rule that makes it show.
#
# 1. A type change with the new app version: `Cart Viewed.items` is an integer on old versions and a string
#    ("3 items") on the new one. Into the bigint column Segment created, rudder-server writes NULL plus a
#    rudder_discards row, the row itself loads (warehouse/schema/schema.go consolidateWarehouseSchema: the
#    existing type wins; warehouse/slave/worker.go HandleSchemaChange: int <- string is incompatible;
#    worker_job.go handleDiscardTypes: the discards row).
DRIFT_EVENT, DRIFT_PROPERTY = "Cart Viewed", "items"
# 2. A key RudderStack names differently, on every version: `SKUCode` is `skucode` for Segment
#    (segmentio/go-snakecase snake.go, sandbox.segment_loader.go_snakecase) and `sku_code` for RudderStack
#    (EW/internal/snakecase/snakecase.go ToSnakeCaseWithNumbers via EW/safe.go transformColumnName,
#    sandbox.rudderstack_naming), so after the switch the value lands in another column than the models read.
DRIFT_SKU_EVENT, DRIFT_SKU_KEY = "Product Viewed", "SKUCode"
# 3. An identify trait RudderStack names differently, on every version: `CRMId` is `crmid` for Segment and
#    `crm_id` (and `context_traits_crm_id`) for RudderStack, by the same two rules as SKUCode. Why not "traits only
#    in context.traits" instead: rudder-sdk-python and RudderStack's JS SDK already send identify traits only in
#    context.traits, and with the plans' `allowUsersContextTraits: true` rudder-server copies context.traits into
#    the un-prefixed trait columns too (EW/events.go identifyCommonProps: userProperties, then context.traits when
#    allowUsersContextTraits, then traits, then the context as context_*), so those columns always fill. A trait
#    misses the column the models read only when the destination has that flag off (it is then only in
#    `context_traits_*`), or when RudderStack snake-cases its key differently: the drift this world sends.
DRIFT_TRAIT_KEY = "CRMId"
# 4. A track property named `channel` (the order's marketing channel), on every version: Segment keeps it in the
#    `channel` column of order_completed; RudderStack drops a property named like one of its own columns
#    (EW/internal/rules/rules.go rudderReservedColumns) and fills `channel` from the event's own channel
#    (DefaultRules: `server` from rudder-sdk-python, `web` from the JS SDK; the sandbox Segment's webhook events
#    carry none, so NULL), so after the cutover the column holds RudderStack's value instead of the property's.
DRIFT_CHANNEL_EVENT, DRIFT_CHANNEL_KEY = "Order Completed", "channel"
DRIFT_CHANNELS = ("newsletter", "push", "affiliate")
# Keys that exercise the loaders' naming rules (sent in the drift world only).
NAMING_KEYS = (DRIFT_SKU_KEY, DRIFT_TRAIT_KEY)


def _drifted(event: PlannedEvent) -> PlannedEvent:
    """The drift world's keys on `event` (2.-4. above; 1. depends on the SDK, see sdk_call)."""
    if event.event_type == "track" and event.event == DRIFT_SKU_EVENT:
        sku = event.properties["product_id"].upper()
        return replace(event, properties={**event.properties, DRIFT_SKU_KEY: sku})
    if event.event_type == "track" and event.event == DRIFT_CHANNEL_EVENT:
        number = int("".join(ch for ch in event.properties["order_id"] if ch.isdigit()) or 0)
        channel = DRIFT_CHANNELS[number % len(DRIFT_CHANNELS)]
        return replace(event, properties={**event.properties, DRIFT_CHANNEL_KEY: channel})
    if event.event_type == "identify":
        crm = "CRM-" + "".join(ch for ch in event.user_id if ch.isdigit())
        return replace(event, traits={**event.traits, DRIFT_TRAIT_KEY: crm})
    return event


# RudderStack's JavaScript SDK (rudder-sdk-js v3): what its events carry where rudder-sdk-python differs.
JS_SDK_LIBRARY = {"name": "RudderLabs JavaScript SDK", "version": "3.31.4"}
JS_SDK_APP = {
    "name": "RudderLabs JavaScript SDK",
    "namespace": "com.rudderlabs.javascript",
    "version": "3.31.4",
}
PAGES = ["Home", "Search", "Product", "Cart", "Checkout"]
PLANS = ["free", "pro", "business"]
OLD_APP_VERSION = "1.9.4"
# Installs not yet on the new version run one of these (context.app.version: what Segment's Delivery Overview
# groups ingress by, so the report can say which app versions still send to Segment).
OLD_APP_VERSIONS = ("1.8.2", OLD_APP_VERSION)
MAX_CHUNK = 200
NEW_APP_VERSION = "2.0.0"


@dataclass
class AdoptionCurve:
    """Share of app installs on the new version, as a function of seconds since adoption started."""

    kind: str = "linear"  # "linear" | "logistic"
    ramp_s: float = 75.0
    start_delay_s: float = 0.0
    steepness: float = 10.0  # logistic only
    # When the elapsed time counts from: "clients_start" (the fleet's start) or "cutover" (per app source, the
    # moment Segment's webhook to RudderStack is enabled on the source's Segment source: the new app version ships
    # on the day of the cutover, so old versions still send through the webhook whatever the machine's speed).
    starts_at: str = "clients_start"

    def __post_init__(self) -> None:
        if self.starts_at not in ("clients_start", "cutover"):
            raise ValueError(
                f"AdoptionCurve.starts_at must be 'clients_start' or 'cutover', got {self.starts_at!r}"
            )

    def share(self, elapsed_s: float) -> float:
        t = elapsed_s - self.start_delay_s
        if t <= 0:
            return 0.0
        if t >= self.ramp_s:
            return 1.0
        x = t / self.ramp_s
        if self.kind == "linear":
            return x
        if self.kind == "logistic":
            low, high = (1 / (1 + math.exp(self.steepness * 0.5)), 1 / (1 + math.exp(-self.steepness * 0.5)))
            value = 1 / (1 + math.exp(-self.steepness * (x - 0.5)))
            return (value - low) / (high - low)
        raise ValueError(f"AdoptionCurve.kind must be 'linear' or 'logistic', got {self.kind!r}")


@dataclass
class AppSource:
    """One client source of a world with several: the installs of `platforms` send to it, old versions to
    Segment's `segment_source`, new ones to RudderStack's `rudderstack_source`; Segment loads it into `schema`."""

    segment_source: str
    segment_write_key: str
    rudderstack_source: str
    rudderstack_write_key: str
    schema: str
    platforms: tuple[str, ...] = ("web", "ios", "android")


@dataclass
class ClientsConfig:
    seed: int = 7
    events_per_second: float = 4.0
    max_events: int | None = None  # None: until stopped
    app_installs: int = 120
    server_services: tuple[str, ...] = ("checkout-service", "billing-service", "notification-service")
    server_share: float = 0.35
    adoption: AdoptionCurve = field(default_factory=AdoptionCurve)
    server_side_switch: str = "manual"  # "manual" | "auto" (once a warehouse destination is connected)
    auto_switch_poll_s: float = 1.0
    schema: str = "app_events"  # the warehouse schema the events are meant for (recorded in the ledger)
    segment_write_keys: dict[str, str] = field(
        default_factory=lambda: {"app": "wk_seg_web_app", "server": "wk_seg_backend"}
    )
    segment_sources: dict[str, str] = field(
        default_factory=lambda: {"app": "src_web_app", "server": "src_backend"}
    )
    rudderstack_write_keys: dict[str, str] = field(
        default_factory=lambda: {"app": "wk_rs_app", "server": "wk_rs_backend"}
    )
    rudderstack_sources: dict[str, str] = field(
        default_factory=lambda: {"app": "rs_src_app", "server": "rs_src_backend"}
    )
    # Several client sources (each with its schema), chosen by the install's platform; empty: the one app
    # source above. `server_schema`: the server-side source's schema (None: `schema`).
    app_sources: tuple[AppSource, ...] = ()
    server_schema: str | None = None
    drift: bool = False  # the drift world: four drifts the warehouse shows after the cutover (see DRIFT_*)
    sdk_upload_interval_s: float = 0.25
    sdk_max_retries: int = 4
    flush_timeout_s: float = 30.0


@dataclass(frozen=True)
class PlannedEvent:
    index: int
    message_id: str
    kind: str  # "app" | "server"
    sender: str
    platform: str
    event_type: str  # track | page | screen | identify
    user_id: str
    anonymous_id: str
    event: str | None = None
    name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)


class JsShapedRudderClient(RudderClient):
    """rudder-sdk-python's transport (its queue, consumer, gzip /v1/batch and retries) carrying events shaped
    like RudderStack's JavaScript SDK's: its context.library and context.app, channel `web`, a locale and user
    agent, and `originalTimestamp` instead of `timestamp` (the server derives `timestamp`). Identify traits
    travel in context.traits, as both SDKs send them."""

    def _enqueue(self, msg):
        self.send = False  # the parent builds and validates the message without queueing it
        try:
            _, built = super()._enqueue(msg)
        finally:
            self.send = True
        context = built.setdefault("context", {})
        context["library"] = dict(JS_SDK_LIBRARY)
        context["app"] = dict(JS_SDK_APP)
        context.setdefault("locale", "en-US")
        context.setdefault("userAgent", "Mozilla/5.0 (X11; Linux x86_64) Sandbox/1.0")
        built["channel"] = "web"
        built["originalTimestamp"] = built.pop("timestamp")
        try:
            self.queue.put(built, block=False)
        except queue.Full:
            log.warning("rudder-sdk-js shaped client: queue is full")
            return False, built
        return True, built


def _install(seed: int, index: int) -> tuple[str, float]:
    rng = random.Random(f"{seed}:install:{index}")
    platform = rng.choice(["web", "web", "ios", "android"])
    return platform, rng.random()


def plan_event(config: ClientsConfig, k: int) -> PlannedEvent:
    """Event number `k` of a run with `config.seed` (pure: the same inputs give the same event)."""
    rng = random.Random(f"{config.seed}:event:{k}")
    message_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if rng.random() < config.server_share and config.server_services:
        event = _server_event(config, k, message_id, rng)
    else:
        event = _app_event(config, k, message_id, rng)
    return _drifted(event) if config.drift else event


def _server_event(config: ClientsConfig, k: int, message_id: str, rng: random.Random) -> PlannedEvent:
    """A back-end service's event (the rest of `plan_event`'s draws, in the same order)."""
    service = rng.choice(list(config.server_services))
    user = f"user-{rng.randrange(config.app_installs * 2):05d}"
    if rng.random() < 0.8:
        name = rng.choice(sorted(SERVER_EVENTS))
        return PlannedEvent(
            k,
            message_id,
            "server",
            service,
            "server",
            "track",
            user,
            f"anon-{user}",
            event=name,
            properties=SERVER_EVENTS[name](rng),
        )
    return PlannedEvent(
        k,
        message_id,
        "server",
        service,
        "server",
        "identify",
        user,
        f"anon-{user}",
        traits={"plan": rng.choice(PLANS), "email": f"{user}@example.com"},
    )


def _app_event(config: ClientsConfig, k: int, message_id: str, rng: random.Random) -> PlannedEvent:
    """An app install's event (the rest of `plan_event`'s draws, in the same order)."""
    install = rng.randrange(config.app_installs)
    platform, _ = _install(config.seed, install)
    user = f"user-{install:05d}"
    anon = f"anon-{config.seed}-{install:05d}"
    roll = rng.random()
    if roll < 0.5:
        name = rng.choice(sorted(TRACK_EVENTS))
        return PlannedEvent(
            k,
            message_id,
            "app",
            f"install-{install:05d}",
            platform,
            "track",
            user,
            anon,
            event=name,
            properties=TRACK_EVENTS[name](rng),
        )
    if roll < 0.8:
        view = rng.choice(PAGES)
        etype = "page" if platform == "web" else "screen"
        return PlannedEvent(
            k,
            message_id,
            "app",
            f"install-{install:05d}",
            platform,
            etype,
            user,
            anon,
            name=view,
            properties={"path": f"/{view.lower()}"} if etype == "page" else {},
        )
    return PlannedEvent(
        k,
        message_id,
        "app",
        f"install-{install:05d}",
        platform,
        "identify",
        user,
        anon,
        traits={"plan": rng.choice(PLANS), "email": f"{user}@example.com"},
    )


def old_app_version(sender: str) -> str:
    """The old app version an install runs before it upgrades (fixed per install: ``install-00012``)."""
    digits = "".join(ch for ch in sender if ch.isdigit())
    return OLD_APP_VERSIONS[int(digits or 0) % len(OLD_APP_VERSIONS)]


def js_shaped(event: PlannedEvent, sdk: str) -> bool:
    """Web installs on the new version run RudderStack's JavaScript SDK (its event shape: JsShapedRudderClient)."""
    return sdk == "rudderstack" and event.platform == "web"


def sdk_call(config: ClientsConfig, event: PlannedEvent, sdk: str) -> dict[str, Any]:
    """The keyword arguments the install or service hands its SDK's track/page/screen/identify for `event` sent
    through `sdk` (new objects at each call: the SDKs modify what they are given)."""
    if event.kind == "app":
        version = NEW_APP_VERSION if sdk == "rudderstack" else old_app_version(event.sender)
        context: dict[str, Any] = {
            "app": {"name": "Shop", "version": version},
            "device": {"id": f"dev-{event.sender}", "type": event.platform},
        }
    else:
        context = {"service": {"name": event.sender}}
    call: dict[str, Any] = {
        "user_id": event.user_id,
        "anonymous_id": event.anonymous_id,
        "context": context,
        "message_id": event.message_id,
    }
    if event.event_type == "track":
        properties = dict(event.properties)
        if config.drift and sdk == "rudderstack" and event.event == DRIFT_EVENT:  # drift 1: another type
            properties[DRIFT_PROPERTY] = f"{properties[DRIFT_PROPERTY]} items"
        call.update(event=event.event, properties=properties)
    elif event.event_type in ("page", "screen"):
        call.update(name=event.name, properties=dict(event.properties))
    else:
        call["traits"] = dict(event.traits)
    return call


def sent_values(config: ClientsConfig, event: PlannedEvent, sdk: str) -> dict[str, Any]:
    """What the client set on `event` as it leaves the SDK, in a Segment message's shape (type, event or name,
    properties or traits, context, userId, anonymousId), recorded in the ledger for the value check. The SDKs'
    own additions (context.library, timestamps, channel, ...) are left out; on RudderStack's JS SDK its own
    context.app replaces the app's (JsShapedRudderClient), so that is what the event carries."""
    call = sdk_call(config, event, sdk)
    context = call["context"]
    if js_shaped(event, sdk):
        context["app"] = dict(JS_SDK_APP)
    values: dict[str, Any] = {
        "type": event.event_type,
        "userId": call["user_id"],
        "anonymousId": call["anonymous_id"],
        "context": context,
    }
    for key in ("event", "name", "properties", "traits"):
        if key in call:
            values[key] = call[key]
    return values


class ClientFleet:
    """Sends planned events at `events_per_second` from a daemon thread until stopped or `max_events`."""

    def __init__(
        self,
        config: ClientsConfig,
        ledger: Any,
        *,
        segment_url: str,
        rudderstack_url: str,
        server_side_ready: Callable[[], bool] | None = None,
        cutover_ready: Callable[[str], bool] | None = None,
    ):
        self.config = config
        self.ledger = ledger
        self.segment_url = segment_url
        self.rudderstack_url = rudderstack_url
        self.server_side_ready = server_side_ready
        # (Segment source id) -> whether its cutover happened (its webhook to RudderStack is enabled)
        self.cutover_ready = cutover_ready
        # Segment source id -> seconds after the fleet's start at which its cutover was seen (adoption's origin)
        self._adoption_origin: dict[str, float] = {}
        self._thresholds = [_install(config.seed, i)[1] for i in range(config.app_installs)]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at: float | None = None
        self._server_side_switched_at: str | None = None
        self._sent: Counter = Counter()
        self._failed = 0
        self._next_index = 0
        self._sdk: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------------------------------------ routing

    def adoption_share(self, elapsed_s: float | None = None, segment_source: str | None = None) -> float:
        """The share of installs on the new version `elapsed_s` after the fleet's start (default: now), for the
        app source whose Segment source is `segment_source` (default: the first)."""
        if elapsed_s is None:
            elapsed_s = 0.0 if self._started_at is None else time.monotonic() - self._started_at
        curve = self.config.adoption
        if curve.starts_at == "cutover":
            origin = self._adoption_origin.get(segment_source or self._app_segment_sources()[0])
            if origin is None:
                return 0.0
            elapsed_s -= origin
        return curve.share(elapsed_s)

    def _app_segment_sources(self) -> list[str]:
        if self.config.app_sources:
            return [source.segment_source for source in self.config.app_sources]
        return [self.config.segment_sources["app"]]

    def _maybe_mark_cutover(self, last_check: float, next_index: int) -> float:
        """For a curve that starts at the cutover: note when each app source's cutover is first seen, in planned
        time (the next event's), so the ramp's events are the ones planned after it."""
        if self.config.adoption.starts_at != "cutover" or self.cutover_ready is None:
            return last_check
        pending = [s for s in self._app_segment_sources() if s not in self._adoption_origin]
        now = time.monotonic()
        if not pending or now - last_check < self.config.auto_switch_poll_s:
            return last_check
        for source_id in pending:
            try:
                if self.cutover_ready(source_id):
                    self._adoption_origin[source_id] = next_index / self.config.events_per_second
                    log.info("cutover seen on %s: the new app version starts rolling out", source_id)
            except Exception as exc:  # a failed check is retried at the next poll
                log.warning("cutover check for %s failed: %s", source_id, exc)
        return now

    def app_source(self, event: PlannedEvent) -> AppSource | None:
        """The client source an app event belongs to (by the install's platform), in a world with several."""
        for source in self.config.app_sources:
            if event.platform in source.platforms:
                return source
        return self.config.app_sources[0] if self.config.app_sources else None

    def schema_of(self, event: PlannedEvent) -> str:
        """The schema `event` must land in: its source's."""
        if event.kind == "server":
            return self.config.server_schema or self.config.schema
        source = self.app_source(event)
        return source.schema if source else self.config.schema

    def route(self, event: PlannedEvent) -> tuple[str, str, str]:
        """(sdk, source id, write key) for `event` at its planned time."""
        config = self.config
        if event.kind == "server":
            on_rudderstack = self._server_side_switched_at is not None
        else:
            install = int(event.sender.rsplit("-", 1)[1])
            planned_s = event.index / config.events_per_second
            source = self.app_source(event)
            segment_source = source.segment_source if source else config.segment_sources["app"]
            on_rudderstack = self.adoption_share(planned_s, segment_source) > self._thresholds[install]
            if source is not None:
                if on_rudderstack:
                    return "rudderstack", source.rudderstack_source, source.rudderstack_write_key
                return "segment", source.segment_source, source.segment_write_key
        if on_rudderstack:
            return (
                "rudderstack",
                config.rudderstack_sources[event.kind],
                config.rudderstack_write_keys[event.kind],
            )
        return "segment", config.segment_sources[event.kind], config.segment_write_keys[event.kind]

    def switch_server_side(self) -> None:
        """Server-side services now send to RudderStack (stands in for their deploy)."""
        with self._lock:
            if self._server_side_switched_at is None:
                self._server_side_switched_at = utcnow().isoformat()
                log.info("server-side services switched to RudderStack")

    @property
    def server_side_on_rudderstack(self) -> bool:
        return self._server_side_switched_at is not None

    # ------------------------------------------------------------------------------------------ sending

    def _on_error(self, sdk: str):
        def handler(error: Exception, batch: list) -> None:
            with self._lock:
                self._failed += len(batch)
            log.warning("%s SDK could not deliver %d events: %s", sdk, len(batch), error)
            # The client gave up after its retries: the event never reached Segment or RudderStack. Say so in
            # the ledger, so the reconciliation counts it apart from events a migration step lost.
            try:
                self.ledger.record_dropped_many(
                    {
                        "message_id": item.get("messageId"),
                        "reason": f"{sdk} SDK gave up: {error}"[:500],
                        "at": utcnow(),
                    }
                    for item in batch
                    if isinstance(item, dict) and item.get("messageId")
                )
            except Exception as exc:  # the ledger is best effort here; the warning above stands
                log.warning("could not record %d undelivered events in the ledger: %s", len(batch), exc)

        return handler

    def _client(self, sdk: str, write_key: str, js_shaped: bool = False):
        key = (sdk, write_key) if not js_shaped else (sdk, write_key, "js")
        if key not in self._sdk:
            common = {
                "upload_interval": self.config.sdk_upload_interval_s,
                "max_retries": self.config.sdk_max_retries,
                "on_error": self._on_error(sdk),
                "timeout": 10,
            }
            if sdk == "segment":
                self._sdk[key] = SegmentClient(write_key, host=self.segment_url, **common)
            else:
                kind = JsShapedRudderClient if js_shaped else RudderClient
                self._sdk[key] = kind(write_key, host=self.rudderstack_url, gzip=True, **common)
        return self._sdk[key]

    def send(self, event: PlannedEvent) -> tuple[str, str]:
        """Record `event` in the ledger, then hand it to the SDK its route names. Returns (sdk, source)."""
        return self.send_many([event])[0]

    def send_many(self, events: list[PlannedEvent]) -> list[tuple[str, str]]:
        """Record all `events` in the ledger (one transaction), then hand each to the SDK its route names."""
        routes = [self.route(event) for event in events]
        sent_at = utcnow()
        self.ledger.record_sent_many(
            {
                "message_id": e.message_id,
                "event_type": e.event_type,
                "sdk": sdk,
                "sender": e.sender,
                "source": source,
                "sent_at": sent_at,
                "schema": self.schema_of(e),
                "values": sent_values(self.config, e, sdk),
            }
            for e, (sdk, source, _) in zip(events, routes, strict=True)
        )
        for event, (sdk, source, write_key) in zip(events, routes, strict=True):
            self._hand_to_sdk(event, sdk, write_key)
            with self._lock:
                self._sent[source] += 1
        return [(sdk, source) for sdk, source, _ in routes]

    def _hand_to_sdk(self, event: PlannedEvent, sdk: str, write_key: str) -> None:
        # web installs on the new version run RudderStack's JavaScript SDK (its event shape, see above)
        client = self._client(sdk, write_key, js_shaped=js_shaped(event, sdk))
        getattr(client, event.event_type)(**sdk_call(self.config, event, sdk))

    def _maybe_auto_switch(self, last_check: float) -> float:
        if (
            self.config.server_side_switch != "auto"
            or self.server_side_on_rudderstack
            or not self.server_side_ready
        ):
            return last_check
        now = time.monotonic()
        if now - last_check < self.config.auto_switch_poll_s:
            return last_check
        try:
            if self.server_side_ready():
                self.switch_server_side()
        except Exception as exc:  # a failed check is retried at the next poll
            log.warning("server-side readiness check failed: %s", exc)
        return now

    def _run(self) -> None:
        config = self.config
        last_check = 0.0
        last_cutover_check = 0.0
        k = 0
        while not self._stop.is_set() and (config.max_events is None or k < config.max_events):
            delay = self._started_at + k / config.events_per_second - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            last_check = self._maybe_auto_switch(last_check)
            last_cutover_check = self._maybe_mark_cutover(last_cutover_check, k)
            # every event already due goes in one ledger transaction (at most MAX_CHUNK; at demo rates, one)
            due = int((time.monotonic() - self._started_at) * config.events_per_second) + 1
            count = max(1, min(due - k, MAX_CHUNK))
            if config.max_events is not None:
                count = min(count, config.max_events - k)
            try:
                self.send_many([plan_event(config, i) for i in range(k, k + count)])
            except Exception as exc:  # keep the fleet alive; the ledger/SDK error says what failed
                log.warning("could not send events %d..%d: %s", k, k + count - 1, exc)
                with self._lock:
                    self._failed += count
            k += count
            self._next_index = k

    def start(self) -> ClientFleet:
        if self._thread is not None:
            raise RuntimeError("ClientFleet already started; create a new fleet to run again")
        if self.config.events_per_second <= 0:
            raise ValueError(f"events_per_second must be > 0, got {self.config.events_per_second}")
        self._started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="sandbox-clients", daemon=True)
        self._thread.start()
        return self

    def wait_done(self, timeout_s: float) -> bool:
        """Wait until `max_events` were sent (True) or `timeout_s` passed (False)."""
        if self._thread is None:
            return False
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self, flush: bool = True) -> None:
        """Stop sending; with `flush`, wait (bounded by flush_timeout_s) until both SDKs delivered their queues."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.flush_timeout_s)
        clients = list(self._sdk.values())
        if flush:
            flusher = threading.Thread(target=lambda: [c.flush() for c in clients], daemon=True)
            flusher.start()
            flusher.join(self.config.flush_timeout_s)
            if flusher.is_alive():
                log.warning("SDK flush did not finish within %ss", self.config.flush_timeout_s)
        for client in clients:
            for consumer in getattr(client, "consumers", None) or []:
                consumer.pause()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "sent": sum(self._sent.values()),
                "sent_by_source": dict(self._sent),
                "failed": self._failed,
                "next_index": self._next_index,
                "adoption_share": round(self.adoption_share(), 4),
                "server_side_switched_at": self._server_side_switched_at,
            }
