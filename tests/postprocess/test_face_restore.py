"""Face restoration mechanics: detection, alignment, feathered paste-back, visibility, model files
(random RestoreFormer weights through spandrel: they prove loading and pasting, not restoring)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sfumato.core.errors import ModelNotFound, SfumatoError, UnsafeModelFile
from sfumato.core.postprocess import RestoreFacesStep
from sfumato.core.settings import Settings
from sfumato.postprocess.faces import TEMPLATE_512, alignment, restore_faces

FACE_BOX = (177, 67, 270, 160)  # the Haar box of the astronaut's face


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def grey_restorer(face: torch.Tensor) -> torch.Tensor:
    return torch.full_like(face, 0.5)


def changed(before: Image.Image, after: Image.Image) -> np.ndarray:
    return np.abs(np.asarray(after, dtype=int) - np.asarray(before, dtype=int)).max(-1) > 2


def test_the_eyes_land_on_the_templates_eyes() -> None:
    from sfumato.postprocess.detect import eye_centres

    picture = astronaut()
    eyes = eye_centres(picture, FACE_BOX)
    assert eyes is not None
    matrix = alignment(picture, FACE_BOX)
    for (x, y), target in zip(eyes, TEMPLATE_512[:2], strict=True):
        assert matrix @ np.array([x, y, 1.0]) == pytest.approx(np.array(target), abs=1e-6)


def test_a_restored_face_is_pasted_over_the_face_only() -> None:
    picture = astronaut()
    result = restore_faces(picture, RestoreFacesStep(), Settings(), restorer=grey_restorer)
    assert result.faces == [FACE_BOX]
    moved = changed(picture, result.picture)
    ys, xs = np.nonzero(moved)
    # The whole face is covered, and nothing far from it changes.
    assert moved[90:140, 195:255].all()
    assert xs.min() > 100 and xs.max() < 350 and ys.min() >= 0 and ys.max() < 240
    # The centre of the face is the restorer's grey, the edge of the blend a mixture.
    assert np.asarray(result.picture)[110, 225] == pytest.approx([128, 128, 128], abs=2)


def test_visibility_blends_the_restored_face_over_the_original() -> None:
    picture = astronaut()
    half = restore_faces(picture, RestoreFacesStep(visibility=0.5), Settings(), restorer=grey_restorer)
    original = np.asarray(picture, dtype=float)[110, 225]
    assert np.asarray(half.picture, dtype=float)[110, 225] == pytest.approx((original + 128) / 2, abs=2)
    none = restore_faces(picture, RestoreFacesStep(visibility=0.0), Settings(), restorer=grey_restorer)
    assert np.array_equal(np.asarray(none.picture), np.asarray(picture))


def test_a_picture_without_faces_is_a_note_not_an_error() -> None:
    flat = Image.new("RGB", (128, 128), (40, 90, 160))
    result = restore_faces(flat, RestoreFacesStep(), Settings())  # no model is needed either
    assert result.notes == ["No face was found, so no face was restored."]
    assert np.array_equal(np.asarray(result.picture), np.asarray(flat))


def _random_restoreformer(folder: Path) -> Path:
    from safetensors.torch import save_file

    from sfumato.models.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.RestoreFormer import RestoreFormer

    torch.manual_seed(0)
    model = RestoreFormer(ch=32, n_embed=64, embed_dim=32, z_channels=32, num_res_blocks=1)
    folder.mkdir(parents=True)
    path = folder / "RestoreFormer.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


@pytest.mark.slow  # two RestoreFormer runs at 512 pixels: ~15 s on 2 shared cores
def test_a_restoreformer_file_from_comfyuis_folder_restores_deterministically(tmp_path: Path) -> None:
    _random_restoreformer(tmp_path / "models" / "facerestore_models")
    settings = Settings(model_folders=[tmp_path])
    picture = astronaut()
    step = RestoreFacesStep(model="RestoreFormer")
    first = restore_faces(picture, step, settings)
    assert first.notes == ["Restored 1 face with RestoreFormer."]
    assert changed(picture, first.picture)[110, 225]
    assert not changed(picture, first.picture)[300:, :].any()
    again = restore_faces(picture, step, settings)
    assert np.array_equal(np.asarray(first.picture), np.asarray(again.picture))
    folder = tmp_path / "models" / "facerestore_models"
    (folder / "GFPGAN-renamed.safetensors").write_bytes((folder / "RestoreFormer.safetensors").read_bytes())
    with pytest.raises(SfumatoError, match="holds a RestoreFormer model, not GFPGAN"):
        restore_faces(picture, RestoreFacesStep(model="GFPGAN"), settings)


def test_a_missing_or_pickled_restorer_is_refused_with_what_to_do(tmp_path: Path) -> None:
    picture = astronaut()
    with pytest.raises(ModelNotFound, match="models/GFPGAN"):
        restore_faces(picture, RestoreFacesStep(model="GFPGAN"), Settings(model_folders=[tmp_path]))
    folder = tmp_path / "models" / "GFPGAN"
    folder.mkdir(parents=True)
    torch.save({"params_ema": {"w": torch.zeros(1)}}, folder / "GFPGANv1.4.pth")
    with pytest.raises(UnsafeModelFile, match="sfumato models convert"):
        restore_faces(picture, RestoreFacesStep(model="GFPGAN"), Settings(model_folders=[tmp_path]))


def test_codeformer_says_it_is_opt_in(tmp_path: Path) -> None:
    try:
        import spandrel_extra_arches  # noqa: F401  # pyright: ignore[reportMissingImports]
    except ImportError:
        pass
    else:
        pytest.skip("spandrel-extra-arches is installed here")
    path = _random_restoreformer(tmp_path / "models" / "Codeformer")
    path.rename(path.with_name("codeformer-v0.1.0.safetensors"))
    with pytest.raises(SfumatoError, match=r"spandrel-extra-arches.*licence"):
        restore_faces(astronaut(), RestoreFacesStep(model="CodeFormer"), Settings(model_folders=[tmp_path]))


@pytest.mark.slow  # a full-size random GFPGAN (~340 MB written) run twice at 512 pixels
def test_a_gfpgan_file_from_a1111s_folder_restores_deterministically(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from sfumato.models.spandrel_import import import_spandrel

    import_spandrel()
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(0)
    model = GFPGAN(
        out_size=512,
        num_style_feat=512,
        channel_multiplier=2,
        decoder_load_path=None,
        fix_decoder=False,
        num_mlp=8,
        input_is_latent=True,
        different_w=True,
        narrow=1,
        sft_half=True,
    )
    folder = tmp_path / "models" / "GFPGAN"
    folder.mkdir(parents=True)
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "GFPGANv1.4.safetensors")
    )
    del model
    settings = Settings(model_folders=[tmp_path])
    picture = astronaut()
    first = restore_faces(picture, RestoreFacesStep(model="GFPGAN"), settings)
    assert first.notes == ["Restored 1 face with GFPGAN."]
    assert changed(picture, first.picture)[110, 225] and not changed(picture, first.picture)[300:, :].any()
    again = restore_faces(picture, RestoreFacesStep(model="GFPGAN"), settings)
    assert np.array_equal(np.asarray(first.picture), np.asarray(again.picture))
