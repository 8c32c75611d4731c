"""POST /api/xyz: an X/Y/Z plot over the job queue; every cell is a job of its own, with its recipe."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from sfumato.core.errors import InvalidRequest
from sfumato.core.xyz import XYZPlot
from sfumato.jobs.model import Job, JobState
from sfumato.server.context import ServerContext
from sfumato.server.errors import error_responses
from sfumato.server.paths import safe_child
from sfumato.server.submit import checked_request


class SubmitPlot(XYZPlot):
    priority: int = Field(0, ge=-100, le=100, strict=True)


class PlotResult(BaseModel):
    grid: str = Field(description="Base64 PNG of the labelled grid.")
    grid_path: str = Field(description="The grid's file, relative to the outputs folder.")
    jobs: list[Job] = Field(description="One finished job per cell, x fastest; each picture has its recipe.")


def output_path(ctx: ServerContext, path: str) -> Path:
    outputs = ctx.settings.outputs.resolve()
    file = Path(path).resolve() if Path(path).is_absolute() else safe_child(outputs, path)
    return file if file.is_relative_to(outputs) else safe_child(outputs, path)


async def run_plot_jobs(ctx: ServerContext, plot: XYZPlot, priority: int = 0) -> tuple[list[Job], Path]:
    """Queue a job per cell (all checked first), wait for them, save the grid; returns the jobs and grid."""
    from sfumato.jobs.xyz import open_rgb, plot_cells, save_plot_grid

    cells = plot_cells(plot)
    checked = [await asyncio.to_thread(checked_request, ctx, cell) for _, cell in cells]
    submitted = [await asyncio.to_thread(ctx.queue.submit, cell, priority) for cell in checked]
    jobs = [await ctx.queue.wait_async(job.id) for job in submitted]
    failed = next((job for job in jobs if job.state is not JobState.finished or not job.images), None)
    if failed is not None:
        raise InvalidRequest(f"A cell of the plot did not render: {failed.error or failed.state.value}.")
    files = [output_path(ctx, job.images[0].path) for job in jobs]
    pictures = {index: open_rgb(file) for (index, _), file in zip(cells, files, strict=True)}
    relative = [str(file.relative_to(ctx.settings.outputs.resolve())) for file in files]
    grid = await asyncio.to_thread(save_plot_grid, ctx.settings, plot, cells, pictures, relative)
    return jobs, grid


def build_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["Sfumato"])

    @router.post("/xyz", response_model=PlotResult, responses=error_responses(404, 409, 413, 422))
    async def xyz(request: Request, body: SubmitPlot) -> PlotResult:
        ctx: ServerContext = request.app.state.context
        plot = XYZPlot.model_validate(body.model_dump(exclude={"priority"}))
        jobs, grid = await run_plot_jobs(ctx, plot, body.priority)
        return PlotResult(
            grid=base64.b64encode(grid.read_bytes()).decode(),
            grid_path=str(grid.resolve().relative_to(ctx.settings.outputs.resolve())),
            jobs=jobs,
        )

    return router
