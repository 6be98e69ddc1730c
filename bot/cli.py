"""`voicebot`: the process entry point. Sub-commands run a bot, serve the OpenAI-compatible API on the bots' voice
library, clone from the terminal, check a clip for the watermark, run the offline demo, migrate the database,
build random-weight checkpoints and benchmark backends.

Heavy imports (discord.py, slack-bolt, torch, matplotlib) happen inside the command that needs them, so
`voicebot --help` is instant and a bot process never imports torch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console

from backend.errors import VoicebotError
from backend.settings import DEMO_MODEL, BackendSettings
from backend.log_setup import setup_logging
from bot.settings import BotSettings

if TYPE_CHECKING:
    from backend.schema import WatermarkCheck
    from bot.terminal import CloneOrder
    from commands.clone import CloneService

app = typer.Typer(help="Voice-clone bot for Discord and Slack over a Qwen3-TTS backend.", no_args_is_help=True,
                  pretty_exceptions_enable=False)  # rich tracebacks print local variables, tokens included
console = Console()
errors = Console(stderr=True)

RANDOM_WEIGHTS_NOTE = (
    "[bold yellow]The demo model has RANDOM weights[/]: this run proves the whole pipeline (clip checks, queue, "
    "voice prompt, generation, WAV, timings), but the audio is noise, not speech. For real voices run\n\n"
    '  [bold]VOICEBOT_MODEL=Qwen/Qwen3-TTS-12Hz-1.7B-Base voicebot clone --ref my-voice.wav --text "..."[/]\n\n'
    "(the model is downloaded from the Hugging Face hub on first use; a GPU is strongly recommended), or deploy "
    "the Modal backend and set VOICEBOT_BACKEND=modal (README: \"Deploying the backend to Modal\")."
)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at INFO instead of WARNING")] = False
         ) -> None:
    """Set up structured logging once for every sub-command (the bots use VOICEBOT_LOG_LEVEL instead)."""
    settings = BotSettings()
    setup_logging("INFO" if verbose else "WARNING", settings.log_format)


@app.command()
def demo(out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the WAV")] = Path("voicebot-demo.wav")
         ) -> None:
    """One full /clone offline on the embedded defaults: a synthetic reference clip, the tiny random checkpoint
    (built on first use) and the local engine. No account, no network."""
    from bot.demo import DEMO_REF_TEXT, DEMO_TEXT, demo_reference
    from bot.terminal import CloneOrder

    order = CloneOrder(demo_reference(), "demo-reference.wav", DEMO_TEXT, DEMO_REF_TEXT, "English", seed=0)
    _clone(BackendSettings(backend="local", model=DEMO_MODEL), order, out)


@app.command()
def clone(
    ref: Annotated[Path, typer.Option("--ref", exists=True, dir_okay=False, help="Reference clip (any audio format)")],
    text: Annotated[str, typer.Option("--text", "-t", help="What the cloned voice should say")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the WAV")] = Path("clone.wav"),
    ref_text: Annotated[str | None, typer.Option(help="Transcript of the clip (better cloning)")] = None,
    language: Annotated[str | None, typer.Option(help="Language of the text (default: Auto)")] = None,
    model: Annotated[str | None, typer.Option(help="Local engine: checkpoint directory or hub id")] = None,
    variant: Annotated[str | None, typer.Option(help="Modal backend: which deployed variant")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed, for a reproducible result")] = None,
) -> None:
    """Clone a voice from the terminal through the configured backend (VOICEBOT_BACKEND, local by default)."""
    from bot.terminal import CloneOrder

    settings = BackendSettings(**({"model": model} if model else {}))
    _clone(settings, CloneOrder(ref.read_bytes(), ref.name, text, ref_text, language, variant, seed), out)


def _clone(settings: BackendSettings, order: CloneOrder, out: Path) -> None:
    """One clone job; on the demo model the checkpoint is built first (with progress) and the output is
    labelled as random-weight noise."""
    from bot.services import build_service
    from bot.terminal import clone_to_file

    on_demo_model = settings.backend == "local" and settings.uses_demo_model
    if on_demo_model:
        ensure_demo_checkpoint(settings)
    try:
        clone_to_file(build_service(settings), order, out, console)
    except VoicebotError as exc:
        errors.print(f"[red]{exc.operator_text}[/]")  # the terminal's user is the operator
        raise typer.Exit(1) from None
    if on_demo_model:
        console.print(RANDOM_WEIGHTS_NOTE)


@app.command()
def detect(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The clip to check (any audio format)")],
    variant: Annotated[str | None, typer.Option(help="Modal backend: which deployed variant checks")] = None,
) -> None:
    """Say whether this bot generated a clip, by the inaudible watermark on every clip it makes. Runs through
    the configured backend (VOICEBOT_BACKEND, local by default; no TTS model is loaded). Exit status: 0
    watermarked, 1 not watermarked, 2 the clip could not be checked."""
    from backend.watermark import CHECK_LIMITS
    from bot.services import build_service
    from commands.watermark_check import verdict_text

    with file.open("rb") as handle:  # at most one byte over the limit: the check refuses it by size
        audio = handle.read(CHECK_LIMITS.max_bytes + 1)
    try:
        verdict = asyncio.run(_detect(build_service(BackendSettings()), audio, file.name, variant))
    except VoicebotError as exc:
        errors.print(f"[red]{exc.operator_text}[/]")
        raise typer.Exit(2) from None
    console.print(verdict_text(verdict))
    raise typer.Exit(0 if verdict.watermarked else 1)


async def _detect(service: CloneService, audio: bytes, filename: str, variant: str | None) -> WatermarkCheck:
    from commands.watermark_check import check_clip

    try:
        return await check_clip(service, audio, filename, variant=variant)
    finally:
        await service.aclose()


db = typer.Typer(help="The voice library's database (the SQLite file, or VOICEBOT_DATABASE_URL).",
                no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="The revision to reach")] = "head") -> None:
    """Migrate the schema up (every bot does this at start; this is for doing it before a rollout)."""
    _migrate("upgrade", revision)


@db.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help='The revision to reach: "-1", "base", an id')]) -> None:
    """Migrate the schema down (before rolling back to an older voicebot; "base" drops every table)."""
    _migrate("downgrade", revision)


def _migrate(action: Literal["upgrade", "downgrade"], revision: str) -> None:
    from commands.settings import CommandSettings
    from commands.storage.sql.migrate import migrate

    try:
        at = asyncio.run(migrate(CommandSettings(), action, revision))
    except VoicebotError as exc:  # StorageUnavailable: the database, redacted, and the driver's error
        errors.print(f"[red]{exc.operator_text}[/]")
        raise typer.Exit(1) from None
    console.print(f"database at revision {at or 'base (empty)'}")


def ensure_demo_checkpoint(settings: BackendSettings) -> Path:
    """Build the tiny random checkpoint the demo model points at, unless it is already there."""
    from backend.engine.checkpoint import is_checkpoint

    path = settings.demo_checkpoint
    if not is_checkpoint(path):
        _build_checkpoint("tiny", path, "cpu", seed=0)
    return path


@app.command()
def checkpoint(
    preset: Annotated[str, typer.Argument(help="tiny (CPU tests, demo), 0.6b or 1.7b (published shapes)")],
    out: Annotated[Path, typer.Argument(help="Directory to write")],
    device: Annotated[str, typer.Option(help="cuda builds the full-size presets in seconds")] = "cpu",
    seed: Annotated[int, typer.Option(help="Weight seed")] = 0,
) -> None:
    """Write a random-weight Qwen3-TTS Base checkpoint in the real layout (offline tests and GPU benchmarks)."""
    from backend.engine.checkpoint import PRESETS

    if preset not in PRESETS:
        errors.print(f"[red]Unknown preset {preset!r}: choose one of {', '.join(PRESETS)}.[/]")
        raise typer.Exit(2)
    _build_checkpoint(preset, out, device, seed)
    console.print(f"Random-weight {preset} checkpoint written to {out}")


def _build_checkpoint(preset: str, out: Path, device: str, seed: int) -> None:
    from backend.engine.checkpoint import build_random_checkpoint

    with console.status(f"Building the random {preset} checkpoint in {out} ...") as status:
        def show(part: str) -> None:
            status.update(f"Building the random {preset} checkpoint: {part} ...")

        build_random_checkpoint(preset, out, seed=seed, device=device, progress=show)


@app.command()
def discord(sync: Annotated[bool, typer.Option("--sync", help="Also sync the slash commands globally")] = False
            ) -> None:
    """Run the Discord bot (DISCORD_TOKEN; see README "Discord")."""
    from bot.discord import run_discord

    run_discord(sync_global=sync)


@app.command()
def slack() -> None:
    """Run the Slack bot (Socket Mode by default; see README "Slack")."""
    from bot.slack import run_slack

    run_slack()


@app.command("serve-api")
def serve_api(
    host: Annotated[str, typer.Option(envvar="VOICEBOT_API_HOST", help="Address to bind (put a TLS proxy in front "
                                      "to publish it)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="VOICEBOT_API_PORT", help="Port to bind")] = 8100,
) -> None:
    """Serve the OpenAI-compatible audio API on the bots' voice library, for members' API keys (/voice api-key):
    same database, limits, audit trail and backend as the bots (README "OpenAI-compatible API")."""
    from bot.api_server import serve_api as run

    try:
        run(host, port)
    except VoicebotError as exc:  # no public URL, no database, a backend misconfigured: the operator reads it
        errors.print(f"[red]{exc.operator_text}[/]")
        raise typer.Exit(1) from None


@app.command()
def bench(
    target: Annotated[list[str] | None, typer.Option(
        "--target", help="local[:option,...] (options: sdpa, eager, flash_attention_2, stock, fast), "
        "modal:<variant> or http:<url>; repeat to compare. Default: every configured Modal variant, else local")
    ] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Warm calls per text length")] = 3,
    lengths: Annotated[str, typer.Option(help="Comma-separated: tiny, short, medium, long (12/44/187/506 chars)")
                       ] = "tiny,short,medium,long",
    ref: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                             help="Reference clip (default: the demo's synthetic clip)")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for bench.json and bench.png")
                   ] = Path("bench-results"),
) -> None:
    """The deployment plan's A/B comparison: one cold call then warm repeats per text length, per backend."""
    from rich.progress import Progress

    from bot.bench import PLAN_TEXTS, BenchCall, default_targets, load_reference
    from bot.bench import bench as run

    chosen = [length.strip() for length in lengths.split(",") if length.strip()]
    if unknown := [length for length in chosen if length not in PLAN_TEXTS]:
        errors.print(f"[red]Unknown length(s) {', '.join(unknown)}: choose from {', '.join(PLAN_TEXTS)}.[/]")
        raise typer.Exit(2)
    settings = BackendSettings()
    targets = target or default_targets(settings)
    try:
        reference = load_reference(ref)
        with Progress(console=console) as progress:
            task = progress.add_task("benchmarking", total=len(targets) * (1 + repeats * len(chosen)))

            def advance(call: BenchCall) -> None:
                progress.update(task, advance=1, description=f"{call.target} {call.length} ({call.run})")

            calls, json_path, png_path = run(targets, reference, out, repeats=repeats, lengths=chosen,
                                             base=settings, on_call=advance)
    except (VoicebotError, ValueError) as exc:
        errors.print(f"[red]{getattr(exc, 'operator_text', exc)}[/]")
        raise typer.Exit(1) from None
    from bot.bench import summary_table

    console.print(summary_table(calls))
    console.print(f"Every call: {json_path}\nPlot: {png_path}")
