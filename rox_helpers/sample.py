"""The bundled sample engagement: its data is generated, not tracked.

``ensure_sample_data`` fills ``engagements/sample/data/`` from the seed in its
engagement.yml, once; a stamp file records the seed and generator version, so a
rerun with the same seed is a no-op and a changed seed regenerates.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rox_helpers import __version__
from rox_helpers.config import load_engagement_config

STAMP = ".generated.json"


def ensure_sample_data(
    engagement: str | Path, *, seed: int | None = None, force: bool = False, size=None
) -> tuple[Path, bool]:
    """Generate the sample data into ``<engagement>/data`` if missing or stale.

    Returns ``(data_dir, generated)``.
    """
    from rox_helpers.synthetic import GENERATOR_VERSION, SampleSize, generate_sample

    root = Path(engagement)
    cfg = load_engagement_config(root)
    seed = cfg.seed if seed is None else seed
    size = size or SampleSize()
    data_dir = root / "data"
    want = {
        "seed": seed,
        "generator": f"{__version__}/{GENERATOR_VERSION}",
        "size": repr(size),
    }
    stamp = data_dir / STAMP
    if not force and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == want:
                return data_dir, False
        except json.JSONDecodeError:
            pass
    tmp = root / ".data.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    generate_sample(tmp, seed=seed, size=size)
    (tmp / STAMP).write_text(json.dumps(want, sort_keys=True) + "\n")
    if data_dir.exists():
        shutil.rmtree(data_dir)
    tmp.rename(data_dir)
    return data_dir, True
