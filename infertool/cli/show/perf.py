"""bench's performance answers as tables: FLOPs and % of peak, --tune, --profile, --concurrency, failed rows."""

from __future__ import annotations

from rich.console import Console

from infertool.cli.console import escape
from infertool.cli.show.bench import KEYS, row_keys
from infertool.cli.show.grid import NUM, TEXT, Column, grid, present
from infertool.present.numbers import ms, percent, sig


def _compute(rows: list) -> tuple[list[Column], list[list[str]], str]:
    columns = [*KEYS, Column("GFLOP"), Column("attention", drop=2), Column("MB moved", drop=3), Column("TFLOP/s"), Column("peak TFLOP/s", TEXT, drop=1),
               Column("% of peak")]
    cells = []
    for row in rows:
        c, peak = row.compute, row.compute["peak"]
        attention = c["macs_by_kind"].get("attention", 0) * 2 / c["flops"] if c["flops"] else 0
        cells.append([
            *row_keys(row), sig(c["flops"] / 1e9, 4) + ("+" if c["uncounted_nodes"] else ""), percent(attention) if attention else "-", sig(c["bytes"] / 1e6, 4, thousands=True),
            sig(c["tflops_per_s"], 4), "-" if peak is None else f"{peak['dense_tflops']:g} ({escape(peak['device'])} {peak['precision']})",
            percent(c["peak_share"]),
        ])
    caption = ("FLOPs: 2 x multiply-accumulates of Conv / MatMul / Gemm at the row's shapes (attention: activation x activation MatMuls; "
               "+: nodes not counted); bytes: weights + inputs + outputs, a lower bound")
    return (*present(columns, cells), caption)


def _tune(row, console: Console) -> None:
    tune = row.tune
    columns = [Column("configuration (changes from the defaults)", TEXT), Column("median ms"), Column("set-up s"), Column("result", TEXT)]
    cells = [
        [escape(", ".join(t["changes"])), ms(t["median_ms"]), "-" if t["setup_s"] is None else f"{t['setup_s']:.2f}",
         "[green]ok[/]" if not t["error"] else f"[yellow]{escape(t['error'])}[/]"]
        for t in tune["tried"]
    ]
    title = (f"--tune {escape(row.backend)} batch {row.batch}: {len(tune['tried'])} configurations, "
             f"{tune.get('per_configuration_s', 0):.3g} s each")
    grid(console, title, columns, cells)
    speedup = "-" if tune["speedup"] is None else f"{tune['speedup']:.2f}x"
    console.print(f"best: {escape(', '.join(tune['best']))}: {ms(tune['best_ms'])} ms vs defaults {ms(tune.get('defaults_ms'))} ms "
                  f"(full budget each): {speedup}", highlight=False)
    if tune.get("alone_ms"):
        alone, ratio = tune["alone_ms"], "-" if tune["alone_speedup"] is None else f"{tune['alone_speedup']:.2f}x"
        console.print(f"each alone in a process: best {ms(alone['best'])} ms vs defaults {ms(alone['defaults'])} ms: {ratio} "
                      "(later sessions of one process may run slower)", highlight=False)
    elif tune.get("alone_error"):
        console.print(f"[yellow]each alone in a process: not measured:[/] {escape(tune['alone_error'])}", highlight=False)
    if not tune.get("confirmed", True):
        console.print("[yellow]not confirmed:[/] with the full budget each, the defaults measured faster: keep them unless a longer run says otherwise",
                      highlight=False)
    console.print(f"reproduce: {escape(tune['command'])}", highlight=False, soft_wrap=True)


def _compiled(row) -> str:
    """How long compiling took; code a framework reused from earlier in the process (bench --tune's rows) said so."""
    seconds, reused = row.settings.get("compile_seconds") or {}, row.settings.get("compile_reused")
    took = f" in {', '.join(f'{s:.1f} s' for s in seconds.values())}" if seconds else ""
    where = " earlier in this process (reused here, not compiled again)" if reused else ""
    return f"{escape(row.backend)} batch {row.batch}: compiled{took}{where} (not in the timings)"


def _profile(row, console: Console) -> None:
    profile = row.profile
    columns = [Column("op type / node", TEXT), Column("count"), Column("ms per run"), Column("share")]
    cells = [[escape(op["op_type"]), str(op["nodes"]), sig(op["ms_per_run"], 4), percent(op["share"])] for op in profile["by_op_type"]]
    cells += [[escape(f"{n['name']} ({n['op_type']})"), "", sig(n["ms_per_run"], 4), percent(n["share"])] for n in profile["top_nodes"]]
    title = (f"--profile {escape(row.backend)} batch {row.batch}: {profile['ops_ms_per_run']} ms of ops per run "
             f"({profile['clock']} clock, {profile['runs']} runs); op types, then the slowest nodes")
    grid(console, title, columns, cells, escape(profile.get("note", "")) or None)


def _concurrency(rows: list, console: Console) -> None:
    columns = [*KEYS, Column("workers"), Column("median ms"), Column("p99 ms", drop=1), Column("samples/s"), Column("vs one stream", NUM)]
    cells = [
        [*row_keys(row), str(c["workers"]), ms(c["latency_ms"]["median"]), ms(c["latency_ms"]["p99"]), sig(c["samples_per_s"], thousands=True),
         "-" if c["scaling"] is None else f"{c['scaling']:.2f}x"]
        for row in rows for c in [row.concurrency]
    ]
    grid(console, "--concurrency: sessions / streams at once, one thread each", columns, cells)


def tables(result, console: Console) -> None:
    computed = [r for r in result.rows if r.compute]
    if computed:
        console.print()
        peaks = any(r.compute["peak"] for r in computed)
        grid(console, "work per inference" + (" and % of the device's dense peak" if peaks else ""), *_compute(computed))
    for row in result.rows:
        if row.tune and row.tune["tried"]:
            console.print()
            _tune(row, console)
        if row.profile and "by_op_type" in row.profile:
            console.print()
            _profile(row, console)
        elif row.profile:
            console.print(f"--profile {escape(row.backend)}: {escape(row.profile['unavailable'])}", highlight=False)
    concurrent = [r for r in result.rows if r.concurrency]
    if concurrent:
        console.print()
        _concurrency(concurrent, console)
    for row in result.rows:
        if row.settings.get("compile_seconds") or row.settings.get("compile_reused"):
            console.print(_compiled(row), highlight=False)
    for failed in result.failed:
        console.print(f"[red]not measured:[/] {escape(failed['backend'])} batch {failed['batch']}: {escape(failed['error'])}", highlight=False)
