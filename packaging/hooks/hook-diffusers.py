# diffusers resolves `from diffusers import X` through a lazy module table (names as strings), which
# PyInstaller's import scan cannot follow: collect its sub-modules and the sources (torch.jit / inspect
# read them). At import it checks the installed versions of its dependencies from their metadata
# (dependency_versions_check: requests, filelock, numpy…), so their metadata ships too.
import contextlib
import re

from PyInstaller.utils.hooks import (
    collect_submodules,
    copy_metadata,
    get_module_attribute,
    is_module_satisfies,
)

hiddenimports = collect_submodules(
    "diffusers",
    filter=lambda name: (
        not name.startswith(
            ("diffusers.commands", "diffusers.experimental", "diffusers.pipelines.deprecated")
        )
    ),
)
datas = copy_metadata("diffusers")
for requirement in get_module_attribute("diffusers.dependency_versions_table", "deps").values():
    if is_module_satisfies(requirement):
        with contextlib.suppress(Exception):  # no metadata: not a distribution diffusers can check
            datas += copy_metadata(re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0])
module_collection_mode = "pyz+py"
