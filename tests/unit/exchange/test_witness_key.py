"""The hub's witness key is a C2SP tlog-cosignature key (cosignature/v1, type 0x04)."""

from __future__ import annotations

import time
from pathlib import Path

from flask import Flask

from audit.cosignature import CosignatureVerifier, verify_cosignatures
from audit.note import generate_signer_key, sign_note
from exchange.keys import hub_keys, key_paths, load_keys
from tests.conftest import make_hub

#: A tlog-checkpoint body (origin, size, root hash of the empty tree).
EMPTY_TREE = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_the_published_witness_key_is_a_cosignature_key(app: Flask) -> None:
    published = app.test_client().get("/.well-known/puente-hub").get_json()["witness_vkey"]
    verifier = CosignatureVerifier.from_vkey(published)  # refuses any other key type
    witness = hub_keys(app).witness
    assert witness is not None and verifier.vkey == witness.vkey


def test_its_cosignature_on_the_hubs_checkpoint_verifies(app: Flask) -> None:
    keys = hub_keys(app)
    assert keys.log is not None and keys.witness is not None
    checkpoint = f"{keys.log.name}\n0\n{EMPTY_TREE}\n"
    cosignature = keys.witness.cosign(checkpoint, int(time.time()))
    signed = sign_note(checkpoint, [keys.log])
    cosigned = signed + cosignature.to_note_signature().to_line() + "\n"
    assert verify_cosignatures(cosigned, [keys.witness.verifier()], quorum=1)


def test_a_witness_key_written_as_a_plain_note_key_still_loads(tmp_path: Path) -> None:
    # Hubs created before 2026-11-23 wrote the witness key as a type 0x01 note key.
    old_private, old_vkey = generate_signer_key("mx.local.puente/witness")
    app = make_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}")
    key_paths(app)["witness"].write_text(old_private + "\n", encoding="ascii")
    witness = load_keys(app).witness
    assert witness is not None
    verifier = CosignatureVerifier.from_vkey(witness.vkey)
    assert witness.vkey != old_vkey  # same seed, published as a cosignature key
    assert verifier.name == "mx.local.puente/witness"
