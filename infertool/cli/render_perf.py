"""bench's performance answers as tables: FLOPs and % of peak, --tune, --profile, --concurrency, failed rows."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from infertool.cli.render import _ms


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _compute_table(rows: list) -> Table:
    table = Table(title="work per inference and % of the device's dense peak", title_justify="left", caption=(
        "FLOPs: 2 x multiply-accumulates of Conv / MatMul / Gemm at the row's shapes (attention = activation x activation MatMuls); "
        "bytes: weights + inputs + outputs, a lower bound."
    ), caption_justify="left")
    for column in ("backend", "batch", "GFLOP", "attention", "MB moved", "TFLOP/s", "peak TFLOP/s", "% of peak"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        c = row.compute
        peak = c["peak"]
        attention = c["macs_by_kind"].get("attention", 0) * 2 / c["flops"] if c["flops"] else 0
        table.add_row(
            row.backend, str(row.batch), f"{c['flops'] / 1e9:.3g}" + ("+" if c["uncounted_nodes"] else ""), _share(attention),
            f"{c['bytes'] / 1e6:,.1f}", "-" if c["tflops_per_s"] is None else f"{c['tflops_per_s']:.3g}",
            "-" if peak is None else f"{peak['dense_tflops']:g} ({peak['device']} {peak['precision']})", _share(c["peak_share"]),
        )
    return table


def _tune_tables(row, console: Console) -> None:
    tune = row.tune
    tried = Table(title=f"--tune {row.backend} batch {row.batch}: {len(tune['tried'])} configurations, "
                  f"{tune.get('per_configuration_s', 0):.3g} s each", title_justify="left")
    for column in ("configuration (changes from the defaults)", "median ms", "set-up s", "result"):
        tried.add_column(column, justify="left" if column.startswith(("configuration", "result")) else "right")
    for trial in tune["tried"]:
        result = "[green]ok[/]" if not trial["error"] else f"[yellow]{escape(trial['error'])}[/]"
        median = "-" if trial["median_ms"] is None else _ms(trial["median_ms"])
        setup = "-" if trial["setup_s"] is None else f"{trial['setup_s']:.2f}"
        tried.add_row(escape(", ".join(trial["changes"])), median, setup, result)
    console.print(tried)
    speedup = "-" if tune["speedup"] is None else f"{tune['speedup']:.2f}x"
    console.print(f"best: {escape(', '.join(tune['best']))}: {_ms(tune['best_ms'])} ms vs defaults {_ms(tune.get('defaults_ms'))} ms "
                  f"(full budget each): {speedup}", highlight=False)
    if not tune.get("confirmed", True):
        console.print("[yellow]not confirmed:[/] with the full budget each, the defaults measured faster: keep them unless a longer run says otherwise", highlight=False)
    console.print(f"reproduce: {escape(tune['command'])}", highlight=False, soft_wrap=True)


def _profile_table(row) -> Table:
    profile = row.profile
    table = Table(title=f"--profile {row.backend} batch {row.batch}: {profile['ops_ms_per_run']} ms of ops per run "
                  f"({profile['clock']} clock, {profile['runs']} runs)", title_justify="left", caption=escape(profile.get("note", "")), caption_justify="left")
    for column in ("op type / node", "count", "ms per run", "share"):
        table.add_column(column, justify="left" if column.startswith("op") else "right")
    for op in profile["by_op_type"]:
        table.add_row(escape(op["op_type"]), str(op["nodes"]), f"{op['ms_per_run']:.4f}", _share(op["share"]))
    table.add_section()
    for node in profile["top_nodes"]:
        table.add_row(escape(f"{node['name']} ({node['op_type']})"), "", f"{node['ms_per_run']:.4f}", _share(node["share"]))
    return table


def _concurrency_table(rows: list) -> Table:
    table = Table(title="--concurrency: sessions / streams at once, one thread each", title_justify="left")
    for column in ("backend", "batch", "workers", "median ms", "p99 ms", "samples/s", "vs one stream"):
        table.add_column(column, justify="left" if column == "backend" else "right")
    for row in rows:
        c = row.concurrency
        scaling = "-" if c["scaling"] is None else f"{c['scaling']:.2f}x"
        table.add_row(row.backend, str(row.batch), str(c["workers"]), _ms(c["latency_ms"]["median"]), _ms(c["latency_ms"]["p99"]),
                      f"{c['samples_per_s']:,.1f}", scaling)
    return table


def tables(result, console: Console) -> None:
    computed = [r for r in result.rows if r.compute]
    if computed:
        console.print(_compute_table(computed))
    for row in result.rows:
        if row.tune and row.tune["tried"]:
            _tune_tables(row, console)
        if row.profile and "by_op_type" in row.profile:
            console.print(_profile_table(row))
        elif row.profile:
            console.print(f"--profile {row.backend}: {escape(row.profile['unavailable'])}", highlight=False)
    concurrent = [r for r in result.rows if r.concurrency]
    if concurrent:
        console.print(_concurrency_table(concurrent))
    compiled = [(r, r.settings["compile_seconds"]) for r in result.rows if r.settings.get("compile_seconds")]
    for row, seconds in compiled:
        console.print(f"{row.backend} batch {row.batch}: compiled in {', '.join(f'{s:.1f} s' for s in seconds.values())} (not in the timings)", highlight=False)
    for failed in result.failed:
        console.print(f"[red]not measured:[/] {failed['backend']} batch {failed['batch']}: {escape(failed['error'])}", highlight=False)
