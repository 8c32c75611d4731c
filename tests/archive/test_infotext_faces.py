"""A1111's face restoration in a picture's infotext, written and read back as a restore step."""

from __future__ import annotations

from sfumato.archive.infotext import parse_infotext, request_fields
from sfumato.core.postprocess import RestoreFacesStep
from sfumato.core.request import parse_request


def test_face_restoration_in_a1111_infotext_recalls_a_restore_step() -> None:
    text = "a portrait\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Face restoration: CodeFormer, CodeFormer weight: 0.3"
    request = parse_request(request_fields(dict(parse_infotext(text))))
    assert request.postprocess == [RestoreFacesStep(model="CodeFormer", codeformer_weight=0.3)]


def test_infotext_without_face_restoration_has_no_steps() -> None:
    text = "a portrait\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512"
    assert parse_request(request_fields(dict(parse_infotext(text)))).postprocess == []
