"""`sfumato config`: the settings in effect and where each value comes from."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from sfumato.cli.console import print_json

SECRET = ("token",)


def _shown(name: str, value: Any) -> Any:
    if name in SECRET and value:
        return "(set)"  # never printed: terminals and logs are read by others
    return value


def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Show the settings in effect and where each comes from: default, config file, or SFUMATO_* variable."""
    from rich.console import Console
    from rich.table import Table

    from sfumato.core.settings import Settings, config_file, setting_sources

    settings = Settings()
    sources = setting_sources()
    values = settings.model_dump(mode="json")
    path = config_file()
    if as_json:
        print_json(
            {
                "config_file": str(path),
                "config_file_exists": path.is_file(),
                "settings": {
                    name: {"value": _shown(name, value), "source": sources[name]}
                    for name, value in values.items()
                },
            }
        )
        return
    table = Table(
        "setting", "value", "from", title=f"config file: {path}" + ("" if path.is_file() else " (none)")
    )
    for name, value in values.items():
        table.add_row(name, str(_shown(name, value)), sources[name])
    Console(highlight=False).print(table)
