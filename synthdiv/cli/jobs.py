"""`synthdiv submit` and `synthdiv jobs status|logs|stop`: run stages on a Ray cluster."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from synthdiv.cli import app
from synthdiv.cli.common import console, fail, out
from synthdiv.jobs import (
    JobError,
    RayJobsApi,
    exit_code,
    find_mlflow_links,
    shipped_config,
    stage_command,
)
from synthdiv.jobs_kuberay import KubeRayJobs

jobs_app = typer.Typer(
    help=(
        "Inspect and stop jobs sent with `synthdiv "
        "submit` (Ray Jobs API, or RayJobs with --rayjob)."
    ),
    no_args_is_help=True,
)
app.add_typer(jobs_app, name="jobs")

AddressOpt = Annotated[
    str | None,
    typer.Option(
        "--address",
        envvar="RAY_ADDRESS",
        help="Ray job server, e.g. http://127.0.0.1:8265 (after `kubectl port-forward`).",
    ),
]
RayJobFlag = Annotated[
    bool,
    typer.Option("--rayjob", help="Use a KubeRay RayJob (its own cluster) instead of --address."),
]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace of the Helm release.")
]
KubeconfigOpt = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig", envvar="KUBECONFIG", help="kubeconfig file (default: ~/.kube/config)."
    ),
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="kubeconfig context.")]


@app.command()
def submit(
    stage: Annotated[
        str,
        typer.Argument(
            help="The command to run: any `synthdiv` command that reads a config, e.g. score, "
            "pretrain, run (an unknown name lists them all)."
        ),
    ],
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The stage's YAML config (sent with the job).")
    ],
    address: AddressOpt = None,
    rayjob: RayJobFlag = False,
    namespace: NamespaceOpt = "default",
    release: Annotated[
        str, typer.Option("--release", help="Helm release whose RayJob template to use.")
    ] = "synthdiv",
    image: Annotated[
        str | None, typer.Option("--image", help="RayJob: override the image of every pod.")
    ] = None,
    kubeconfig: KubeconfigOpt = None,
    context: ContextOpt = None,
    command: Annotated[
        str | None,
        typer.Option(
            "--command",
            help="Run this shell command instead of `synthdiv <stage> --config …` "
            "(the config is still shipped as config.yaml, checked only to be a YAML mapping); "
            "for custom scripts.",
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Stream logs and wait for the end.")
    ] = True,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="RayJob: stop waiting after N seconds.")
    ] = None,
) -> None:
    """Send a stage to a Ray cluster and follow it; the exit code is the job's outcome.

    `synthdiv submit score --config score.yaml --address http://127.0.0.1:8265` uses a running
    RayCluster (Ray Jobs API). `--rayjob` instead creates a RayJob that brings its own cluster up
    and tears it down (Kubernetes credentials from your kubeconfig; the Helm chart's
    `<release>-submitter` Role lists the permissions needed).
    """
    if rayjob == bool(address):
        fail("give exactly one of --address URL (running RayCluster) or --rayjob")
    try:
        stage_command(stage)
        # A bad config fails here, validated as the stage will, before any cluster is contacted.
        shipped_config(stage, config, command)
        if rayjob:
            _submit_rayjob(
                stage,
                config,
                namespace,
                release,
                image,
                kubeconfig,
                context,
                command,
                follow,
                timeout,
            )
        else:
            _submit_ray(stage, config, address, command, follow)
    except JobError as err:
        fail(str(err))


def _submit_ray(
    stage: str, config: Path, address: str | None, command: str | None, follow: bool
) -> None:
    api = RayJobsApi(address or "")
    job_id = api.submit(stage, config, entrypoint=command)
    console.print(f"submitted [bold]{job_id}[/] to {address}")
    out.print(job_id)
    if not follow:
        return
    seen: list[str] = []
    started = time.monotonic()
    with console.status(f"{job_id}: running…") as spinner:

        def show(text: str) -> None:
            seen.append(text)
            spinner.update(f"{job_id}: running ({time.monotonic() - started:.0f}s)")
            console.out(text, end="", highlight=False)

        status = api.follow(job_id, show)
    _finish(job_id, status, "".join(seen), "")


def _submit_rayjob(
    stage: str,
    config: Path,
    namespace: str,
    release: str,
    image: str | None,
    kubeconfig: str | None,
    context: str | None,
    command: str | None,
    follow: bool,
    timeout: float | None,
) -> None:
    kube = KubeRayJobs(namespace, kubeconfig=kubeconfig, context=context)
    name = kube.submit(stage, config, release, image=image, entrypoint=command)
    console.print(f"created RayJob [bold]{namespace}/{name}[/]")
    out.print(name)
    if not follow:
        return
    started = time.monotonic()
    with console.status(f"{name}: waiting for KubeRay…") as spinner:

        def show(status: dict) -> None:
            phase = status.get("jobDeploymentStatus") or "Pending"
            job = status.get("jobStatus") or "-"
            spinner.update(f"{name}: {phase} / job {job} ({time.monotonic() - started:.0f}s)")

        outcome = kube.watch(name, show, timeout_s=timeout)
    if outcome.logs:
        console.out(outcome.logs, highlight=False)
    detail = f"{outcome.reason}: {outcome.message}".strip(": ")
    _finish(name, outcome.status, outcome.logs, detail)


def _finish(job: str, status: str, logs: str, detail: str) -> None:
    for link in find_mlflow_links(logs):
        console.print(f"MLflow run: {link}")
    colour = "green" if status == "SUCCEEDED" else "red"
    console.print(f"[bold {colour}]{job} {status}[/]" + (f" — {detail}" if detail else ""))
    code = exit_code(status)
    if code:
        raise typer.Exit(code)


JobArg = Annotated[str, typer.Argument(help="Job id (Ray Jobs API) or RayJob name (--rayjob).")]


@dataclass(frozen=True)
class JobTarget:
    """A submitted job and where it runs: a Ray job server (--address) or a RayJob (--rayjob)."""

    job: str
    address: str | None
    rayjob: bool
    namespace: str
    kubeconfig: str | None
    context: str | None

    def kuberay(self) -> KubeRayJobs:
        return KubeRayJobs(self.namespace, self.kubeconfig, self.context)

    def ray_api(self) -> RayJobsApi:
        return _ray_api(self.address)


_KW = inspect.Parameter.KEYWORD_ONLY
_TARGET_PARAMS = [
    inspect.Parameter("job", _KW, annotation=JobArg),
    inspect.Parameter("address", _KW, annotation=AddressOpt, default=None),
    inspect.Parameter("rayjob", _KW, annotation=RayJobFlag, default=False),
    inspect.Parameter("namespace", _KW, annotation=NamespaceOpt, default="default"),
    inspect.Parameter("kubeconfig", _KW, annotation=KubeconfigOpt, default=None),
    inspect.Parameter("context", _KW, annotation=ContextOpt, default=None),
]


def _job_command(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``synthdiv jobs <name>``: the command gets a :class:`JobTarget` built from the
    options every jobs command shares (plus its own), and a :class:`JobError` becomes a clean
    CLI failure."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> None:
            target = JobTarget(**{p.name: kwargs.pop(p.name) for p in _TARGET_PARAMS})
            try:
                fn(target, **kwargs)
            except JobError as err:
                fail(str(err))

        command.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [*_TARGET_PARAMS, *(p.replace(kind=_KW) for p in own)]
        )
        return jobs_app.command(name)(command)

    return register


@_job_command("status")
def status_cmd(target: JobTarget) -> None:
    """Print a job's status (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED)."""
    if target.rayjob:
        st = target.kuberay().get(target.job).get("status", {})
        # tab-separated, unstyled: meant for scripts as much as people
        typer.echo(
            f"{st.get('jobStatus') or 'PENDING'}\t{st.get('jobDeploymentStatus', '')}\t"
            f"{st.get('reason', '')}\t{st.get('message', '')}".rstrip()
        )
    else:
        typer.echo(target.ray_api().status(target.job))


@_job_command("logs")
def logs_cmd(
    target: JobTarget,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")
    ] = False,
) -> None:
    """Print a job's logs."""
    if target.rayjob:
        out.out(target.kuberay().logs(target.job), highlight=False)
    elif follow:
        status = target.ray_api().follow(target.job, lambda t: out.out(t, end="", highlight=False))
        raise typer.Exit(exit_code(status))
    else:
        out.out(target.ray_api().logs(target.job), end="", highlight=False)


@_job_command("stop")
def stop_cmd(target: JobTarget) -> None:
    """Stop a job (Ray Jobs API) or delete a RayJob and its cluster (--rayjob)."""
    if target.rayjob:
        target.kuberay().delete(target.job)
        console.print(f"deleted RayJob {target.namespace}/{target.job}")
    elif target.ray_api().stop(target.job):
        console.print(f"stop requested for {target.job}")
    else:
        console.print(f"{target.job} had already finished")


def _ray_api(address: str | None) -> RayJobsApi:
    if not address:
        fail("--address (or RAY_ADDRESS) is required without --rayjob")
    return RayJobsApi(address or "")
