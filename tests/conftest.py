"""Shared fixtures: a real MLflow server, a real local Ray, the packaged models.

Nothing here mocks a component that can run on this machine. Environment defaults are set before
any test module imports Ray, transformers or huggingface_hub.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.support.servers import MlflowServer  # noqa: E402


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory):
    """A real ``mlflow server`` on loopback with proxied artifacts; yields its tracking URI."""
    root = tmp_path_factory.mktemp("mlflow")
    with MlflowServer(root) as server:
        yield server.uri


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (starting Ray costs seconds; tests share it)."""
    import ray

    from synthdiv.runtime import start_local_ray

    if not ray.is_initialized():
        start_local_ray(8, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The GGUF the embedded backend loads by default (the packaged SmolLM2 as Q8_0)."""
    from synthdiv.models import smollm2_chat_gguf

    return smollm2_chat_gguf()


@pytest.fixture(scope="session")
def minilm() -> Path:
    from synthdiv.models import minilm_path

    return minilm_path()


@pytest.fixture
def runtime(tmp_path: Path, mlflow_server: str):
    """A RuntimeConfig that records to the session's MLflow server and writes under tmp_path."""
    from synthdiv.config import RuntimeConfig

    return RuntimeConfig(
        tracking_uri=mlflow_server,
        experiment=f"test-{tmp_path.name}",
        storage_uri=str(tmp_path / "runs"),
    )


@pytest.fixture(scope="module")
def s3_bucket():
    """A moto S3 server on 127.0.0.1 with one bucket; AWS_* env set as a deployment would."""
    import boto3
    import s3fs
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(
            Bucket="synthdiv-test"
        )
        # fsspec caches S3 filesystems by their arguments, not by AWS_ENDPOINT_URL: without this,
        # a module would reach the stopped server of the module before it.
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield "s3://synthdiv-test"
        finally:
            server.stop()
            s3fs.S3FileSystem.clear_instance_cache()
