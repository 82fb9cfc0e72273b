"""Sealing a run: the runner signs the run's records before the run is published (docs/records.md#signed-runs).

The seal is written into the run's work directory last, after every record, so
it covers exactly what is published; a run whose records change later (an
attached accuracy result) is sealed again by whoever holds a key, or fails
``verify --key``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pytest_inferedgeforge.model.environment import host_facts
from pytest_inferedgeforge.model.hashing import file_digest
from pytest_inferedgeforge.model.jsonio import write_json_atomic
from pytest_inferedgeforge.model.provenance import PAYLOAD_TYPE
from pytest_inferedgeforge.model.records.run import RunSummary
from pytest_inferedgeforge.model.run_attestation import RUN_SIGNATURE_FILE, run_statement, signed_files, statement_bytes

if TYPE_CHECKING:
    from securesystemslib.signer import Signer


def seal_run(run_dir: Path, summary: RunSummary, signer: Signer) -> str:
    """Write ``run.dsse.json`` over the run's files as they are now; returns the signing key id."""
    from securesystemslib.dsse import Envelope

    subjects = {name: file_digest(run_dir / name) for name in signed_files(run_dir)}
    envelope = Envelope(statement_bytes(run_statement(subjects, summary, host_facts())), PAYLOAD_TYPE, {})
    envelope.sign(signer)
    write_json_atomic(run_dir / RUN_SIGNATURE_FILE, envelope.to_dict())
    return str(signer.public_key.keyid)


def is_sealed(run_dir: Path) -> bool:
    return (run_dir / RUN_SIGNATURE_FILE).is_file()
