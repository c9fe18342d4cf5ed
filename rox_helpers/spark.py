"""A local or cluster Spark session for Ibis's pyspark backend, quiet and reproducible.

Spark is optional (``pip install rox-workbook[spark]``) and needs Java 17 or later. The
session has its web UI off, logs at ERROR, UTC as its time zone and few shuffle partitions
(the workbook's aggregates are small); a cluster's own settings win where the master URL
points at one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

from rox_helpers.errors import RoxError

SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    # pandas <-> Spark through Arrow (the customers table sent for tenure, results back)
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def java_version() -> int | None:
    """The major version of the ``java`` on PATH (or in JAVA_HOME), None when there is none."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    for token in out.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and ("." in token or token.isdigit()):
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def _host_port(text: str, default: int = 7077) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` or ``[v6]`` as (host, port)."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host, int(port) if port.isdigit() else default


def check_master(master: str, timeout: float = 5.0) -> None:
    """Raise :class:`RoxError` when no master of a ``spark://host:port[,host:port]`` URL
    accepts a connection within ``timeout`` seconds. Spark itself retries an unreachable
    master for a minute or more before it gives up, with a Java stack trace; this says
    which master and what to do in a few seconds. Other masters (``local[*]``, ``yarn``,
    ``k8s://``) are left to Spark."""
    if not master.startswith("spark://"):
        return
    tried = []
    for hostport in master[len("spark://") :].split(","):
        host, port = _host_port(hostport.strip())
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return
        except OSError as exc:
            tried.append(f"{host}:{port} ({exc.strerror or type(exc).__name__})")
    raise RoxError(
        f"the Spark master {master} is not reachable: {'; '.join(tried)}.",
        fix="Check the master URL in engagement.yml and that the cluster is up and reachable "
        "from this machine (VPN, firewall); or run Spark here with spark:local[*].",
    )


def get_session(master: str = "local[*]", app_name: str = "rox-workbook", **conf: str):
    """A SparkSession for ``master`` (``local[*]``, ``local[2]`` or ``spark://host:7077``).

    Raises :class:`RoxError` with the fix when pyspark or Java 17 is missing, or when a
    ``spark://`` master does not answer (:func:`check_master`).
    """
    check_master(master)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - the extra is in the lock file
        raise RoxError(
            "Spark sources need pyspark.",
            fix="Install the spark extra: `uv sync --extra spark` (make install does it).",
        ) from exc
    v = java_version()
    if v is None or v < 17:
        raise RoxError(
            f"Spark needs Java 17 or later; found {'none' if v is None else v}.",
            fix="Install it (Debian: apt-get install openjdk-17-jre-headless) or set JAVA_HOME.",
        )
    builder = SparkSession.builder.master(master).appName(app_name)
    for k, val in {**SPARK_CONF, **conf}.items():
        builder = builder.config(k, val)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
