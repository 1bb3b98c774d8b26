"""RELION 5 External-job contract around the batch runner.

RELION runs ``cryozssr relion-external --o External/job012/ --in_movies Import/job001/movies.star
[--<param> <value> ...] --j N`` from the project folder and then reads, in ``--o``
(``src/pipeliner.cpp``, ``src/pipeline_control.cpp``):

* ``RELION_OUTPUT_NODES.star``: ``data_output_nodes`` with ``rlnPipeLineNodeName`` and
  ``rlnPipeLineNodeTypeLabel`` (here ``micrographs_sr.star`` as
  ``MicrographGroupMetadata.star.relion.motioncorr``, what a Motion correction job produces, so that
  CTF estimation takes it as input);
* one of ``RELION_JOB_EXIT_SUCCESS``, ``RELION_JOB_EXIT_FAILURE``, ``RELION_JOB_EXIT_ABORTED``;
* the user's abort request, the file ``RELION_JOB_ABORT_NOW``, which is polled between movies.

Everything is written inside ``--o``; paths in the STAR files are relative to the project folder,
as RELION expects. Rerunning the job ("Continue") resumes through the manifest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import starfile

from cryozssr.errors import CryoZssrError, InputError
from cryozssr.io import write_star
from cryozssr.pipeline.manifest import STAR_NAME, update_manifest
from cryozssr.pipeline.runner import BatchOptions, BatchSummary, run_batch

log = logging.getLogger(__name__)

SUCCESS, FAILURE, ABORTED = (
    "RELION_JOB_EXIT_SUCCESS",
    "RELION_JOB_EXIT_FAILURE",
    "RELION_JOB_EXIT_ABORTED",
)
ABORT_NOW = "RELION_JOB_ABORT_NOW"
OUTPUT_NODES = "RELION_OUTPUT_NODES.star"
MICROGRAPHS_NODE_LABEL = "MicrographGroupMetadata.star.relion.motioncorr"


def optics_from_movies_star(path: Path) -> dict[str, float]:
    """Optics group 1 of a RELION movies STAR: ``{RunConfig field: value}`` for what it gives."""
    try:
        data = starfile.read(path, always_dict=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable STAR file ({exc})") from None
    optics = data.get("optics")
    if optics is None or not len(optics):
        return {}
    row = optics.iloc[0]
    fields = {
        "rlnMicrographOriginalPixelSize": "pixel_size_angstrom",
        "rlnVoltage": "voltage_kv",
        "rlnSphericalAberration": "spherical_aberration_mm",
        "rlnAmplitudeContrast": "amplitude_contrast",
    }
    return {field: float(row[col]) for col, field in fields.items() if col in optics.columns}


def _marker(out_dir: Path, name: str) -> None:
    (out_dir / name).touch()


def run_external_job(
    find_movies: Callable[[], Sequence[Path]],
    build_config: Callable[[], Any],
    out_dir: Path,
    *,
    options: BatchOptions,
    command_line: str = "",
    on_outcome=None,
) -> BatchSummary:
    """Run the batch as a RELION External job; always leaves exactly one exit marker.

    Success when at least one movie is done (failed movies are listed in the summary, as
    RELION's own motion correction goes on without them); failure when none is or on an error;
    aborted when RELION asked. Errors are re-raised after the marker is written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (SUCCESS, FAILURE, ABORTED, ABORT_NOW):
        (out_dir / name).unlink(missing_ok=True)
    abort = out_dir / ABORT_NOW
    try:
        movies = find_movies()
        cfg = build_config()
        prefix = out_dir.as_posix().rstrip("/") + "/"
        update_manifest(out_dir, lambda data: data.__setitem__("star_prefix", prefix))
        summary = run_batch(
            movies,
            cfg,
            out_dir,
            options=options,
            command_line=command_line,
            on_outcome=on_outcome,
            should_stop=abort.exists,
        )
        if abort.exists():
            log.warning("RELION asked to abort: stopping after the current movie(s)")
            _marker(out_dir, ABORTED)
            return summary
        if summary.count("done") + summary.count("already") == 0:
            raise CryoZssrError(summary.line())
        write_star(
            out_dir / OUTPUT_NODES,
            {
                "output_nodes": pd.DataFrame(
                    {
                        "rlnPipeLineNodeName": [prefix + STAR_NAME],
                        "rlnPipeLineNodeTypeLabel": [MICROGRAPHS_NODE_LABEL],
                    }
                )
            },
        )
    except BaseException:
        _marker(out_dir, FAILURE)
        raise
    _marker(out_dir, SUCCESS)
    return summary
