"""Puente's tamper-evident audit log: the pure core (no I/O, no Flask, no SQLAlchemy).

Standards, one module each, and nothing invented:

- :mod:`audit.merkle` — RFC 9162 §2.1 Merkle tree hashes; inclusion and consistency proof
  verification (after transparency-dev/merkle ``proof/verify.go``).
- :mod:`audit.compact` — :class:`CompactRange`, the O(log n) state of a growing tree, for
  the sequencer and for recomputing an export's roots.
- :mod:`audit.prover` — proof generation from stored perfect-subtree hashes
  (:class:`HashSource`), and :class:`MemoryTree` for tests.
- :mod:`audit.reference` — the naive RFC 6962 MTH/PATH/PROOF, for cross-checking in tests.
- :mod:`audit.keys` — note keys in the golang ``sumdb/note`` format; Ed25519 signer/verifier.
- :mod:`audit.note` — C2SP signed notes.
- :mod:`audit.checkpoint` — C2SP tlog-checkpoint.
- :mod:`audit.cosignature` — C2SP tlog-cosignature (cosignature/v1, key type 0x04).
- :mod:`audit.witness` — C2SP tlog-witness ``add-checkpoint`` request/response formats.
- :mod:`audit.proof_file` — C2SP tlog-proof ``.tlog-proof`` files.
- :mod:`audit.entry` — RFC 8785 canonical JSON entries, the bytes hashed as leaves.
- :mod:`audit.verify_export` and :mod:`audit.search_export` — verifying an exported log
  offline, and searching it (a child's history) from the signed entries only.
- :mod:`audit.saved_text` — the files an auditor keeps (checkpoints, proofs, keys), read as
  they were written whatever the editor that saved them added.

Verification functions return nothing (or the verified value) and raise an
:class:`AuditError` subclass saying what was expected and what was found.
"""

from audit.checkpoint import (
    Checkpoint,
    ConsistencyNotProven,
    checkpoint_of,
    judge_consistency_proof,
    open_checkpoint,
    sign_checkpoint,
    verify_checkpoint_consistency,
)
from audit.compact import CompactRange, NodeId, NodeVisitor
from audit.cosignature import (
    COSIGNATURE_KEY_TYPE,
    Cosignature,
    CosignatureSigner,
    CosignatureVerifier,
    cosigned_message,
    generate_cosigner_key,
    verify_cosignatures,
)
from audit.entry import canonical_entry, entry_leaf_hash, parse_canonical_entry
from audit.errors import (
    AuditError,
    CheckpointFormatError,
    EntryError,
    FormatError,
    InconsistentCheckpoints,
    KeyFormatError,
    NoteFormatError,
    ProofError,
    ProofFileFormatError,
    QuorumError,
    RootMismatch,
    SignatureError,
)
from audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    inclusion_proof_size,
    leaf_hash,
    node_hash,
    root_from_consistency_proof,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from audit.note import (
    ED25519_KEY_TYPE,
    Note,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    Signer,
    Verifier,
    generate_signer_key,
    open_note,
    sign_note,
    verified_signatures,
)
from audit.proof_file import (
    EntryNotProven,
    TlogProof,
    VerifiedProof,
    make_proof_file,
    verify_proof_file,
)
from audit.prover import HashSource, MemoryTree, consistency_proof, inclusion_proof
from audit.witness import (
    AddCheckpointRequest,
    format_cosignature_response,
    parse_cosignature_response,
)

__all__ = [
    "COSIGNATURE_KEY_TYPE",
    "ED25519_KEY_TYPE",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AddCheckpointRequest",
    "AuditError",
    "Checkpoint",
    "CheckpointFormatError",
    "CompactRange",
    "ConsistencyNotProven",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "EntryError",
    "EntryNotProven",
    "FormatError",
    "HashSource",
    "InconsistentCheckpoints",
    "KeyFormatError",
    "MemoryTree",
    "NodeId",
    "NodeVisitor",
    "Note",
    "NoteFormatError",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "ProofFileFormatError",
    "QuorumError",
    "RootMismatch",
    "SignatureError",
    "Signer",
    "TlogProof",
    "VerifiedProof",
    "Verifier",
    "canonical_entry",
    "checkpoint_of",
    "consistency_proof",
    "cosigned_message",
    "entry_leaf_hash",
    "format_cosignature_response",
    "generate_cosigner_key",
    "generate_signer_key",
    "inclusion_proof",
    "inclusion_proof_size",
    "judge_consistency_proof",
    "leaf_hash",
    "make_proof_file",
    "node_hash",
    "open_checkpoint",
    "open_note",
    "parse_canonical_entry",
    "parse_cosignature_response",
    "root_from_consistency_proof",
    "root_from_inclusion_proof",
    "root_hash",
    "sign_checkpoint",
    "sign_note",
    "verified_signatures",
    "verify_checkpoint_consistency",
    "verify_consistency",
    "verify_cosignatures",
    "verify_inclusion",
    "verify_proof_file",
]
