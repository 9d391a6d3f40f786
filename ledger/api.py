"""The library behind the CLI: each command is one call here that tests can make directly.

The CLI parses arguments and prints; these functions open ledgers, build plug-ins from
configuration and flags, and run jobs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

from ledger import config as configuration
from ledger import lifecycle, plugins, queries, runs
from ledger.errors import UsageError
from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.lookups import Lookups
from ledger.options import build_options, masked, parse_flags
from ledger.ownership import content_owners
from ledger.progress import Progress
from ledger.replay import ReplayResult, ReplaySettings, replay
from ledger.replay import rollback as rollback_module
from ledger.replay.repair import repair
from ledger.replay.verify import VerifyResult, verify
from ledger.sink import Sink, SinkContext
from ledger.source import Source, SourceContext
from ledger.store import CREATE, Ledger


def open_ledger(
    config: configuration.Config, flag: str | None = None, blobs: str | None = None, *, mode: str = CREATE
) -> Ledger:
    """The configured ledger; ``mode`` as in :meth:`Ledger.open` (read commands: existing)."""
    url = configuration.ledger_url(config, flag)
    return Ledger.open(url.value, blob_dir=configuration.blob_dir(config, blobs), mode=mode)


def _resolve(find, load, config, name, flag_args, ad_hoc_name, values, where):
    """A configured or ad-hoc plug-in, with ``--flag`` arguments and ``values`` over the file."""
    plugin_class = load(find(config, name, {}, ad_hoc_name).type)
    flags = parse_flags(plugin_class.Options, flag_args or [], where=f"{where} {name}")
    plugin = find(config, name, {**(values or {}), **flags}, ad_hoc_name)
    configuration.check_literal_secrets(plugin, plugin_class.Options)
    return plugin, plugin_class


def resolve_stream(
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    stream_name: str | None = None,
    values: dict[str, Any] | None = None,
) -> tuple[configuration.Plugin, type]:
    """The stream named ``name`` (configured, or a source type with ``stream_name``)."""
    return _resolve(
        configuration.stream, plugins.source_class, config, name, flag_args, stream_name, values, "extract"
    )


def build_source(ledger: Ledger, plugin: configuration.Plugin, source_class: type) -> Source:
    options = build_options(source_class.Options, plugin.values, where=plugin.origin)
    return source_class(options, SourceContext(plugin.name, ledger.blobs, lookups=Lookups(ledger)))


def validate_stream(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    stream_name: str | None = None,
) -> dict[str, Any]:
    """``chatledger extract NAME --validate-only``: what the source says about its input
    (sizes, checksums, inventories), without extracting or writing anything."""
    plugin, source_class = resolve_stream(config, name, flag_args, stream_name=stream_name)
    source = build_source(ledger, plugin, source_class)
    try:
        return source.describe()
    finally:
        source.close()


def extract_stream(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    stream_name: str | None = None,
    values: dict[str, Any] | None = None,
    settings: ExtractSettings | None = None,
    progress: Progress | None = None,
    parent_run_id: int | None = None,
) -> ExtractResult:
    """``chatledger extract NAME [--option value …]``."""
    plugin, source_class = resolve_stream(config, name, flag_args, stream_name=stream_name, values=values)
    source = build_source(ledger, plugin, source_class)
    settings = settings or ExtractSettings()
    args = {
        "source": {"type": plugin.type, "options": masked(source_class.Options, plugin.values)},
        "settings": {key: value for key, value in asdict(settings).items() if key != "dry_run"},
    }
    return extract(
        ledger, source, settings=settings, args=args, progress=progress, parent_run_id=parent_run_id
    )


# -- targets -------------------------------------------------------------------------


def resolve_target(
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    target_name: str | None = None,
    values: dict[str, Any] | None = None,
) -> tuple[configuration.Plugin, type]:
    """The target named ``name`` (configured, or a sink type with ``target_name``)."""
    return _resolve(
        configuration.target, plugins.sink_class, config, name, flag_args, target_name, values, "target"
    )


def build_sink(
    ledger: Ledger,
    plugin: configuration.Plugin,
    sink_class: type,
    streams: list[str] | None = None,
    *,
    read_only: bool = False,
) -> Sink:
    """``read_only``: for verify and dry runs; the sink's ``open`` then writes nothing."""
    options = build_options(sink_class.Options, plugin.values, where=plugin.origin)
    context = SinkContext(
        plugin.name,
        ledger.blobs,
        lookups=Lookups(ledger),
        source_types=queries.source_types(ledger, streams or []),
        content_owners=partial(content_owners, ledger),
        read_only=read_only,
    )
    return sink_class(options, context)


def target_streams(ledger: Ledger, plugin: configuration.Plugin, explicit: list[str]) -> list[str]:
    """--stream flags, else the target's configured streams, else the ledger's only stream."""
    if explicit:
        return explicit
    if plugin.streams:
        return list(plugin.streams)
    known = queries.streams(ledger)
    if len(known) == 1:
        return known
    raise UsageError(
        f"name the streams to replay into {plugin.name!r} with --stream "
        f"(the ledger has {', '.join(known) or 'none'}), or set streams = [...] in its "
        "[targets] section"
    )


def _target(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None,
    target_name: str | None,
    streams: list[str] | None,
    *,
    read_only: bool = False,
    **arguments: Any,
) -> tuple[Sink, list[str], dict[str, Any]]:
    """The sink, the streams it gets, and the (masked) arguments its run records."""
    plugin, sink_class = resolve_target(config, name, flag_args, target_name=target_name)
    chosen = target_streams(ledger, plugin, streams or [])
    sink = build_sink(ledger, plugin, sink_class, chosen, read_only=read_only)
    args = {
        "target": {"type": plugin.type, "options": masked(sink_class.Options, plugin.values)},
        "streams": chosen,
        **arguments,
    }
    return sink, chosen, args


def replay_target(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    target_name: str | None = None,
    streams: list[str] | None = None,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
    parent_run_id: int | None = None,
) -> ReplayResult:
    """``chatledger replay TARGET``."""
    settings = settings or ReplaySettings()
    sink, chosen, args = _target(
        ledger,
        config,
        name,
        flag_args,
        target_name,
        streams,
        read_only=settings.dry_run,
        policy=settings.policy,
        propagate_deletes=settings.propagate_deletes,
        truncate=settings.truncate,
        scope=settings.scope,
    )
    return replay(
        ledger, sink, chosen, settings=settings, progress=progress, args=args, parent_run_id=parent_run_id
    )


def _sink_of_run(
    ledger: Ledger,
    config: configuration.Config,
    run_id: int,
    flag_args: list[str] | None,
    read_only: bool = False,
) -> Sink:
    """Rebuild the sink a run wrote to: its configured target, or the flags again."""
    undone = rollback_module.runs_to_undo(ledger, run_id)
    run = undone[0]
    if run.target in config.targets:
        plugin, sink_class = resolve_target(config, run.target, flag_args)
    else:
        sink_type = run.args.get("target", {}).get("type")
        if not sink_type:
            raise UsageError(f"run {run_id} does not say which sink it used")
        plugin, sink_class = resolve_target(config, sink_type, flag_args, target_name=run.target)
    return build_sink(
        ledger, plugin, sink_class, [stream for stream in run.args.get("streams", [])], read_only=read_only
    )


def rollback_run(
    ledger: Ledger,
    config: configuration.Config,
    run_id: int,
    flag_args: list[str] | None = None,
    *,
    force: bool = False,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    """``chatledger rollback RUN``."""
    sink = _sink_of_run(ledger, config, run_id, flag_args, read_only=bool(settings and settings.dry_run))
    args = {"rolls_back": run_id, "force": force, "target": {"type": sink.type_name}}
    return rollback_module.rollback(
        ledger, sink, run_id, force=force, settings=settings, progress=progress, args=args
    )


def verify_target(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    flag_args: list[str] | None = None,
    *,
    target_name: str | None = None,
    streams: list[str] | None = None,
    progress: Progress | None = None,
    parent_run_id: int | None = None,
    written_by: int | None = None,
    workers: int | None = None,
) -> VerifyResult:
    """``chatledger verify TARGET``; ``written_by``: only what that replay run wrote, plus
    count parity (a re-run's cheap check); ``workers`` as replay's."""
    sink, chosen, args = _target(ledger, config, name, flag_args, target_name, streams, read_only=True)
    return verify(
        ledger,
        sink,
        chosen,
        progress=progress,
        args=args,
        parent_run_id=parent_run_id,
        written_by=written_by,
        workers=workers,
    )


def repair_target(
    ledger: Ledger,
    config: configuration.Config,
    name: str,
    rule: str,
    flag_args: list[str] | None = None,
    *,
    target_name: str | None = None,
    streams: list[str] | None = None,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    """``chatledger repair TARGET RULE``."""
    dry_run = bool(settings and settings.dry_run)
    sink, chosen, args = _target(
        ledger, config, name, flag_args, target_name, streams, read_only=dry_run, rule=rule
    )
    return repair(ledger, sink, rule, chosen, settings=settings, progress=progress, args=args)


@dataclass
class MigrateResult:
    run_id: int | None
    status: str
    extract: ExtractResult
    replay: ReplayResult
    verify: VerifyResult | None


def migrate(
    ledger: Ledger,
    config: configuration.Config,
    stream: str,
    target: str,
    *,
    extract_settings: ExtractSettings | None = None,
    replay_settings: ReplaySettings | None = None,
    progress: Progress | None = None,
    check: bool = True,
    full_verify: bool = False,
) -> MigrateResult:
    """``chatledger migrate STREAM TARGET``: extract, replay, verify as one parent run
    (``check=False``: no verify). The verify reads back what this replay wrote and
    compares counts per kind, so a re-run that changes nothing costs little;
    ``full_verify``: read the whole target back, as ``verify`` does."""
    replay_settings = replay_settings or ReplaySettings()
    extract_settings = extract_settings or ExtractSettings()
    dry_run = replay_settings.dry_run or extract_settings.dry_run
    if dry_run:
        return _rehearse_migrate(
            ledger,
            config,
            stream,
            target,
            dataclasses.replace(extract_settings, dry_run=True),
            dataclasses.replace(replay_settings, dry_run=True),
            progress,
        )
    results: dict[str, Any] = {}

    def stats() -> dict[str, Any]:
        out: dict[str, Any] = {}
        if "extract" in results:
            extracted = results["extract"]
            out["extract"] = {
                "run_id": extracted.run_id,
                "events": extracted.stats["events"],
                "rejects": extracted.stats["rejects"],
            }
        if "replay" in results:
            replayed = results["replay"]
            out["replay"] = {
                "run_id": replayed.run_id,
                **{name: replayed.stats[name] for name in ("written", "skipped", "rejected_units")},
            }
        if "verify" in results:
            out["verify"] = results["verify"].as_json()
        return out

    with lifecycle.run(
        ledger,
        "migrate",
        stats=stats,
        stream=stream,
        target=target,
        args={"stream": stream, "target": target, "full_verify": full_verify},
    ) as active:
        results["extract"] = extract_stream(
            ledger, config, stream, settings=extract_settings, progress=progress, parent_run_id=active.id
        )
        results["replay"] = replay_target(
            ledger,
            config,
            target,
            streams=[stream],
            settings=replay_settings,
            progress=progress,
            parent_run_id=active.id,
        )
        if check:
            results["verify"] = verify_target(
                ledger,
                config,
                target,
                streams=[stream],
                progress=progress,
                parent_run_id=active.id,
                written_by=None if full_verify else results["replay"].run_id,
                workers=replay_settings.workers,
            )
        active.finish(*migrate_outcome(results["extract"], results["replay"], results.get("verify")))
    return MigrateResult(
        active.id, active.outcome[0], results["extract"], results["replay"], results.get("verify")
    )


def _rehearse_migrate(
    ledger: Ledger,
    config: configuration.Config,
    stream: str,
    target: str,
    extract_settings: ExtractSettings,
    replay_settings: ReplaySettings,
    progress: Progress | None,
) -> MigrateResult:
    """``migrate --dry-run``: the extraction writes into a rehearsal of the ledger (rolled
    back), so the replay's plan counts what the source adds to what the ledger holds, a
    first run's records included. A read-only ledger cannot rehearse: the plan is then
    what the ledger holds already, and says so."""
    plugin, sink_class = resolve_target(config, target)
    build_sink(ledger, plugin, sink_class, [stream], read_only=True).check()  # before reading the source
    if ledger.read_only:
        extracted = extract_stream(ledger, config, stream, settings=extract_settings, progress=progress)
        planned = replay_target(ledger, config, target, streams=[stream], settings=replay_settings)
        planned.stats["plan_basis"] = "ledger"
        return MigrateResult(None, "dry-run", extracted, planned, None)
    with ledger.rehearsal() as rehearsed:
        extracted = extract_stream(rehearsed, config, stream, settings=extract_settings, progress=progress)
        planned = replay_target(rehearsed, config, target, streams=[stream], settings=replay_settings)
    planned.stats["plan_basis"] = "ledger_and_source"
    return MigrateResult(None, "dry-run", extracted, planned, None)


def migrate_outcome(
    extracted: ExtractResult, replayed: ReplayResult, checked: VerifyResult | None
) -> tuple[str, str | None]:
    """The parent run's status: rejects anywhere first, then a target that does not match."""
    rejected = [
        f"{part} {result.run_id}"
        for part, result in (("extract", extracted), ("replay", replayed))
        if result.status == runs.WITH_REJECTS
    ]
    if rejected:
        return runs.WITH_REJECTS, f"input was rejected: see chatledger report {' and '.join(rejected)}"
    if checked is not None and not checked.matches:
        return runs.DRIFTED, f"the target does not match the ledger: {checked.verdict()}"
    return runs.SUCCEEDED, None
