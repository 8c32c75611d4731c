# diffusers resolves `from diffusers import X` through a lazy module table (names as strings), which
# PyInstaller's import scan cannot follow: collect its sub-modules, the sources (torch.jit / inspect
# read them) and the package metadata diffusers checks at import.
from PyInstaller.utils.hooks import collect_submodules, copy_metadata

hiddenimports = collect_submodules(
    "diffusers",
    filter=lambda name: (
        not name.startswith(
            ("diffusers.commands", "diffusers.experimental", "diffusers.pipelines.deprecated")
        )
    ),
)
datas = copy_metadata("diffusers")
module_collection_mode = "pyz+py"
